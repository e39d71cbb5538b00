"""The `Ready` batch: everything the shell must do for a node, in order.

Implements etcd-io/raft's Ready contract (its README, "Usage"): (1) write `snapshot`, `entries`
and then `hard_state` to stable storage, fsyncing if `must_sync`; (2) only then send `messages`;
(3) apply `snapshot` and `committed_entries` to the state machine and serve `read_states` once
applied reaches their index; (4) call `RaftNode.advance(ready)`.

Invariant: every message in a Ready may depend on the state persisted in step 1 (a vote, an
appended entry), which is why sending before persisting would break Figure 2's rule "respond to
RPCs only after updating stable storage" - except where `may_send_before_persist` says the
messages depend on nothing unpersisted (a leader's, thesis §10.2.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from store.raft.messages import Message
from store.raft.types import Entry, HardState, ReadState, Snapshot


class Role(Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile state worth reporting (not persisted): who leads and what this node is."""

    leader: int
    role: Role


@dataclass(frozen=True, slots=True)
class Ready:
    soft_state: SoftState | None
    hard_state: HardState | None
    entries: tuple[Entry, ...]
    snapshot: Snapshot | None
    committed_entries: tuple[Entry, ...]
    messages: tuple[Message, ...]
    read_states: tuple[ReadState, ...]
    # New entries, a new term or a new vote must be fsynced; a commit index alone need not be
    # (it is re-learned from the leader after a crash).
    must_sync: bool
    # Thesis §10.2.1: "the leader can write to its disk in parallel with replicating to the
    # followers". True when this node leads and its term and vote are already on disk: the
    # messages depend on nothing in this Ready (the leader counts its own entries towards a
    # majority only after `advance`), so the shell may send them before or while persisting.
    may_send_before_persist: bool = False


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """The leader's view of one peer (matchIndex, nextIndex, flow-control state)."""

    match: int
    next: int
    state: str
    is_learner: bool


@dataclass(frozen=True, slots=True)
class Status:
    """A snapshot of a node for status commands (etcd's `endpoint status`, `raft.Status`)."""

    id: int
    role: Role
    leader: int
    term: int
    vote: int
    commit: int
    applied: int
    last_index: int
    first_index: int
    voters: frozenset[int]
    learners: frozenset[int]
    # Only filled on the leader.
    progress: tuple[tuple[int, PeerStatus], ...] = ()
