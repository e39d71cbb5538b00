"""The client-facing wire form of tabby-store: KV responses, events and watch responses as msgpack lists.

Requests travel as `store.kv.codec.encode_request` bytes (the same bytes the leader proposes
into the Raft log, so a request is encoded once, by the client). Responses and watch events
travel as the plain lists below, one tag per response type (tables, not branches). Both sides
of the RPC (store/server and store/client.py) use this module only.

Invariants: `decode_response(encode_response(r)) == r` for every response type; decoding
raises `WireFormatError` (a ValueError) for anything malformed, never another exception.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

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


class WireFormatError(ValueError):
    """The peer sent a response that is not in this module's shape."""


def encode_kv(kv: KeyValue) -> Wire:
    return [kv.key, kv.create_revision, kv.mod_revision, kv.version, kv.value, kv.lease]


def decode_kv(w: object) -> KeyValue:
    if type(w) is not list or len(w) != 6:
        raise WireFormatError(f"bad KeyValue: {w!r:.80}")
    key, c, m, v, value, lease = w
    return KeyValue(_b(key), _i(c), _i(m), _i(v), _b(value), _i(lease))


def _opt_kv(w: object) -> KeyValue | None:
    return None if w is None else decode_kv(w)


def _b(v: object) -> bytes:
    if type(v) is not bytes:
        raise WireFormatError(f"expected bytes, got {type(v).__name__}")
    return v


def _i(v: object) -> int:
    if type(v) is not int:
        raise WireFormatError(f"expected an integer, got {type(v).__name__}")
    return v


def _list(v: object) -> list[object]:
    if type(v) is not list:
        raise WireFormatError(f"expected a list, got {type(v).__name__}")
    return v


# --- responses ---------------------------------------------------------------------------


def _enc_range(r: RangeResponse) -> Wire:
    return ["range", r.revision, [encode_kv(kv) for kv in r.kvs], r.more, r.count]


def _enc_put(r: PutResponse) -> Wire:
    return ["put", r.revision, None if r.prev_kv is None else encode_kv(r.prev_kv)]


def _enc_delete(r: DeleteRangeResponse) -> Wire:
    return ["delete", r.revision, r.deleted, [encode_kv(kv) for kv in r.prev_kvs]]


def _enc_txn(r: TxnResponse) -> Wire:
    return ["txn", r.revision, r.succeeded, [encode_response(x) for x in r.responses]]


def _enc_error(r: ErrorResponse) -> Wire:
    return ["error", r.revision, r.kind, r.code, r.message]


_ENCODERS: dict[type, Callable[..., Wire]] = {
    RangeResponse: _enc_range,
    PutResponse: _enc_put,
    DeleteRangeResponse: _enc_delete,
    TxnResponse: _enc_txn,
    CompactResponse: lambda r: ["compact", r.revision],
    LeaseGrantResponse: lambda r: ["grant", r.revision, r.id, r.ttl],
    LeaseRevokeResponse: lambda r: ["revoke", r.revision],
    LeaseCheckpointResponse: lambda r: ["checkpoint", r.revision],
    AlarmResponse: lambda r: ["alarm", r.revision, [int(a) for a in r.alarms]],
    DefragmentResponse: lambda r: ["defrag", r.revision],
    ErrorResponse: _enc_error,
}


def encode_response(resp: Response) -> Wire:
    return _ENCODERS[type(resp)](resp)


def _dec_range(w: list[object]) -> RangeResponse:
    _, rev, kvs, more, count = w
    return RangeResponse(_i(rev), tuple(decode_kv(x) for x in _list(kvs)), bool(more), _i(count))


def _dec_put(w: list[object]) -> PutResponse:
    _, rev, prev = w
    return PutResponse(_i(rev), _opt_kv(prev))


def _dec_delete(w: list[object]) -> DeleteRangeResponse:
    _, rev, deleted, prevs = w
    return DeleteRangeResponse(_i(rev), _i(deleted), tuple(decode_kv(x) for x in _list(prevs)))


def _dec_txn(w: list[object]) -> TxnResponse:
    _, rev, ok, resps = w
    ops = tuple(cast(OpResponse, decode_response(x)) for x in _list(resps))
    return TxnResponse(_i(rev), bool(ok), ops)


def _dec_error(w: list[object]) -> ErrorResponse:
    _, rev, kind, code, message = w
    return ErrorResponse(_i(rev), str(kind), str(code), str(message))


_DECODERS: dict[str, Callable[[list[object]], Response]] = {
    "range": _dec_range,
    "put": _dec_put,
    "delete": _dec_delete,
    "txn": _dec_txn,
    "compact": lambda w: CompactResponse(_i(w[1])),
    "grant": lambda w: LeaseGrantResponse(_i(w[1]), _i(w[2]), _i(w[3])),
    "revoke": lambda w: LeaseRevokeResponse(_i(w[1])),
    "checkpoint": lambda w: LeaseCheckpointResponse(_i(w[1])),
    "alarm": lambda w: AlarmResponse(_i(w[1]), tuple(AlarmType(_i(a)) for a in _list(w[2]))),
    "defrag": lambda w: DefragmentResponse(_i(w[1])),
    "error": _dec_error,
}


def decode_response(w: object) -> Response:
    items = _list(w)
    if not items or type(items[0]) is not str or items[0] not in _DECODERS:
        raise WireFormatError(f"unknown response {w!r:.80}")
    try:
        return _DECODERS[items[0]](items)
    except (ValueError, TypeError, IndexError) as exc:
        if isinstance(exc, WireFormatError):
            raise
        raise WireFormatError(f"bad {items[0]} response: {exc}") from None


# --- watch -------------------------------------------------------------------------------


def encode_event(ev: Event) -> Wire:
    prev = None if ev.prev_kv is None else encode_kv(ev.prev_kv)
    return [int(ev.type), encode_kv(ev.kv), prev]


def decode_event(w: object) -> Event:
    items = _list(w)
    if len(items) != 3:
        raise WireFormatError("bad event")
    try:
        kind = EventType(_i(items[0]))
    except ValueError:
        raise WireFormatError(f"bad event type {items[0]!r}") from None
    return Event(kind, decode_kv(items[1]), _opt_kv(items[2]))


def encode_watch_response(r: WatchResponse, cache: dict[int, Wire] | None = None) -> Wire:
    """`cache` (id(event) -> wire form) lets one drain encode an event shared by many
    watchers once; it must not outlive the events it keys (ids are reused after GC)."""
    if cache is None:
        events = [encode_event(e) for e in r.events]
    else:
        events = []
        for e in r.events:
            w = cache.get(id(e))
            if w is None:
                w = cache[id(e)] = encode_event(e)
            events.append(w)
    return [
        r.watch_id,
        r.revision,
        events,
        r.created,
        r.canceled,
        r.compact_revision,
        r.cancel_reason,
    ]


def decode_watch_response(w: object) -> WatchResponse:
    items = _list(w)
    if len(items) != 7:
        raise WireFormatError("bad watch response")
    wid, rev, events, created, canceled, compact, reason = items
    return WatchResponse(
        _i(wid),
        _i(rev),
        tuple(decode_event(e) for e in _list(events)),
        bool(created),
        bool(canceled),
        _i(compact),
        str(reason),
    )
