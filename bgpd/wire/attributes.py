"""Path attributes: types, the descriptor table and the attribute-section codec.

Implements RFC 4271 §4.3 and §5 (ORIGIN, AS_PATH, NEXT_HOP, MULTI_EXIT_DISC, LOCAL_PREF,
ATOMIC_AGGREGATE, AGGREGATOR), RFC 1997 (COMMUNITIES), RFC 4456 (ORIGINATOR_ID, CLUSTER_LIST),
RFC 4360 (EXTENDED_COMMUNITIES), RFC 6793 (AS4_PATH, AS4_AGGREGATOR and the §4.2.3
reconstruction), RFC 8092 (LARGE_COMMUNITY), RFC 4760 (MP_REACH_NLRI, MP_UNREACH_NLRI), with
the RFC 7606 error handling of `bgpd.wire.rfc7606`.

`ATTRIBUTES` is the descriptor table (type code -> name, expected flags, decode, encode).
Decode functions are symmetric with encode functions; the section decoder owns framing, flags,
duplicates and interning.

Invariants:
- A `PathAttributes` is the 4-octet view: AS numbers are never AS_TRANS placeholders when the
  peer sent AS4_PATH/AS4_AGGREGATOR; encoding for a 2-octet session re-creates them.
- MP_REACH_NLRI/MP_UNREACH_NLRI are not part of `PathAttributes` (they carry NLRI, which would
  defeat interning); they are fields of `Update`.
- Identical attribute bytes (minus the MP attributes) decode to the same object while they stay
  in the context's `AttributeCache`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from bgpd.wire.context import (
    AFI_IPV4,
    AFI_IPV6,
    SAFI_MULTICAST,
    SAFI_UNICAST,
    Family,
    WireContext,
)
from bgpd.wire.prefix import (
    MAX_LENGTH,
    NlriError,
    Prefix,
    join_nlri_add_path,
    split_nlri,
    split_nlri_add_path,
)
from bgpd.wire.rfc7606 import Malformation, make_error

# Attribute flags (RFC 4271 §4.3).
OPTIONAL = 0x80
TRANSITIVE = 0x40
PARTIAL = 0x20
EXTENDED_LENGTH = 0x10

# Attribute type codes (IANA "BGP Path Attributes").
ORIGIN = 1
AS_PATH = 2
NEXT_HOP = 3
MULTI_EXIT_DISC = 4
LOCAL_PREF = 5
ATOMIC_AGGREGATE = 6
AGGREGATOR = 7
COMMUNITIES = 8
ORIGINATOR_ID = 9
CLUSTER_LIST = 10
MP_REACH_NLRI = 14
MP_UNREACH_NLRI = 15
EXTENDED_COMMUNITIES = 16
AS4_PATH = 17
AS4_AGGREGATOR = 18
LARGE_COMMUNITY = 32

# ORIGIN values (RFC 4271 §5.1.1).
IGP = 0
EGP = 1
INCOMPLETE = 2
ORIGIN_NAMES: dict[int, str] = {IGP: "IGP", EGP: "EGP", INCOMPLETE: "INCOMPLETE"}

# AS_PATH segment types (RFC 4271 §4.3, RFC 5065 §3).
AS_SET = 1
AS_SEQUENCE = 2
AS_CONFED_SEQUENCE = 3
AS_CONFED_SET = 4
SEGMENT_NAMES: dict[int, str] = {
    AS_SET: "AS_SET",
    AS_SEQUENCE: "AS_SEQUENCE",
    AS_CONFED_SEQUENCE: "AS_CONFED_SEQUENCE",
    AS_CONFED_SET: "AS_CONFED_SET",
}
AS_TRANS = 23456  # RFC 6793 §9

# Well-known communities (RFC 1997, RFC 3765, RFC 7611, RFC 7999, RFC 8326, RFC 9494).
WELL_KNOWN_COMMUNITIES: dict[int, str] = {
    0xFFFF0000: "GRACEFUL_SHUTDOWN",
    0xFFFF0001: "ACCEPT_OWN",
    0xFFFF0006: "LLGR_STALE",
    0xFFFF0007: "NO_LLGR",
    0xFFFF029A: "BLACKHOLE",
    0xFFFFFF01: "NO_EXPORT",
    0xFFFFFF02: "NO_ADVERTISE",
    0xFFFFFF03: "NO_EXPORT_SUBCONFED",
    0xFFFFFF04: "NOPEER",
}
NO_EXPORT = 0xFFFFFF01
NO_ADVERTISE = 0xFFFFFF02
NO_EXPORT_SUBCONFED = 0xFFFFFF03

Segment = tuple[int, tuple[int, ...]]  # (segment type, AS numbers)
Aggregator = tuple[int, bytes]  # (AS number, 4-octet IPv4 address)
LargeCommunity = tuple[int, int, int]  # (global administrator, local data 1, local data 2)

# Families whose NLRI this codec splits (RFC 4760 §5 prefix encoding).
NLRI_FAMILIES: frozenset[Family] = frozenset(
    {
        (AFI_IPV4, SAFI_UNICAST),
        (AFI_IPV6, SAFI_UNICAST),
        (AFI_IPV4, SAFI_MULTICAST),
        (AFI_IPV6, SAFI_MULTICAST),
    }
)
# Acceptable MP_REACH next-hop lengths per AFI: IPv4 (or RFC 8950 IPv6), IPv6 global
# (+ link-local, RFC 2545 §3).
NEXT_HOP_LENGTHS: dict[int, frozenset[int]] = {
    AFI_IPV4: frozenset({4, 16, 32}),
    AFI_IPV6: frozenset({16, 32}),
}


@dataclass(frozen=True, slots=True)
class RawAttribute:
    """An optional transitive attribute this codec does not know, passed through (RFC 4271 §5).

    `flags` keep Optional/Transitive/Partial; Partial is set on decode, because we are about to
    propagate an attribute we did not recognise (RFC 4271 §5). Extended Length is the encoder's
    choice and not stored.
    """

    flags: int
    type_code: int
    value: bytes


@dataclass(frozen=True, slots=True)
class PathAttributes:
    """One interned attribute set (everything in an UPDATE except MP_REACH/MP_UNREACH)."""

    origin: int | None = None
    as_path: tuple[Segment, ...] | None = None
    next_hop: bytes | None = None  # 4 octets, IPv4 unicast only
    med: int | None = None
    local_pref: int | None = None
    atomic_aggregate: bool = False
    aggregator: Aggregator | None = None
    communities: tuple[int, ...] = ()
    originator_id: int | None = None
    cluster_list: tuple[int, ...] = ()
    ext_communities: tuple[int, ...] = ()  # each an 8-octet value as an int
    large_communities: tuple[LargeCommunity, ...] = ()
    unknown: tuple[RawAttribute, ...] = ()

    def as_path_length(self) -> int:
        """RFC 4271 §9.1.2.2(a): AS_SET counts 1, confederation segments count 0."""
        n = 0
        for st, asns in self.as_path or ():
            if st == AS_SEQUENCE:
                n += len(asns)
            elif st == AS_SET:
                n += 1
        return n


@dataclass(frozen=True, slots=True)
class MpReach:
    """MP_REACH_NLRI (RFC 4760 §3): reachable prefixes of one AFI/SAFI and their next hop.

    `next_hop` is raw: 4 (IPv4), 16 (global) or 32 (global + link-local, RFC 2545 §3) octets.
    `path_ids` is empty unless ADD-PATH is negotiated for the family (RFC 7911).
    """

    afi: int
    safi: int
    next_hop: bytes
    nlri: tuple[Prefix, ...] = ()
    path_ids: tuple[int, ...] = ()

    @property
    def link_local(self) -> bytes | None:
        return self.next_hop[16:] if len(self.next_hop) == 32 else None


@dataclass(frozen=True, slots=True)
class MpUnreach:
    """MP_UNREACH_NLRI (RFC 4760 §4). An empty one is an End-of-RIB marker (RFC 4724 §2)."""

    afi: int
    safi: int
    withdrawn: tuple[Prefix, ...] = ()
    path_ids: tuple[int, ...] = ()


class Bad(Exception):
    """Internal: a value is malformed; `case` is a key of `rfc7606.CASES`."""

    def __init__(self, case: str) -> None:
        super().__init__(case)
        self.case = case


@dataclass(slots=True)
class Builder:
    """Mutable scratch space the descriptor decoders fill; frozen at the end of a section."""

    origin: int | None = None
    as_path: tuple[Segment, ...] | None = None
    next_hop: bytes | None = None
    med: int | None = None
    local_pref: int | None = None
    atomic_aggregate: bool = False
    aggregator: Aggregator | None = None
    communities: tuple[int, ...] = ()
    originator_id: int | None = None
    cluster_list: tuple[int, ...] = ()
    ext_communities: tuple[int, ...] = ()
    large_communities: tuple[LargeCommunity, ...] = ()
    unknown: list[RawAttribute] = field(default_factory=list)
    as4_path: tuple[Segment, ...] | None = None
    as4_aggregator: Aggregator | None = None

    def freeze(self) -> PathAttributes:
        return PathAttributes(
            origin=self.origin,
            as_path=self.as_path,
            next_hop=self.next_hop,
            med=self.med,
            local_pref=self.local_pref,
            atomic_aggregate=self.atomic_aggregate,
            aggregator=self.aggregator,
            communities=self.communities,
            originator_id=self.originator_id,
            cluster_list=self.cluster_list,
            ext_communities=self.ext_communities,
            large_communities=self.large_communities,
            unknown=tuple(self.unknown),
        )


# --- value codecs (symmetric pairs) ---------------------------------------------------------

DecodeFn = Callable[[bytes, WireContext, Builder], None]
EncodeFn = Callable[[PathAttributes, WireContext], bytes | None]

_U32 = struct.Struct(">I")


def _dec_origin(v: bytes, ctx: WireContext, b: Builder) -> None:
    if len(v) != 1:
        raise Bad("origin-length")
    if v[0] > INCOMPLETE:
        raise Bad("origin-value")
    b.origin = v[0]


def _enc_origin(a: PathAttributes, ctx: WireContext) -> bytes | None:
    return None if a.origin is None else bytes((a.origin,))


def decode_as_path(v: bytes, size: int, case: str = "as-path-malformed") -> tuple[Segment, ...]:
    """AS_PATH / AS4_PATH segments with `size`-octet AS numbers (RFC 4271 §4.3, RFC 6793 §3)."""
    segs: list[Segment] = []
    n = len(v)
    i = 0
    code = "H" if size == 2 else "I"
    while i < n:
        if n - i < 2:
            raise Bad(case)
        st = v[i]
        cnt = v[i + 1]
        # RFC 7606 §7.2: unknown segment type, zero-length segment or overrun => malformed.
        if st not in SEGMENT_NAMES or cnt == 0:
            raise Bad(case)
        j = i + 2 + cnt * size
        if j > n:
            raise Bad(case)
        segs.append((st, struct.unpack_from(f">{cnt}{code}", v, i + 2)))
        i = j
    return tuple(segs)


def encode_as_path(path: tuple[Segment, ...], size: int) -> bytes:
    """Segments longer than 255 AS numbers are split (the count field is one octet)."""
    out: list[bytes] = []
    code = "H" if size == 2 else "I"
    for st, asns in path:
        if size == 2:
            asns = tuple(a if a <= 0xFFFF else AS_TRANS for a in asns)
        for k in range(0, len(asns), 255):
            chunk = asns[k : k + 255]
            out.append(struct.pack(f">BB{len(chunk)}{code}", st, len(chunk), *chunk))
    return b"".join(out)


def _dec_as_path(v: bytes, ctx: WireContext, b: Builder) -> None:
    b.as_path = decode_as_path(v, 4 if ctx.four_octet_as else 2)


def _enc_as_path(a: PathAttributes, ctx: WireContext) -> bytes | None:
    if a.as_path is None:
        return None
    return encode_as_path(a.as_path, 4 if ctx.four_octet_as else 2)


_NOT_HOSTS = frozenset({b"\x00\x00\x00\x00", b"\xff\xff\xff\xff"})


def _dec_next_hop(v: bytes, ctx: WireContext, b: Builder) -> None:
    if len(v) != 4:
        raise Bad("next-hop-length")
    # RFC 4271 §6.3: the NEXT_HOP must be a valid host address. 127/8 stays legal here: test
    # peers on loopback use it, and whether it resolves is the RIB's business (§5.1.3).
    if v in _NOT_HOSTS or v[0] & 0xF0 == 0xE0:
        raise Bad("next-hop-invalid")
    b.next_hop = bytes(v)


def _enc_next_hop(a: PathAttributes, ctx: WireContext) -> bytes | None:
    return a.next_hop


def _u32_decoder(case: str, name: str) -> DecodeFn:
    def dec(v: bytes, ctx: WireContext, b: Builder) -> None:
        if len(v) != 4:
            raise Bad(case)
        setattr(b, name, _U32.unpack(v)[0])

    return dec


def _u32_encoder(name: str) -> EncodeFn:
    def enc(a: PathAttributes, ctx: WireContext) -> bytes | None:
        value = getattr(a, name)
        return None if value is None else _U32.pack(value)

    return enc


def _dec_atomic(v: bytes, ctx: WireContext, b: Builder) -> None:
    if v:
        raise Bad("atomic-aggregate-length")
    b.atomic_aggregate = True


def _enc_atomic(a: PathAttributes, ctx: WireContext) -> bytes | None:
    return b"" if a.atomic_aggregate else None


def _dec_aggregator(v: bytes, ctx: WireContext, b: Builder) -> None:
    size = 4 if ctx.four_octet_as else 2
    if len(v) != size + 4:
        raise Bad("aggregator-length")
    b.aggregator = (int.from_bytes(v[:size], "big"), bytes(v[size:]))


def _enc_aggregator(a: PathAttributes, ctx: WireContext) -> bytes | None:
    if a.aggregator is None:
        return None
    asn, addr = a.aggregator
    if ctx.four_octet_as:
        return _U32.pack(asn) + addr
    return (asn if asn <= 0xFFFF else AS_TRANS).to_bytes(2, "big") + addr


def _u32_list_decoder(case: str, name: str) -> DecodeFn:
    def dec(v: bytes, ctx: WireContext, b: Builder) -> None:
        n = len(v)
        if n == 0 or n & 3:
            raise Bad(case)
        setattr(b, name, struct.unpack(f">{n >> 2}I", v))

    return dec


def _u32_list_encoder(name: str) -> EncodeFn:
    def enc(a: PathAttributes, ctx: WireContext) -> bytes | None:
        values: tuple[int, ...] = getattr(a, name)
        return struct.pack(f">{len(values)}I", *values) if values else None

    return enc


def _dec_ext_communities(v: bytes, ctx: WireContext, b: Builder) -> None:
    n = len(v)
    if n == 0 or n & 7:
        raise Bad("ext-communities-length")
    b.ext_communities = struct.unpack(f">{n >> 3}Q", v)


def _enc_ext_communities(a: PathAttributes, ctx: WireContext) -> bytes | None:
    values = a.ext_communities
    return struct.pack(f">{len(values)}Q", *values) if values else None


def _dec_large(v: bytes, ctx: WireContext, b: Builder) -> None:
    n = len(v)
    if n == 0 or n % 12:
        raise Bad("large-communities-length")
    flat = struct.unpack(f">{n >> 2}I", v)
    b.large_communities = tuple(zip(flat[0::3], flat[1::3], flat[2::3], strict=True))


def _enc_large(a: PathAttributes, ctx: WireContext) -> bytes | None:
    values = a.large_communities
    if not values:
        return None
    return struct.pack(f">{3 * len(values)}I", *(x for lc in values for x in lc))


def _dec_as4_path(v: bytes, ctx: WireContext, b: Builder) -> None:
    if ctx.four_octet_as:
        raise Bad("as4-from-new-speaker")
    path = decode_as_path(v, 4, "as4-path-malformed")
    # RFC 6793 §6: confederation segments in AS4_PATH are a malformation.
    if any(st in (AS_CONFED_SEQUENCE, AS_CONFED_SET) for st, _ in path):
        raise Bad("as4-path-malformed")
    b.as4_path = path


def _needs_as4(a: PathAttributes) -> bool:
    return any(x > 0xFFFF for _, asns in a.as_path or () for x in asns)


def _enc_as4_path(a: PathAttributes, ctx: WireContext) -> bytes | None:
    # RFC 6793 §4.2.2: towards a 2-octet speaker, carry the true path in AS4_PATH when some AS
    # number does not fit; confederation segments are not carried in it.
    if ctx.four_octet_as or a.as_path is None or not _needs_as4(a):
        return None
    path = tuple(s for s in a.as_path if s[0] in (AS_SET, AS_SEQUENCE))
    return encode_as_path(path, 4)


def _dec_as4_aggregator(v: bytes, ctx: WireContext, b: Builder) -> None:
    if ctx.four_octet_as:
        raise Bad("as4-from-new-speaker")
    if len(v) != 8:
        raise Bad("as4-aggregator-length")
    b.as4_aggregator = (_U32.unpack_from(v)[0], bytes(v[4:]))


def _enc_as4_aggregator(a: PathAttributes, ctx: WireContext) -> bytes | None:
    if ctx.four_octet_as or a.aggregator is None or a.aggregator[0] <= 0xFFFF:
        return None
    return _U32.pack(a.aggregator[0]) + a.aggregator[1]


def _dec_never(v: bytes, ctx: WireContext, b: Builder) -> None:  # pragma: no cover
    raise AssertionError("MP attributes are decoded by decode_mp_reach/decode_mp_unreach")


def _enc_never(a: PathAttributes, ctx: WireContext) -> bytes | None:
    return None  # MP attributes are encoded from Update.mp_reach / Update.mp_unreach


@dataclass(frozen=True, slots=True)
class AttributeDescriptor:
    """One row of the attribute table (the BIRD `bgp_attr_table` idea)."""

    name: str
    flags: int  # expected Optional|Transitive bits (RFC 4271 §5)
    decode: DecodeFn
    encode: EncodeFn


ATTRIBUTES: dict[int, AttributeDescriptor] = {
    ORIGIN: AttributeDescriptor("ORIGIN", TRANSITIVE, _dec_origin, _enc_origin),
    AS_PATH: AttributeDescriptor("AS_PATH", TRANSITIVE, _dec_as_path, _enc_as_path),
    NEXT_HOP: AttributeDescriptor("NEXT_HOP", TRANSITIVE, _dec_next_hop, _enc_next_hop),
    MULTI_EXIT_DISC: AttributeDescriptor(
        "MULTI_EXIT_DISC", OPTIONAL, _u32_decoder("med-length", "med"), _u32_encoder("med")
    ),
    LOCAL_PREF: AttributeDescriptor(
        "LOCAL_PREF",
        TRANSITIVE,
        _u32_decoder("local-pref-length", "local_pref"),
        _u32_encoder("local_pref"),
    ),
    ATOMIC_AGGREGATE: AttributeDescriptor("ATOMIC_AGGREGATE", TRANSITIVE, _dec_atomic, _enc_atomic),
    AGGREGATOR: AttributeDescriptor(
        "AGGREGATOR", OPTIONAL | TRANSITIVE, _dec_aggregator, _enc_aggregator
    ),
    COMMUNITIES: AttributeDescriptor(
        "COMMUNITIES",
        OPTIONAL | TRANSITIVE,
        _u32_list_decoder("communities-length", "communities"),
        _u32_list_encoder("communities"),
    ),
    ORIGINATOR_ID: AttributeDescriptor(
        "ORIGINATOR_ID",
        OPTIONAL,
        _u32_decoder("originator-id-length", "originator_id"),
        _u32_encoder("originator_id"),
    ),
    CLUSTER_LIST: AttributeDescriptor(
        "CLUSTER_LIST",
        OPTIONAL,
        _u32_list_decoder("cluster-list-length", "cluster_list"),
        _u32_list_encoder("cluster_list"),
    ),
    MP_REACH_NLRI: AttributeDescriptor("MP_REACH_NLRI", OPTIONAL, _dec_never, _enc_never),
    MP_UNREACH_NLRI: AttributeDescriptor("MP_UNREACH_NLRI", OPTIONAL, _dec_never, _enc_never),
    EXTENDED_COMMUNITIES: AttributeDescriptor(
        "EXTENDED_COMMUNITIES", OPTIONAL | TRANSITIVE, _dec_ext_communities, _enc_ext_communities
    ),
    AS4_PATH: AttributeDescriptor("AS4_PATH", OPTIONAL | TRANSITIVE, _dec_as4_path, _enc_as4_path),
    AS4_AGGREGATOR: AttributeDescriptor(
        "AS4_AGGREGATOR", OPTIONAL | TRANSITIVE, _dec_as4_aggregator, _enc_as4_aggregator
    ),
    LARGE_COMMUNITY: AttributeDescriptor(
        "LARGE_COMMUNITY", OPTIONAL | TRANSITIVE, _dec_large, _enc_large
    ),
}

# Cases whose value decoder raised but which are not about this attribute's NOTIFICATION data
# being the attribute itself (RFC 4271 §6.3 gives Malformed AS_PATH no data).
_EMPTY_DATA_CASES = frozenset({"as-path-malformed"})


def header(flags: int, code: int, length: int) -> bytes:
    """Attribute header; Extended Length only when needed (RFC 4271 §4.3)."""
    if length > 255:
        return bytes((flags | EXTENDED_LENGTH, code, length >> 8, length & 0xFF))
    return bytes((flags & ~EXTENDED_LENGTH & 0xFF, code, length))


# --- MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760 §3, §4) ----------------------------------------


def decode_mp_reach(v: bytes, ctx: WireContext) -> MpReach:
    """Raises Bad("mp-reach-malformed") or Bad("mp-family-unsupported"); the caller checked
    that AFI/SAFI are readable."""
    afi = int.from_bytes(v[0:2], "big")
    safi = v[2]
    if (afi, safi) not in NLRI_FAMILIES:
        raise Bad("mp-family-unsupported")
    if len(v) < 5:
        raise Bad("mp-reach-malformed")
    nhlen = v[3]
    if nhlen not in NEXT_HOP_LENGTHS[afi] or 5 + nhlen > len(v):
        raise Bad("mp-reach-malformed")
    next_hop = bytes(v[4 : 4 + nhlen])
    # The octet after the next hop is Reserved (RFC 4760 §3): ignored on receipt.
    try:
        if (afi, safi) in ctx.add_path_rx:
            nlri, ids = split_nlri_add_path(v, 5 + nhlen, len(v), MAX_LENGTH[afi])
            return MpReach(afi, safi, next_hop, tuple(nlri), tuple(ids))
        return MpReach(
            afi, safi, next_hop, tuple(split_nlri(v, 5 + nhlen, len(v), MAX_LENGTH[afi]))
        )
    except NlriError:
        raise Bad("mp-reach-malformed") from None


def encode_mp_reach(mp: MpReach, ctx: WireContext) -> bytes:
    if (mp.afi, mp.safi) in ctx.add_path_tx:
        nlri = join_nlri_add_path(mp.nlri, mp.path_ids)
    else:
        nlri = b"".join(mp.nlri)
    return b"".join(
        (mp.afi.to_bytes(2, "big"), bytes((mp.safi, len(mp.next_hop))), mp.next_hop, b"\x00", nlri)
    )


def decode_mp_unreach(v: bytes, ctx: WireContext) -> MpUnreach:
    afi = int.from_bytes(v[0:2], "big")
    safi = v[2]
    if (afi, safi) not in NLRI_FAMILIES:
        raise Bad("mp-family-unsupported")
    try:
        if (afi, safi) in ctx.add_path_rx:
            nlri, ids = split_nlri_add_path(v, 3, len(v), MAX_LENGTH[afi])
            return MpUnreach(afi, safi, tuple(nlri), tuple(ids))
        return MpUnreach(afi, safi, tuple(split_nlri(v, 3, len(v), MAX_LENGTH[afi])))
    except NlriError:
        raise Bad("mp-unreach-malformed") from None


def encode_mp_unreach(mp: MpUnreach, ctx: WireContext) -> bytes:
    if (mp.afi, mp.safi) in ctx.add_path_tx:
        nlri = join_nlri_add_path(mp.withdrawn, mp.path_ids)
    else:
        nlri = b"".join(mp.withdrawn)
    return mp.afi.to_bytes(2, "big") + bytes((mp.safi,)) + nlri


# --- the attribute section ------------------------------------------------------------------


@dataclass(slots=True)
class Section:
    """What one path attributes field decoded to."""

    attributes: PathAttributes | None
    mp_reach: MpReach | None = None
    mp_unreach: MpUnreach | None = None
    found: list[Malformation] = field(default_factory=list)


def _reconstruct(b: Builder) -> None:
    """RFC 6793 §4.2.3: merge AS4_PATH / AS4_AGGREGATOR received from a 2-octet speaker."""
    if b.aggregator is not None and b.as4_aggregator is not None:
        if b.aggregator[0] != AS_TRANS:
            # The aggregating speaker was OLD: AS4_* were added by someone else; ignore both.
            return
        b.aggregator = b.as4_aggregator
    if b.as4_path is None or b.as_path is None:
        return
    n_as = PathAttributes(as_path=b.as_path).as_path_length()
    n_as4 = PathAttributes(as_path=b.as4_path).as_path_length()
    if n_as < n_as4:
        return  # AS4_PATH is longer than AS_PATH: ignore it
    keep = n_as - n_as4
    lead: list[Segment] = []
    for st, asns in b.as_path:
        if st in (AS_CONFED_SEQUENCE, AS_CONFED_SET):
            if keep or not lead or lead[-1][0] in (AS_CONFED_SEQUENCE, AS_CONFED_SET):
                lead.append((st, asns))
                continue
            break
        if keep == 0:
            break
        if st == AS_SET:
            lead.append((st, asns))
            keep -= 1
        else:
            take = min(keep, len(asns))
            lead.append((st, asns[:take]))
            keep -= take
    b.as_path = tuple(lead) + b.as4_path


_MP_CODES = frozenset({MP_REACH_NLRI, MP_UNREACH_NLRI})


def decode_section(data: bytes, start: int, end: int, ctx: WireContext) -> Section:
    """Decode the Path Attributes field `data[start:end]` (RFC 4271 §4.3, RFC 7606).

    Raises `UpdateMessageError` for session-reset cases only.
    """
    table = ctx.cache.tables[ctx.four_octet_as]
    # Pass 1: framing (RFC 7606 §4), duplicates (§3(g)), MP attributes pulled out.
    items: list[tuple[int, int, int, int, int]] = []  # (flags, code, start, value start, end)
    found: list[Malformation] = []
    seen: set[int] = set()
    mp: list[tuple[int, int, int, int, int]] = []
    i = start
    framing: str | None = None
    while i < end:
        if end - i < 3:
            framing = "attribute-header-truncated"
            break
        flags = data[i]
        code = data[i + 1]
        if flags & EXTENDED_LENGTH:
            if end - i < 4:
                framing = "attribute-header-truncated"
                break
            vstart = i + 4
            vend = vstart + (data[i + 2] << 8 | data[i + 3])
        else:
            vstart = i + 3
            vend = vstart + data[i + 2]
        if vend > end:
            framing = "attribute-value-overrun"
            break
        if code in seen:
            if code in _MP_CODES:
                raise make_error("duplicate-mp-attribute")
            found.append(Malformation("duplicate-attribute", code, b""))
        else:
            seen.add(code)
            if code in _MP_CODES:
                mp.append((flags, code, i, vstart, vend))
            else:
                items.append((flags, code, i, vstart, vend))
        i = vend
    if framing is not None:
        # RFC 7606 §4: treat-as-withdraw, unless MP attributes are involved: their NLRI cannot
        # be trusted to have been found, so the session is reset (RFC 7606 §5.3).
        if mp:
            raise make_error("attribute-framing-with-mp")
        found.append(Malformation(framing, 0, b""))

    # The intern key: the attribute bytes without MP_REACH/MP_UNREACH.
    if not mp and framing is None:
        key = data[start:end]
    else:
        key = b"".join(data[s:e] for _, _, s, _, e in items)
    attrs = table.get(key) if not found else None
    if attrs is None and key:
        b = Builder()
        for flags, code, s, vs, e in items:
            desc = ATTRIBUTES.get(code)
            if desc is None:
                if not flags & OPTIONAL:
                    # RFC 4271 §6.3: unrecognized well-known attribute.
                    raise make_error("unrecognized-well-known", data[s:e])
                if flags & TRANSITIVE:
                    # RFC 4271 §5: pass through, with the Partial bit set.
                    b.unknown.append(
                        RawAttribute((flags & 0xE0) | PARTIAL, code, bytes(data[vs:e]))
                    )
                # Unrecognized optional non-transitive: quietly ignored (RFC 4271 §5).
                continue
            if flags & (OPTIONAL | TRANSITIVE) != desc.flags:
                found.append(Malformation("attribute-flags", code, bytes(data[s:e])))
            try:
                desc.decode(data[vs:e], ctx, b)
            except Bad as bad:
                payload = b"" if bad.case in _EMPTY_DATA_CASES else bytes(data[s:e])
                found.append(Malformation(bad.case, code, payload))
        if not ctx.four_octet_as:
            _reconstruct(b)
        attrs = b.freeze()
        if not found:
            ctx.cache.store(ctx.four_octet_as, key, attrs)
            ctx.cache.misses += 1
    elif attrs is not None:
        ctx.cache.hits += 1
    section = Section(attrs, found=found)
    for flags, code, s, vs, e in mp:
        raw = bytes(data[s:e])
        value = data[vs:e]
        if flags & (OPTIONAL | TRANSITIVE) != OPTIONAL:
            found.append(Malformation("attribute-flags", code, raw))
        if len(value) < 3:
            # RFC 7606 §7.11: AFI/SAFI unreadable, nothing narrower than the session to disable.
            raise make_error("mp-attribute-truncated", raw)
        family = (int.from_bytes(value[0:2], "big"), value[2])
        try:
            if code == MP_REACH_NLRI:
                section.mp_reach = decode_mp_reach(value, ctx)
            else:
                section.mp_unreach = decode_mp_unreach(value, ctx)
        except Bad as bad:
            found.append(Malformation(bad.case, code, raw, family))
    return section


def encode_attributes(attrs: PathAttributes, ctx: WireContext) -> bytes:
    """Encode an attribute set in type-code order (RFC 4271 §5 recommends ascending order)."""
    out: list[bytes] = []
    unknown = sorted(attrs.unknown, key=lambda r: r.type_code)
    u = 0
    for code, desc in ATTRIBUTES.items():
        while u < len(unknown) and unknown[u].type_code < code:
            r = unknown[u]
            out.append(header(r.flags, r.type_code, len(r.value)) + r.value)
            u += 1
        value = desc.encode(attrs, ctx)
        if value is not None:
            out.append(header(desc.flags, code, len(value)) + value)
    for r in unknown[u:]:
        out.append(header(r.flags, r.type_code, len(r.value)) + r.value)
    return b"".join(out)


def encode_mp_attribute(code: int, value: bytes) -> bytes:
    return header(OPTIONAL, code, len(value)) + value
