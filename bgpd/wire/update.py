"""UPDATE message codec (RFC 4271 §4.3, RFC 4760, RFC 7911, RFC 7606) and UPDATE packing.

This is the hot path: a full table arrives as tens of thousands of UPDATEs. The decoder slices
prefixes without building per-prefix objects and looks the attribute bytes up in the intern
cache before parsing them; only a cache miss runs the descriptor decoders.

`pack_updates` / `pack_withdrawals` turn one attribute set and many prefixes into as few
UPDATEs as fit in the negotiated message size (RFC 4271 §4.3, RFC 8654), encoding the attribute
set once.

Invariants: `decode_update(encode_update(u)) == u` for well-formed updates; decoding raises
only `UpdateMessageError` (session reset), every milder RFC 7606 outcome is on the result.
"""

from __future__ import annotations

from bgpd.wire.attributes import (
    AS_PATH,
    MP_REACH_NLRI,
    MP_UNREACH_NLRI,
    NEXT_HOP,
    ORIGIN,
    MpReach,
    MpUnreach,
    PathAttributes,
    header,
)
from bgpd.wire.context import AFI_IPV4, IPV4_UNICAST, SAFI_UNICAST, WireContext
from bgpd.wire.errors import Action
from bgpd.wire.messages import UPDATE, Update
from bgpd.wire.prefix import (
    SCANNERS,
    NlriError,
    Prefix,
    join_nlri_add_path,
    split_nlri,
    split_nlri_add_path,
)
from bgpd.wire.rfc7606 import INTERNAL_ONLY, Malformation, make_error
from bgpd.wire.section import (
    decode_section,
    encode_attributes,
    encode_mp_attribute,
    encode_mp_reach,
    encode_mp_unreach,
)

MARKER = b"\xff" * 16
_EMPTY: tuple[Prefix, ...] = ()
_NO_IDS: tuple[int, ...] = ()
_new_update = tuple.__new__
_SCAN_V4 = SCANNERS[32]


def _split(
    data: bytes, start: int, end: int, add_path: bool, case: str
) -> tuple[tuple[Prefix, ...], tuple[int, ...]]:
    try:
        if add_path:
            p, ids = split_nlri_add_path(data, start, end, 32)
            return tuple(p), tuple(ids)
        return tuple(split_nlri(data, start, end, 32)), _NO_IDS
    except NlriError:
        # RFC 7606 §5.3: IPv4 NLRI that cannot be parsed leaves no way to know what to withdraw.
        raise make_error(case) from None


def decode_update(data: bytes, ctx: WireContext) -> Update:
    """Decode a whole UPDATE message (header included; the header was checked by the caller)."""
    end = len(data)
    wend = 21 + (data[19] << 8 | data[20])
    if wend + 2 > end:
        raise make_error("withdrawn-length-overrun")
    astart = wend + 2
    aend = astart + (data[wend] << 8 | data[wend + 1])
    if aend > end:
        raise make_error("attribute-length-overrun")
    add_path = ctx.ipv4_add_path_rx
    if wend > 21:
        withdrawn, withdrawn_ids = _split(data, 21, wend, add_path, "withdrawn-nlri-malformed")
    else:
        withdrawn, withdrawn_ids = _EMPTY, _NO_IDS
    if aend == end:
        nlri, nlri_ids = _EMPTY, _NO_IDS
    elif not add_path:
        # Inlined fast path of split_nlri (one regex pass in C); anything odd takes _split.
        pieces: list[Prefix] = _SCAN_V4.findall(data, aend, end)
        if sum(map(len, pieces)) == end - aend:
            nlri, nlri_ids = tuple(pieces), _NO_IDS
        else:
            nlri, nlri_ids = _split(data, aend, end, add_path, "nlri-malformed")
    else:
        nlri, nlri_ids = _split(data, aend, end, add_path, "nlri-malformed")
    if aend == astart:
        attrs = None
        mp_reach = None
        mp_unreach = None
        found: list[Malformation] = []
    else:
        cache = ctx.cache
        attrs = cache.tables[ctx.four_octet_as].get(data[astart:aend])
        if attrs is not None:
            # Fast path: a clean, MP-free attribute section seen before.
            cache.hits += 1
            if not nlri or (
                attrs.next_hop is not None
                and attrs.origin is not None
                and attrs.as_path is not None
            ):
                return _new_update(
                    Update, (withdrawn, attrs, nlri, None, None, withdrawn_ids, nlri_ids, False, ())
                )
            mp_reach = mp_unreach = None
            found = []
        else:
            attrs, mp_reach, mp_unreach, found = decode_section(data, astart, aend, ctx)
    if (nlri or (mp_reach is not None and mp_reach.nlri)) and (
        attrs is None
        or attrs.origin is None
        or attrs.as_path is None
        or (nlri and attrs.next_hop is None)
    ):
        # RFC 4271 §6.3 / RFC 7606 §3(d): well-known mandatory attributes. NEXT_HOP is needed
        # only with IPv4 NLRI in the NLRI field (RFC 4760 §3). LOCAL_PREF on iBGP is checked by
        # the session, which knows whether the peer is internal.
        needed = (ORIGIN, AS_PATH, NEXT_HOP) if nlri else (ORIGIN, AS_PATH)
        values = {
            ORIGIN: attrs.origin if attrs else None,
            AS_PATH: attrs.as_path if attrs else None,
            NEXT_HOP: attrs.next_hop if attrs else None,
        }
        for code in needed:
            # An attribute that was present but malformed is reported as such, not missing.
            if values[code] is None and not any(m.attr_type == code for m in found):
                found.append(Malformation("missing-well-known", code, bytes((code,))))
    if not found:
        return _new_update(
            Update,
            (withdrawn, attrs, nlri, mp_reach, mp_unreach, withdrawn_ids, nlri_ids, False, ()),
        )
    withdraw = any(m.action is Action.TREAT_AS_WITHDRAW for m in found)
    return _new_update(
        Update,
        (
            withdrawn,
            attrs,
            nlri,
            mp_reach,
            mp_unreach,
            withdrawn_ids,
            nlri_ids,
            withdraw,
            tuple(found),
        ),
    )


