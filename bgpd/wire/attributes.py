"""Path attributes: types, the descriptor table and the attribute-section codec.

Implements RFC 4271 §4.3 and §5 (ORIGIN, AS_PATH, NEXT_HOP, MULTI_EXIT_DISC, LOCAL_PREF,
ATOMIC_AGGREGATE, AGGREGATOR), RFC 1997 (COMMUNITIES), RFC 4456 (ORIGINATOR_ID, CLUSTER_LIST),
RFC 4360 (EXTENDED_COMMUNITIES), RFC 6793 (AS4_PATH, AS4_AGGREGATOR and the §4.2.3
reconstruction), RFC 8092 (LARGE_COMMUNITY), RFC 4760 (MP_REACH_NLRI, MP_UNREACH_NLRI), with
the RFC 7606 error handling of `bgpd.wire.rfc7606`.

`ATTRIBUTES` is the descriptor table (type code -> name, expected flags, slot, decode, encode).
Decode functions return the value (or raise `Bad(case)` with an RFC 7606 case name) and are
symmetric with the encode functions; `bgpd.wire.section` owns framing, flags, duplicates and
interning.

Invariants:
- A `PathAttributes` is the 4-octet view: AS numbers are never AS_TRANS placeholders when the
  peer sent AS4_PATH/AS4_AGGREGATOR; encoding for a 2-octet session re-creates them.
- MP_REACH_NLRI/MP_UNREACH_NLRI are not part of `PathAttributes` (they carry NLRI, which would
  defeat interning); they are fields of `Update`. The section decoder is `bgpd.wire.section`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from bgpd.wire.context import (
    AFI_IPV4,
    AFI_IPV6,
    SAFI_MULTICAST,
    SAFI_UNICAST,
    Family,
    WireContext,
)
from bgpd.wire.prefix import (
    Prefix,
)

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


class PathAttributes(NamedTuple):
    """One interned attribute set (everything in an UPDATE except MP_REACH/MP_UNREACH).

    A NamedTuple rather than a frozen dataclass: the codec builds one per distinct attribute
    set and the RIB hashes and compares them constantly; tuple construction, hashing and
    equality run in C (measured 10-20x faster than a frozen slotted dataclass on this box).
    Use `attrs._replace(next_hop=...)` to derive a modified set.
    """

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
        return as_path_length(self.as_path or ())


def as_path_length(path: tuple[Segment, ...]) -> int:
    """RFC 4271 §9.1.2.2(a) / RFC 6793 §4.2.3 counting: AS_SET 1, confederation segments 0."""
    n = 0
    for st, asns in path:
        if st == AS_SEQUENCE:
            n += len(asns)
        elif st == AS_SET:
            n += 1
    return n


class MpReach(NamedTuple):
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


class MpUnreach(NamedTuple):
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


# Slots of the list a section decoder fills: PathAttributes fields, then the two RFC 6793
# attributes that are folded into AS_PATH / AGGREGATOR before the set is frozen.
FIELDS = PathAttributes._fields
SLOT: dict[str, int] = {name: i for i, name in enumerate(FIELDS)}
AS4_PATH_SLOT = len(FIELDS)
AS4_AGGREGATOR_SLOT = len(FIELDS) + 1
NO_SLOT = -1
EMPTY_SLOTS: tuple[object, ...] = (*PathAttributes(), None, None)


# --- value codecs (symmetric pairs) ---------------------------------------------------------

DecodeFn = Callable[[bytes, WireContext], object]
EncodeFn = Callable[[PathAttributes, WireContext], bytes | None]

_U32 = struct.Struct(">I")
# Precompiled ">nH" / ">nI" for the AS_PATH segment counts and list attributes (a format
# string per call costs more than the unpacking itself).
_U16S = tuple(struct.Struct(f">{n}H") for n in range(256))
_U32S = tuple(struct.Struct(f">{n}I") for n in range(256))


def _dec_origin(v: bytes, ctx: WireContext) -> object:
    if len(v) != 1:
        raise Bad("origin-length")
    if v[0] > INCOMPLETE:
        raise Bad("origin-value")
    return v[0]


def _enc_origin(a: PathAttributes, ctx: WireContext) -> bytes | None:
    return None if a.origin is None else bytes((a.origin,))


def decode_as_path(v: bytes, size: int, case: str = "as-path-malformed") -> tuple[Segment, ...]:
    """AS_PATH / AS4_PATH segments with `size`-octet AS numbers (RFC 4271 §4.3, RFC 6793 §3)."""
    n = len(v)
    structs = _U16S if size == 2 else _U32S
    if n > 2 and v[0] == AS_SEQUENCE and n == 2 + v[1] * size:
        # The common case: one AS_SEQUENCE segment filling the attribute.
        return ((AS_SEQUENCE, structs[v[1]].unpack_from(v, 2)),)
    segs: list[Segment] = []
    i = 0
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
        segs.append((st, structs[cnt].unpack_from(v, i + 2)))
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


def _dec_as_path(v: bytes, ctx: WireContext) -> object:
    return decode_as_path(v, 4 if ctx.four_octet_as else 2)


def _enc_as_path(a: PathAttributes, ctx: WireContext) -> bytes | None:
    if a.as_path is None:
        return None
    return encode_as_path(a.as_path, 4 if ctx.four_octet_as else 2)


_NOT_HOSTS = frozenset({b"\x00\x00\x00\x00", b"\xff\xff\xff\xff"})


def _dec_next_hop(v: bytes, ctx: WireContext) -> object:
    if len(v) != 4:
        raise Bad("next-hop-length")
    # RFC 4271 §6.3: the NEXT_HOP must be a valid host address. 127/8 stays legal here: test
    # peers on loopback use it, and whether it resolves is the RIB's business (§5.1.3).
    if v in _NOT_HOSTS or v[0] & 0xF0 == 0xE0:
        raise Bad("next-hop-invalid")
    return bytes(v)


def _enc_next_hop(a: PathAttributes, ctx: WireContext) -> bytes | None:
    return a.next_hop


def _u32_decoder(case: str) -> DecodeFn:
    def dec(v: bytes, ctx: WireContext) -> object:
        if len(v) != 4:
            raise Bad(case)
        return _U32.unpack(v)[0]

    return dec


def _u32_encoder(name: str) -> EncodeFn:
    def enc(a: PathAttributes, ctx: WireContext) -> bytes | None:
        value = getattr(a, name)
        return None if value is None else _U32.pack(value)

    return enc


def _dec_atomic(v: bytes, ctx: WireContext) -> object:
    if v:
        raise Bad("atomic-aggregate-length")
    return True


def _enc_atomic(a: PathAttributes, ctx: WireContext) -> bytes | None:
    return b"" if a.atomic_aggregate else None


def _dec_aggregator(v: bytes, ctx: WireContext) -> object:
    size = 4 if ctx.four_octet_as else 2
    if len(v) != size + 4:
        raise Bad("aggregator-length")
    return (int.from_bytes(v[:size], "big"), bytes(v[size:]))


def _enc_aggregator(a: PathAttributes, ctx: WireContext) -> bytes | None:
    if a.aggregator is None:
        return None
    asn, addr = a.aggregator
    if ctx.four_octet_as:
        return _U32.pack(asn) + addr
    return (asn if asn <= 0xFFFF else AS_TRANS).to_bytes(2, "big") + addr


def _u32_list_decoder(case: str) -> DecodeFn:
    def dec(v: bytes, ctx: WireContext) -> object:
        n = len(v)
        if n == 0 or n & 3:
            raise Bad(case)
        k = n >> 2
        return (_U32S[k] if k < 256 else struct.Struct(f">{k}I")).unpack(v)

    return dec


def _u32_list_encoder(name: str) -> EncodeFn:
    def enc(a: PathAttributes, ctx: WireContext) -> bytes | None:
        values: tuple[int, ...] = getattr(a, name)
        return struct.pack(f">{len(values)}I", *values) if values else None

    return enc


def _dec_ext_communities(v: bytes, ctx: WireContext) -> object:
    n = len(v)
    if n == 0 or n & 7:
        raise Bad("ext-communities-length")
    return struct.unpack(f">{n >> 3}Q", v)


def _enc_ext_communities(a: PathAttributes, ctx: WireContext) -> bytes | None:
    values = a.ext_communities
    return struct.pack(f">{len(values)}Q", *values) if values else None


def _dec_large(v: bytes, ctx: WireContext) -> object:
    n = len(v)
    if n == 0 or n % 12:
        raise Bad("large-communities-length")
    flat = struct.unpack(f">{n >> 2}I", v)
    return tuple(zip(flat[0::3], flat[1::3], flat[2::3], strict=True))


def _enc_large(a: PathAttributes, ctx: WireContext) -> bytes | None:
    values = a.large_communities
    if not values:
        return None
    return struct.pack(f">{3 * len(values)}I", *(x for lc in values for x in lc))


def _dec_as4_path(v: bytes, ctx: WireContext) -> object:
    if ctx.four_octet_as:
        raise Bad("as4-from-new-speaker")
    path = decode_as_path(v, 4, "as4-path-malformed")
    # RFC 6793 §6: confederation segments in AS4_PATH are a malformation.
    if any(st in (AS_CONFED_SEQUENCE, AS_CONFED_SET) for st, _ in path):
        raise Bad("as4-path-malformed")
    return path


def _needs_as4(a: PathAttributes) -> bool:
    # Only AS_SET/AS_SEQUENCE travel in AS4_PATH; confederation members must fit 2 octets
    # on a 2-octet session (RFC 6793 §4.2.2).
    return any(x > 0xFFFF for st, asns in a.as_path or () if st <= AS_SEQUENCE for x in asns)


def _enc_as4_path(a: PathAttributes, ctx: WireContext) -> bytes | None:
    # RFC 6793 §4.2.2: towards a 2-octet speaker, carry the true path in AS4_PATH when some AS
    # number does not fit; confederation segments are not carried in it.
    if ctx.four_octet_as or a.as_path is None or not _needs_as4(a):
        return None
    path = tuple(s for s in a.as_path if s[0] in (AS_SET, AS_SEQUENCE))
    return encode_as_path(path, 4)


def _dec_as4_aggregator(v: bytes, ctx: WireContext) -> object:
    if ctx.four_octet_as:
        raise Bad("as4-from-new-speaker")
    if len(v) != 8:
        raise Bad("as4-aggregator-length")
    return (_U32.unpack_from(v)[0], bytes(v[4:]))


def _enc_as4_aggregator(a: PathAttributes, ctx: WireContext) -> bytes | None:
    if ctx.four_octet_as or a.aggregator is None or a.aggregator[0] <= 0xFFFF:
        return None
    return _U32.pack(a.aggregator[0]) + a.aggregator[1]


def _dec_never(v: bytes, ctx: WireContext) -> object:  # pragma: no cover
    raise AssertionError("MP attributes are decoded by decode_mp_reach/decode_mp_unreach")


def _enc_never(a: PathAttributes, ctx: WireContext) -> bytes | None:
    return None  # MP attributes are encoded from Update.mp_reach / Update.mp_unreach


@dataclass(frozen=True, slots=True)
class AttributeDescriptor:
    """One row of the attribute table (the BIRD `bgp_attr_table` idea)."""

    name: str
    flags: int  # expected Optional|Transitive bits (RFC 4271 §5)
    slot: int  # where the decoded value goes (index into PathAttributes, or AS4_*_SLOT)
    decode: DecodeFn
    encode: EncodeFn


ATTRIBUTES: dict[int, AttributeDescriptor] = {
    ORIGIN: AttributeDescriptor("ORIGIN", TRANSITIVE, SLOT["origin"], _dec_origin, _enc_origin),
    AS_PATH: AttributeDescriptor(
        "AS_PATH", TRANSITIVE, SLOT["as_path"], _dec_as_path, _enc_as_path
    ),
    NEXT_HOP: AttributeDescriptor(
        "NEXT_HOP", TRANSITIVE, SLOT["next_hop"], _dec_next_hop, _enc_next_hop
    ),
    MULTI_EXIT_DISC: AttributeDescriptor(
        "MULTI_EXIT_DISC", OPTIONAL, SLOT["med"], _u32_decoder("med-length"), _u32_encoder("med")
    ),
    LOCAL_PREF: AttributeDescriptor(
        "LOCAL_PREF",
        TRANSITIVE,
        SLOT["local_pref"],
        _u32_decoder("local-pref-length"),
        _u32_encoder("local_pref"),
    ),
    ATOMIC_AGGREGATE: AttributeDescriptor(
        "ATOMIC_AGGREGATE", TRANSITIVE, SLOT["atomic_aggregate"], _dec_atomic, _enc_atomic
    ),
    AGGREGATOR: AttributeDescriptor(
        "AGGREGATOR", OPTIONAL | TRANSITIVE, SLOT["aggregator"], _dec_aggregator, _enc_aggregator
    ),
    COMMUNITIES: AttributeDescriptor(
        "COMMUNITIES",
        OPTIONAL | TRANSITIVE,
        SLOT["communities"],
        _u32_list_decoder("communities-length"),
        _u32_list_encoder("communities"),
    ),
    ORIGINATOR_ID: AttributeDescriptor(
        "ORIGINATOR_ID",
        OPTIONAL,
        SLOT["originator_id"],
        _u32_decoder("originator-id-length"),
        _u32_encoder("originator_id"),
    ),
    CLUSTER_LIST: AttributeDescriptor(
        "CLUSTER_LIST",
        OPTIONAL,
        SLOT["cluster_list"],
        _u32_list_decoder("cluster-list-length"),
        _u32_list_encoder("cluster_list"),
    ),
    MP_REACH_NLRI: AttributeDescriptor("MP_REACH_NLRI", OPTIONAL, NO_SLOT, _dec_never, _enc_never),
    MP_UNREACH_NLRI: AttributeDescriptor(
        "MP_UNREACH_NLRI", OPTIONAL, NO_SLOT, _dec_never, _enc_never
    ),
    EXTENDED_COMMUNITIES: AttributeDescriptor(
        "EXTENDED_COMMUNITIES",
        OPTIONAL | TRANSITIVE,
        SLOT["ext_communities"],
        _dec_ext_communities,
        _enc_ext_communities,
    ),
    AS4_PATH: AttributeDescriptor(
        "AS4_PATH", OPTIONAL | TRANSITIVE, AS4_PATH_SLOT, _dec_as4_path, _enc_as4_path
    ),
    AS4_AGGREGATOR: AttributeDescriptor(
        "AS4_AGGREGATOR",
        OPTIONAL | TRANSITIVE,
        AS4_AGGREGATOR_SLOT,
        _dec_as4_aggregator,
        _enc_as4_aggregator,
    ),
    LARGE_COMMUNITY: AttributeDescriptor(
        "LARGE_COMMUNITY", OPTIONAL | TRANSITIVE, SLOT["large_communities"], _dec_large, _enc_large
    ),
}


def header(flags: int, code: int, length: int) -> bytes:
    """Attribute header; Extended Length only when needed (RFC 4271 §4.3)."""
    if length > 255:
        return bytes((flags | EXTENDED_LENGTH, code, length >> 8, length & 0xFF))
    return bytes((flags & ~EXTENDED_LENGTH & 0xFF, code, length))
