"""Client-protocol forms: every response and watch response the machine produces survives
msgpack and back unchanged; any other object decodes to MALFORMED, never another exception."""

from __future__ import annotations

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from store.kv.errors import ErrorKind, KVError
from store.kv.messages import (
    AlarmAction,
    AlarmRequest,
    CompactRequest,
    DefragmentRequest,
    LeaseGrantRequest,
    LeaseRevokeRequest,
    Request,
)
from store.kv.watch import WatchCreateRequest, WatchHub
from store.kv.wire import (
    request_from_wire,
    request_to_wire,
    response_from_wire,
    response_to_wire,
    watch_response_from_wire,
    watch_response_to_wire,
)
from tests.store.kv import strategies as s
from tests.store.kv.helpers import Applier

requests = st.lists(
    st.one_of(
        s.puts,
        s.deletes,
        s.ranges,
        s.txns(1),
        st.builds(CompactRequest, st.integers(0, 10)),
        st.builds(LeaseGrantRequest, st.integers(1, 60), st.integers(0, 3)),
        st.builds(LeaseRevokeRequest, st.integers(0, 3)),
        st.just(AlarmRequest(AlarmAction.GET)),
        st.just(DefragmentRequest()),
    ),
    max_size=25,
)


def through_msgpack(obj: object) -> object:
    return msgpack.unpackb(msgpack.packb(obj, use_bin_type=True), raw=False)


@given(requests)
def test_responses_and_watch_responses_round_trip(script: list[Request]) -> None:
    a = Applier()
    hub = WatchHub(a.machine)
    hub.create(WatchCreateRequest(b"\0", b"\0", prev_kv=True))
    for req in script:
        assert request_from_wire(through_msgpack(request_to_wire(req))) == req
        resp = a(req)
        assert response_from_wire(through_msgpack(response_to_wire(resp))) == resp
    for wr in hub.take_ready():
        assert watch_response_from_wire(through_msgpack(watch_response_to_wire(wr))) == wr


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.binary(max_size=3) | st.text(max_size=3),
        lambda inner: st.lists(inner, max_size=7),
        max_leaves=25,
    )
)
def test_arbitrary_objects_decode_or_raise_malformed(obj: object) -> None:
    for decode in (response_from_wire, watch_response_from_wire, request_from_wire):
        try:
            decode(obj)
        except KVError as err:
            assert err.kind is ErrorKind.MALFORMED
