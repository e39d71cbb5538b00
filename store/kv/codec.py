"""Encoding of KV requests for Raft entries: msgpack lists `[tag, field, ...]`.

The leader encodes a request once when it proposes it; every member decodes it when the entry
commits and applies the result. Decoding is total: any bytes give a request or raise
`KVError(MALFORMED)`, never another exception, so a corrupt or hostile entry cannot crash
`apply`. Requests larger than etcd's `--max-request-bytes` default (1.5 MiB, embed/config.go
`DefaultMaxRequestBytes`) are refused at encode time, as etcd refuses them before proposing
(`ErrRequestTooLarge`), and at decode time. Invariant: decode(encode(r)) == r.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

import msgpack

from store.kv.errors import ErrorKind, KVError
from store.kv.messages import (
    AlarmAction,
    AlarmRequest,
    AlarmType,
    CompactRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DefragmentRequest,
    DeleteRangeRequest,
    LeaseCheckpoint,
    LeaseCheckpointRequest,
    LeaseGrantRequest,
    LeaseRevokeRequest,
    PutRequest,
    RangeRequest,
    Request,
    RequestOp,
    SortOrder,
    SortTarget,
    TxnRequest,
)

MAX_REQUEST_BYTES = 1_572_864  # 1.5 MiB, etcd's default --max-request-bytes
_INT64_MAX = (1 << 63) - 1
_INT64_MIN = -(1 << 63)

# Wire tags. Append only: entries already in a Raft log must keep decoding.
TAG_RANGE = 0
TAG_PUT = 1
TAG_DELETE_RANGE = 2
TAG_TXN = 3
TAG_COMPACT = 4
TAG_LEASE_GRANT = 5
TAG_LEASE_REVOKE = 6
TAG_LEASE_CHECKPOINT = 7
TAG_ALARM = 8
TAG_DEFRAGMENT = 9

Wire = list[object]


def _enc_compare(c: Compare) -> Wire:
    operand = c.operand if isinstance(c.operand, bytes) else int(c.operand)
    return [c.key, int(c.target), int(c.result), operand, c.range_end]


def request_to_wire(req: Request) -> Wire:
    """The msgpack-able list for a request (what `encode_request` packs)."""
    match req:
        case PutRequest():
            return [
                TAG_PUT,
                req.key,
                req.value,
                req.lease,
                req.prev_kv,
                req.ignore_value,
                req.ignore_lease,
            ]
        case RangeRequest():
            return [
                TAG_RANGE,
                req.key,
                req.range_end,
                req.limit,
                req.revision,
                req.keys_only,
                req.count_only,
                int(req.sort_order),
                int(req.sort_target),
                req.min_mod_revision,
                req.max_mod_revision,
                req.min_create_revision,
                req.max_create_revision,
            ]
        case DeleteRangeRequest():
            return [TAG_DELETE_RANGE, req.key, req.range_end, req.prev_kv]
        case TxnRequest():
            return [
                TAG_TXN,
                [_enc_compare(c) for c in req.compare],
                [request_to_wire(op) for op in req.success],
                [request_to_wire(op) for op in req.failure],
            ]
        case CompactRequest():
            return [TAG_COMPACT, req.revision, req.physical]
        case LeaseGrantRequest():
            return [TAG_LEASE_GRANT, req.ttl, req.id]
        case LeaseRevokeRequest():
            return [TAG_LEASE_REVOKE, req.id]
        case LeaseCheckpointRequest():
            return [TAG_LEASE_CHECKPOINT, [[c.id, c.remaining_ttl] for c in req.checkpoints]]
        case AlarmRequest():
            return [TAG_ALARM, int(req.action), int(req.alarm)]
        case DefragmentRequest():
            return [TAG_DEFRAGMENT]
    raise TypeError(f"not a KV request: {type(req).__name__}")


def encode_request(req: Request, max_bytes: int = MAX_REQUEST_BYTES) -> bytes:
    """Bytes for a Raft entry; raises KVError(REQUEST_TOO_LARGE) above `max_bytes`."""
    data: bytes = msgpack.packb(request_to_wire(req), use_bin_type=True)
    if len(data) > max_bytes:
        raise KVError(ErrorKind.REQUEST_TOO_LARGE, f"{len(data)} > {max_bytes} bytes")
    return data


# --- decoding: every field is checked for its exact type -------------------------------------


def _bad(what: str) -> KVError:
    return KVError(ErrorKind.MALFORMED, what)


def expect_bytes(v: object) -> bytes:
    if type(v) is not bytes:
        raise _bad("expected bytes")
    return v


def expect_int(v: object) -> int:
    if type(v) is not int or not _INT64_MIN <= v <= _INT64_MAX:
        raise _bad("expected int64")
    return v


def expect_uint(v: object) -> int:
    n = expect_int(v)
    if n < 0:
        raise _bad("expected a non-negative integer")
    return n


def expect_bool(v: object) -> bool:
    if type(v) is not bool:
        raise _bad("expected bool")
    return v


def expect_list(v: object, n: int | None = None) -> list[object]:
    if type(v) is not list or (n is not None and len(v) != n):
        raise _bad("expected an array" if n is None else f"expected an array of {n}")
    return v


_E = TypeVar("_E", CompareTarget, CompareResult, AlarmAction, AlarmType, SortOrder, SortTarget)


def _enum(cls: type[_E], v: object) -> _E:
    try:
        return cls(expect_int(v))
    except ValueError:
        raise _bad(f"bad {cls.__name__}") from None


def _dec_compare(v: object) -> Compare:
    key, target, result, operand, range_end = expect_list(v, 5)
    t = _enum(CompareTarget, target)
    op: int | bytes = expect_bytes(operand) if t is CompareTarget.VALUE else expect_int(operand)
    return Compare(expect_bytes(key), t, _enum(CompareResult, result), op, expect_bytes(range_end))


def _dec_range(w: list[object]) -> RangeRequest:
    _, key, end, limit, rev, keys_only, count_only, order, target, *bounds = w
    min_mod, max_mod, min_create, max_create = (expect_uint(b) for b in bounds)
    # limit and revision are int64 as in etcd, which reads a negative one as 0 (no limit, the
    # current revision); the state machine does the same, so they are not refused here.
    return RangeRequest(
        expect_bytes(key),
        expect_bytes(end),
        expect_int(limit),
        expect_int(rev),
        expect_bool(keys_only),
        expect_bool(count_only),
        _enum(SortOrder, order),
        _enum(SortTarget, target),
        min_mod,
        max_mod,
        min_create,
        max_create,
    )


def _dec_put(w: list[object]) -> PutRequest:
    _, key, value, lease, prev_kv, ignore_value, ignore_lease = w
    return PutRequest(
        expect_bytes(key),
        expect_bytes(value),
        expect_int(lease),
        expect_bool(prev_kv),
        expect_bool(ignore_value),
        expect_bool(ignore_lease),
    )


def _dec_delete(w: list[object]) -> DeleteRangeRequest:
    _, key, end, prev_kv = w
    return DeleteRangeRequest(expect_bytes(key), expect_bytes(end), expect_bool(prev_kv))


def _dec_txn(w: list[object]) -> TxnRequest:
    _, compares, success, failure = w
    return TxnRequest(
        tuple(_dec_compare(c) for c in expect_list(compares)),
        tuple(_dec_txn_op(op) for op in expect_list(success)),
        tuple(_dec_txn_op(op) for op in expect_list(failure)),
    )


def _dec_compact(w: list[object]) -> CompactRequest:
    return CompactRequest(expect_uint(w[1]), expect_bool(w[2]))


def _dec_grant(w: list[object]) -> LeaseGrantRequest:
    return LeaseGrantRequest(expect_int(w[1]), expect_uint(w[2]))


def _dec_revoke(w: list[object]) -> LeaseRevokeRequest:
    return LeaseRevokeRequest(expect_int(w[1]))


def _dec_checkpoint(w: list[object]) -> LeaseCheckpointRequest:
    items = []
    for c in expect_list(w[1]):
        lid, remaining = expect_list(c, 2)
        items.append(LeaseCheckpoint(expect_int(lid), expect_int(remaining)))
    return LeaseCheckpointRequest(tuple(items))


def _dec_alarm(w: list[object]) -> AlarmRequest:
    return AlarmRequest(_enum(AlarmAction, w[1]), _enum(AlarmType, w[2]))


# tag -> (array length, decoder)
_DECODERS: dict[int, tuple[int, Callable[[list[object]], Request]]] = {
    TAG_RANGE: (13, _dec_range),
    TAG_PUT: (7, _dec_put),
    TAG_DELETE_RANGE: (4, _dec_delete),
    TAG_TXN: (4, _dec_txn),
    TAG_COMPACT: (3, _dec_compact),
    TAG_LEASE_GRANT: (3, _dec_grant),
    TAG_LEASE_REVOKE: (2, _dec_revoke),
    TAG_LEASE_CHECKPOINT: (2, _dec_checkpoint),
    TAG_ALARM: (3, _dec_alarm),
    TAG_DEFRAGMENT: (1, lambda w: DefragmentRequest()),
}
_TXN_OP_TAGS = frozenset({TAG_RANGE, TAG_PUT, TAG_DELETE_RANGE, TAG_TXN})


def _dec(v: object) -> Request:
    if type(v) is not list or not v or type(v[0]) is not int:
        raise _bad("expected [tag, ...]")
    entry = _DECODERS.get(v[0])
    if entry is None:
        raise _bad(f"unknown request tag {v[0]}")
    n, decode = entry
    if len(v) != n:
        raise _bad(f"request tag {v[0]} needs {n} fields")
    return decode(v)


def _dec_txn_op(v: object) -> RequestOp:
    if type(v) is not list or not v or v[0] not in _TXN_OP_TAGS:
        raise _bad("txn ops are range, put, delete_range or txn")
    return cast(RequestOp, _dec(v))


def request_from_wire(v: object) -> Request:
    """The request a `request_to_wire` list stands for; raises KVError(MALFORMED) only."""
    try:
        return _dec(v)
    except RecursionError:
        raise _bad("nested too deeply") from None


def decode_request(data: bytes, max_bytes: int = MAX_REQUEST_BYTES) -> Request:
    """The request in a Raft entry; raises KVError (MALFORMED or REQUEST_TOO_LARGE) only."""
    if len(data) > max_bytes:
        raise KVError(ErrorKind.REQUEST_TOO_LARGE, f"{len(data)} > {max_bytes} bytes")
    try:
        obj = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types for bad input
        raise _bad(f"not msgpack: {type(exc).__name__}") from None
    return request_from_wire(obj)
