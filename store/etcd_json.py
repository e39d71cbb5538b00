"""etcd v3's JSON shapes as its gRPC gateway marshals rpc.proto: requests built from Tabby's KV
messages and answers decoded back into them (base64 keys and values, 64-bit integers as
strings, absent fields as their zero values). Pure translation, no IO: `store.etcd` sends and
receives them."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import TypeVar, cast

from store.client import StoreUnavailableError
from store.kv import (
    Compare,
    DeleteRangeRequest,
    DeleteRangeResponse,
    Event,
    EventType,
    KeyValue,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    TxnRequest,
    TxnResponse,
    WatchResponse,
)
from store.kv.messages import CompareTarget, OpResponse, RequestOp

Json = dict[str, object]

T = TypeVar("T")


def decoded(what: str, write: bool, decode: Callable[[], T]) -> T:
    """An answer that does not have etcd's shape is the server's fault, said clearly; after a
    write it is also an unknown outcome (etcd answered, so the write probably ran)."""
    try:
        return decode()
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise StoreUnavailableError(
            f"{what}: etcd's answer does not decode ({exc})", outcome_unknown=write
        ) from None


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(value: object) -> bytes:
    if not value:
        return b""
    return base64.b64decode(cast(str, value), validate=True)


def as_int(value: object) -> int:
    """int64 fields arrive as strings, and absent at their default (0)."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, str)):
        return int(value)
    raise ValueError(f"expected an integer, got {value!r}")


def as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def header_revision(doc: Json) -> int:
    header = doc.get("header")
    return as_int(cast(Json, header).get("revision")) if isinstance(header, dict) else 0


def range_json(r: RangeRequest) -> Json:
    out: Json = {"key": b64(r.key)}
    if r.range_end:
        out["range_end"] = b64(r.range_end)
    for name in ("limit", "revision", "min_mod_revision", "max_mod_revision"):
        if getattr(r, name):
            out[name] = str(getattr(r, name))
    for name in ("min_create_revision", "max_create_revision"):
        if getattr(r, name):
            out[name] = str(getattr(r, name))
    if r.keys_only:
        out["keys_only"] = True
    if r.count_only:
        out["count_only"] = True
    if r.sort_order:
        out["sort_order"] = r.sort_order.name
        out["sort_target"] = r.sort_target.name
    return out


def put_json(p: PutRequest) -> Json:
    out: Json = {"key": b64(p.key)}
    if p.value:
        out["value"] = b64(p.value)
    if p.lease:
        out["lease"] = str(p.lease)
    for name in ("prev_kv", "ignore_value", "ignore_lease"):
        if getattr(p, name):
            out[name] = True
    return out


def delete_json(d: DeleteRangeRequest) -> Json:
    out: Json = {"key": b64(d.key)}
    if d.range_end:
        out["range_end"] = b64(d.range_end)
    if d.prev_kv:
        out["prev_kv"] = True
    return out


COMPARE_FIELD = {
    CompareTarget.VERSION: "version",
    CompareTarget.CREATE: "create_revision",
    CompareTarget.MOD: "mod_revision",
    CompareTarget.VALUE: "value",
    CompareTarget.LEASE: "lease",
}


def compare_json(c: Compare) -> Json:
    out: Json = {"key": b64(c.key), "target": c.target.name, "result": c.result.name}
    if c.range_end:
        out["range_end"] = b64(c.range_end)
    field = COMPARE_FIELD[c.target]
    if c.target is CompareTarget.VALUE:
        out[field] = b64(c.operand if isinstance(c.operand, bytes) else str(c.operand).encode())
    else:
        out[field] = str(int(c.operand))
    return out


def op_json(op: RequestOp) -> Json:
    if isinstance(op, RangeRequest):
        return {"request_range": range_json(op)}
    if isinstance(op, PutRequest):
        return {"request_put": put_json(op)}
    if isinstance(op, DeleteRangeRequest):
        return {"request_delete_range": delete_json(op)}
    return {"request_txn": txn_json(op)}


def txn_json(t: TxnRequest) -> Json:
    out: Json = {}
    if t.compare:
        out["compare"] = [compare_json(c) for c in t.compare]
    if t.success:
        out["success"] = [op_json(op) for op in t.success]
    if t.failure:
        out["failure"] = [op_json(op) for op in t.failure]
    return out


def key_value(doc: object) -> KeyValue:
    d = cast(Json, doc)
    return KeyValue(
        unb64(d.get("key")),
        as_int(d.get("create_revision")),
        as_int(d.get("mod_revision")),
        as_int(d.get("version")),
        unb64(d.get("value")),
        as_int(d.get("lease")),
    )


def range_response(doc: Json, revision: int) -> RangeResponse:
    kvs = tuple(key_value(item) for item in as_list(doc.get("kvs")))
    return RangeResponse(revision, kvs, bool(doc.get("more", False)), as_int(doc.get("count")))


def put_response(doc: Json, revision: int) -> PutResponse:
    prev = doc.get("prev_kv")
    return PutResponse(revision, key_value(prev) if isinstance(prev, dict) else None)


def delete_response(doc: Json, revision: int) -> DeleteRangeResponse:
    prev = tuple(key_value(item) for item in as_list(doc.get("prev_kvs")))
    return DeleteRangeResponse(revision, as_int(doc.get("deleted")), prev)


def txn_response(doc: Json, revision: int) -> TxnResponse:
    out: list[OpResponse] = []
    for item in as_list(doc.get("responses")):
        d = cast(Json, item)
        # Each nested answer has a header with its own revision: a range before the txn's
        # first write sees the revision before it (etcd's applyTxn).
        if "response_range" in d:
            r = cast(Json, d["response_range"])
            out.append(range_response(r, header_revision(r) or revision))
        elif "response_put" in d:
            r = cast(Json, d["response_put"])
            out.append(put_response(r, header_revision(r) or revision))
        elif "response_delete_range" in d:
            r = cast(Json, d["response_delete_range"])
            out.append(delete_response(r, header_revision(r) or revision))
        elif "response_txn" in d:
            r = cast(Json, d["response_txn"])
            out.append(txn_response(r, header_revision(r) or revision))
        else:
            raise ValueError(f"txn: unknown response {sorted(d)}")
    return TxnResponse(revision, bool(doc.get("succeeded", False)), tuple(out))


def watch_response(doc: Json) -> WatchResponse:
    events = []
    for item in as_list(doc.get("events")):
        d = cast(Json, item)
        kind = EventType.DELETE if d.get("type") in ("DELETE", 1) else EventType.PUT
        prev = d.get("prev_kv")
        events.append(Event(kind, key_value(d.get("kv", {})), key_value(prev) if prev else None))
    return WatchResponse(
        watch_id=as_int(doc.get("watch_id")),
        revision=header_revision(doc),
        events=tuple(events),
        created=bool(doc.get("created", False)),
        canceled=bool(doc.get("canceled", False)),
        compact_revision=as_int(doc.get("compact_revision")),
        cancel_reason=str(doc.get("cancel_reason", "")),
    )
