"""One test per NOTIFICATION case the codec produces: code, subcode and data byte for byte
(RFC 4271 §6.1-6.3, RFC 5492, RFC 7313 §5), and NOTIFICATION messages themselves (RFC 4271
§4.5, RFC 9003)."""

from __future__ import annotations

import pytest

from bgpd.wire import (
    KEEPALIVE_MESSAGE,
    BGPError,
    Framer,
    MessageHeaderError,
    Notification,
    OpenMessageError,
    Update,
    UpdateMessageError,
    WireContext,
    decode_message,
    encode_message,
)
from bgpd.wire.errors import RouteRefreshMessageError, error_name
from bgpd.wire.strategies import attr, frame, update_bytes

CTX = WireContext(four_octet_as=True)
M = b"\xff" * 16
# A minimal valid OPEN body: version 4, AS 65001, hold 90, id 1.1.1.1, no parameters.
OPEN_BODY = bytes.fromhex("04fde9005a01010101") + b"\x00"
ORIGIN_ASPATH_NH = bytes.fromhex("400101004002060201 0000fde9 400304c0000201".replace(" ", ""))


def raises(data: bytes, cls: type[BGPError], ctx: WireContext = CTX) -> BGPError:
    with pytest.raises(cls) as info:
        decode_message(data, ctx)
    return info.value


def notif(err: BGPError) -> tuple[int, int, bytes]:
    return err.code, err.subcode, err.data


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # RFC 4271 §6.1 Connection Not Synchronized: marker not all ones, no data.
        (b"\xfe" + M[1:] + b"\x00\x13\x04", (1, 1, b"")),
        # Bad Message Length: data is the erroneous Length field.
        (M + b"\x00\x12\x04", (1, 2, b"\x00\x12")),
        (M + b"\x10\x01\x02" + bytes(4098 - 19), (1, 2, b"\x10\x01")),
        (M + b"\x00\x14\x04\x00", (1, 2, b"\x00\x14")),  # KEEPALIVE is exactly 19
        (M + b"\x00\x1c\x01" + OPEN_BODY[:9], (1, 2, b"\x00\x1c")),  # OPEN < 29
        (M + b"\x00\x16\x02\x00\x00\x00", (1, 2, b"\x00\x16")),  # UPDATE < 23
        (M + b"\x00\x14\x03\x06", (1, 2, b"\x00\x14")),  # NOTIFICATION < 21
        (M + b"\x00\x16\x05\x00\x01\x00", (1, 2, b"\x00\x16")),  # ROUTE-REFRESH < 23
        # Bad Message Type: data is the erroneous Type field.
        (M + b"\x00\x13\x06", (1, 3, b"\x06")),
        (M + b"\x00\x13\x00", (1, 3, b"\x00")),
    ],
    ids=[
        "marker",
        "short",
        "long",
        "keepalive-body",
        "open-short",
        "update-short",
        "notification-short",
        "route-refresh-short",
        "type-6",
        "type-0",
    ],
)
def test_message_header_errors_rfc4271_s6_1(data: bytes, expected: tuple[int, int, bytes]) -> None:
    assert notif(raises(data, MessageHeaderError)) == expected


def test_open_and_keepalive_stay_4096_with_extended_messages_rfc8654_s4() -> None:
    ext = WireContext(extended_message=True)
    big_open = M + b"\x10\x01\x01" + bytes(4097 - 19)
    assert notif(raises(big_open, MessageHeaderError, ext)) == (1, 2, b"\x10\x01")
    big_update = update_bytes(b"", b"", b"\x00" * 5000)
    assert isinstance(decode_message(big_update, ext), Update)
    assert notif(raises(big_update, MessageHeaderError, CTX)) == (1, 2, big_update[16:18])


def test_framer_rejects_a_bad_marker_at_the_first_octet_rfc4271_s6_1() -> None:
    framer = Framer(CTX)
    framer.feed(b"\xff\xff")
    with pytest.raises(MessageHeaderError) as info:
        framer.feed(b"\x00")
    assert notif(info.value) == (1, 1, b"")
    with pytest.raises(MessageHeaderError):  # dead after an error
        framer.next_frame()


