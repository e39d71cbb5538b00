"""The KV state machine: committed Raft entries in, etcd v3 responses out (etcd `apply`, `mvcc`).

`apply(index, request)` is deterministic: no clock, no randomness, no iteration over hash
order (key sets are sorted before they turn into revisions), so every member that applies the
same entries holds the same state, byte for byte in `to_snapshot()`. Time-based decisions are
made by the leader outside (see `lease.LeaseTracker`) and arrive as requests.

Invariants:
- an index <= `applied_index` is ignored, so replaying the log after a restart is idempotent;
- a request that fails changes nothing but `applied_index` (and, for the quota, the NOSPACE
  alarm, which is itself replicated state): every check runs before the first write;
- one write request (Put, DeleteRange that deletes, Txn that writes, a revoke that deletes keys)
  is exactly one new revision; requests that change no key leave the revision alone;
- a key is attached to at most one lease; `_leases[id].keys` is exactly the set of live keys
  whose `lease` is id.

etcd references: txn path evaluation before any write and up-front checks on the chosen path
(`server/etcdserver/txn/txn.go` compareToPath, checkRequests); compare semantics (`applyCompare`:
a VALUE compare on a missing key is false, other targets compare against zero); quota and the
capped applier (`server/storage/quota.go`, `apply/apply.go`: with NOSPACE raised, puts, txns that
put and lease grants fail, deletes, compaction and revokes still work).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Protocol

import msgpack

from store.kv.errors import ErrorKind, KVError
from store.kv.messages import (
    AlarmAction,
    AlarmRequest,
    AlarmResponse,
    AlarmType,
    CompactRequest,
    CompactResponse,
    Compare,
    CompareResult,
    CompareTarget,
    DefragmentRequest,
    DefragmentResponse,
    DeleteRangeRequest,
    DeleteRangeResponse,
    ErrorResponse,
    Event,
    KeyValue,
    LeaseCheckpointRequest,
    LeaseCheckpointResponse,
    LeaseGrantRequest,
    LeaseGrantResponse,
    LeaseInfo,
    LeaseRevokeRequest,
    LeaseRevokeResponse,
    OpResponse,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    Request,
    Response,
    SortOrder,
    SortTarget,
    TxnRequest,
    TxnResponse,
)
from store.kv.mvcc import RECORD_OVERHEAD, MVCCStore
from store.kv.validate import (
    DEFAULT_MAX_TXN_OPS,
    LEASE_OVERHEAD,
    check_request,
    txn_cost,
)

SNAPSHOT_FORMAT = 1
MAX_LEASE_TTL = 9_000_000_000  # etcd lease.MaxLeaseTTL, seconds


@dataclass(frozen=True, slots=True)
class KVConfig:
    """Must be the same on every member: it decides outcomes of `apply`."""

    quota_bytes: int = 2 * 1024**3  # etcd DefaultQuotaBytes
    max_txn_ops: int = DEFAULT_MAX_TXN_OPS
    # etcd raises shorter TTLs to ceil(1.5 election timeouts) = 2 s at default timing (lessor.go)
    min_lease_ttl: int = 2


@dataclass(frozen=True, slots=True)
class KVStatus:
    revision: int
    compact_revision: int
    applied_index: int
    db_size: int
    quota_bytes: int
    alarms: tuple[AlarmType, ...]
    keys: int
    leases: int
    db_size_in_use: int = 0


class WatchSink(Protocol):
    """What the state machine tells the watch hub (implemented by `watch.WatchHub`)."""

    def on_commit(self, rev: int, events: tuple[Event, ...]) -> None: ...

    def on_compact(self, rev: int) -> None: ...


class LeaseObserver(Protocol):
    """What the state machine tells the leader's lease clock (implemented by LeaseTracker)."""

    def lease_granted(self, lease_id: int, ttl: int) -> None: ...

    def lease_revoked(self, lease_id: int) -> None: ...


class SnapshotError(ValueError):
    """The bytes are not a snapshot this state machine wrote."""


class _Lease:
    __slots__ = ("id", "keys", "remaining_ttl", "ttl")

    def __init__(self, lease_id: int, ttl: int, remaining_ttl: int = 0) -> None:
        self.id = lease_id
        self.ttl = ttl
        self.remaining_ttl = remaining_ttl
        self.keys: set[bytes] = set()


