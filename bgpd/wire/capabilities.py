"""BGP capabilities (RFC 5492): types, descriptor table, codec and negotiation.

Capabilities: Multiprotocol (RFC 4760 §8), Route Refresh (RFC 2918), Extended Message
(RFC 8654), Graceful Restart (RFC 4724 with the RFC 8538 N bit), 4-octet AS (RFC 6793),
ADD-PATH (RFC 7911), Enhanced Route Refresh (RFC 7313), Long-Lived Graceful Restart (RFC 9494),
FQDN (draft-walton-bgp-hostname-capability, code 73). Unknown capabilities are kept as bytes
(RFC 5492 §4: a speaker ignores capabilities it does not understand).

`CAPABILITIES` is the descriptor table (code -> name, decode, encode). `negotiate` turns the two
OPENs into the `WireContext` of the session.

Invariant: `decode_capability(code, encode_capability(c)) == c` for every capability value.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from bgpd.wire.context import Family, WireContext

MULTIPROTOCOL = 1
ROUTE_REFRESH = 2
EXTENDED_MESSAGE = 6
GRACEFUL_RESTART = 64
FOUR_OCTET_AS = 65
ADD_PATH = 69
ENHANCED_ROUTE_REFRESH = 70
LONG_LIVED_GRACEFUL_RESTART = 71
FQDN = 73

# ADD-PATH Send/Receive field (RFC 7911 §4).
ADD_PATH_RECEIVE = 1
ADD_PATH_SEND = 2
ADD_PATH_BOTH = 3

# Graceful Restart flags (RFC 4724 §3, RFC 8538 §2) and per-family flags.
GR_RESTART_STATE = 0x8
GR_NOTIFICATION = 0x4
GR_FORWARDING_STATE = 0x80


class CapabilityError(Exception):
    """Internal: a capability value is malformed (mapped to an OPEN error by the caller)."""


@dataclass(frozen=True, slots=True)
class Multiprotocol:
    afi: int
    safi: int


@dataclass(frozen=True, slots=True)
class RouteRefreshCapability:
    pass


@dataclass(frozen=True, slots=True)
class ExtendedMessage:
    pass


@dataclass(frozen=True, slots=True)
class GracefulRestart:
    """`families` holds (afi, safi, flags); `restart_time` is 12 bits (seconds)."""

    restart_state: bool = False
    notification: bool = False  # RFC 8538 "N" bit
    restart_time: int = 120
    families: tuple[tuple[int, int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class FourOctetAs:
    asn: int


@dataclass(frozen=True, slots=True)
class AddPath:
    """`families` holds (afi, safi, send/receive) with send/receive in 1..3 (RFC 7911 §4)."""

    families: tuple[tuple[int, int, int], ...]


@dataclass(frozen=True, slots=True)
class EnhancedRouteRefresh:
    pass


@dataclass(frozen=True, slots=True)
class LongLivedGracefulRestart:
    """`families` holds (afi, safi, flags, long-lived stale time in seconds, 24 bits)."""

    families: tuple[tuple[int, int, int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Fqdn:
    hostname: str
    domain: str = ""


@dataclass(frozen=True, slots=True)
class UnknownCapability:
    code: int
    value: bytes


Capability = (
    Multiprotocol
    | RouteRefreshCapability
    | ExtendedMessage
    | GracefulRestart
    | FourOctetAs
    | AddPath
    | EnhancedRouteRefresh
    | LongLivedGracefulRestart
    | Fqdn
    | UnknownCapability
)


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise CapabilityError(what)


def _dec_mp(v: bytes) -> Capability:
    _need(len(v) == 4, "Multiprotocol length is not 4")
    return Multiprotocol(int.from_bytes(v[0:2], "big"), v[3])


def _enc_mp(c: Capability) -> bytes:
    assert isinstance(c, Multiprotocol)
    return struct.pack(">HBB", c.afi, 0, c.safi)


def _empty(
    cls: type[RouteRefreshCapability | ExtendedMessage | EnhancedRouteRefresh],
) -> tuple[Callable[[bytes], Capability], Callable[[Capability], bytes]]:
    def dec(v: bytes) -> Capability:
        _need(not v, f"{cls.__name__} carries data")
        return cls()

    def enc(c: Capability) -> bytes:
        return b""

    return dec, enc


def _dec_gr(v: bytes) -> Capability:
    _need(len(v) >= 2 and (len(v) - 2) % 4 == 0, "Graceful Restart length")
    head = int.from_bytes(v[0:2], "big")
    fams = tuple(
        (int.from_bytes(v[i : i + 2], "big"), v[i + 2], v[i + 3]) for i in range(2, len(v), 4)
    )
    return GracefulRestart(
        restart_state=bool(head & (GR_RESTART_STATE << 12)),
        notification=bool(head & (GR_NOTIFICATION << 12)),
        restart_time=head & 0x0FFF,
        families=fams,
    )


def _enc_gr(c: Capability) -> bytes:
    assert isinstance(c, GracefulRestart)
    flags = (GR_RESTART_STATE if c.restart_state else 0) | (
        GR_NOTIFICATION if c.notification else 0
    )
    out = [((flags << 12) | (c.restart_time & 0x0FFF)).to_bytes(2, "big")]
    out.extend(struct.pack(">HBB", afi, safi, fl) for afi, safi, fl in c.families)
    return b"".join(out)


def _dec_as4(v: bytes) -> Capability:
    _need(len(v) == 4, "4-octet AS length is not 4")
    return FourOctetAs(int.from_bytes(v, "big"))


def _enc_as4(c: Capability) -> bytes:
    assert isinstance(c, FourOctetAs)
    return c.asn.to_bytes(4, "big")


def _dec_add_path(v: bytes) -> Capability:
    _need(len(v) % 4 == 0, "ADD-PATH length is not a multiple of 4")
    return AddPath(
        tuple(
            (int.from_bytes(v[i : i + 2], "big"), v[i + 2], v[i + 3]) for i in range(0, len(v), 4)
        )
    )


def _enc_add_path(c: Capability) -> bytes:
    assert isinstance(c, AddPath)
    return b"".join(struct.pack(">HBB", afi, safi, sr) for afi, safi, sr in c.families)


def _dec_llgr(v: bytes) -> Capability:
    _need(len(v) % 7 == 0, "LLGR length is not a multiple of 7")
    return LongLivedGracefulRestart(
        tuple(
            (
                int.from_bytes(v[i : i + 2], "big"),
                v[i + 2],
                v[i + 3],
                int.from_bytes(v[i + 4 : i + 7], "big"),
            )
            for i in range(0, len(v), 7)
        )
    )


def _enc_llgr(c: Capability) -> bytes:
    assert isinstance(c, LongLivedGracefulRestart)
    return b"".join(
        struct.pack(">HBB", afi, safi, fl) + stale.to_bytes(3, "big")
        for afi, safi, fl, stale in c.families
    )


def _dec_fqdn(v: bytes) -> Capability:
    _need(len(v) >= 1 and len(v) >= 2 + v[0], "FQDN lengths")
    hlen = v[0]
    dlen = v[1 + hlen]
    _need(len(v) == 2 + hlen + dlen, "FQDN lengths")
    return Fqdn(
        v[1 : 1 + hlen].decode("utf-8", "surrogateescape"),
        v[2 + hlen :].decode("utf-8", "surrogateescape"),
    )


def _enc_fqdn(c: Capability) -> bytes:
    assert isinstance(c, Fqdn)
    h = c.hostname.encode("utf-8", "surrogateescape")
    d = c.domain.encode("utf-8", "surrogateescape")
    if len(h) > 255 or len(d) > 255:
        raise ValueError("FQDN host and domain names are at most 255 octets")
    return bytes((len(h),)) + h + bytes((len(d),)) + d


@dataclass(frozen=True, slots=True)
class CapabilityDescriptor:
    name: str
    cls: type
    decode: Callable[[bytes], Capability]
    encode: Callable[[Capability], bytes]


_RR = _empty(RouteRefreshCapability)
_EM = _empty(ExtendedMessage)
_ERR = _empty(EnhancedRouteRefresh)

CAPABILITIES: dict[int, CapabilityDescriptor] = {
    MULTIPROTOCOL: CapabilityDescriptor("Multiprotocol", Multiprotocol, _dec_mp, _enc_mp),
    ROUTE_REFRESH: CapabilityDescriptor("Route Refresh", RouteRefreshCapability, *_RR),
    EXTENDED_MESSAGE: CapabilityDescriptor("Extended Message", ExtendedMessage, *_EM),
    GRACEFUL_RESTART: CapabilityDescriptor("Graceful Restart", GracefulRestart, _dec_gr, _enc_gr),
    FOUR_OCTET_AS: CapabilityDescriptor("4-octet AS", FourOctetAs, _dec_as4, _enc_as4),
    ADD_PATH: CapabilityDescriptor("ADD-PATH", AddPath, _dec_add_path, _enc_add_path),
    ENHANCED_ROUTE_REFRESH: CapabilityDescriptor(
        "Enhanced Route Refresh", EnhancedRouteRefresh, *_ERR
    ),
    LONG_LIVED_GRACEFUL_RESTART: CapabilityDescriptor(
        "Long-Lived Graceful Restart", LongLivedGracefulRestart, _dec_llgr, _enc_llgr
    ),
    FQDN: CapabilityDescriptor("FQDN", Fqdn, _dec_fqdn, _enc_fqdn),
}
_CODE_OF: dict[type, int] = {d.cls: code for code, d in CAPABILITIES.items()}


def capability_code(c: Capability) -> int:
    if isinstance(c, UnknownCapability):
        return c.code
    return _CODE_OF[type(c)]


def decode_capability(code: int, value: bytes) -> Capability:
    """One capability value; raises `CapabilityError` if a known capability is malformed."""
    desc = CAPABILITIES.get(code)
    if desc is None:
        return UnknownCapability(code, bytes(value))
    return desc.decode(bytes(value))


def encode_capability(c: Capability) -> bytes:
    """Code, length and value (RFC 5492 §4)."""
    if isinstance(c, UnknownCapability):
        code, value = c.code, c.value
    else:
        code = _CODE_OF[type(c)]
        value = CAPABILITIES[code].encode(c)
    if len(value) > 255:
        raise ValueError(f"capability {code} value longer than 255 octets")
    return bytes((code, len(value))) + value


def decode_capabilities(data: bytes) -> list[Capability]:
    """The value of one Capabilities optional parameter (a sequence of TLVs)."""
    out: list[Capability] = []
    i = 0
    n = len(data)
    while i < n:
        if n - i < 2:
            raise CapabilityError("capability header truncated")
        code = data[i]
        j = i + 2 + data[i + 1]
        if j > n:
            raise CapabilityError("capability length overruns the parameter")
        out.append(decode_capability(code, data[i + 2 : j]))
        i = j
    return out


def _find(caps: tuple[Capability, ...], cls: type) -> list[Capability]:
    return [c for c in caps if isinstance(c, cls)]


def negotiate(local: tuple[Capability, ...], remote: tuple[Capability, ...]) -> WireContext:
    """The session context from the capabilities both sides sent (RFC 5492 §3).

    4-octet AS and extended message need both sides (RFC 6793 §3, RFC 8654 §3). ADD-PATH
    receive for a family needs our Receive and the peer's Send, and conversely (RFC 7911 §5).
    """
    four = bool(_find(local, FourOctetAs)) and bool(_find(remote, FourOctetAs))
    ext = bool(_find(local, ExtendedMessage)) and bool(_find(remote, ExtendedMessage))

    def modes(caps: tuple[Capability, ...]) -> dict[Family, int]:
        out: dict[Family, int] = {}
        for c in caps:
            if isinstance(c, AddPath):
                for afi, safi, sr in c.families:
                    out[(afi, safi)] = sr
        return out

    ours, theirs = modes(local), modes(remote)
    rx = frozenset(
        f for f, sr in ours.items() if sr & ADD_PATH_RECEIVE and theirs.get(f, 0) & ADD_PATH_SEND
    )
    tx = frozenset(
        f for f, sr in ours.items() if sr & ADD_PATH_SEND and theirs.get(f, 0) & ADD_PATH_RECEIVE
    )
    return WireContext(four_octet_as=four, add_path_rx=rx, add_path_tx=tx, extended_message=ext)
