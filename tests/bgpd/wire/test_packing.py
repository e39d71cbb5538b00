"""UPDATE packing for Adj-RIB-Out (RFC 4271 §4.3: one attribute set per UPDATE, as many
prefixes as fit; RFC 8654 larger messages; RFC 4760 MP_REACH/MP_UNREACH; RFC 7911 ADD-PATH)
and capability negotiation (RFC 5492 §3, RFC 6793 §3, RFC 7911 §5, RFC 8654 §3)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bgpd.wire import (
    Framer,
    PathAttributes,
    Update,
    WireContext,
    negotiate,
    pack_updates,
    pack_withdrawals,
)
from bgpd.wire.capabilities import AddPath, ExtendedMessage, FourOctetAs, Multiprotocol
from bgpd.wire.strategies import path_attributes, prefixes

FOUR = WireContext(four_octet_as=True)
EXT = WireContext(four_octet_as=True, extended_message=True)
AP = WireContext(True, frozenset({(1, 1), (2, 1)}), frozenset({(1, 1), (2, 1)}))


def _decode_all(msgs: list[bytes], ctx: WireContext) -> list[Update]:
    framer = Framer(ctx)
    framer.feed(b"".join(msgs))
    out = list(framer)
    assert all(isinstance(m, Update) for m in out)
    return [m for m in out if isinstance(m, Update)]


def _many(count: int, base: int, extra: list[bytes]) -> list[bytes]:
    """`count` distinct /24s (cheap to generate) after a few drawn prefixes of any length."""
    made = [b"\x18" + ((base + k * 7919) % (1 << 24)).to_bytes(3, "big") for k in range(count)]
    return list(dict.fromkeys(extra + made))


MANY = st.builds(
    _many, st.integers(1, 3000), st.integers(0, 1 << 24), st.lists(prefixes(), max_size=10)
)


@settings(max_examples=20)
@given(path_attributes(), MANY, st.sampled_from([FOUR, EXT, AP]))
def test_pack_ipv4_updates_round_trip(
    attrs: PathAttributes, pfx: list[bytes], ctx: WireContext
) -> None:
    ids = list(range(len(pfx)))
    msgs = pack_updates(attrs, pfx, ctx, path_ids=ids)
    assert all(len(m) <= ctx.max_message for m in msgs)
    decoded = _decode_all(msgs, ctx)
    assert [p for u in decoded for p in u.nlri] == pfx
    assert all(u.attributes == attrs for u in decoded)
    assert len({id(u.attributes) for u in decoded}) == 1  # interned
    if ctx is AP:
        assert [i for u in decoded for i in u.nlri_path_ids] == ids
    # Packed, not one prefix per message: every message but the last is nearly full.
    assert all(len(m) > ctx.max_message - 40 for m in msgs[:-1])


@settings(max_examples=30)
@given(
    path_attributes(next_hop=False), st.lists(prefixes(2), min_size=1, max_size=800, unique=True)
)
def test_pack_ipv6_updates_and_withdrawals(attrs: PathAttributes, pfx: list[bytes]) -> None:
    nh = bytes(range(32))
    msgs = pack_updates(attrs, pfx, FOUR, afi=2, safi=1, next_hop=nh)
    decoded = _decode_all(msgs, FOUR)
    assert [p for u in decoded for p in (u.mp_reach.nlri if u.mp_reach else ())] == pfx
    assert all(u.mp_reach is not None and u.mp_reach.next_hop == nh for u in decoded)
    gone = _decode_all(pack_withdrawals(pfx, FOUR, afi=2, safi=1), FOUR)
    assert [p for u in gone for p in (u.mp_unreach.withdrawn if u.mp_unreach else ())] == pfx
    v4 = _decode_all(pack_withdrawals([b"\x08\x0a"] * 2000, FOUR), FOUR)
    assert sum(len(u.withdrawn) for u in v4) == 2000


def test_negotiate_rfc5492() -> None:
    ours = (
        Multiprotocol(1, 1),
        FourOctetAs(65001),
        ExtendedMessage(),
        AddPath(((1, 1, 3), (2, 1, 1))),
    )
    theirs = (FourOctetAs(65002), AddPath(((1, 1, 1), (2, 1, 2))))
    ctx = negotiate(ours, theirs)
    assert ctx.four_octet_as
    assert not ctx.extended_message  # RFC 8654 §3: both sides must advertise it
    assert ctx.add_path_rx == frozenset({(2, 1)})  # we receive, they send
    assert ctx.add_path_tx == frozenset({(1, 1)})  # we send, they receive
    assert ctx.ipv4_add_path_tx and not ctx.ipv4_add_path_rx
    assert not negotiate(ours, ()).four_octet_as