def _cmp(a: int | bytes, b: int | bytes) -> int:
    return (a > b) - (a < b)  # type: ignore[operator]


# CompareResult -> which values of sign(kv_field - operand) satisfy it
_RESULT_OK: dict[CompareResult, frozenset[int]] = {
    CompareResult.EQUAL: frozenset({0}),
    CompareResult.NOT_EQUAL: frozenset({-1, 1}),
    CompareResult.GREATER: frozenset({1}),
    CompareResult.LESS: frozenset({-1}),
}

_FIELD: dict[CompareTarget, str] = {
    CompareTarget.VERSION: "version",
    CompareTarget.CREATE: "create_revision",
    CompareTarget.MOD: "mod_revision",
    CompareTarget.VALUE: "value",
    CompareTarget.LEASE: "lease",
}

_SORT_FIELD: dict[SortTarget, str] = {
    SortTarget.KEY: "key",
    SortTarget.VERSION: "version",
    SortTarget.CREATE: "create_revision",
    SortTarget.MOD: "mod_revision",
    SortTarget.VALUE: "value",
}

_ABSENT = KeyValue(b"", 0, 0, 0, b"", 0)


def _strip_value(kv: KeyValue) -> KeyValue:
    return KeyValue(kv.key, kv.create_revision, kv.mod_revision, kv.version, b"", kv.lease)


