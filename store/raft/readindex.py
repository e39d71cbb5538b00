"""ReadIndex bookkeeping on the leader (Raft thesis §6.4, etcd-io/raft `readOnly`).

A linearizable read is served at the commit index the leader had when the read arrived, once
the leader has proven it was still the leader at that moment: a heartbeat round sent after the
read was registered must be acknowledged by a majority. Reads are numbered with the round
(`seq`) that will confirm them; a follower acknowledging round `s` confirms every read numbered
`s` or lower, because heartbeats carry the newest round.

Invariants: `pending` is ordered by seq and by index; reads that arrive before the leader has
committed an entry of its own term wait in `waiting_commit` (thesis §6.4 step 1); everything is
dropped when the node stops leading (clients retry).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PendingRead:
    seq: int
    index: int
    context: bytes
    requester: int


class ReadIndexQueue:
    __slots__ = ("pending", "round_due", "seq", "waiting_commit")

    def __init__(self) -> None:
        self.pending: deque[PendingRead] = deque()
        self.waiting_commit: list[tuple[bytes, int]] = []
        self.seq = 0
        self.round_due = False

    def clear(self) -> None:
        """Forget every read (leadership lost); `seq` keeps growing so old acks stay stale."""
        self.pending.clear()
        self.waiting_commit.clear()
        self.round_due = False

    def add(self, index: int, context: bytes, requester: int) -> None:
        """Register a read at `index`; the next heartbeat round will confirm it."""
        self.pending.append(PendingRead(self.seq + 1, index, context, requester))
        self.round_due = True

    def start_round(self) -> int | None:
        """The seq to put in this batch of heartbeats, if a new round is needed."""
        if not self.round_due:
            return None
        self.round_due = False
        self.seq += 1
        return self.seq

    def release(
        self, acked: dict[int, int], voters: frozenset[int], self_id: int
    ) -> list[PendingRead]:
        """Reads confirmed by a majority; `acked[v]` is the newest round voter v confirmed."""
        needed = len(voters) // 2 + 1
        done: list[PendingRead] = []
        while self.pending:
            read = self.pending[0]
            acks = sum(1 for v in voters if v == self_id or acked.get(v, 0) >= read.seq)
            if acks < needed:
                break
            done.append(self.pending.popleft())
        return done