def attribute_bytes(attrs: PathAttributes, ctx: WireContext) -> bytes:
    """The encoded attribute set, memoised per context flavour (the intern cache in reverse)."""
    table = ctx.cache.encoded[ctx.four_octet_as]
    raw = table.get(attrs)
    if raw is None:
        raw = ctx.cache.store_encoded(ctx.four_octet_as, attrs, encode_attributes(attrs, ctx))
    return raw


def _frame(body: bytes) -> bytes:
    n = 19 + len(body)
    return MARKER + bytes((n >> 8, n & 0xFF, UPDATE)) + body


def encode_update(u: Update, ctx: WireContext) -> bytes:
    """Encode an UPDATE. MP attributes go first (RFC 7606 §5.1). The RFC 7606 fields of `u`
    are not encoded (they describe a received message). Raises ValueError when too long."""
    add_path = ctx.ipv4_add_path_tx
    if add_path:
        withdrawn = join_nlri_add_path(u.withdrawn, u.withdrawn_path_ids)
        nlri = join_nlri_add_path(u.nlri, u.nlri_path_ids)
    else:
        withdrawn = b"".join(u.withdrawn)
        nlri = b"".join(u.nlri)
    parts: list[bytes] = []
    if u.mp_unreach is not None:
        parts.append(encode_mp_attribute(MP_UNREACH_NLRI, encode_mp_unreach(u.mp_unreach, ctx)))
    if u.mp_reach is not None:
        parts.append(encode_mp_attribute(MP_REACH_NLRI, encode_mp_reach(u.mp_reach, ctx)))
    if u.attributes is not None:
        parts.append(attribute_bytes(u.attributes, ctx))
    attrs = b"".join(parts)
    size = 23 + len(withdrawn) + len(attrs) + len(nlri)
    if size > ctx.max_message:
        raise ValueError(f"UPDATE of {size} octets exceeds {ctx.max_message}")
    return _frame(
        b"".join(
            (
                len(withdrawn).to_bytes(2, "big"),
                withdrawn,
                len(attrs).to_bytes(2, "big"),
                attrs,
                nlri,
            )
        )
    )


def _chunks(
    prefixes: tuple[Prefix, ...] | list[Prefix],
    ids: tuple[int, ...] | list[int],
    room: int,
) -> list[bytes]:
    """Join prefixes into runs of at most `room` octets (ids interleaved when given)."""
    if room < 21 + (4 if ids else 0):
        raise ValueError("attributes leave no room for a prefix")
    runs: list[bytes] = []
    run: list[bytes] = []
    used = 0
    if ids:
        items = [i.to_bytes(4, "big") + p for p, i in zip(prefixes, ids, strict=True)]
    else:
        items = list(prefixes)
    for item in items:
        n = len(item)
        if used + n > room:
            runs.append(b"".join(run))
            run = []
            used = 0
        run.append(item)
        used += n
    if run:
        runs.append(b"".join(run))
    return runs