class KVStateMachine:
    __slots__ = (
        "_alarms",
        "_allocated",
        "_leases",
        "_next_lease_id",
        "applied_index",
        "config",
        "lease_observer",
        "store",
        "watch_hub",
    )

    def __init__(self, config: KVConfig | None = None) -> None:
        self.config = config or KVConfig()
        self.store = MVCCStore()
        self.applied_index = 0
        self._leases: dict[int, _Lease] = {}
        self._alarms: set[AlarmType] = set()
        # The high-water mark of db_size_in_use since the last defragmentation: space that
        # compaction or a revoke freed stays allocated, as bbolt's file keeps its pages.
        self._allocated = 0
        self._next_lease_id = 1
        self.watch_hub: WatchSink | None = None
        self.lease_observer: LeaseObserver | None = None

    # --- public reads ----------------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self.store.revision

    @property
    def compact_revision(self) -> int:
        return self.store.compact_revision

    @property
    def db_size_in_use(self) -> int:
        """The logical size of what is kept (records and leases, with etcd's overheads)."""
        return self.store.size + LEASE_OVERHEAD * len(self._leases)

    @property
    def db_size(self) -> int:
        """What the quota is measured against, as etcd measures its backend file: in use plus
        what compaction and revokes freed since the last defragmentation (etcd dbSize)."""
        in_use = self.store.size + LEASE_OVERHEAD * len(self._leases)
        return in_use if in_use > self._allocated else self._allocated

    def range(self, req: RangeRequest) -> RangeResponse:
        """A read at the current or an older revision; raises KVError."""
        if not req.key:
            raise KVError(ErrorKind.EMPTY_KEY)
        return self._range(req, False)

    def hash_kv(self, revision: int = 0) -> tuple[int, int, int]:
        """(digest, revision hashed, compact_revision) for comparing members, as etcd's
        HashKV: equal on members that applied the same entries. Raises COMPACTED/FUTURE_REV."""
        rev = revision or self.store.revision
        self._check_range_revision(rev, self.store.revision)
        return self.store.hash_kv(rev), rev, self.store.compact_revision

    def status(self) -> KVStatus:
        """What etcd's Maintenance.Status reports about the store."""
        return KVStatus(
            self.store.revision,
            self.store.compact_revision,
            self.applied_index,
            self.db_size,
            self.config.quota_bytes,
            self.alarms(),
            len(self.store),
            len(self._leases),
            self.db_size_in_use,
        )

    def alarms(self) -> tuple[AlarmType, ...]:
        return tuple(sorted(self._alarms))

    def lease(self, lease_id: int) -> LeaseInfo:
        """For LeaseTimeToLive: the granted TTL and attached keys; raises LEASE_NOT_FOUND."""
        lease = self._leases.get(lease_id)
        if lease is None:
            raise KVError(ErrorKind.LEASE_NOT_FOUND)
        return LeaseInfo(lease.id, lease.ttl, lease.remaining_ttl, tuple(sorted(lease.keys)))

    def leases(self) -> tuple[LeaseInfo, ...]:
        """Every lease, by id (without keys: LeaseLeases lists ids only)."""
        return tuple(
            LeaseInfo(lease.id, lease.ttl, lease.remaining_ttl, ())
            for _, lease in sorted(self._leases.items())
        )

    # --- apply -----------------------------------------------------------------------------

    def apply(self, index: int, req: Request) -> Response | None:
        """Apply the committed entry `index`; None if it was applied before."""
        if index <= self.applied_index:
            return None
        self.applied_index = index
        try:
            match req:
                case PutRequest():
                    return self._put(req)
                case RangeRequest():
                    if not req.key:
                        raise KVError(ErrorKind.EMPTY_KEY)
                    return self._range(req, False)
                case TxnRequest():
                    return self._txn(req)
                case DeleteRangeRequest():
                    return self._delete_range(req)
                case LeaseGrantRequest():
                    return self._lease_grant(req)
                case LeaseRevokeRequest():
                    return self._lease_revoke(req)
                case LeaseCheckpointRequest():
                    return self._lease_checkpoint(req)
                case CompactRequest():
                    return self._compact(req)
                case AlarmRequest():
                    return self._alarm(req)
                case DefragmentRequest():
                    return self._defragment()
        except KVError as err:
            return ErrorResponse(self.store.revision, err.kind.value, err.code.value, err.message)
        raise TypeError(f"not a KV request: {type(req).__name__}")

    def advance(self, index: int) -> None:
        """Record that Raft entry `index` carried no KV request (an empty entry of a new term,
        a membership change), so `applied_index` and snapshots keep up with Raft's."""
        self.applied_index = max(self.applied_index, index)

    def _commit(self, rev: int, events: tuple[Event, ...]) -> None:
        self.store.commit(rev, events)
        if self.watch_hub is not None:
            self.watch_hub.on_commit(rev, events)

    def _check_quota(self, cost: int) -> None:
        """Refuse a request that adds `cost` bytes while NOSPACE is raised or would exceed the
        quota; exceeding it raises the alarm (replicated: every member computes the same)."""
        if AlarmType.NOSPACE in self._alarms:
            raise KVError(ErrorKind.NO_SPACE)
        if self.db_size + cost > self.config.quota_bytes:
            self._alarms.add(AlarmType.NOSPACE)
            raise KVError(ErrorKind.NO_SPACE)

    # --- put / delete ----------------------------------------------------------------------

    def _put_target(self, req: PutRequest, lease_first: bool = False) -> tuple[bytes, int]:
        """(value, lease) a put will write, checked against the current state.

        `lease_first`: a plain Put looks its lease up before the key ignore_* needs (etcd
        applierV3backend.Put, `txn == nil`); a put inside a txn checks the key first (etcd
        checkRequestPut). Only the error named for a put with both faults differs."""
        value, lease = req.value, req.lease
        if lease_first and lease and lease not in self._leases:
            raise KVError(ErrorKind.LEASE_NOT_FOUND)
        if req.ignore_value or req.ignore_lease:
            prev = self.store.get(req.key)
            if prev is None:
                raise KVError(ErrorKind.KEY_NOT_FOUND)
            if req.ignore_value:
                value = prev.value
            if req.ignore_lease:
                lease = prev.lease
        if lease and lease not in self._leases:
            raise KVError(ErrorKind.LEASE_NOT_FOUND)
        return value, lease

    def _write_put(self, key: bytes, value: bytes, lease: int, rev: int) -> Event:
        ev = self.store.put(key, value, lease, rev)
        old = ev.prev_kv.lease if ev.prev_kv is not None else 0
        if old != lease:
            if old:
                self._leases[old].keys.discard(key)
            if lease:
                self._leases[lease].keys.add(key)
        return ev

    def _write_delete(self, key: bytes, rev: int) -> Event:
        ev = self.store.delete(key, rev)
        assert ev.prev_kv is not None
        if ev.prev_kv.lease:
            lease = self._leases.get(ev.prev_kv.lease)
            if lease is not None:
                lease.keys.discard(key)
        return ev

    def _put(self, req: PutRequest) -> PutResponse:
        # The hot path (budget: a few µs): the common case, a plain put under quota, skips the
        # general checks; each skipped check is re-run on its slow path when it could fail.
        key, value, lease = req.key, req.value, req.lease
        special = req.ignore_value or req.ignore_lease
        if not key or special:
            check_request(req)
        store = self.store
        cost = len(key) + len(value) + RECORD_OVERHEAD  # = put_cost(req)
        quota = self.config.quota_bytes
        if (
            self._alarms
            or self._allocated + cost > quota
            or store.size + LEASE_OVERHEAD * len(self._leases) + cost > quota
        ):
            self._check_quota(cost)
        if special or lease:
            value, lease = self._put_target(req, lease_first=True)
        rev = store.revision + 1
        ev = self._write_put(key, value, lease, rev)
        events = (ev,)
        store.commit(rev, events)
        if self.watch_hub is not None:
            self.watch_hub.on_commit(rev, events)
        return PutResponse(rev, ev.prev_kv if req.prev_kv else None)

    def _delete_range(self, req: DeleteRangeRequest) -> DeleteRangeResponse:
        if not req.key:
            raise KVError(ErrorKind.EMPTY_KEY)
        keys = self.store.live_keys(req.key, req.range_end)
        if not keys:
            return DeleteRangeResponse(self.store.revision, 0)
        rev = self.store.revision + 1
        events = tuple([self._write_delete(k, rev) for k in keys])
        self._commit(rev, events)
        prev = tuple([ev.prev_kv for ev in events if ev.prev_kv is not None]) if req.prev_kv else ()
        return DeleteRangeResponse(rev, len(events), prev)

    # --- range -----------------------------------------------------------------------------

    def _check_range_revision(self, rev: int, head: int) -> None:
        if rev > head:
            raise KVError(ErrorKind.FUTURE_REV)
        if rev and rev < self.store.compact_revision:
            raise KVError(ErrorKind.COMPACTED)

    def _range(self, req: RangeRequest, pending: bool) -> RangeResponse:
        """`pending`: inside a txn that already wrote, whose writes a head read must see."""
        store = self.store
        if req.limit < 0 or req.revision < 0:
            # etcd reads a limit <= 0 as "no limit" and a revision <= 0 as "the current one".
            req = replace(req, limit=max(req.limit, 0), revision=max(req.revision, 0))
        self._check_range_revision(req.revision, store.revision)
        rev = req.revision
        at_head = rev == 0 or (rev == store.revision and not pending)
        if (
            req.sort_order
            or req.sort_target
            or req.min_mod_revision
            or req.max_mod_revision
            or req.min_create_revision
            or req.max_create_revision
        ):
            return self._range_sorted(req, rev, at_head)
        kvs, count = store.range(req.key, req.range_end, rev, at_head, req.limit)
        if req.count_only:
            return RangeResponse(store.revision, (), False, count)
        if req.keys_only:
            kvs = [_strip_value(kv) for kv in kvs]
        return RangeResponse(
            store.revision, tuple(kvs), bool(req.limit) and count > req.limit, count
        )

    def _range_sorted(self, req: RangeRequest, rev: int, at_head: bool) -> RangeResponse:
        """etcd applyRange with sort or filters: fetch all, filter (`count` stays the unfiltered
        number), sort, then cut at `limit`."""
        kvs, count = self.store.range(req.key, req.range_end, rev, at_head, 0)
        lo_mod, hi_mod = req.min_mod_revision, req.max_mod_revision
        lo_create, hi_create = req.min_create_revision, req.max_create_revision
        kvs = [
            kv
            for kv in kvs
            if (not lo_mod or kv.mod_revision >= lo_mod)
            and (not hi_mod or kv.mod_revision <= hi_mod)
            and (not lo_create or kv.create_revision >= lo_create)
            and (not hi_create or kv.create_revision <= hi_create)
        ]
        order = req.sort_order
        if req.sort_target is not SortTarget.KEY and order is SortOrder.NONE:
            order = SortOrder.ASCEND  # etcd: a target other than KEY sorts ascending by default
        if order is not SortOrder.NONE:
            field = _SORT_FIELD[req.sort_target]
            # Stable: ties stay in key order, whatever the direction.
            kvs.sort(key=attrgetter(field), reverse=order is SortOrder.DESCEND)
        more = bool(req.limit) and len(kvs) > req.limit
        if req.limit:
            kvs = kvs[: req.limit]
        if req.count_only:
            return RangeResponse(self.store.revision, (), False, count)
        if req.keys_only:
            kvs = [_strip_value(kv) for kv in kvs]
        return RangeResponse(self.store.revision, tuple(kvs), more, count)

    # --- txn -------------------------------------------------------------------------------

    def _compare(self, c: Compare) -> bool:
        if c.range_end:
            kvs, _ = self.store.range(c.key, c.range_end, 0, True, 0)
        else:
            kv = self.store.get(c.key)
            kvs = [kv] if kv is not None else []
        if not kvs:
            if c.target is CompareTarget.VALUE:
                return False  # etcd: a value compare on a missing key always fails
            kvs = [_ABSENT]
        ok = _RESULT_OK[c.result]
        field = _FIELD[c.target]
        return all(_cmp(getattr(kv, field), c.operand) in ok for kv in kvs)

    def _txn_path(self, txn: TxnRequest, path: list[bool]) -> None:
        """Decide every (nested) branch against the state before the txn, in DFS order."""
        ok = all(self._compare(c) for c in txn.compare)
        path.append(ok)
        for op in txn.success if ok else txn.failure:
            if isinstance(op, TxnRequest):
                self._txn_path(op, path)

    def _check_path(self, txn: TxnRequest, path: Iterator[bool], puts: bool) -> None:
        """etcd checkRequests: puts must find their lease/key (`puts`), ranges must be
        readable (not `puts`). etcd applyTxn runs the put pass over the whole taken path
        first, then the range pass, so of two faults the put's is the one reported."""
        for op in txn.success if next(path) else txn.failure:
            if isinstance(op, RangeRequest):
                if not puts:
                    self._check_range_revision(max(op.revision, 0), self.store.revision)
            elif isinstance(op, PutRequest):
                if puts:
                    self._put_target(op)
            elif isinstance(op, TxnRequest):
                self._check_path(op, path, puts)

    def _txn(self, req: TxnRequest) -> TxnResponse:
        check_request(req, self.config.max_txn_ops)
        path: list[bool] = []
        self._txn_path(req, path)
        self._check_path(req, iter(path), puts=True)
        self._check_path(req, iter(path), puts=False)
        cost = txn_cost(req)
        if cost:
            self._check_quota(cost)
        rev = self.store.revision + 1
        events: list[Event] = []
        resp = self._exec(req, iter(path), rev, events)
        if not events:
            return TxnResponse(self.store.revision, resp.succeeded, resp.responses)
        self._commit(rev, tuple(events))
        return resp

    def _exec(
        self, txn: TxnRequest, path: Iterator[bool], rev: int, events: list[Event]
    ) -> TxnResponse:
        ok = next(path)
        responses: list[OpResponse] = []
        for op in txn.success if ok else txn.failure:
            if isinstance(op, RangeRequest):
                # etcd storeTxnWrite.Range: at the txn's revision once it has written.
                got = self._range(op, bool(events))
                responses.append(replace(got, revision=rev) if events else got)
            elif isinstance(op, PutRequest):
                value, lease = self._put_target(op)
                ev = self._write_put(op.key, value, lease, rev)
                events.append(ev)
                responses.append(PutResponse(rev, ev.prev_kv if op.prev_kv else None))
            elif isinstance(op, DeleteRangeRequest):
                keys = self.store.live_keys(op.key, op.range_end)
                evs = [self._write_delete(k, rev) for k in keys]
                events.extend(evs)
                prev = tuple(e.prev_kv for e in evs if e.prev_kv is not None) if op.prev_kv else ()
                # etcd storeTxnWrite.DeleteRange: the old revision while nothing changed yet.
                responses.append(DeleteRangeResponse(rev if events else rev - 1, len(evs), prev))
            else:
                responses.append(self._exec(op, path, rev, events))
        return TxnResponse(rev, ok, tuple(responses))

    # --- compaction, leases, alarms --------------------------------------------------------

    def _compact(self, req: CompactRequest) -> CompactResponse:
        if req.revision <= self.store.compact_revision:
            raise KVError(ErrorKind.COMPACTED)
        if req.revision > self.store.revision:
            raise KVError(ErrorKind.FUTURE_REV)
        self._allocated = self.db_size
        self.store.compact(req.revision)
        if self.watch_hub is not None:
            self.watch_hub.on_compact(req.revision)
        return CompactResponse(self.store.revision)

    def _lease_grant(self, req: LeaseGrantRequest) -> LeaseGrantResponse:
        if req.ttl > MAX_LEASE_TTL:
            raise KVError(ErrorKind.LEASE_TTL_TOO_LARGE)
        if req.id and req.id in self._leases:
            raise KVError(ErrorKind.LEASE_EXIST)
        self._check_quota(LEASE_OVERHEAD)
        lease_id = req.id
        if not lease_id:
            lease_id = self._next_lease_id
            while lease_id in self._leases:
                lease_id += 1
            self._next_lease_id = lease_id + 1
        ttl = max(req.ttl, self.config.min_lease_ttl)
        self._leases[lease_id] = _Lease(lease_id, ttl)
        if self.lease_observer is not None:
            self.lease_observer.lease_granted(lease_id, ttl)
        return LeaseGrantResponse(self.store.revision, lease_id, ttl)

    def _lease_revoke(self, req: LeaseRevokeRequest) -> LeaseRevokeResponse:
        if req.id not in self._leases:
            raise KVError(ErrorKind.LEASE_NOT_FOUND)
        self._allocated = self.db_size
        lease = self._leases.pop(req.id)
        if lease.keys:
            # Sorted: set order follows the per-process hash seed, revisions must not.
            rev = self.store.revision + 1
            store = self.store
            events = tuple([store.delete(k, rev) for k in sorted(lease.keys)])
            self._commit(rev, events)
        if self.lease_observer is not None:
            self.lease_observer.lease_revoked(req.id)
        return LeaseRevokeResponse(self.store.revision)

    def _lease_checkpoint(self, req: LeaseCheckpointRequest) -> LeaseCheckpointResponse:
        for cp in req.checkpoints:
            lease = self._leases.get(cp.id)
            if lease is not None:  # revoked since the leader checkpointed it: nothing to keep
                lease.remaining_ttl = max(cp.remaining_ttl, 0)
        return LeaseCheckpointResponse(self.store.revision)

    def _defragment(self) -> DefragmentResponse:
        """Give back what compaction and revokes freed (etcd's defrag rewrites the backend file;
        an in-memory store has nothing to rewrite, only the allocation to forget). The NOSPACE
        alarm stays: only a disarm clears it, as in etcd."""
        self._allocated = 0
        return DefragmentResponse(self.store.revision)

    def _alarm(self, req: AlarmRequest) -> AlarmResponse:
        if req.action is AlarmAction.ACTIVATE and req.alarm is not AlarmType.NONE:
            self._alarms.add(req.alarm)
        elif req.action is AlarmAction.DEACTIVATE:
            self._alarms.discard(req.alarm)
        return AlarmResponse(self.store.revision, self.alarms())

    # --- snapshots -------------------------------------------------------------------------

    def to_snapshot(self) -> bytes:
        """Deterministic bytes: equal states give equal snapshots on every member."""
        leases = [
            [lease.id, lease.ttl, lease.remaining_ttl] for _, lease in sorted(self._leases.items())
        ]
        image = [
            SNAPSHOT_FORMAT,
            self.applied_index,
            self.store.dump(),
            leases,
            [int(a) for a in self.alarms()],
            self._next_lease_id,
            self._allocated,
        ]
        data: bytes = msgpack.packb(image, use_bin_type=True)
        return data

    @classmethod
    def from_snapshot(cls, data: bytes, config: KVConfig | None = None) -> KVStateMachine:
        """A state machine equal to the one that wrote `data`; raises SnapshotError."""
        try:
            image = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
            # Images written before defragmentation existed have no allocation field.
            fmt, applied, store_image, leases, alarms, next_lease_id, *allocated = image
            if fmt != SNAPSHOT_FORMAT:
                raise SnapshotError(f"snapshot format {fmt!r}, this build reads {SNAPSHOT_FORMAT}")
            machine = cls(config)
            machine.store = MVCCStore.load(store_image)
            machine.applied_index = int(applied)
            machine._next_lease_id = int(next_lease_id)
            machine._allocated = int(allocated[0]) if allocated else 0
            machine._alarms = {AlarmType(a) for a in alarms}
            for lease_id, ttl, remaining in leases:
                machine._leases[int(lease_id)] = _Lease(int(lease_id), int(ttl), int(remaining))
            for kv in machine.store.range(b"\0", b"\0", 0, True, 0)[0]:
                if kv.lease:
                    machine._leases[kv.lease].keys.add(kv.key)
        except SnapshotError:
            raise
        except Exception as exc:  # any inconsistency in foreign bytes is one kind of failure
            raise SnapshotError(f"not a KV snapshot: {type(exc).__name__}: {exc}") from None
        return machine