def test_framer_delivers_good_frames_before_a_bad_header_rfc4271_s6_1() -> None:
    framer = Framer(CTX)
    framer.feed(M + b"\x00\x13\x04" + b"\x00")
    assert framer.next_message() == KEEPALIVE_MESSAGE
    with pytest.raises(MessageHeaderError) as info:
        framer.next_message()
    assert notif(info.value) == (1, 1, b"")


def test_framer_rejects_a_bad_length_before_the_body_rfc4271_s6_1() -> None:
    framer = Framer(CTX)
    with pytest.raises(MessageHeaderError) as info:
        framer.feed(M + b"\x20\x00\x02")  # 8192 octets announced, nothing buffered yet
    assert notif(info.value) == (1, 2, b"\x20\x00")


def test_framer_applies_the_negotiated_size_rfc8654_s4() -> None:
    big = update_bytes(b"", b"", b"\x00" * 5000)
    framer = Framer(CTX)
    with pytest.raises(MessageHeaderError):
        framer.feed(big[:19])
    framer = Framer(CTX)
    framer.context = WireContext(four_octet_as=True, extended_message=True)
    framer.feed(big)
    assert isinstance(framer.next_message(), Update)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # Unsupported Version Number: data is the largest version we support (2 octets).
        (b"\x03" + OPEN_BODY[1:], (2, 1, b"\x00\x04")),
        # Bad BGP Identifier (RFC 6286 §2.2: zero is not an identifier).
        (OPEN_BODY[:5] + b"\x00\x00\x00\x00" + b"\x00", (2, 3, b"")),
        # Unsupported Optional Parameter (type 1 was authentication, long deprecated).
        (OPEN_BODY[:9] + b"\x03\x01\x01\x00", (2, 4, b"")),
        # Unacceptable Hold Time: 1 and 2 seconds are refused (RFC 4271 §4.2).
        (OPEN_BODY[:3] + b"\x00\x01" + OPEN_BODY[5:], (2, 6, b"")),
        (OPEN_BODY[:3] + b"\x00\x02" + OPEN_BODY[5:], (2, 6, b"")),
        # Malformed parameters / capabilities: OPEN Message Error, Unspecific.
        (OPEN_BODY[:9] + b"\x05\x02\x03\x41\x01\x00", (2, 0, b"")),
        (OPEN_BODY[:9] + b"\x09\x02\x03\x41\x01\x00", (2, 0, b"")),
    ],
    ids=["version", "bgp-id", "opt-param", "hold-1", "hold-2", "bad-capability", "opt-len"],
)
def test_open_message_errors_rfc4271_s6_2(body: bytes, expected: tuple[int, int, bytes]) -> None:
    assert notif(raises(frame(1, body), OpenMessageError)) == expected


def _update_error(attrs: bytes, nlri: bytes = b"\x18\x0a\x00\x00") -> tuple[int, int, bytes]:
    data = update_bytes(b"", attrs, nlri)
    try:
        msg = decode_message(data, CTX)
    except UpdateMessageError as err:
        return notif(err)
    assert isinstance(msg, Update) and len(msg.malformations) == 1
    return notif(msg.malformations[0].to_error())


def test_update_malformed_attribute_list_rfc4271_s6_3() -> None:
    data = bytearray(update_bytes(b"", b"", b""))
    data[19:21] = b"\x00\x05"
    assert notif(raises(bytes(data), UpdateMessageError)) == (3, 1, b"")


def test_update_unrecognized_well_known_rfc4271_s6_3() -> None:
    bad = attr(0x40, 77, b"\x01\x02")
    assert _update_error(ORIGIN_ASPATH_NH + bad) == (3, 2, bad)


