"""Pure parts of the fuzzer: target files, replay expectations, raw attribute flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given

from bgpd.fuzz.cases import (
    ADD_PATH_CONTEXT,
    Example,
    add_paths,
    expect_from_bytes,
    opens,
    propagation,
)
from bgpd.fuzz.speaker import raw_flags
from bgpd.fuzz.target import TargetError, parse_address, parse_file
from bgpd.fuzz.verdict import propagatable
from bgpd.wire import Update, WireContext, decode_message
from bgpd.wire.attributes import PARTIAL
from bgpd.wire.errors import Action

FIXED_DATA = "ffffffffffffffffffffffffffffffff003202000000174001010040020602010000fde9400304c0000201800400180a0000"


def test_address_targets_stay_on_loopback() -> None:
    assert (parse_address("127.0.0.9:1179").address, parse_address("127.0.0.9").port) == (
        "127.0.0.9",
        179,
    )
    with pytest.raises(TargetError):
        parse_address("192.0.2.1")


def test_target_file_renders_its_template(tmp_path: Path) -> None:
    (tmp_path / "t.in").write_text("as $asn from $fuzzer_address in $dir")
    path = tmp_path / "t.toml"
    path.write_text(
        'address = "127.0.0.5"\nasn = 65000\n[fuzzer]\naddress = "127.0.0.6"\n'
        '[command]\nargv = ["x", "$config"]\ntemplate = "t.in"\n'
    )
    target = parse_file(path)
    argv, text = target.render(tmp_path / "w")
    assert argv == ["x", str(tmp_path / "w" / "target.conf")]
    assert text == f"as 65000 from 127.0.0.6 in {tmp_path / 'w'}"
    path.write_text('address = "10.0.0.1"\n')
    with pytest.raises(TargetError):
        parse_file(path)


def test_rfc7606_s7_4_replay_rebuilds_the_expectation_from_bytes() -> None:
    ex = expect_from_bytes(bytes.fromhex(FIXED_DATA))
    assert ex.property == "update" and ex.expected is not None
    assert (ex.expected.case, ex.expected.action) == ("med-length", Action.TREAT_AS_WITHDRAW)
    assert raw_flags(ex.data) == {1: 0x40, 2: 0x40, 3: 0x40, 4: 0x80}


def test_rfc4271_s6_2_replayed_open_error_keeps_code_and_data() -> None:
    data = bytes.fromhex(
        "ffffffffffffffffffffffffffffffff002d0105fde9001e7f00002010020e010400010001020041040000fde9"
    )
    ex = expect_from_bytes(data)
    assert ex.as_open and ex.expected is not None
    assert (ex.expected.code, ex.expected.subcode, ex.expected.data) == (2, 1, b"\x00\x04")


@given(propagation(65001, "192.0.2.1"))
def test_rfc4271_s5_propagation_examples_are_well_formed_and_exportable(ex: Example) -> None:
    assert ex.sent is not None and ex.sent.attributes is not None
    msg = decode_message(ex.data, WireContext(four_octet_as=True))
    assert msg == ex.sent._replace(
        attributes=ex.sent.attributes._replace(
            unknown=tuple(
                type(u)(u.flags | PARTIAL, u.type_code, u.value) for u in ex.sent.attributes.unknown
            )
        )
    )
    assert propagatable(ex.sent.attributes)


@given(opens(65001, 0x7F000020, 30))
def test_rfc4271_s6_2_open_examples_match_the_codec(ex: Example) -> None:
    assert ex.expected is not None
    assert ex.expected.matches(ex.data)


@given(propagation(65001, "192.0.2.1", "2001:db8::1"))
def test_rfc4760_ipv6_examples_carry_their_prefixes_in_mp_reach_nlri(ex: Example) -> None:
    """RFC 4760 §3: IPv6 unicast in MP_REACH_NLRI, no NEXT_HOP attribute; replay rebuilds it."""
    msg = decode_message(ex.data, WireContext(four_octet_as=True))
    assert isinstance(msg, Update)
    assert ex.property == "ipv6" and ex.sent is not None
    assert ex.sent.mp_reach == msg.mp_reach  # (the codec marks unknown attributes Partial)
    assert msg.nlri == () and msg.mp_reach is not None and msg.mp_reach.afi == 2
    assert msg.attributes is not None and msg.attributes.next_hop is None
    assert expect_from_bytes(ex.data).property == "ipv6"


def test_target_families_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('address = "127.0.0.5"\nfamilies = ["ipv4", "ipv6"]\n')
    assert parse_file(path).families == ("ipv4", "ipv6")
    path.write_text('address = "127.0.0.5"\nfamilies = ["ipx"]\n')
    with pytest.raises(TargetError):
        parse_file(path)


@given(add_paths(65001, "192.0.2.1"))
def test_rfc7911_s3_add_path_examples_carry_one_path_identifier_per_prefix(ex: Example) -> None:
    msg = decode_message(ex.data, ADD_PATH_CONTEXT)
    assert isinstance(msg, Update) and ex.sent is not None
    assert len(msg.nlri_path_ids) == len(msg.nlri) >= 1
    assert msg.nlri_path_ids == ex.sent.nlri_path_ids
    replayed = expect_from_bytes(ex.data, True, add_path=True)
    assert replayed.property == "add-path" and replayed.add_path
    with pytest.raises(ValueError):
        expect_from_bytes(FIXED_DATA_BYTES[:19] + b"\x04", True, add_path=True)


FIXED_DATA_BYTES = bytes.fromhex(FIXED_DATA)
