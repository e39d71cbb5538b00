"""The Path Attributes field of an UPDATE: framing, interning, MP attributes, RFC 6793 merge.

Implements RFC 4271 §4.3 (attribute TLVs, Extended Length), RFC 4760 §3-4 (MP_REACH_NLRI,
MP_UNREACH_NLRI), RFC 6793 §4.2.3 (AS4_PATH / AS4_AGGREGATOR reconstruction) and the framing,
flag and duplicate rules of RFC 7606 §3-4. Values are decoded by the descriptor table in
`bgpd.wire.attributes`.

Invariants:
- `decode_section` raises only `UpdateMessageError` (session-reset cases); everything milder
  is returned as `Malformation`s.
- A clean section (no findings) is interned: the same bytes (minus MP attributes) give the same
  `PathAttributes` object while it stays in the cache.
"""

from __future__ import annotations

from typing import NamedTuple

from bgpd.wire.attributes import (
    AS4_AGGREGATOR_SLOT,
    AS4_PATH_SLOT,
    AS_CONFED_SEQUENCE,
    AS_CONFED_SET,
    AS_SET,
    AS_TRANS,
    ATTRIBUTES,
    EMPTY_SLOTS,
    EXTENDED_LENGTH,
    MP_REACH_NLRI,
    MP_UNREACH_NLRI,
    NEXT_HOP_LENGTHS,
    NLRI_FAMILIES,
    OPTIONAL,
    PARTIAL,
    SLOT,
    TRANSITIVE,
    Bad,
    MpReach,
    MpUnreach,
    PathAttributes,
    RawAttribute,
    Segment,
    as_path_length,
    header,
)
from bgpd.wire.context import WireContext
from bgpd.wire.prefix import (
    MAX_LENGTH,
    NlriError,
    join_nlri_add_path,
    split_nlri,
    split_nlri_add_path,
)
from bgpd.wire.rfc7606 import Malformation, make_error

_MP_CODES = frozenset({MP_REACH_NLRI, MP_UNREACH_NLRI})
# RFC 4271 §6.3 gives Malformed AS_PATH no data; every other attribute case carries the attribute.
_EMPTY_DATA_CASES = frozenset({"as-path-malformed"})
_AS_PATH = SLOT["as_path"]
_AGGREGATOR = SLOT["aggregator"]
_UNKNOWN = SLOT["unknown"]
_N_FIELDS = len(PathAttributes._fields)
_new_attributes = tuple.__new__


# --- MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760 §3, §4) ----------------------------------------


def decode_mp_reach(v: bytes, ctx: WireContext) -> MpReach:
    """Raises Bad("mp-reach-malformed"/"mp-family-unsupported"); AFI/SAFI must be readable."""
    afi = v[0] << 8 | v[1]
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
        nlri = split_nlri(v, 5 + nhlen, len(v), MAX_LENGTH[afi])
        return MpReach(afi, safi, next_hop, tuple(nlri))
    except NlriError:
        raise Bad("mp-reach-malformed") from None


def encode_mp_reach(mp: MpReach, ctx: WireContext) -> bytes:
    if (mp.afi, mp.safi) in ctx.add_path_tx:
        nlri = join_nlri_add_path(mp.nlri, mp.path_ids)
    else:
        nlri = b"".join(mp.nlri)
    head = mp.afi.to_bytes(2, "big") + bytes((mp.safi, len(mp.next_hop)))
    return head + mp.next_hop + b"\x00" + nlri


def decode_mp_unreach(v: bytes, ctx: WireContext) -> MpUnreach:
    afi = v[0] << 8 | v[1]
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


def encode_mp_attribute(code: int, value: bytes) -> bytes:
    return header(OPTIONAL, code, len(value)) + value


# --- RFC 6793 §4.2.3 ---------------------------------------------------------------------------


def reconstruct(
    as_path: tuple[Segment, ...] | None,
    aggregator: tuple[int, bytes] | None,
    as4_path: tuple[Segment, ...] | None,
    as4_aggregator: tuple[int, bytes] | None,
) -> tuple[tuple[Segment, ...] | None, tuple[int, bytes] | None]:
    """Merge AS4_PATH / AS4_AGGREGATOR received from a 2-octet speaker (RFC 6793 §4.2.3)."""
    if aggregator is not None and as4_aggregator is not None:
        if aggregator[0] != AS_TRANS:
            # The aggregating speaker was 2-octet: the AS4 attributes are stale; ignore both.
            return as_path, aggregator
        aggregator = as4_aggregator
    if as4_path is None or as_path is None:
        return as_path, aggregator
    keep = as_path_length(as_path) - as_path_length(as4_path)
    if keep < 0:
        return as_path, aggregator  # AS4_PATH longer than AS_PATH: ignore it
    # Take the leading `keep` AS numbers of AS_PATH (with any confederation segments that
    # precede the cut), then the whole AS4_PATH.
    lead: list[Segment] = []
    for st, asns in as_path:
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
    return (*lead, *as4_path), aggregator


# --- the section --------------------------------------------------------------------------------


class Section(NamedTuple):
    """What one path attributes field decoded to."""

    attributes: PathAttributes | None
    mp_reach: MpReach | None
    mp_unreach: MpUnreach | None
    found: list[Malformation]


