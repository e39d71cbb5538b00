"""store/wire.py: the client-facing response codec (round trips, total decoding)."""

from __future__ import annotations

import contextlib

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from store.kv import (
    AlarmResponse,
    AlarmType,
    CompactResponse,
    DefragmentResponse,
    DeleteRangeResponse,
    ErrorResponse,
    Event,
    EventType,
    KeyValue,
    LeaseGrantResponse,
    LeaseRevokeResponse,
    PutResponse,
    RangeResponse,
    Response,
    TxnResponse,
    WatchResponse,
)
from store.wire import (
    WireFormatError,
    decode_response,
    decode_watch_response,
    encode_response,
    encode_watch_response,
)

ints = st.integers(min_value=0, max_value=2**62)
kvs = st.builds(KeyValue, st.binary(max_size=8), ints, ints, ints, st.binary(max_size=8), ints)
events = st.builds(Event, st.sampled_from(EventType), kvs, st.none() | kvs)
leaf: st.SearchStrategy[Response] = st.one_of(
    st.builds(RangeResponse, ints, st.lists(kvs, max_size=3).map(tuple), st.booleans(), ints),
    st.builds(PutResponse, ints, st.none() | kvs),
    st.builds(DeleteRangeResponse, ints, ints, st.lists(kvs, max_size=3).map(tuple)),
    st.builds(CompactResponse, ints),
    st.builds(DefragmentResponse, ints),
    st.builds(LeaseGrantResponse, ints, ints, ints),
    st.builds(LeaseRevokeResponse, ints),
    st.builds(AlarmResponse, ints, st.lists(st.sampled_from(AlarmType), max_size=2).map(tuple)),
    st.builds(ErrorResponse, ints, st.text(max_size=5), st.text(max_size=5), st.text(max_size=5)),
)
responses = st.recursive(
    leaf,
    lambda inner: st.builds(
        TxnResponse, ints, st.booleans(), st.lists(inner, max_size=3).map(tuple)
    ),
    max_leaves=6,
)


def _through_msgpack(w: object) -> object:
    return msgpack.unpackb(msgpack.packb(w, use_bin_type=True), raw=False)


@given(responses)
def test_response_round_trip(resp: Response) -> None:
    assert decode_response(_through_msgpack(encode_response(resp))) == resp


@given(st.builds(
    WatchResponse, ints, ints, st.lists(events, max_size=3).map(tuple), st.booleans(),
    st.booleans(), ints, st.text(max_size=8),
))  # fmt: skip
def test_watch_response_round_trip(resp: WatchResponse) -> None:
    shared: dict[int, list[object]] = {}
    for cache in (None, shared, shared):
        assert decode_watch_response(_through_msgpack(encode_watch_response(resp, cache))) == resp


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.binary(max_size=4) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=6),
    max_leaves=12,
))  # fmt: skip
def test_decoding_garbage_raises_only_wire_format_error(value: object) -> None:
    for decode in (decode_response, decode_watch_response):
        with contextlib.suppress(WireFormatError):
            decode(value)
