"""Requests, responses, key-values and events of the KV state machine (etcd v3 `rpc.proto`, `kv.proto`).

Field names follow etcd's protos (`range_end`, `prev_kv`, `create_revision`, ...). Requests are
frozen: they travel inside Raft entries (see `codec`) and are applied on every member, so nothing
may change them after they were proposed. Every response carries `revision`, the store revision
that etcd puts in `ResponseHeader.revision`; the server adds cluster, member and term.

`KeyValue` and `Event` are created on every write, and profiling showed the generated `__init__`
of a frozen dataclass to cost four times that of a plain slotted one (1.6 µs against 0.4 µs), so
those two are slotted but not frozen. They are still values: the store never mutates one after
creating it, and the same object is shared by the key's history, the watch log and responses.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


@dataclass(slots=True)
class KeyValue:
    """mvccpb.KeyValue. A tombstone (the `kv` of a DELETE event) has version 0 and
    create_revision 0; only `key` and `mod_revision` (the deletion revision) are set."""

    key: bytes
    create_revision: int
    mod_revision: int
    version: int
    value: bytes
    lease: int

    @property
    def is_tombstone(self) -> bool:
        return self.version == 0


class EventType(IntEnum):
    PUT = 0
    DELETE = 1


@dataclass(slots=True)
class Event:
    """mvccpb.Event: what a watcher sees for one key changed at one revision (kept immutable)."""

    type: EventType
    kv: KeyValue
    prev_kv: KeyValue | None

    @property
    def is_create(self) -> bool:
        """clientv3 `Event.IsCreate()`: a PUT whose version is 1 (Calico relies on it)."""
        return self.type is EventType.PUT and self.kv.version == 1


# --- KV requests ---------------------------------------------------------------------------


class SortOrder(IntEnum):
    NONE = 0
    ASCEND = 1
    DESCEND = 2


class SortTarget(IntEnum):
    KEY = 0
    VERSION = 1
    CREATE = 2
    MOD = 3
    VALUE = 4


@dataclass(frozen=True, slots=True)
class RangeRequest:
    """Range over [key, range_end). Empty range_end: the single key. range_end b"\\0": every key
    >= key (so key=b"\\0", range_end=b"\\0" is the whole keyspace). revision 0: the current one.
    Sorting and the min/max revision filters apply before `limit`; `count` ignores both."""

    key: bytes
    range_end: bytes = b""
    limit: int = 0
    revision: int = 0
    keys_only: bool = False
    count_only: bool = False
    sort_order: SortOrder = SortOrder.NONE
    sort_target: SortTarget = SortTarget.KEY
    min_mod_revision: int = 0
    max_mod_revision: int = 0
    min_create_revision: int = 0
    max_create_revision: int = 0


@dataclass(frozen=True, slots=True)
class PutRequest:
    key: bytes
    value: bytes = b""
    lease: int = 0
    prev_kv: bool = False
    ignore_value: bool = False
    ignore_lease: bool = False


@dataclass(frozen=True, slots=True)
class DeleteRangeRequest:
    key: bytes
    range_end: bytes = b""
    prev_kv: bool = False


class CompareTarget(IntEnum):
    VERSION = 0
    CREATE = 1
    MOD = 2
    VALUE = 3
    LEASE = 4


class CompareResult(IntEnum):
    EQUAL = 0
    GREATER = 1
    LESS = 2
    NOT_EQUAL = 3


@dataclass(frozen=True, slots=True)
class Compare:
    """etcdserverpb.Compare. `operand` is the target_union: bytes for VALUE, an int otherwise.
    With range_end set, every key in the range must satisfy the comparison (etcd 3.3)."""

    key: bytes
    target: CompareTarget
    result: CompareResult
    operand: int | bytes
    range_end: bytes = b""


@dataclass(frozen=True, slots=True)
class TxnRequest:
    """If every compare holds, `success` runs, else `failure`; the whole txn is one revision."""

    compare: tuple[Compare, ...] = ()
    success: tuple[RequestOp, ...] = ()
    failure: tuple[RequestOp, ...] = ()


RequestOp = RangeRequest | PutRequest | DeleteRangeRequest | TxnRequest


@dataclass(frozen=True, slots=True)
class CompactRequest:
    revision: int
    physical: bool = False


@dataclass(frozen=True, slots=True)
class DefragmentRequest:
    """etcd Maintenance.Defragment, replicated: every member rebuilds at the same log index, so
    `db_size` (which the quota is checked against) stays the same on every member."""


# --- lease requests --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeaseGrantRequest:
    """`id` 0 lets the state machine choose one (deterministically, from its own state)."""

    ttl: int
    id: int = 0


@dataclass(frozen=True, slots=True)
class LeaseRevokeRequest:
    id: int


@dataclass(frozen=True, slots=True)
class LeaseCheckpoint:
    id: int
    remaining_ttl: int


@dataclass(frozen=True, slots=True)
class LeaseCheckpointRequest:
    """Persists the leader's view of remaining TTLs, so that a new leader does not restart
    every lease at its full TTL (etcd `LeaseCheckpoint`, lessor.go). remaining_ttl 0 clears it."""

    checkpoints: tuple[LeaseCheckpoint, ...]


# --- maintenance -----------------------------------------------------------------------------


class AlarmType(IntEnum):
    NONE = 0
    NOSPACE = 1
    CORRUPT = 2


class AlarmAction(IntEnum):
    GET = 0
    ACTIVATE = 1
    DEACTIVATE = 2


@dataclass(frozen=True, slots=True)
class AlarmRequest:
    """etcd AlarmRequest. `AlarmRequest(AlarmAction.DEACTIVATE, AlarmType.NOSPACE)` is the
    operator's `etcdctl alarm disarm`; alarms are cluster-wide here (quota is deterministic)."""

    action: AlarmAction
    alarm: AlarmType = AlarmType.NONE