def decode_section(data: bytes, start: int, end: int, ctx: WireContext) -> Section:
    """Decode the Path Attributes field `data[start:end]` (RFC 4271 §4.3, RFC 7606).

    One pass: framing (RFC 7606 §4), duplicates (§3(g)), flags (§3(c)) and values; the MP
    attributes are set aside and decoded last. Callers normally looked the whole field up in
    the intern table already; with MP attributes the key is the field without them.
    """
    cache = ctx.cache
    four = ctx.four_octet_as
    values = cache.values[four]
    maxsize = cache.maxsize
    get = ATTRIBUTES.get
    slots = list(EMPTY_SLOTS)
    unknown: list[RawAttribute] = []
    parts: list[bytes] = []  # every non-MP attribute, for the intern key
    mp: list[tuple[int, int, bytes, bytes]] = []  # (flags, code, attribute, value)
    found: list[Malformation] = []
    seen: set[int] = set()
    i = start
    framing = ""
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
            vs = i + 4
            e = vs + (data[i + 2] << 8 | data[i + 3])
        else:
            vs = i + 3
            e = vs + data[i + 2]
        if e > end:
            framing = "attribute-value-overrun"
            break
        tlv = data[i:e]
        i = e
        if code in seen:
            if code in _MP_CODES:
                raise make_error("duplicate-mp-attribute")
            # RFC 7606 §3(g): keep the first occurrence, discard the others.
            found.append(Malformation("duplicate-attribute", code, b""))
            continue
        seen.add(code)
        if code in _MP_CODES:
            mp.append((flags, code, tlv, data[vs:e]))
            continue
        parts.append(tlv)
        desc = get(code)
        if desc is None:
            if not flags & OPTIONAL:
                # RFC 4271 §6.3: an unrecognized well-known attribute.
                raise make_error("unrecognized-well-known", tlv)
            if flags & TRANSITIVE:
                # RFC 4271 §5: pass it on with the Partial bit set.
                unknown.append(RawAttribute((flags & 0xE0) | PARTIAL, code, data[vs:e]))
            # An unrecognized optional non-transitive attribute is quietly ignored.
            continue
        if flags & 0xC0 != desc.flags:
            # RFC 7606 §3(c); the value is still decoded so the NLRI can be withdrawn.
            found.append(Malformation("attribute-flags", code, tlv))
        # Single attributes repeat far more than whole sets (ORIGIN, NEXT_HOP, LOCAL_PREF,
        # common AS_PATHs): the decoded value is looked up by the attribute's own bytes.
        value = values.get(tlv)
        if value is None:
            try:
                value = desc.decode(data[vs:e], ctx)
            except Bad as bad:
                found.append(
                    Malformation(bad.case, code, b"" if bad.case in _EMPTY_DATA_CASES else tlv)
                )
                continue
            if len(values) >= maxsize:
                del values[next(iter(values))]
            values[tlv] = value
        slots[desc.slot] = value
    if framing:
        # RFC 7606 §4: treat-as-withdraw, relying on the Total Path Attribute Length to find
        # the NLRI. With MP attributes the MP NLRI may be lost in the damage: reset instead.
        if mp:
            raise make_error("attribute-framing-with-mp")
        found.append(Malformation(framing, 0, b""))

    attrs: PathAttributes | None = None
    if parts:
        table = cache.tables[four]
        key = data[start:end] if not mp and not framing else b"".join(parts)
        attrs = None if found else table.get(key)
        if attrs is not None:
            cache.hits += 1
        else:
            if unknown:
                slots[_UNKNOWN] = tuple(unknown)
            if not four and (
                slots[AS4_PATH_SLOT] is not None or slots[AS4_AGGREGATOR_SLOT] is not None
            ):
                slots[_AS_PATH], slots[_AGGREGATOR] = reconstruct(
                    slots[_AS_PATH],  # type: ignore[arg-type]
                    slots[_AGGREGATOR],  # type: ignore[arg-type]
                    slots[AS4_PATH_SLOT],  # type: ignore[arg-type]
                    slots[AS4_AGGREGATOR_SLOT],  # type: ignore[arg-type]
                )
            attrs = _new_attributes(PathAttributes, slots[:_N_FIELDS])
            if not found:
                cache.misses += 1
                cache.store(four, key, attrs)
    mp_reach: MpReach | None = None
    mp_unreach: MpUnreach | None = None
    for flags, code, raw, value in mp:
        if flags & 0xC0 != OPTIONAL:
            found.append(Malformation("attribute-flags", code, raw))
        if len(value) < 3:
            # RFC 7606 §7.11: AFI/SAFI unreadable, nothing narrower than the session to disable.
            raise make_error("mp-attribute-truncated", raw)
        family = (value[0] << 8 | value[1], value[2])
        try:
            if code == MP_REACH_NLRI:
                mp_reach = decode_mp_reach(value, ctx)
            else:
                mp_unreach = decode_mp_unreach(value, ctx)
        except Bad as bad:
            found.append(Malformation(bad.case, code, raw, family))
    return Section(attrs, mp_reach, mp_unreach, found)


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