def test_update_missing_well_known_carries_the_type_code_rfc4271_s6_3() -> None:
    assert _update_error(ORIGIN_ASPATH_NH[4:]) == (3, 3, b"\x01")


def test_update_attribute_flags_error_rfc4271_s6_3() -> None:
    bad = attr(0xC0, 1, b"\x00")
    assert _update_error(bad + ORIGIN_ASPATH_NH[4:]) == (3, 4, bad)


def test_update_attribute_length_error_rfc4271_s6_3() -> None:
    bad = attr(0x40, 3, b"\x0a\x00\x00")
    assert _update_error(ORIGIN_ASPATH_NH[:-7] + bad) == (3, 5, bad)


def test_update_invalid_origin_rfc4271_s6_3() -> None:
    bad = attr(0x40, 1, b"\x03")
    assert _update_error(bad + ORIGIN_ASPATH_NH[4:]) == (3, 6, bad)


def test_update_invalid_next_hop_rfc4271_s6_3() -> None:
    bad = attr(0x40, 3, b"\xe0\x00\x00\x05")
    assert _update_error(ORIGIN_ASPATH_NH[:-7] + bad) == (3, 8, bad)


def test_update_optional_attribute_error_rfc4271_s6_3() -> None:
    bad = attr(0xC0, 8, b"\x00\x01\x00")
    assert _update_error(ORIGIN_ASPATH_NH + bad) == (3, 9, bad)


def test_update_invalid_network_field_rfc4271_s6_3() -> None:
    assert _update_error(ORIGIN_ASPATH_NH, b"\x21\x0a\x00\x00\x00\x00") == (3, 10, b"")


def test_update_malformed_as_path_rfc4271_s6_3() -> None:
    bad = attr(0x40, 2, b"\x02\x02\x00\x00\xfd\xe9")
    assert _update_error(ORIGIN_ASPATH_NH[:4] + bad + ORIGIN_ASPATH_NH[-7:]) == (3, 11, b"")


def test_route_refresh_invalid_message_length_rfc7313_s5() -> None:
    data = frame(5, b"\x00\x01\x01\x01\x00")  # BoRR with one octet too many
    err = raises(data, RouteRefreshMessageError)
    assert notif(err) == (7, 1, data)


def test_notification_round_trip_and_exact_bytes_rfc4271_s4_5() -> None:
    n = Notification(6, 2, b"\x03bye")
    raw = encode_message(n, CTX)
    assert raw == M + b"\x00\x19\x03\x06\x02\x03bye"
    assert decode_message(raw, CTX) == n
    assert Notification.from_error(OpenMessageError(6)) == Notification(2, 6, b"")


def test_shutdown_communication_rfc9003() -> None:
    n = Notification.shutdown("maintenance ☕")
    assert n.data[0] == len("maintenance ☕".encode())
    assert n.communication == "maintenance ☕"
    long = Notification.shutdown("é" * 200)  # 400 octets: cut to 255 on a character boundary
    assert long.data[0] == 254 and long.communication == "é" * 127
    assert Notification(6, 2, b"\x05ab").communication is None  # length overruns the data
    assert Notification(6, 4, b"\x02\xff\xfe").communication is None  # not UTF-8
    assert Notification(6, 3, b"\x02hi").communication is None  # not a shutdown subcode


def test_hard_reset_wraps_the_cause_rfc8538_s3() -> None:
    cause = Notification(4, 0, b"")  # Hold Timer Expired
    hard = Notification.hard_reset(cause)
    assert encode_message(hard, CTX) == M + b"\x00\x17\x03\x06\x09\x04\x00"
    assert hard.hard_reset_cause == cause
    assert Notification(6, 2, b"").hard_reset_cause is None


def test_error_names_cover_the_registry() -> None:
    assert error_name(6, 9) == "Cease / Hard Reset"
    assert error_name(3, 11) == "UPDATE Message Error / Malformed AS_PATH"
    assert (
        error_name(5, 3)
        == "Finite State Machine Error / Receive Unexpected Message in Established State"
    )
