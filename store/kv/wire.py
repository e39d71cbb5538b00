"""Plain msgpack-able forms of requests, responses and watch responses, for the client protocol.

The server answers clients over the shared msgpack-RPC package; this module gives it, and the
client library, one exact mapping so neither side hand-writes field lists. Shapes are compact
lists `[tag, field, ...]` in the order of the dataclass fields (requests reuse `codec`'s
Raft-entry form). Decoding is total: anything malformed raises `KVError(MALFORMED)`.
Invariant: `*_from_wire(*_to_wire(x)) == x` for every value the state machine produces.
"""

from __future__ import annotations

from collections.abc import Callable

from store.kv import codec
from store.kv.codec import request_from_wire, request_to_wire
from store.kv.errors import ErrorKind, KVError
from store.kv.messages import (
    AlarmResponse,
    AlarmType,
    CompactResponse,
    DefragmentResponse,
    DeleteRangeResponse,
    ErrorResponse,
    Event,
    EventType,
    KeyValue,
    LeaseCheckpointResponse,
    LeaseGrantResponse,
    LeaseRevokeResponse,
    OpResponse,
    PutResponse,
    RangeResponse,
    Response,
    TxnResponse,
)
from store.kv.watch import WatchResponse

Wire = list[object]

__all__ = [
    "event_from_wire",
    "event_to_wire",
    "kv_from_wire",
    "kv_to_wire",
    "request_from_wire",
    "request_to_wire",
    "response_from_wire",
    "response_to_wire",
    "watch_response_from_wire",
    "watch_response_to_wire",
]


# --- key-values and events -----------------------------------------------------------------


def kv_to_wire(kv: KeyValue) -> Wire:
    return [kv.key, kv.create_revision, kv.mod_revision, kv.version, kv.value, kv.lease]


def kv_from_wire(obj: object) -> KeyValue:
    key, create, mod, version, value, lease = codec.expect_list(obj, 6)
    return KeyValue(
        codec.expect_bytes(key),
        codec.expect_int(create),
        codec.expect_int(mod),
        codec.expect_int(version),
        codec.expect_bytes(value),
        codec.expect_int(lease),
    )


def _opt_kv(obj: object) -> KeyValue | None:
    return None if obj is None else kv_from_wire(obj)


def event_to_wire(ev: Event) -> Wire:
    return [int(ev.type), kv_to_wire(ev.kv), None if ev.prev_kv is None else kv_to_wire(ev.prev_kv)]


def event_from_wire(obj: object) -> Event:
    kind, kv, prev = codec.expect_list(obj, 3)
    try:
        ev_type = EventType(codec.expect_int(kind))
    except ValueError:
        raise KVError(ErrorKind.MALFORMED, "bad event type") from None
    return Event(ev_type, kv_from_wire(kv), _opt_kv(prev))


# --- responses -----------------------------------------------------------------------------

_RANGE, _PUT, _DELETE, _TXN, _COMPACT, _GRANT, _REVOKE, _CHECKPOINT, _ALARM, _ERROR = range(10)
_DEFRAGMENT = 10


def response_to_wire(resp: Response | OpResponse) -> Wire:
    match resp:
        case RangeResponse():
            return [
                _RANGE,
                resp.revision,
                [kv_to_wire(kv) for kv in resp.kvs],
                resp.more,
                resp.count,
            ]
        case PutResponse():
            prev = None if resp.prev_kv is None else kv_to_wire(resp.prev_kv)
            return [_PUT, resp.revision, prev]
        case DeleteRangeResponse():
            return [_DELETE, resp.revision, resp.deleted, [kv_to_wire(kv) for kv in resp.prev_kvs]]
        case TxnResponse():
            subs = [response_to_wire(r) for r in resp.responses]
            return [_TXN, resp.revision, resp.succeeded, subs]
        case CompactResponse():
            return [_COMPACT, resp.revision]
        case LeaseGrantResponse():
            return [_GRANT, resp.revision, resp.id, resp.ttl]
        case LeaseRevokeResponse():
            return [_REVOKE, resp.revision]
        case LeaseCheckpointResponse():
            return [_CHECKPOINT, resp.revision]
        case AlarmResponse():
            return [_ALARM, resp.revision, [int(a) for a in resp.alarms]]
        case DefragmentResponse():
            return [_DEFRAGMENT, resp.revision]
        case ErrorResponse():
            return [_ERROR, resp.revision, resp.kind, resp.code, resp.message]
    raise TypeError(f"not a KV response: {type(resp).__name__}")


