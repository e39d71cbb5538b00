"""Raft RPC messages and their wire form (plain lists the transport packs with msgpack).

Implements the RPCs of the Raft paper (Figure 2: RequestVote, AppendEntries; §7
InstallSnapshot) plus the etcd-io/raft extensions: pre-vote (thesis §9.6), heartbeats that carry a
ReadIndex sequence (thesis §6.4), TimeoutNow for leadership transfer (thesis §3.10) and forwarded
ReadIndex requests from followers.

Invariants: every message is immutable and names its `term`, sender `src` and receiver `dst`.
`to_wire` yields only ints, bools, bytes and lists; `from_wire(to_wire(m)) == m`; `from_wire`
raises `WireError` (a `ValueError`) for any malformed input and nothing else.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Final, cast

from store.raft.types import ConfState, Entry, EntryKind, SnapshotMeta

MAX_U64: Final = (1 << 64) - 1


class WireError(ValueError):
    """A message from a peer could not be decoded; the peer (or the link) is at fault."""


class WireMessage:
    """Mixin giving every message `m.to_wire()` and `Type.from_wire(value)`."""

    __slots__ = ()

    def to_wire(self) -> list[WireValue]:
        return to_wire(cast("Message", self))

    @classmethod
    def from_wire(cls, value: object) -> Message:
        """Decode `value`, which must be a message of this type; raises only `WireError`."""
        message = from_wire(value)
        if cls is not WireMessage and not isinstance(message, cls):
            raise WireError(f"expected {cls.__name__}, got {type(message).__name__}")
        return message


@dataclass(frozen=True, slots=True)
class RequestVote(WireMessage):
    """RequestVote RPC (Figure 2); `pre_vote` asks "would you vote?" without a term bump
    (thesis §9.6); `leadership_transfer` overrides the leader lease (thesis §3.10)."""

    term: int
    src: int
    dst: int
    last_log_index: int
    last_log_term: int
    pre_vote: bool = False
    leadership_transfer: bool = False


@dataclass(frozen=True, slots=True)
class RequestVoteResponse(WireMessage):
    term: int
    src: int
    dst: int
    vote_granted: bool
    pre_vote: bool = False


@dataclass(frozen=True, slots=True)
class AppendEntries(WireMessage):
    """AppendEntries RPC (Figure 2). `commit_only`: no entries, sent to a follower the leader
    knows holds its whole log, only to carry `leader_commit`; a follower that matches it does
    not answer (the answer would tell the leader nothing, and Raft treats it as a lost
    message anyway), which saves a frame and a wake-up per follower per commit."""

    term: int
    src: int
    dst: int
    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...]
    leader_commit: int
    commit_only: bool = False


@dataclass(frozen=True, slots=True)
class AppendEntriesResponse(WireMessage):
    """`index` is the follower's last matching index on success, or the rejected
    `prev_log_index`; `reject_hint`/`hint_term` let the leader skip a whole term (thesis §5.3)."""

    term: int
    src: int
    dst: int
    index: int
    reject: bool = False
    reject_hint: int = 0
    hint_term: int = 0


@dataclass(frozen=True, slots=True)
class Heartbeat(WireMessage):
    """An empty AppendEntries that never moves the follower's log (etcd MsgHeartbeat).

    `commit` is capped at what the follower is known to hold; `read_seq` is the newest ReadIndex
    round the leader wants confirmed (thesis §6.4)."""

    term: int
    src: int
    dst: int
    commit: int
    read_seq: int = 0


@dataclass(frozen=True, slots=True)
class HeartbeatResponse(WireMessage):
    term: int
    src: int
    dst: int
    read_seq: int = 0


@dataclass(frozen=True, slots=True)
class InstallSnapshot(WireMessage):
    """InstallSnapshot RPC (§7): one chunk of snapshot data starting at byte `offset`."""

    term: int
    src: int
    dst: int
    meta: SnapshotMeta
    offset: int
    data: bytes
    done: bool


@dataclass(frozen=True, slots=True)
class InstallSnapshotResponse(WireMessage):
    """Acknowledges chunks: the follower next expects byte `next_offset` of snapshot `index`."""

    term: int
    src: int
    dst: int
    index: int
    next_offset: int


@dataclass(frozen=True, slots=True)
class TimeoutNow(WireMessage):
    """Tells the transfer target to start an election at once (thesis §3.10)."""

    term: int
    src: int
    dst: int


@dataclass(frozen=True, slots=True)
class ReadIndexRequest(WireMessage):
    """A follower forwards a linearizable read to the leader (thesis §6.4)."""

    term: int
    src: int
    dst: int
    context: bytes


@dataclass(frozen=True, slots=True)
class ReadIndexResponse(WireMessage):
    term: int
    src: int
    dst: int
    index: int
    context: bytes


Message = (
    RequestVote
    | RequestVoteResponse
    | AppendEntries
    | AppendEntriesResponse
    | Heartbeat
    | HeartbeatResponse
    | InstallSnapshot
    | InstallSnapshotResponse
    | TimeoutNow
    | ReadIndexRequest
    | ReadIndexResponse
)

# Wire type codes: a table, so a code missing here is a decode error, never a guess.
WIRE_CODES: Final[dict[int, type[Message]]] = {
    1: RequestVote,
    2: RequestVoteResponse,
    3: AppendEntries,
    4: AppendEntriesResponse,
    5: Heartbeat,
    6: HeartbeatResponse,
    7: InstallSnapshot,
    8: InstallSnapshotResponse,
    9: TimeoutNow,
    10: ReadIndexRequest,
    11: ReadIndexResponse,
}
_CODE_OF: Final[dict[type[Message], int]] = {cls: code for code, cls in WIRE_CODES.items()}

WireValue = int | bool | bytes | list["WireValue"]


# --- field codecs --------------------------------------------------------------------------------


def _dec_u64(value: object, name: str) -> int:
    # bool is an int subclass in Python; a peer sending True for a term is malformed.
    if type(value) is not int or not 0 <= value <= MAX_U64:
        raise WireError(f"{name}: expected an unsigned 64-bit integer, got {value!r:.40}")
    return value


def _dec_bool(value: object, name: str) -> bool:
    if type(value) is not bool:
        raise WireError(f"{name}: expected a boolean, got {value!r:.40}")
    return value


def _dec_bytes(value: object, name: str) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise WireError(f"{name}: expected bytes, got {type(value).__name__}")
    return bytes(value)


def _dec_list(value: object, name: str, length: int | None = None) -> list[object]:
    if not isinstance(value, list | tuple):
        raise WireError(f"{name}: expected a list, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise WireError(f"{name}: expected {length} items, got {len(value)}")
    return list(value)


def _enc_entry(entry: Entry) -> WireValue:
    return [entry.term, entry.index, int(entry.kind), entry.data]


def _dec_entry(value: object, name: str) -> Entry:
    term, index, kind, data = _dec_list(value, name, 4)
    kind_code = _dec_u64(kind, f"{name}.kind")
    if kind_code not in EntryKind.__members__.values():
        raise WireError(f"{name}.kind: unknown entry kind {kind_code}")
    return Entry(
        _dec_u64(term, f"{name}.term"),
        _dec_u64(index, f"{name}.index"),
        EntryKind(kind_code),
        _dec_bytes(data, f"{name}.data"),
    )


def _enc_entries(entries: object) -> WireValue:
    return [_enc_entry(e) for e in cast("tuple[Entry, ...]", entries)]


def _dec_entries(value: object, name: str) -> tuple[Entry, ...]:
    items = _dec_list(value, name)
    entries = tuple(_dec_entry(item, f"{name}[{i}]") for i, item in enumerate(items))
    for prev, entry in itertools.pairwise(entries):
        if entry.index != prev.index + 1:
            raise WireError(f"{name}: entry indexes are not consecutive")
    return entries


def _enc_ids(ids: frozenset[int]) -> WireValue:
    return list[WireValue](sorted(ids))


def _dec_ids(value: object, name: str) -> frozenset[int]:
    items = _dec_list(value, name)
    ids = frozenset(_dec_u64(v, name) for v in items)
    if 0 in ids:
        raise WireError(f"{name}: node id 0 is reserved")
    return ids


def _enc_meta(value: object) -> WireValue:
    meta = cast(SnapshotMeta, value)
    cs = meta.conf_state
    return [meta.index, meta.term, _enc_ids(cs.voters), _enc_ids(cs.learners)]


def _dec_meta(value: object, name: str) -> SnapshotMeta:
    index, term, voters, learners = _dec_list(value, name, 4)
    conf = ConfState(_dec_ids(voters, f"{name}.voters"), _dec_ids(learners, f"{name}.learners"))
    if conf.voters & conf.learners:
        raise WireError(f"{name}: a node is both voter and learner")
    return SnapshotMeta(_dec_u64(index, f"{name}.index"), _dec_u64(term, f"{name}.term"), conf)


def _enc_scalar(value: object) -> WireValue:
    return cast(WireValue, value)


Encoder = Callable[[object], WireValue]
Decoder = Callable[[object, str], object]

# Field kind -> (encode, decode). Every message field is declared by kind in _KINDS below.
_CODECS: Final[dict[str, tuple[Encoder, Decoder]]] = {
    "u64": (_enc_scalar, _dec_u64),
    "bool": (_enc_scalar, _dec_bool),
    "bytes": (_enc_scalar, _dec_bytes),
    "entries": (_enc_entries, _dec_entries),
    "meta": (_enc_meta, _dec_meta),
}

_KIND_BY_FIELD: Final[dict[str, str]] = {
    "pre_vote": "bool",
    "leadership_transfer": "bool",
    "vote_granted": "bool",
    "reject": "bool",
    "done": "bool",
    "commit_only": "bool",
    "data": "bytes",
    "context": "bytes",
    "entries": "entries",
    "meta": "meta",
}

_LAYOUT: Final[dict[type[Message], tuple[tuple[str, str], ...]]] = {
    cls: tuple((f.name, _KIND_BY_FIELD.get(f.name, "u64")) for f in fields(cls))
    for cls in WIRE_CODES.values()
}

# Fields added after the first wire format: trailing, left off the wire while they hold their
# default, so a message that does not use them keeps its first form.
_OPTIONAL_TAIL: Final[frozenset[str]] = frozenset({"commit_only"})
_REQUIRED: Final[dict[type[Message], int]] = {
    cls: len([name for name, _ in layout if name not in _OPTIONAL_TAIL])
    for cls, layout in _LAYOUT.items()
}


def to_wire(message: Message) -> list[WireValue]:
    """The message as `[code, field...]` in declaration order, ready for msgpack."""
    out: list[WireValue] = [_CODE_OF[type(message)]]
    for name, kind in _LAYOUT[type(message)]:
        value = getattr(message, name)
        if name in _OPTIONAL_TAIL and not value:
            break  # an optional tail field at its default, and so is everything after it
        out.append(_CODECS[kind][0](value))
    return out


def from_wire(value: object) -> Message:
    """Decode `to_wire` output (lists may arrive as tuples); raises only `WireError`."""
    items = _dec_list(value, "message")
    if not items:
        raise WireError("message: empty list")
    code = _dec_u64(items[0], "message type")
    cls = WIRE_CODES.get(code)
    if cls is None:
        raise WireError(f"message type {code} is unknown")
    layout = _LAYOUT[cls]
    required = _REQUIRED[cls]
    if not required <= len(items) - 1 <= len(layout):
        expected = f"{required}" if required == len(layout) else f"{required} to {len(layout)}"
        raise WireError(f"{cls.__name__}: expected {expected} fields, got {len(items) - 1}")
    values = {
        name: _CODECS[kind][1](raw, f"{cls.__name__}.{name}")
        for (name, kind), raw in zip(layout, items[1:], strict=False)
    }
    message = cls(**values)  # type: ignore[arg-type]
    # Figure 2: the entries are those "immediately preceded" by prev_log_index.
    if (
        isinstance(message, AppendEntries)
        and message.entries
        and message.entries[0].index != message.prev_log_index + 1
    ):
        raise WireError("AppendEntries: entries do not follow prev_log_index")
    return message
