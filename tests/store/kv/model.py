"""A deliberately naive model of etcd's KV semantics: a full copy of the keyspace per revision.

Used as the oracle for the state machine. Static request checks (empty keys, op limits,
duplicate keys) are delegated to `check_request`, which has its own table tests; everything
that depends on state is re-derived here from the etcd documentation, without the store's
indexes, logs or compaction rules.
"""

from __future__ import annotations

from store.kv.errors import ErrorKind, KVError
from store.kv.messages import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    Event,
    EventType,
    KeyValue,
    PutRequest,
    RangeRequest,
    RangeResponse,
    RequestOp,
    SortOrder,
    SortTarget,
    TxnRequest,
)
from store.kv.mvcc import in_range
from store.kv.validate import check_request

State = dict[bytes, KeyValue]


class Model:
    def __init__(self) -> None:
        self.rev = 1
        self.compacted = -1
        self.states: dict[int, State] = {1: {}}
        self.events: dict[int, list[Event]] = {}
        self.leases: dict[int, int] = {}  # id -> ttl
        # Per key, the records a compacted etcd still holds (its keyIndex after compact).
        self.kept: dict[bytes, list[KeyValue]] = {}

    @property
    def state(self) -> State:
        return self.states[self.rev]

    def range(self, req: RangeRequest, state: State | None = None) -> RangeResponse:
        rev = req.revision or self.rev
        if rev > self.rev:
            raise KVError(ErrorKind.FUTURE_REV)
        if req.revision and rev < self.compacted:
            raise KVError(ErrorKind.COMPACTED)
        if state is None or req.revision:
            state = self.states[rev]
        found = [state[k] for k in sorted(state) if in_range(k, req.key, req.range_end)]
        count = len(found)
        found = [
            kv
            for kv in found
            if kv.mod_revision >= req.min_mod_revision
            and (not req.max_mod_revision or kv.mod_revision <= req.max_mod_revision)
            and kv.create_revision >= req.min_create_revision
            and (not req.max_create_revision or kv.create_revision <= req.max_create_revision)
        ]
        if req.sort_order is not SortOrder.NONE or req.sort_target is not SortTarget.KEY:
            field = {
                SortTarget.KEY: lambda kv: kv.key,
                SortTarget.VERSION: lambda kv: kv.version,
                SortTarget.CREATE: lambda kv: kv.create_revision,
                SortTarget.MOD: lambda kv: kv.mod_revision,
                SortTarget.VALUE: lambda kv: kv.value,
            }[req.sort_target]
            found.sort(key=field, reverse=req.sort_order is SortOrder.DESCEND)
        if req.count_only:
            return RangeResponse(self.rev, (), False, count)
        more = bool(req.limit) and len(found) > req.limit
        if req.limit:
            found = found[: req.limit]
        if req.keys_only:
            found = [
                KeyValue(kv.key, kv.create_revision, kv.mod_revision, kv.version, b"", kv.lease)
                for kv in found
            ]
        return RangeResponse(self.rev, tuple(found), more, count)

    # --- writes: build the next state, commit it if anything changed ----------------------

    def _commit(self, state: State, events: list[Event]) -> int:
        if events:
            self.rev += 1
            self.states[self.rev] = state
            self.events[self.rev] = events
            for ev in events:
                self.kept.setdefault(ev.kv.key, []).append(ev.kv)
        return self.rev

    def size_in_use(self) -> int:
        """etcd's quota cost (256 bytes plus key and value) of every kept record."""
        return sum(len(kv.key) + len(kv.value) + 256 for r in self.kept.values() for kv in r)

    @staticmethod
    def _put(state: State, key: bytes, value: bytes, lease: int, rev: int) -> Event:
        prev = state.get(key)
        if prev is None:
            kv = KeyValue(key, rev, rev, 1, value, lease)
        else:
            kv = KeyValue(key, prev.create_revision, rev, prev.version + 1, value, lease)
        state[key] = kv
        return Event(EventType.PUT, kv, prev)

    @staticmethod
    def _delete(state: State, key: bytes, end: bytes, rev: int) -> list[Event]:
        out = []
        for k in sorted(state):
            if in_range(k, key, end):
                out.append(Event(EventType.DELETE, KeyValue(k, 0, rev, 0, b"", 0), state.pop(k)))
        return out

    def put(self, req: PutRequest) -> KeyValue | None:
        check_request(req)
        value, lease = self._resolve(req, self.state, lease_first=True)
        state = dict(self.state)
        ev = self._put(state, req.key, value, lease, self.rev + 1)
        self._commit(state, [ev])
        return ev.prev_kv

    def _resolve(
        self, req: PutRequest, state: State, lease_first: bool = False
    ) -> tuple[bytes, int]:
        value, lease = req.value, req.lease
        if lease_first and lease and lease not in self.leases:
            raise KVError(ErrorKind.LEASE_NOT_FOUND)  # etcd's plain Put: lease, then key
        if req.ignore_value or req.ignore_lease:
            prev = state.get(req.key)
            if prev is None:
                raise KVError(ErrorKind.KEY_NOT_FOUND)
            value = prev.value if req.ignore_value else value
            lease = prev.lease if req.ignore_lease else lease
        if lease and lease not in self.leases:
            raise KVError(ErrorKind.LEASE_NOT_FOUND)
        return value, lease

    def delete(self, req: DeleteRangeRequest) -> list[KeyValue]:
        check_request(req)
        state = dict(self.state)
        events = self._delete(state, req.key, req.range_end, self.rev + 1)
        self._commit(state, events)
        return [ev.prev_kv for ev in events if ev.prev_kv is not None]

    def compare(self, c: Compare, state: State) -> bool:
        if c.range_end:
            kvs = [state[k] for k in sorted(state) if in_range(k, c.key, c.range_end)]
        else:
            kvs = [state[c.key]] if c.key in state else []
        if not kvs:
            if c.target is CompareTarget.VALUE:
                return False
            kvs = [KeyValue(c.key, 0, 0, 0, b"", 0)]
        for kv in kvs:
            fields: dict[CompareTarget, int | bytes] = {
                CompareTarget.VERSION: kv.version,
                CompareTarget.CREATE: kv.create_revision,
                CompareTarget.MOD: kv.mod_revision,
                CompareTarget.VALUE: kv.value,
                CompareTarget.LEASE: kv.lease,
            }
            have = fields[c.target]
            want = c.operand
            ok = {
                CompareResult.EQUAL: have == want,
                CompareResult.NOT_EQUAL: have != want,
                CompareResult.GREATER: have > want,  # type: ignore[operator]
                CompareResult.LESS: have < want,  # type: ignore[operator]
            }[c.result]
            if not ok:
                return False
        return True

    def txn(self, req: TxnRequest) -> tuple[bool, list[object]]:
        """(succeeded, a flat trace of what each executed op returned)."""
        check_request(req)
        before = self.state
        # Branch decisions all use the state before the txn (etcd compareToPath).
        decisions: list[bool] = []

        def decide(t: TxnRequest) -> None:
            ok = all(self.compare(c, before) for c in t.compare)
            decisions.append(ok)
            for op in t.success if ok else t.failure:
                if isinstance(op, TxnRequest):
                    decide(op)

        decide(req)
        # Up-front checks on the chosen path, against the state before the txn.
        it = iter(decisions)

        def check(t: TxnRequest) -> None:
            for op in t.success if next(it) else t.failure:
                if isinstance(op, RangeRequest) and op.revision:
                    self.range(RangeRequest(op.key, revision=op.revision))
                elif isinstance(op, PutRequest):
                    self._resolve(op, before)
                elif isinstance(op, TxnRequest):
                    check(op)

        check(req)
        state = dict(before)
        events: list[Event] = []
        trace: list[object] = []
        rev = self.rev + 1
        it = iter(decisions)

        def run(ops: tuple[RequestOp, ...]) -> None:
            for op in ops:
                if isinstance(op, RangeRequest):
                    trace.append(self.range(op, state).kvs)
                elif isinstance(op, PutRequest):
                    value, lease = self._resolve(op, state)
                    ev = self._put(state, op.key, value, lease, rev)
                    events.append(ev)
                    trace.append(ev.prev_kv if op.prev_kv else None)
                elif isinstance(op, DeleteRangeRequest):
                    evs = self._delete(state, op.key, op.range_end, rev)
                    events.extend(evs)
                    trace.append(len(evs))
                else:
                    ok = next(it)
                    trace.append(ok)
                    run(op.success if ok else op.failure)

        ok = next(it)
        run(req.success if ok else req.failure)
        self._commit(state, events)
        return ok, trace

    def compact(self, rev: int) -> None:
        if rev <= self.compacted:
            raise KVError(ErrorKind.COMPACTED)
        if rev > self.rev:
            raise KVError(ErrorKind.FUTURE_REV)
        self.compacted = rev
        # etcd keyIndex.compact: per key, the newest record at or below rev and all above it;
        # a key whose newest record at or below rev is a tombstone from before rev goes.
        # A tombstone at exactly rev stays (etcd #19179: its DELETE event is still watched).
        for key, records in list(self.kept.items()):
            below = [kv for kv in records if kv.mod_revision <= rev][-1:]
            if below and below[0].version == 0 and below[0].mod_revision < rev:
                below = []
            records = below + [kv for kv in records if kv.mod_revision > rev]
            if records:
                self.kept[key] = records
            else:
                del self.kept[key]

    def revoke(self, lease_id: int) -> None:
        if lease_id not in self.leases:
            raise KVError(ErrorKind.LEASE_NOT_FOUND)
        del self.leases[lease_id]
        state = dict(self.state)
        events = []
        for k in sorted(state):
            if state[k].lease == lease_id:
                events.extend(self._delete(state, k, b"", self.rev + 1))
        self._commit(state, events)