def _str(v: object) -> str:
    if type(v) is not str:
        raise KVError(ErrorKind.MALFORMED, "expected a string")
    return v


def _op_response(obj: object) -> OpResponse:
    resp = response_from_wire(obj)
    if not isinstance(resp, RangeResponse | PutResponse | DeleteRangeResponse | TxnResponse):
        raise KVError(ErrorKind.MALFORMED, "a txn holds range, put, delete or txn responses")
    return resp


def _alarm(v: object) -> AlarmType:
    try:
        return AlarmType(codec.expect_int(v))
    except ValueError:
        raise KVError(ErrorKind.MALFORMED, "bad alarm type") from None


_DECODE: dict[int, tuple[int, Callable[[list[object]], Response]]] = {
    _RANGE: (
        5,
        lambda w: RangeResponse(
            codec.expect_int(w[1]),
            tuple(kv_from_wire(kv) for kv in codec.expect_list(w[2])),
            codec.expect_bool(w[3]),
            codec.expect_int(w[4]),
        ),
    ),
    _PUT: (3, lambda w: PutResponse(codec.expect_int(w[1]), _opt_kv(w[2]))),
    _DELETE: (
        4,
        lambda w: DeleteRangeResponse(
            codec.expect_int(w[1]),
            codec.expect_int(w[2]),
            tuple(kv_from_wire(kv) for kv in codec.expect_list(w[3])),
        ),
    ),
    _TXN: (
        4,
        lambda w: TxnResponse(
            codec.expect_int(w[1]),
            codec.expect_bool(w[2]),
            tuple(_op_response(r) for r in codec.expect_list(w[3])),
        ),
    ),
    _COMPACT: (2, lambda w: CompactResponse(codec.expect_int(w[1]))),
    _GRANT: (
        4,
        lambda w: LeaseGrantResponse(
            codec.expect_int(w[1]), codec.expect_int(w[2]), codec.expect_int(w[3])
        ),
    ),
    _REVOKE: (2, lambda w: LeaseRevokeResponse(codec.expect_int(w[1]))),
    _CHECKPOINT: (2, lambda w: LeaseCheckpointResponse(codec.expect_int(w[1]))),
    _ALARM: (
        3,
        lambda w: AlarmResponse(
            codec.expect_int(w[1]), tuple(_alarm(a) for a in codec.expect_list(w[2]))
        ),
    ),
    _DEFRAGMENT: (2, lambda w: DefragmentResponse(codec.expect_int(w[1]))),
    _ERROR: (
        5,
        lambda w: ErrorResponse(codec.expect_int(w[1]), _str(w[2]), _str(w[3]), _str(w[4])),
    ),
}


def response_from_wire(obj: object) -> Response:
    """The response a `response_to_wire` list stands for; raises KVError(MALFORMED) only."""
    if type(obj) is not list or not obj or type(obj[0]) is not int:
        raise KVError(ErrorKind.MALFORMED, "expected [tag, ...]")
    entry = _DECODE.get(obj[0])
    if entry is None or len(obj) != entry[0]:
        raise KVError(ErrorKind.MALFORMED, f"bad response tag or length: {obj[0]}")
    try:
        return entry[1](obj)
    except RecursionError:
        raise KVError(ErrorKind.MALFORMED, "nested too deeply") from None


# --- watch responses -----------------------------------------------------------------------


def watch_response_to_wire(resp: WatchResponse) -> Wire:
    """Events go out as one list; a shell that caches `[event_to_wire(e) ...]` by
    `id(resp.events)` encodes a revision once for every watcher of the same shape."""
    return [
        resp.watch_id,
        resp.revision,
        [event_to_wire(ev) for ev in resp.events],
        resp.created,
        resp.canceled,
        resp.compact_revision,
        resp.cancel_reason,
    ]


def watch_response_from_wire(obj: object) -> WatchResponse:
    watch_id, revision, events, created, canceled, compact, reason = codec.expect_list(obj, 7)
    return WatchResponse(
        codec.expect_int(watch_id),
        codec.expect_int(revision),
        tuple(event_from_wire(ev) for ev in codec.expect_list(events)),
        codec.expect_bool(created),
        codec.expect_bool(canceled),
        codec.expect_int(compact),
        _str(reason),
    )