Request = (
    RangeRequest
    | PutRequest
    | DeleteRangeRequest
    | TxnRequest
    | CompactRequest
    | LeaseGrantRequest
    | LeaseRevokeRequest
    | LeaseCheckpointRequest
    | AlarmRequest
    | DefragmentRequest
)


# --- responses -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RangeResponse:
    revision: int
    kvs: tuple[KeyValue, ...]
    more: bool
    count: int


@dataclass(frozen=True, slots=True)
class PutResponse:
    revision: int
    prev_kv: KeyValue | None = None


@dataclass(frozen=True, slots=True)
class DeleteRangeResponse:
    revision: int
    deleted: int
    prev_kvs: tuple[KeyValue, ...] = ()


@dataclass(frozen=True, slots=True)
class TxnResponse:
    revision: int
    succeeded: bool
    responses: tuple[OpResponse, ...]


OpResponse = RangeResponse | PutResponse | DeleteRangeResponse | TxnResponse


@dataclass(frozen=True, slots=True)
class CompactResponse:
    revision: int


@dataclass(frozen=True, slots=True)
class DefragmentResponse:
    revision: int


@dataclass(frozen=True, slots=True)
class LeaseGrantResponse:
    revision: int
    id: int
    ttl: int


@dataclass(frozen=True, slots=True)
class LeaseRevokeResponse:
    revision: int


@dataclass(frozen=True, slots=True)
class LeaseCheckpointResponse:
    revision: int


@dataclass(frozen=True, slots=True)
class AlarmResponse:
    revision: int
    alarms: tuple[AlarmType, ...]


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """A committed request that failed; the state is unchanged by it (see `errors.ERRORS`)."""

    revision: int
    kind: str
    code: str
    message: str


Response = (
    RangeResponse
    | PutResponse
    | DeleteRangeResponse
    | TxnResponse
    | CompactResponse
    | LeaseGrantResponse
    | LeaseRevokeResponse
    | LeaseCheckpointResponse
    | AlarmResponse
    | DefragmentResponse
    | ErrorResponse
)


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """A lease as the state machine holds it. remaining_ttl is the last checkpointed value
    (0: none, the full ttl applies); the leader's LeaseTracker knows the live deadline."""

    id: int
    ttl: int
    remaining_ttl: int
    keys: tuple[bytes, ...]
