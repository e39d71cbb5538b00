"""`encode_message` / `decode_message`: the header (RFC 4271 §4.1, §6.1) and OPEN (§4.2, §6.2,
RFC 5492, RFC 9072), NOTIFICATION (§4.5), KEEPALIVE (§4.4) and ROUTE-REFRESH (RFC 2918,
RFC 7313) codecs; UPDATE is in `bgpd.wire.update`.

Invariants: `decode_message` raises only `BGPError` subclasses, whatever the bytes, and each
carries the NOTIFICATION code, subcode and data RFC 4271 §6 prescribes. Semantic OPEN checks
that need configuration (Bad Peer AS, BGP Identifier collisions, Role Mismatch) are the
session's; the codec checks what the bytes alone decide.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from bgpd.wire.capabilities import (
    Capability,
    CapabilityError,
    decode_capabilities,
    encode_capability,
)
from bgpd.wire.context import MAX_MESSAGE, WireContext
from bgpd.wire.errors import (
    BAD_BGP_IDENTIFIER,
    BAD_MESSAGE_LENGTH,
    BAD_MESSAGE_TYPE,
    CONNECTION_NOT_SYNCHRONIZED,
    INVALID_MESSAGE_LENGTH,
    UNACCEPTABLE_HOLD_TIME,
    UNSPECIFIC,
    UNSUPPORTED_OPTIONAL_PARAMETER,
    UNSUPPORTED_VERSION_NUMBER,
    MessageHeaderError,
    OpenMessageError,
    RouteRefreshMessageError,
)
from bgpd.wire.messages import (
    BGP_VERSION,
    KEEPALIVE,
    KEEPALIVE_MESSAGE,
    NOTIFICATION,
    OPEN,
    ROUTE_REFRESH,
    UPDATE,
    Keepalive,
    Message,
    Notification,
    Open,
    RouteRefresh,
    Update,
)
from bgpd.wire.update import decode_update, encode_update

MARKER = b"\xff" * 16
HEADER_LENGTH = 19
CAPABILITIES_PARAMETER = 2  # RFC 5492 §4
EXTENDED_PARAMETERS = 255  # RFC 9072 §2

# Minimum message length per type (RFC 4271 §4.2-4.5, RFC 2918 §3).
MIN_LENGTH: dict[int, int] = {
    OPEN: 29,
    UPDATE: 23,
    NOTIFICATION: 21,
    KEEPALIVE: 19,
    ROUTE_REFRESH: 23,
}
# RFC 8654 §4: OPEN and KEEPALIVE never exceed 4,096 octets, even with extended messages.
FIXED_MAX: dict[int, int] = {OPEN: MAX_MESSAGE, KEEPALIVE: 19}


def bad_length(length: int) -> MessageHeaderError:
    # RFC 4271 §6.1: the Data field contains the erroneous Length field.
    return MessageHeaderError(BAD_MESSAGE_LENGTH, length.to_bytes(2, "big"), f"length {length}")


def check_header(head: bytes, max_message: int) -> tuple[int, int]:
    """Validate a 19-octet header (RFC 4271 §6.1); return (length, type)."""
    if head[:16] != MARKER:
        # RFC 4271 §6.1: Connection Not Synchronized (the marker is all ones).
        raise MessageHeaderError(CONNECTION_NOT_SYNCHRONIZED, b"", "marker is not all ones")
    length = head[16] << 8 | head[17]
    mtype = head[18]
    if length < HEADER_LENGTH or length > max_message:
        raise bad_length(length)
    minimum = MIN_LENGTH.get(mtype)
    if minimum is None:
        raise MessageHeaderError(BAD_MESSAGE_TYPE, bytes((mtype,)), f"type {mtype}")
    if length < minimum or length > FIXED_MAX.get(mtype, max_message):
        raise bad_length(length)
    return length, mtype


# --- OPEN -------------------------------------------------------------------------------------


def _decode_open(data: bytes, ctx: WireContext) -> Open:
    version = data[19]
    if version != BGP_VERSION:
        # RFC 4271 §6.2: data is the largest supported version, as a 2-octet unsigned integer.
        raise OpenMessageError(
            UNSUPPORTED_VERSION_NUMBER, BGP_VERSION.to_bytes(2, "big"), f"version {version}"
        )
    my_as, hold_time, bgp_id, opt_len = struct.unpack_from(">HHIB", data, 20)
    if hold_time in (1, 2):
        # RFC 4271 §4.2, §6.2: the Hold Time MUST be either zero or at least three seconds.
        raise OpenMessageError(UNACCEPTABLE_HOLD_TIME, b"", f"hold time {hold_time}")
    if bgp_id == 0:
        # RFC 6286 §2.2: a BGP Identifier is a non-zero 4-octet unsigned integer.
        raise OpenMessageError(BAD_BGP_IDENTIFIER, b"", "BGP Identifier is zero")
    caps = _decode_parameters(data, 29, opt_len)
    return Open(my_as, hold_time, bgp_id, tuple(caps), version)


def _decode_parameters(data: bytes, start: int, opt_len: int) -> list[Capability]:
    end = len(data)
    if opt_len == 255 and start < end and data[start] == EXTENDED_PARAMETERS:
        # RFC 9072 §2: extended optional parameters length; parameters have 2-octet lengths.
        if start + 3 > end:
            raise OpenMessageError(UNSPECIFIC, b"", "extended parameter length truncated")
        plen = data[start + 1] << 8 | data[start + 2]
        i = start + 3
        hsize = 3
    else:
        plen = opt_len
        i = start
        hsize = 2
    if i + plen != end:
        raise OpenMessageError(UNSPECIFIC, b"", "Optional Parameters Length disagrees with length")
    caps: list[Capability] = []
    while i < end:
        if end - i < hsize:
            raise OpenMessageError(UNSPECIFIC, b"", "optional parameter header truncated")
        ptype = data[i]
        vlen = data[i + 1] if hsize == 2 else data[i + 1] << 8 | data[i + 2]
        vstart = i + hsize
        if vstart + vlen > end:
            raise OpenMessageError(UNSPECIFIC, b"", "optional parameter overruns the OPEN")
        if ptype != CAPABILITIES_PARAMETER:
            # RFC 4271 §6.2: an optional parameter we do not recognise.
            raise OpenMessageError(UNSUPPORTED_OPTIONAL_PARAMETER, b"", f"parameter {ptype}")
        try:
            caps.extend(decode_capabilities(data[vstart : vstart + vlen]))
        except CapabilityError as exc:
            raise OpenMessageError(UNSPECIFIC, b"", f"malformed capability: {exc}") from None
        i = vstart + vlen
    return caps


def _encode_open(m: Open, ctx: WireContext) -> bytes:
    encoded = [encode_capability(c) for c in m.capabilities]
    # Greedily fill Capabilities parameters of at most 255 octets (RFC 5492 §4).
    params: list[bytes] = []
    run: list[bytes] = []
    used = 0
    for e in encoded:
        if used + len(e) > 255:
            params.append(b"".join(run))
            run, used = [], 0
        run.append(e)
        used += len(e)
    if run:
        params.append(b"".join(run))
    short = b"".join(bytes((CAPABILITIES_PARAMETER, len(p))) + p for p in params)
    if len(short) < 255:
        opt = bytes((len(short),)) + short
    else:
        # RFC 9072 §2: one Capabilities parameter with a 2-octet length.
        value = b"".join(encoded)
        param = bytes((CAPABILITIES_PARAMETER,)) + len(value).to_bytes(2, "big") + value
        opt = bytes((255, EXTENDED_PARAMETERS)) + len(param).to_bytes(2, "big") + param
    body = struct.pack(">BHHI", m.version, m.my_as, m.hold_time, m.bgp_id) + opt
    return _frame(OPEN, body)


# --- NOTIFICATION, KEEPALIVE, ROUTE-REFRESH -------------------------------------------------------


def _decode_notification(data: bytes, ctx: WireContext) -> Notification:
    return Notification(data[19], data[20], bytes(data[21:]))


def _encode_notification(m: Notification, ctx: WireContext) -> bytes:
    return _frame(NOTIFICATION, bytes((m.code, m.subcode)) + m.data)


def _decode_keepalive(data: bytes, ctx: WireContext) -> Keepalive:
    return KEEPALIVE_MESSAGE


def _encode_keepalive(m: Keepalive, ctx: WireContext) -> bytes:
    return _frame(KEEPALIVE, b"")


def _decode_route_refresh(data: bytes, ctx: WireContext) -> RouteRefresh:
    afi, subtype, safi = struct.unpack_from(">HBB", data, 19)
    if len(data) != 23:
        if subtype in (1, 2):
            # RFC 7313 §5: Invalid Message Length, data is the complete ROUTE-REFRESH message.
            raise RouteRefreshMessageError(INVALID_MESSAGE_LENGTH, bytes(data), "length")
        raise bad_length(len(data))
    return RouteRefresh(afi, safi, subtype)


def _encode_route_refresh(m: RouteRefresh, ctx: WireContext) -> bytes:
    return _frame(ROUTE_REFRESH, struct.pack(">HBB", m.afi, m.subtype, m.safi))


def _frame(mtype: int, body: bytes) -> bytes:
    n = HEADER_LENGTH + len(body)
    return MARKER + bytes((n >> 8, n & 0xFF, mtype)) + body


DECODERS: dict[int, Callable[[bytes, WireContext], Message]] = {
    OPEN: _decode_open,
    UPDATE: decode_update,
    NOTIFICATION: _decode_notification,
    KEEPALIVE: _decode_keepalive,
    ROUTE_REFRESH: _decode_route_refresh,
}


def decode_message(data: bytes, ctx: WireContext) -> Message:
    """Decode one complete message (header included). `len(data)` must equal its Length."""
    data = bytes(data)
    if len(data) < HEADER_LENGTH:
        raise bad_length(len(data))
    length, mtype = check_header(data, ctx.max_message)
    if length != len(data):
        raise bad_length(length)
    return DECODERS[mtype](data, ctx)


def encode_message(msg: Message, ctx: WireContext) -> bytes:
    """Encode any message. Raises ValueError if it cannot fit the negotiated size."""
    if isinstance(msg, Update):
        return encode_update(msg, ctx)
    if isinstance(msg, Keepalive):
        return _encode_keepalive(msg, ctx)
    if isinstance(msg, Open):
        out = _encode_open(msg, ctx)
        limit = MAX_MESSAGE
    elif isinstance(msg, Notification):
        out = _encode_notification(msg, ctx)
        limit = ctx.max_message
    else:
        out = _encode_route_refresh(msg, ctx)
        limit = MAX_MESSAGE
    if len(out) > limit:
        raise ValueError(f"{type(msg).__name__} of {len(out)} octets exceeds {limit}")
    return out
