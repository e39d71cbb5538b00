"""What the leader knows about each follower: matchIndex, nextIndex and flow control.

Implements the leader's volatile state of the Raft paper (Figure 2: nextIndex[], matchIndex[])
with etcd-io/raft's flow control: a follower is PROBE (one AppendEntries in flight until it
answers, used after a rejection or a restart), REPLICATE (optimistic pipelining with at most
`max_inflight` unacknowledged messages) or SNAPSHOT (an InstallSnapshot transfer is running, §7).

Invariants: `match < next`; in REPLICATE the inflight window holds the last index of each
unacknowledged AppendEntries in increasing order; in SNAPSHOT nothing but snapshot chunks is sent.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum

from store.raft.types import SnapshotMeta


class ProgressState(Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


@dataclass(slots=True)
class SnapshotTransfer:
    """A chunked InstallSnapshot in progress: the follower acknowledged bytes [0, acked)."""

    meta: SnapshotMeta
    data: bytes
    acked: int = 0
    # A chunk is unacknowledged; if it was lost it is re-sent on the next heartbeat reply.
    in_flight: bool = False


@dataclass(slots=True)
class Progress:
    match: int
    next: int
    is_learner: bool = False
    state: ProgressState = ProgressState.PROBE
    # PROBE: an AppendEntries is outstanding, wait for its answer (or a heartbeat reply).
    probe_sent: bool = False
    inflights: deque[int] = field(default_factory=deque)
    # Heard from within the current election timeout (check-quorum, thesis §6.2).
    recent_active: bool = False
    snapshot: SnapshotTransfer | None = None
    # Highest ReadIndex round this follower has confirmed (thesis §6.4).
    read_acked: int = 0

    def reset_state(self, state: ProgressState) -> None:
        self.probe_sent = False
        self.state = state
        self.inflights.clear()
        self.snapshot = None

    def become_probe(self) -> None:
        pending = self.snapshot.meta.index if self.snapshot is not None else 0
        self.reset_state(ProgressState.PROBE)
        self.next = max(self.match + 1, pending + 1)

    def become_replicate(self) -> None:
        self.reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, transfer: SnapshotTransfer) -> None:
        self.reset_state(ProgressState.SNAPSHOT)
        self.snapshot = transfer

    def maybe_update(self, index: int) -> bool:
        """An acknowledgement up to `index`; False if it tells nothing new."""
        if index <= self.match:
            return False
        self.match = index
        self.next = max(self.next, index + 1)
        self.probe_sent = False
        return True

    def optimistic_update(self, last: int) -> None:
        self.next = last + 1

    def maybe_decrease_to(self, rejected: int, match_hint: int) -> bool:
        """A rejection of the AppendEntries with prev_log_index `rejected`; False if stale."""
        if self.state is ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False  # an answer to an older probe
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.probe_sent = False
        return True

    def free_inflights_to(self, index: int) -> None:
        while self.inflights and self.inflights[0] <= index:
            self.inflights.popleft()

    def is_paused(self, max_inflight: int) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return len(self.inflights) >= max_inflight
        return True
