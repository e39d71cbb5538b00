"""Checks a request must pass before it may change the store (etcd `v3rpc/key.go`, `quota.go`).

They depend on the request alone, so the server runs them before proposing (a bad request never
costs a Raft entry) and `apply` runs them again (an entry is applied the same on every member
whoever proposed it). Mirrors etcd: keys must be non-empty (`ErrEmptyKey`); `ignore_value` and
`ignore_lease` exclude a value or lease (`ErrValueProvided`, `ErrLeaseProvided`); a txn has at
most `max_txn_ops` compares and ops per branch, nested txns sharing the budget
(`checkTxnRequest`); and no key is put twice or put inside a range deleted by the same txn,
except that the two branches of one nested txn may put the same key (`checkIntervals`).
"""

from __future__ import annotations

from store.kv.errors import ErrorKind, KVError
from store.kv.messages import (
    CompareTarget,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    Request,
    RequestOp,
    TxnRequest,
)
from store.kv.mvcc import RECORD_OVERHEAD, in_range

DEFAULT_MAX_TXN_OPS = 128  # etcd embed/config.go DefaultMaxTxnOps
LEASE_OVERHEAD = 64  # etcd quota.go leaseOverhead: what a lease grant costs against the quota


def check_request(req: Request, max_txn_ops: int = DEFAULT_MAX_TXN_OPS) -> None:
    """Raise the KVError etcd's API layer would raise for `req`, if any."""
    match req:
        case PutRequest():
            _check_put(req)
        case RangeRequest() | DeleteRangeRequest():
            if not req.key:
                raise KVError(ErrorKind.EMPTY_KEY)
        case TxnRequest():
            _check_txn(req, max_txn_ops)
            _check_intervals(req.success)
            _check_intervals(req.failure)
        case _:
            pass


def _check_put(req: PutRequest) -> None:
    if not req.key:
        raise KVError(ErrorKind.EMPTY_KEY)
    if req.ignore_value and req.value:
        raise KVError(ErrorKind.VALUE_PROVIDED)
    if req.ignore_lease and req.lease:
        raise KVError(ErrorKind.LEASE_PROVIDED)


def _check_txn(txn: TxnRequest, budget: int) -> None:
    opc = max(len(txn.compare), len(txn.success), len(txn.failure))
    if opc > budget:
        raise KVError(ErrorKind.TOO_MANY_OPS, f"{opc} > {budget}")
    for c in txn.compare:
        if not c.key:
            raise KVError(ErrorKind.EMPTY_KEY)
        if (c.target is CompareTarget.VALUE) != isinstance(c.operand, bytes):
            raise KVError(ErrorKind.MALFORMED, "VALUE compares take bytes, the others an int")
    for op in (*txn.success, *txn.failure):
        if isinstance(op, TxnRequest):
            _check_txn(op, budget - opc)
        elif isinstance(op, PutRequest):
            _check_put(op)
        elif not op.key:
            raise KVError(ErrorKind.EMPTY_KEY)


def _hits(dels: list[tuple[bytes, bytes]], key: bytes) -> bool:
    return any(in_range(key, lo, end) for lo, end in dels)


def _check_intervals(ops: tuple[RequestOp, ...]) -> tuple[set[bytes], list[tuple[bytes, bytes]]]:
    """(keys put, ranges deleted) by `ops` and their nested txns; raises DUPLICATE_KEY."""
    dels = [(op.key, op.range_end) for op in ops if isinstance(op, DeleteRangeRequest)]
    puts: set[bytes] = set()
    for op in ops:
        if not isinstance(op, TxnRequest):
            continue
        puts_then, dels_then = _check_intervals(op.success)
        puts_else, dels_else = _check_intervals(op.failure)
        for k in puts_then:
            if k in puts or _hits(dels, k):
                raise KVError(ErrorKind.DUPLICATE_KEY, repr(k))
            puts.add(k)
        for k in puts_else:
            # then and else of one txn exclude each other, so both may put the same key
            if (k in puts and k not in puts_then) or _hits(dels, k):
                raise KVError(ErrorKind.DUPLICATE_KEY, repr(k))
            puts.add(k)
        dels.extend(dels_then)
        dels.extend(dels_else)
    for op in ops:
        if isinstance(op, PutRequest):
            if op.key in puts or _hits(dels, op.key):
                raise KVError(ErrorKind.DUPLICATE_KEY, repr(op.key))
            puts.add(op.key)
    return puts, dels


def put_cost(req: PutRequest) -> int:
    return RECORD_OVERHEAD + len(req.key) + len(req.value)


def txn_cost(txn: TxnRequest) -> int:
    """Quota cost of a txn: its dearer branch (etcd `costTxn`); nested txns count too."""

    def branch(ops: tuple[RequestOp, ...]) -> int:
        total = 0
        for op in ops:
            if isinstance(op, PutRequest):
                total += put_cost(op)
            elif isinstance(op, TxnRequest):
                total += txn_cost(op)
        return total

    return max(branch(txn.success), branch(txn.failure))
