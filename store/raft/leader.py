"""The leader's half of Raft: replication, commitment, heartbeats and ReadIndex.

Implements §5.3 (AppendEntries with nextIndex back-off, here with etcd's probe/replicate flow
control and a bounded in-flight window), §5.4.2 (commit only current-term entries, by counting
matchIndex over the voters), §7 (chunked InstallSnapshot to followers whose next entry was
compacted), thesis §6.2 (check-quorum) and thesis §6.4 (ReadIndex confirmed by a heartbeat
round). `RaftNode` inherits this mixin; it holds no state of its own.

Invariants: every message that carries entries is generated in `_flush` or in reply to a
follower, i.e. inside the Ready that also persists those entries on the leader; a follower in
SNAPSHOT state gets nothing but snapshot chunks; `commit` never decreases.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import NoReturn

from store.raft.config import Config
from store.raft.log import RaftInvariantError, RaftLog
from store.raft.membership import quorum
from store.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    Message,
    ReadIndexRequest,
    ReadIndexResponse,
    TimeoutNow,
)
from store.raft.progress import Progress, ProgressState, SnapshotTransfer
from store.raft.readindex import PendingRead, ReadIndexQueue
from store.raft.ready import Role
from store.raft.storage import CompactedError
from store.raft.types import NONE, ConfState, Entry, EntryKind, ReadState


class LeaderRole(ABC):
    """Leader-side behaviour of `RaftNode` (a mixin: the attributes belong to the node)."""

    id: int
    config: Config
    log: RaftLog
    prs: dict[int, Progress]
    conf: ConfState
    term: int
    lead: int
    role: Role
    read_states: list[ReadState]
    election_elapsed: int
    heartbeat_elapsed: int
    lead_transferee: int
    _reads: ReadIndexQueue
    _bcast_due: bool

    # Provided by RaftNode, which mixes this role in.
    @abstractmethod
    def _send(self, m: Message) -> None: ...

    @abstractmethod
    def _become_follower(self, term: int, lead: int) -> None: ...

    @abstractmethod
    def _refuse(self, reason: str) -> NoReturn: ...

    def _check_can_propose(self) -> None:
        if self.role is not Role.LEADER:
            self._refuse("not the leader")
        if self.lead_transferee != NONE:
            self._refuse("leadership transfer in progress")

    def _append_entries(self, items: list[tuple[EntryKind, bytes]]) -> list[Entry]:
        first = self.log.last_index() + 1
        entries = [Entry(self.term, first + i, kind, data) for i, (kind, data) in enumerate(items)]
        self.log.append(entries)
        self._bcast_due = True
        return entries

    def _maybe_commit(self) -> bool:
        """§5.4.2: advance commitIndex to the highest index stored on a quorum of voters, but
        only if that entry is from the current term."""
        voters = self.conf.voters
        if not voters:
            return False
        matches = sorted((self.prs[v].match for v in voters if v in self.prs), reverse=True)
        if len(matches) < quorum(voters):
            return False
        candidate = matches[quorum(voters) - 1]
        if candidate <= self.log.committed or self.log.term(candidate) != self.term:
            return False
        self.log.commit_to(candidate)
        self._bcast_due = True
        if self._reads.waiting_commit:
            waiting, self._reads.waiting_commit = self._reads.waiting_commit, []
            for context, requester in waiting:
                self._leader_read(context, requester)
        return True

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.config.election_tick:
            self.election_elapsed = 0
            if self.config.check_quorum and not self._quorum_active():
                # Thesis §6.2: a leader that cannot reach a quorum steps down, so clients retry
                # elsewhere instead of waiting on it.
                self._become_follower(self.term, NONE)
                return
            self.lead_transferee = NONE  # the transfer did not finish in time: abort it
        if self.heartbeat_elapsed >= self.config.heartbeat_tick:
            self.heartbeat_elapsed = 0
            self._bcast_heartbeat()

    def _quorum_active(self) -> bool:
        voters = self.conf.voters
        active = sum(
            1 for v in voters if v == self.id or (v in self.prs and self.prs[v].recent_active)
        )
        for node, pr in self.prs.items():
            if node != self.id:
                pr.recent_active = False
        return active >= quorum(voters)

    def _bcast_heartbeat(self) -> None:
        for node, pr in self.prs.items():
            if node != self.id:
                commit = min(pr.match, self.log.committed)
                self._send(Heartbeat(self.term, self.id, node, commit, self._reads.seq))

    def _flush(self) -> None:
        """Turn the batched "something changed" flags into messages, once per Ready."""
        if self.role is not Role.LEADER:
            self._bcast_due = self._reads.round_due = False
            return
        if self._reads.start_round() is not None:
            self._bcast_heartbeat()
            self.heartbeat_elapsed = 0
        if self._bcast_due:
            self._bcast_due = False
            for node in self.prs:
                if node != self.id:
                    self._send_append(node)
                    self._replicate_more(node)

    def _send_append(self, to: int, send_if_empty: bool = True) -> bool:
        pr = self.prs[to]
        if pr.is_paused(self.config.max_inflight_msgs):
            return False
        prev_index = pr.next - 1
        prev_term = self.log.term(prev_index)
        try:
            entries = self.log.slice(
                pr.next, self.log.last_index() + 1, self.config.max_size_per_msg
            )
        except CompactedError:
            prev_term = None
        if prev_term is None:
            return self._send_snapshot(to, pr)
        if not entries and not send_if_empty:
            return False
        # The follower already holds everything: this append only carries the commit index.
        commit_only = (
            not entries
            and pr.state is ProgressState.REPLICATE
            and pr.match >= self.log.last_index()
        )
        self._send(
            AppendEntries(
                self.term,
                self.id,
                to,
                prev_index,
                prev_term,
                tuple(entries),
                self.log.committed,
                commit_only,
            )
        )
        if entries and pr.state is ProgressState.REPLICATE:
            last = entries[-1].index
            pr.optimistic_update(last)
            pr.inflights.append(last)
        elif pr.state is ProgressState.PROBE:
            pr.probe_sent = True
        return True

    def _replicate_more(self, to: int) -> None:
        """Pipelining (§5.3 / etcd flow control): fill the in-flight window of a REPLICATE peer."""
        pr = self.prs[to]
        while (
            pr.state is ProgressState.REPLICATE
            and pr.next <= self.log.last_index()
            and self._send_append(to, send_if_empty=False)
        ):
            pass

    def _send_snapshot(self, to: int, pr: Progress) -> bool:
        if not pr.recent_active:
            return False  # do not ship a snapshot to a peer that may be down
        snapshot = self.log.storage.snapshot()
        if snapshot.meta.index == 0:
            raise RaftInvariantError("log compacted without a snapshot")
        pr.become_snapshot(SnapshotTransfer(snapshot.meta, snapshot.data))
        self._send_snapshot_chunk(to, pr)
        return True

    def _send_snapshot_chunk(self, to: int, pr: Progress) -> None:
        transfer = pr.snapshot
        assert transfer is not None
        start = transfer.acked
        chunk = transfer.data[start : start + self.config.snapshot_chunk_size]
        done = start + len(chunk) >= len(transfer.data)
        self._send(InstallSnapshot(self.term, self.id, to, transfer.meta, start, chunk, done))
        transfer.in_flight = True

    def _handle_append_response(self, m: Message) -> None:
        assert isinstance(m, AppendEntriesResponse)
        pr = self.prs.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        if m.reject:
            hint = m.reject_hint
            if m.hint_term > 0:
                hint = self.log.find_conflict_by_term(hint, m.hint_term)
            if pr.maybe_decrease_to(m.index, hint):
                if pr.state is ProgressState.REPLICATE:
                    pr.become_probe()
                self._send_append(m.src)
            return
        if not pr.maybe_update(m.index):
            return
        if pr.state is ProgressState.PROBE:
            pr.become_replicate()
        elif pr.state is ProgressState.SNAPSHOT:
            assert pr.snapshot is not None
            if pr.match >= pr.snapshot.meta.index:
                pr.become_probe()
                pr.become_replicate()
        else:
            pr.free_inflights_to(m.index)
        self._maybe_commit()
        self._replicate_more(m.src)
        if m.src == self.lead_transferee and pr.match == self.log.last_index():
            self._send(TimeoutNow(self.term, self.id, m.src))

    def _handle_heartbeat_response(self, m: Message) -> None:
        assert isinstance(m, HeartbeatResponse)
        pr = self.prs.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        pr.probe_sent = False
        if pr.state is ProgressState.SNAPSHOT:
            assert pr.snapshot is not None
            if pr.snapshot.in_flight:
                self._send_snapshot_chunk(m.src, pr)  # re-send a chunk that may be lost
        else:
            if pr.state is ProgressState.REPLICATE and pr.is_paused(self.config.max_inflight_msgs):
                # The window may be full of lost messages; let one more probe through, whose
                # rejection (if there is a gap) moves the peer back to PROBE.
                pr.inflights.popleft()
            if pr.match < self.log.last_index():
                self._send_append(m.src)
        if m.read_seq > pr.read_acked:
            pr.read_acked = m.read_seq
            self._release_reads()

    def _handle_snapshot_response(self, m: Message) -> None:
        assert isinstance(m, InstallSnapshotResponse)
        pr = self.prs.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        transfer = pr.snapshot
        if pr.state is not ProgressState.SNAPSHOT or transfer is None:
            return
        if transfer.meta.index != m.index or m.next_offset > len(transfer.data):
            return
        transfer.acked = m.next_offset
        transfer.in_flight = False
        if transfer.acked < len(transfer.data):
            self._send_snapshot_chunk(m.src, pr)

    # --- ReadIndex (thesis §6.4) ------------------------------------------------------------

    def _handle_read_request(self, m: Message) -> None:
        assert isinstance(m, ReadIndexRequest)
        if m.src in self.prs:
            self._leader_read(m.context, m.src)

    def _leader_read(self, context: bytes, requester: int) -> None:
        if self.conf.voters == {self.id}:
            self._answer_read(PendingRead(0, self.log.committed, context, requester))
            return
        if self.log.term(self.log.committed) != self.term:
            # Thesis §6.4 step 1: until its no-op commits, the leader does not know the commit
            # index of the cluster; hold the read until it does.
            self._reads.waiting_commit.append((context, requester))
            return
        # Steps 2-3: record the commit index and confirm leadership with a heartbeat round.
        self._reads.add(self.log.committed, context, requester)

    def _release_reads(self) -> None:
        acked = {node: pr.read_acked for node, pr in self.prs.items()}
        for read in self._reads.release(acked, self.conf.voters, self.id):
            self._answer_read(read)

    def _answer_read(self, read: PendingRead) -> None:
        if read.requester == self.id:
            self.read_states.append(ReadState(read.index, read.context))
        else:
            self._send(
                ReadIndexResponse(self.term, self.id, read.requester, read.index, read.context)
            )
