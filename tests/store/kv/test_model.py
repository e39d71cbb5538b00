"""The KV state machine against a naive dict model (STYLE.md: differential oracle).

Every step applies one request to both and compares responses; after every step the whole
keyspace, the revision and the event stream of an all-keys watch (with prev_kv) must agree.
Snapshot round trips and duplicate deliveries of an applied index are steps too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from store.kv.errors import KVError
from store.kv.machine import KVConfig, KVStateMachine
from store.kv.messages import (
    CompactRequest,
    DeleteRangeRequest,
    DeleteRangeResponse,
    ErrorResponse,
    Event,
    LeaseGrantRequest,
    LeaseGrantResponse,
    LeaseRevokeRequest,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    Request,
    Response,
    TxnRequest,
    TxnResponse,
)
from store.kv.validate import LEASE_OVERHEAD
from store.kv.watch import WatchCreateRequest, WatchHub
from tests.store.kv import strategies as s
from tests.store.kv.model import Model

_T = TypeVar("_T")


def _trace(resp: TxnResponse) -> list[object]:
    out: list[object] = []
    for r in resp.responses:
        if isinstance(r, RangeResponse):
            out.append(r.kvs)
        elif isinstance(r, PutResponse):
            out.append(r.prev_kv)
        elif isinstance(r, DeleteRangeResponse):
            out.append(r.deleted)
        else:
            out.append(r.succeeded)
            out.extend(_trace(r))
    return out


class KVAgainstModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.machine = KVStateMachine(KVConfig(min_lease_ttl=1))
        self.hub = WatchHub(self.machine)
        self.watch_id = self.hub.create(WatchCreateRequest(b"\0", b"\0", prev_kv=True)).watch_id
        self.seen: list[Event] = []
        self.model = Model()
        self.index = 0

    def _apply(self, req: Request) -> Response:
        self.index += 1
        resp = self.machine.apply(self.index, req)
        assert resp is not None
        return resp

    def _both(self, model_op: Callable[[], _T], req: Request) -> tuple[_T | None, Response]:
        """Run the model, then the machine; if the model fails, the machine must fail alike."""
        try:
            expected: _T | None = model_op()
            err = None
        except KVError as e:
            expected, err = None, e
        resp = self._apply(req)
        if err is not None:
            assert isinstance(resp, ErrorResponse), (req, resp, err)
            assert resp.kind == err.kind.value, (resp, err)
            assert resp.revision == self.model.rev
        else:
            assert not isinstance(resp, ErrorResponse), (req, resp)
        return expected, resp

    @rule(key=s.keys, value=s.values, prev=st.booleans(), lease=st.sampled_from([0, 0, 1, 999]))
    def put(self, key: bytes, value: bytes, prev: bool, lease: int) -> None:
        lease_id = min(self.model.leases, default=999) if lease == 1 else lease
        req = PutRequest(key, value, lease_id, prev)
        expected, resp = self._both(lambda: self.model.put(req), req)
        if isinstance(resp, PutResponse):
            assert resp.revision == self.model.rev
            assert resp.prev_kv == (expected if prev else None)

    @rule(key=s.keys, ignore_value=st.booleans(), ignore_lease=st.booleans(), value=s.values)
    def put_ignoring(
        self, key: bytes, ignore_value: bool, ignore_lease: bool, value: bytes
    ) -> None:
        req = PutRequest(key, value, 0, False, ignore_value, ignore_lease)
        self._both(lambda: self.model.put(req), req)

    @rule(req=s.deletes)
    def delete(self, req: DeleteRangeRequest) -> None:
        expected, resp = self._both(lambda: self.model.delete(req), req)
        if isinstance(resp, DeleteRangeResponse):
            assert expected is not None
            assert resp.deleted == len(expected)
            assert resp.prev_kvs == (tuple(expected) if req.prev_kv else ())
            assert resp.revision == self.model.rev

    @rule(req=s.txns(1))
    def txn(self, req: TxnRequest) -> None:
        expected, resp = self._both(lambda: self.model.txn(req), req)
        if isinstance(resp, TxnResponse):
            assert expected is not None
            ok, trace = expected
            assert resp.succeeded == ok
            assert _trace(resp) == trace
            assert resp.revision == self.model.rev

    # Biased to the head: a key changed at the compact revision is where etcd's rule
    # (keep only the newest record at or below it) differs from keeping one more.
    @rule(back=st.sampled_from([0, 0, 0, -1, 1, 2, 3, 6]))
    def compact(self, back: int) -> None:
        req = CompactRequest(max(0, self.model.rev - back))
        self._both(lambda: self.model.compact(req.revision), req)

    @rule(req=s.ranges, back=st.integers(-1, 8))
    def range_at(self, req: RangeRequest, back: int) -> None:
        rev = max(0, self.model.rev - back) if back < 8 else 0
        req = replace(req, revision=rev)
        try:
            want = self.model.range(req)
        except KVError as err:
            try:
                self.machine.range(req)
            except KVError as got:
                assert got.kind is err.kind
            else:
                raise AssertionError(f"{req} should fail with {err.kind}") from None
            return
        assert self.machine.range(req) == want
        assert self._apply(req) == want  # a linearizable read through the log

    @rule(ttl=st.integers(1, 100))
    def grant(self, ttl: int) -> None:
        resp = self._apply(LeaseGrantRequest(ttl))
        assert isinstance(resp, LeaseGrantResponse)
        assert resp.id not in self.model.leases and resp.id > 0
        self.model.leases[resp.id] = ttl

    @rule(which=st.integers(0, 3))
    def revoke(self, which: int) -> None:
        ids = sorted(self.model.leases)
        lease_id = ids[which] if which < len(ids) else 4242
        self._both(lambda: self.model.revoke(lease_id), LeaseRevokeRequest(lease_id))

    @rule()
    def snapshot_round_trip(self) -> None:
        data = self.machine.to_snapshot()
        restored = KVStateMachine.from_snapshot(data, self.machine.config)
        assert restored.to_snapshot() == data
        self.machine = restored
        self.hub.attach(restored)

    @rule(key=s.keys)
    def replayed_index_is_a_no_op(self, key: bytes) -> None:
        before = self.machine.to_snapshot()
        assert self.machine.apply(self.index, PutRequest(key, b"replayed")) is None
        assert self.machine.to_snapshot() == before

    @invariant()
    def agrees_with_model(self) -> None:
        assert self.machine.revision == self.model.rev
        everything = RangeRequest(b"\0", b"\0")
        assert self.machine.range(everything) == self.model.range(everything)
        for lease_id in self.model.leases:
            keys = tuple(k for k, kv in sorted(self.model.state.items()) if kv.lease == lease_id)
            assert self.machine.lease(lease_id).keys == keys

    @invariant()
    def compaction_keeps_what_etcd_keeps(self) -> None:
        assert self.machine.db_size_in_use == self.model.size_in_use() + LEASE_OVERHEAD * len(
            self.model.leases
        )

    @rule()
    def watch_from_the_compact_revision(self) -> None:
        """Replaying from the compact revision gives its events (a DELETE too) without the
        compacted prev_kv, as etcd's watch does, and every later event with its prev_kv."""
        start = self.machine.compact_revision
        if start < 2:
            return
        wid = self.hub.create(WatchCreateRequest(b"\0", b"\0", start, prev_kv=True)).watch_id
        got: list[Event] = []
        for _ in range(10_000):
            resp = self.hub.take(wid)
            if resp is not None:
                assert not resp.canceled
                got.extend(resp.events)
            elif not self.hub.pending(wid):
                break
        self.hub.cancel(wid)
        want = [
            Event(ev.type, ev.kv, None if rev == start else ev.prev_kv)
            for rev in sorted(self.model.events)
            if rev >= start
            for ev in self.model.events[rev]
        ]
        assert got == want

    @invariant()
    def watch_sees_every_event_once_in_order(self) -> None:
        for _ in range(10_000):
            resp = self.hub.take(self.watch_id, max_events=3)
            if resp is not None:
                self.seen.extend(resp.events)
            elif not self.hub.pending(self.watch_id):
                break
        want = [ev for rev in sorted(self.model.events) for ev in self.model.events[rev]]
        assert self.seen == want


KVAgainstModel.TestCase.settings = settings(stateful_step_count=30)
test_kv_against_model = KVAgainstModel.TestCase
