"""Value types shared by the Raft core, its storage and the WAL layer.

Implements the persistent-state vocabulary of the Raft paper (Ongaro & Ousterhout 2014, Figure 2:
currentTerm, votedFor, log[]) in the etcd-io/raft shape: `HardState` is what must reach stable
storage before any message that depends on it is sent; `Entry` is one log slot; `SnapshotMeta`
names the last entry a snapshot replaces (§7) and the configuration in force at that entry.

Invariants: every type here is immutable; node ids are positive integers and 0 means "none";
terms and indexes are non-negative and the entry at index 0 is the empty sentinel of term 0.
Configuration changes are single-server (Ongaro's thesis §4.1): one `ConfChange` adds, removes or
promotes exactly one member.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

NONE = 0
"""The node id meaning "no node" (no vote cast, leader unknown)."""


class EntryKind(IntEnum):
    """What a log entry carries; the state machine applies NORMAL entries only."""

    NORMAL = 0
    CONF_CHANGE = 1
    # The no-op a new leader appends so that it can commit an entry of its own term (§5.4.2, §8).
    EMPTY = 2


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry (Figure 2: "each entry contains command for state machine, and term")."""

    term: int
    index: int
    kind: EntryKind = EntryKind.NORMAL
    data: bytes = b""

    def size(self) -> int:
        """Approximate encoded size, used for the per-message and per-Ready byte budgets."""
        return len(self.data) + 24


@dataclass(frozen=True, slots=True)
class HardState:
    """State that must be on stable storage before responding to RPCs (Figure 2)."""

    term: int = 0
    vote: int = NONE
    commit: int = 0


@dataclass(frozen=True, slots=True)
class ConfState:
    """The cluster membership: voters count towards quorums, learners only receive the log."""

    voters: frozenset[int] = frozenset()
    learners: frozenset[int] = frozenset()

    def members(self) -> frozenset[int]:
        return self.voters | self.learners

    def apply(self, change: ConfChange) -> ConfState:
        """The configuration after `change`; unknown or redundant changes leave it unchanged."""
        node = change.node_id
        if change.kind is ConfChangeKind.ADD_NODE:
            return ConfState(self.voters | {node}, self.learners - {node})
        if change.kind is ConfChangeKind.ADD_LEARNER:
            if node in self.voters:
                # Demotion is not a single-server change we support; the proposal path refuses it.
                return self
            return ConfState(self.voters, self.learners | {node})
        return ConfState(self.voters - {node}, self.learners - {node})


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """Identifies a snapshot: it replaces every entry up to and including (index, term) (§7)."""

    index: int = 0
    term: int = 0
    conf_state: ConfState = ConfState()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """State-machine image plus its metadata; `data` is opaque to Raft."""

    meta: SnapshotMeta = SnapshotMeta()
    data: bytes = b""


class ConfChangeKind(IntEnum):
    """Single-server membership changes (thesis §4.1); ADD_NODE on a learner promotes it."""

    ADD_NODE = 0
    REMOVE_NODE = 1
    ADD_LEARNER = 2


_CONF_CHANGE_HEAD = struct.Struct(">BQ")


class ConfChangeDecodeError(ValueError):
    """The data of a CONF_CHANGE entry is not an encoded `ConfChange`."""


@dataclass(frozen=True, slots=True)
class ConfChange:
    """A membership change, carried as the data of a CONF_CHANGE entry."""

    kind: ConfChangeKind
    node_id: int
    context: bytes = b""

    def encode(self) -> bytes:
        return _CONF_CHANGE_HEAD.pack(self.kind, self.node_id) + self.context

    @classmethod
    def decode(cls, data: bytes) -> ConfChange:
        if len(data) < _CONF_CHANGE_HEAD.size:
            raise ConfChangeDecodeError(f"conf change of {len(data)} bytes is too short")
        kind, node_id = _CONF_CHANGE_HEAD.unpack_from(data)
        if kind not in ConfChangeKind.__members__.values():
            raise ConfChangeDecodeError(f"unknown conf change kind {kind}")
        if node_id == NONE:
            raise ConfChangeDecodeError("conf change names node 0")
        return cls(ConfChangeKind(kind), node_id, bytes(data[_CONF_CHANGE_HEAD.size :]))


@dataclass(frozen=True, slots=True)
class ReadState:
    """A ReadIndex answer (thesis §6.4): reads tagged `context` may be served once the local
    state machine has applied `index`."""

    index: int
    context: bytes
