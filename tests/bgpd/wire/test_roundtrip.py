"""Round trips: decode(encode(m)) == m for every message, capability and attribute, and the
framer's chunking invariance (RFC 4271 §4, RFC 5492, RFC 4760, RFC 6793, RFC 7911, RFC 8654)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgpd.wire import (
    BGPError,
    Framer,
    Message,
    Open,
    PathAttributes,
    Update,
    WireContext,
    decode_message,
    encode_message,
)
from bgpd.wire.attributes import (
    AGGREGATOR,
    AS4_AGGREGATOR,
    AS4_PATH,
    AS_PATH,
    ATOMIC_AGGREGATE,
    ATTRIBUTES,
    CLUSTER_LIST,
    COMMUNITIES,
    EXTENDED_COMMUNITIES,
    LARGE_COMMUNITY,
    LOCAL_PREF,
    MP_REACH_NLRI,
    MP_UNREACH_NLRI,
    MULTI_EXIT_DISC,
    NEXT_HOP,
    ORIGIN,
    ORIGINATOR_ID,
    MpUnreach,
)
from bgpd.wire.capabilities import (
    CAPABILITIES,
    Capability,
    capability_code,
    decode_capabilities,
    encode_capability,
)
from bgpd.wire.context import AttributeCache
from bgpd.wire.strategies import (
    CAPABILITY_STRATEGIES,
    contexts,
    keepalives,
    messages,
    notifications,
    opens,
    path_attributes,
    prefixes,
    route_refreshes,
    unknown_capabilities,
    updates,
)

FOUR = WireContext(four_octet_as=True)
TWO = WireContext(four_octet_as=False)


def round_trip(msg: Message, ctx: WireContext) -> Message:
    return decode_message(encode_message(msg, ctx), ctx)


@settings(max_examples=50)
@given(opens())
def test_open_round_trip_rfc4271_s4_2_rfc5492(msg: Open) -> None:
    assert round_trip(msg, WireContext()) == msg


@settings(max_examples=50)
@given(contexts().flatmap(lambda c: st.tuples(st.just(c), updates(c))))
def test_update_round_trip_rfc4271_s4_3(pair: tuple[WireContext, Update]) -> None:
    ctx, msg = pair
    assert round_trip(msg, ctx) == msg


@given(st.one_of(notifications(), keepalives(), route_refreshes()))
def test_notification_keepalive_route_refresh_round_trip(msg: Message) -> None:
    assert round_trip(msg, WireContext()) == msg


@pytest.mark.parametrize("code", sorted(CAPABILITIES), ids=lambda c: CAPABILITIES[c].name)
@settings(max_examples=20)
@given(data=st.data())
def test_each_capability_round_trips_rfc5492_s4(code: int, data: st.DataObject) -> None:
    """Parametrised from the capability descriptor table: a new capability cannot skip it."""
    cap = data.draw(CAPABILITY_STRATEGIES[code])
    assert capability_code(cap) == code
    raw = encode_capability(cap)
    assert decode_capabilities(raw) == [cap]
    msg = Open(65001, 90, 1, (cap,))
    assert round_trip(msg, WireContext()) == msg


def test_every_capability_has_a_strategy() -> None:
    assert set(CAPABILITY_STRATEGIES) == set(CAPABILITIES)


@given(unknown_capabilities())
def test_unknown_capability_kept_as_bytes_rfc5492_s4(cap: Capability) -> None:
    assert decode_capabilities(encode_capability(cap)) == [cap]


def _set(
    field: str, values: st.SearchStrategy[object], four: bool = True
) -> st.SearchStrategy[PathAttributes]:
    idx = PathAttributes._fields.index(field)
    return st.tuples(path_attributes(four), values).map(
        lambda t: PathAttributes._make(t[1] if i == idx else v for i, v in enumerate(t[0]))
    )


U32 = st.integers(0, 0xFFFFFFFF)
BIG_AS = st.integers(0x10000, 0xFFFFFFFF)

# Per attribute type code: a context and attribute sets that carry the attribute.
ATTRIBUTE_CASES: dict[int, tuple[WireContext, st.SearchStrategy[PathAttributes]]] = {
    ORIGIN: (FOUR, path_attributes()),
    AS_PATH: (FOUR, path_attributes()),
    NEXT_HOP: (FOUR, path_attributes()),
    MULTI_EXIT_DISC: (FOUR, _set("med", U32)),
    LOCAL_PREF: (FOUR, _set("local_pref", U32)),
    ATOMIC_AGGREGATE: (FOUR, _set("atomic_aggregate", st.just(True))),
    AGGREGATOR: (TWO, _set("aggregator", st.tuples(U32, st.binary(min_size=4, max_size=4)), False)),
    COMMUNITIES: (FOUR, _set("communities", st.lists(U32, min_size=1, max_size=5).map(tuple))),
    ORIGINATOR_ID: (FOUR, _set("originator_id", U32)),
    CLUSTER_LIST: (FOUR, _set("cluster_list", st.lists(U32, min_size=1, max_size=5).map(tuple))),
    MP_REACH_NLRI: (FOUR, path_attributes(next_hop=False)),
    MP_UNREACH_NLRI: (FOUR, path_attributes()),
    EXTENDED_COMMUNITIES: (
        FOUR,
        _set("ext_communities", st.lists(st.integers(0, (1 << 64) - 1), min_size=1).map(tuple)),
    ),
    # AS4_* appear on the wire only towards a 2-octet speaker, for AS numbers above 65535.
    AS4_PATH: (
        TWO,
        st.tuples(path_attributes(False), BIG_AS).map(
            lambda t: t[0]._replace(as_path=(*(t[0].as_path or ()), (2, (t[1], 65001))))
        ),
    ),
    AS4_AGGREGATOR: (
        TWO,
        _set("aggregator", st.tuples(BIG_AS, st.binary(min_size=4, max_size=4)), False),
    ),
    LARGE_COMMUNITY: (
        FOUR,
        _set(
            "large_communities",
            st.lists(st.tuples(U32, U32, U32), min_size=1, max_size=4).map(tuple),
        ),
    ),
}


def test_every_attribute_has_a_round_trip_case() -> None:
    assert set(ATTRIBUTE_CASES) == set(ATTRIBUTES)


@pytest.mark.parametrize("code", sorted(ATTRIBUTES), ids=lambda c: ATTRIBUTES[c].name)
@settings(max_examples=10)
@given(data=st.data())
def test_each_attribute_round_trips(code: int, data: st.DataObject) -> None:
    """RFC 4271 §4.3 / §5 and the RFCs of each attribute; AS4_* per RFC 6793 §4.2.2-4.2.3."""
    ctx, strategy = ATTRIBUTE_CASES[code]
    attrs = data.draw(strategy)
    nlri = tuple(data.draw(st.lists(prefixes(), min_size=1, max_size=5)))
    if code == MP_REACH_NLRI:
        from bgpd.wire.attributes import MpReach

        reach = MpReach(
            2, 1, b"\x20\x01" + bytes(14) + b"\xfe\x80" + bytes(14), (b"\x20\x20\x01\x0d\xb8",)
        )
        msg = Update(attributes=attrs, mp_reach=reach)
    elif code == MP_UNREACH_NLRI:
        msg = Update(mp_unreach=MpUnreach(2, 1, (b"\x30\x20\x01\x0d\xb8\x00\x01",)))
    else:
        msg = Update(attributes=attrs, nlri=nlri)
    raw = encode_message(msg, ctx)
    if code in (AS4_PATH, AS4_AGGREGATOR):
        assert bytes((0xC0, code)) in raw or bytes((0xD0, code)) in raw
    assert decode_message(raw, ctx) == msg


@settings(max_examples=50)
@given(messages(FOUR).filter(lambda m: not isinstance(m, Update)) | updates(FOUR))
def test_messages_round_trip_four_octet(msg: Message) -> None:
    assert round_trip(msg, FOUR) == msg


@settings(max_examples=50)
@given(
    st.lists(messages(FOUR), min_size=1, max_size=6),
    st.lists(st.integers(1, 200), min_size=1, max_size=40),
)
def test_framer_chunking_invariance_rfc4271_s4_1(msgs: list[Message], cuts: list[int]) -> None:
    """However the TCP stream is split, the framer yields the same messages."""
    stream = b"".join(encode_message(m, FOUR) for m in msgs)
    framer = Framer(FOUR)
    out: list[Message] = []
    pos = 0
    k = 0
    while pos < len(stream):
        step = cuts[k % len(cuts)]
        framer.feed(stream[pos : pos + step])
        pos += step
        k += 1
        out.extend(framer)
    assert out == msgs
    assert framer.buffered == 0


@settings(max_examples=50)
@given(path_attributes(), st.lists(prefixes(), min_size=1, max_size=3))
def test_identical_attribute_bytes_decode_to_the_same_object(
    attrs: PathAttributes, nlri: list[bytes]
) -> None:
    """STYLE rule 8: interned attribute sets (one object per distinct attribute bytes)."""
    ctx = WireContext(four_octet_as=True, cache=AttributeCache())
    first = decode_message(encode_message(Update(attributes=attrs, nlri=tuple(nlri)), ctx), ctx)
    again = decode_message(encode_message(Update(attributes=attrs, nlri=(b"\x00",)), ctx), ctx)
    assert isinstance(first, Update) and isinstance(again, Update)
    assert first.attributes is again.attributes


def test_attribute_cache_is_bounded() -> None:
    cache = AttributeCache(maxsize=4)
    ctx = WireContext(four_octet_as=True, cache=cache)
    for med in range(10):
        attrs = PathAttributes(origin=0, as_path=(), next_hop=b"\n\0\0\1", med=med)
        decode_message(encode_message(Update(attributes=attrs, nlri=(b"\x00",)), ctx), ctx)
    assert len(cache.tables[True]) == 4
    assert cache.misses == 10


def test_end_of_rib_markers_rfc4724_s2() -> None:
    assert round_trip(Update(), FOUR) == Update()
    v4 = round_trip(Update(), FOUR)
    v6 = round_trip(Update(mp_unreach=MpUnreach(2, 1)), FOUR)
    assert isinstance(v4, Update) and isinstance(v6, Update)
    assert v4.end_of_rib == (1, 1)
    assert v6.end_of_rib == (2, 1)


def _run_framer(
    stream: bytes, cuts: list[int]
) -> tuple[list[Message], tuple[int, int, bytes] | None]:
    framer = Framer(FOUR)
    out: list[Message] = []
    pos = k = 0
    try:
        while pos < len(stream):
            step = cuts[k % len(cuts)]
            framer.feed(stream[pos : pos + step])
            pos += step
            k += 1
            out.extend(framer)
    except BGPError as err:
        return out, (err.code, err.subcode, err.data)
    return out, None


@settings(max_examples=50)
@given(
    st.lists(messages(FOUR), max_size=4),
    st.binary(min_size=1, max_size=40),
    st.lists(st.integers(1, 100), min_size=1, max_size=20),
)
def test_framer_chunking_invariance_up_to_an_error_rfc4271_s6_1(
    msgs: list[Message], garbage: bytes, cuts: list[int]
) -> None:
    """A stream that goes bad yields the same messages and the same error however it is split."""
    stream = b"".join(encode_message(m, FOUR) for m in msgs) + garbage
    assert _run_framer(stream, cuts) == _run_framer(stream, [len(stream)])