def pack_updates(
    attrs: PathAttributes,
    prefixes: tuple[Prefix, ...] | list[Prefix],
    ctx: WireContext,
    *,
    afi: int = AFI_IPV4,
    safi: int = SAFI_UNICAST,
    next_hop: bytes = b"",
    path_ids: tuple[int, ...] | list[int] = (),
) -> list[bytes]:
    """Encode `prefixes` sharing `attrs` into as few UPDATE messages as fit.

    IPv4 unicast goes in the NLRI field (`attrs.next_hop` is the next hop); other families go in
    MP_REACH_NLRI with `next_hop` (RFC 4760 §3).
    """
    family = (afi, safi)
    ids = path_ids if family in ctx.add_path_tx else ()
    raw = attribute_bytes(attrs, ctx)
    limit = ctx.max_message
    if family == IPV4_UNICAST:
        head = b"\x00\x00" + len(raw).to_bytes(2, "big") + raw
        out = []
        for run in _chunks(prefixes, ids, limit - 19 - len(head)):
            n = 19 + len(head) + len(run)
            out.append(MARKER + bytes((n >> 8, n & 0xFF, UPDATE)) + head + run)
        return out
    mp_head = afi.to_bytes(2, "big") + bytes((safi, len(next_hop))) + next_hop + b"\x00"
    # MP_REACH_NLRI header is 4 octets (extended length) once NLRI makes it long.
    room = limit - 19 - 4 - len(raw) - 4 - len(mp_head)
    out = []
    for run in _chunks(prefixes, ids, room):
        value = mp_head + run
        a = header(0x80, MP_REACH_NLRI, len(value)) + value + raw
        out.append(_frame(b"\x00\x00" + len(a).to_bytes(2, "big") + a))
    return out


def pack_withdrawals(
    prefixes: tuple[Prefix, ...] | list[Prefix],
    ctx: WireContext,
    *,
    afi: int = AFI_IPV4,
    safi: int = SAFI_UNICAST,
    path_ids: tuple[int, ...] | list[int] = (),
) -> list[bytes]:
    """Encode withdrawals into as few UPDATE messages as fit (RFC 4271 §4.3, RFC 4760 §4)."""
    family = (afi, safi)
    ids = path_ids if family in ctx.add_path_tx else ()
    limit = ctx.max_message
    out = []
    if family == IPV4_UNICAST:
        for run in _chunks(prefixes, ids, limit - 23):
            out.append(_frame(len(run).to_bytes(2, "big") + run + b"\x00\x00"))
        return out
    mp_head = afi.to_bytes(2, "big") + bytes((safi,))
    for run in _chunks(prefixes, ids, limit - 23 - 4 - len(mp_head)):
        value = mp_head + run
        a = header(0x80, MP_UNREACH_NLRI, len(value)) + value
        out.append(_frame(b"\x00\x00" + len(a).to_bytes(2, "big") + a))
    return out


def from_external_peer(u: Update) -> Update:
    """`u` as received from an external (eBGP) neighbour, which the codec cannot know.

    RFC 7606 §7.5, §7.9, §7.10: LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST from an external
    neighbour are removed by "attribute discard" whatever their length, so their length
    malformations no longer make the UPDATE treat-as-withdraw (RFC 4271 §5.1.5 already says a
    LOCAL_PREF from eBGP is ignored). Returns `u` itself when nothing applies (the common case:
    no allocation on the hot path)."""
    attrs = u.attributes
    found = u.malformations
    if attrs is not None and (
        attrs.local_pref is not None or attrs.originator_id is not None or attrs.cluster_list
    ):
        attrs = attrs._replace(local_pref=None, originator_id=None, cluster_list=())
    if found and any(m.case in INTERNAL_ONLY for m in found):
        found = tuple(m for m in found if m.case not in INTERNAL_ONLY)
    if attrs is u.attributes and found is u.malformations:
        return u
    withdraw = any(m.action is Action.TREAT_AS_WITHDRAW for m in found)
    return u._replace(attributes=attrs, treat_as_withdraw=withdraw, malformations=found)


__all__ = [
    "MpReach",
    "MpUnreach",
    "attribute_bytes",
    "decode_update",
    "encode_update",
    "from_external_peer",
    "pack_updates",
    "pack_withdrawals",
]
