"""`RaftNode`: the sans-IO Raft state machine (the etcd-io/raft `raft` + `RawNode` shape).

Implements the Raft paper (Ongaro & Ousterhout 2014) and thesis chapters used by etcd: leader
election with randomized timeouts (§5.2), pre-vote and check-quorum (thesis §9.6, §6.2), log
replication with probe/replicate flow control and a bounded in-flight window (§5.3), commitment
by counting replicas of current-term entries only (§5.4.2), ReadIndex reads (thesis §6.4),
chunked InstallSnapshot (§7), single-server membership changes with learners (thesis §4.1, §4.2.1)
and leadership transfer (thesis §3.10).

Inputs are `tick()`, `step(message)` and the proposal calls; outputs come out of `ready()` and
are acknowledged by `advance(ready)`. Between `ready()` and `advance()` the node refuses input,
so a Ready is always a consistent cut. The node reads no clock and no randomness but the
`random.Random` it is given.

Invariants: at most one vote per term is persisted before any vote is sent; a leader counts its
own log towards a quorum only once the shell has persisted it; only entries of the leader's
current term are committed by counting; a configuration change takes effect when applied and at
most one is pending at a time, and only after the leader committed an entry of its own term.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final

from store.raft.config import Config, ConfigError
from store.raft.log import RaftInvariantError, RaftLog
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
    RequestVote,
    RequestVoteResponse,
    TimeoutNow,
)
from store.raft.progress import Progress, ProgressState, SnapshotTransfer
from store.raft.ready import Ready, Role, SoftState
from store.raft.storage import CompactedError, MemoryStorage
from store.raft.types import (
    NONE,
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    ReadState,
    Snapshot,
    SnapshotMeta,
)


class ProposalDropped(Exception):
    """A proposal, read or transfer was refused; `leader` is the leader this node knows (or 0)."""

    def __init__(self, reason: str, leader: int = NONE) -> None:
        super().__init__(reason)
        self.reason = reason
        self.leader = leader


class RaftUsageError(RuntimeError):
    """The shell broke the Ready protocol (input between `ready()` and `advance()`, ...)."""


class _Tally(Enum):
    PENDING = 0
    WON = 1
    LOST = 2


@dataclass(slots=True)
class _PendingRead:
    seq: int
    index: int
    context: bytes
    requester: int


@dataclass(slots=True)
class _SnapshotReceive:
    meta: SnapshotMeta
    chunks: list[bytes]
    size: int


def quorum(voters: frozenset[int]) -> int:
    return len(voters) // 2 + 1


class RaftNode:
    """One Raft peer. Not thread-safe: one owner task drives it (STYLE.md rule 2)."""

    def __init__(self, config: Config, storage: MemoryStorage, rng: random.Random) -> None:
        config.validate()
        self.id: Final = config.id
        self.config: Final = config
        self._rng = rng
        self.log = RaftLog(storage)
        hard, conf = storage.initial_state()
        self.term = hard.term
        self.vote = hard.vote
        if hard.commit > self.log.last_index():
            raise ConfigError(f"hard state commit {hard.commit} is beyond the stored log")
        self.log.commit_to(hard.commit)
        self.conf = conf
        applied = max(config.applied, self.log.first_index() - 1)
        if applied > self.log.committed:
            raise ConfigError(f"applied {applied} is beyond the commit index {self.log.committed}")
        # The state machine already reflects these entries, so their conf changes are in force.
        for entry in self.log.slice(self.log.first_index(), applied + 1):
            if entry.kind is EntryKind.CONF_CHANGE:
                self.conf = self.conf.apply(ConfChange.decode(entry.data))
        self.log.applied = applied

        self.role = Role.FOLLOWER
        self.lead = NONE
        self.prs: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.msgs: list[Message] = []
        self.read_states: list[ReadState] = []
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = config.election_tick
        self.lead_transferee = NONE
        self.pending_conf_index = 0
        self._reads: deque[_PendingRead] = deque()
        self._reads_waiting_commit: list[tuple[bytes, int]] = []
        self._read_seq = 0
        self._read_round_due = False
        self._bcast_due = False
        self._snap_rx: _SnapshotReceive | None = None
        self._outstanding: Ready | None = None
        self._prev_soft = SoftState(NONE, Role.FOLLOWER)
        self._prev_hard = hard
        self._become_follower(self.term, NONE)

    # ---------------------------------------------------------------------------------------
    # Introspection
    # ---------------------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.role is Role.LEADER

    @property
    def leader(self) -> int:
        return self.lead

    @property
    def commit_index(self) -> int:
        return self.log.committed

    @property
    def applied_index(self) -> int:
        return self.log.applied

    @property
    def conf_state(self) -> ConfState:
        return self.conf

    def hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.log.committed)

    def soft_state(self) -> SoftState:
        return SoftState(self.lead, self.role)

    def promotable(self) -> bool:
        return self.id in self.conf.voters and self.log.unstable_snapshot is None

    # ---------------------------------------------------------------------------------------
    # Inputs
    # ---------------------------------------------------------------------------------------

    def tick(self) -> None:
        """One logical clock tick (`Config.tick_interval` of wall time in the shell)."""
        self._guard()
        if self.role is Role.LEADER:
            self._tick_heartbeat()
        else:
            self._tick_election()

    def campaign(self) -> None:
        """Start an election now (as if the election timeout had fired)."""
        self._guard()
        self._hup(transfer=False)

    def propose(self, data: bytes) -> Entry:
        """Append a NORMAL entry on the leader; the returned entry says where it will commit."""
        return self.propose_batch([data])[0]

    def propose_batch(self, datas: list[bytes]) -> list[Entry]:
        """Append several NORMAL entries at once (one message per follower carries them all)."""
        self._guard()
        self._check_can_propose()
        return self._append_entries([(EntryKind.NORMAL, d) for d in datas])

    def propose_conf_change(self, change: ConfChange) -> Entry:
        """Propose one single-server membership change (thesis §4.1).

        Refused while another change is pending (proposed but not applied), before the leader
        has applied an entry of its own term (the fix to the single-server change bug Ongaro
        reported in 2015), and when promoting a learner that has not caught up."""
        self._guard()
        self._check_can_propose()
        if self.pending_conf_index > self.log.applied:
            raise ProposalDropped("a configuration change is already pending", self.lead)
        self._validate_conf_change(change)
        entry = self._append_entries([(EntryKind.CONF_CHANGE, change.encode())])[0]
        self.pending_conf_index = entry.index
        return entry

    def read_index(self, context: bytes) -> None:
        """Request a linearizable read (thesis §6.4); the answer arrives as a `ReadState` with the
        same context in a later Ready. Forwarded to the leader when this node follows."""
        self._guard()
        if self.role is Role.LEADER:
            self._leader_read(context, self.id)
        elif self.lead != NONE:
            self._send(ReadIndexRequest(self.term, self.id, self.lead, context))
        else:
            raise ProposalDropped("no leader is known", NONE)

    def transfer_leadership(self, to: int) -> None:
        """Hand leadership to voter `to` (thesis §3.10): catch it up, then send TimeoutNow.
        Proposals are refused until it completes or an election timeout passes."""
        self._guard()
        if self.role is not Role.LEADER:
            raise ProposalDropped("only the leader can transfer leadership", self.lead)
        if to not in self.conf.voters:
            raise ProposalDropped(f"node {to} is not a voter", self.lead)
        if to in (self.id, self.lead_transferee):
            return
        self.lead_transferee = to
        self.election_elapsed = 0
        if self.prs[to].match == self.log.last_index():
            self._send(TimeoutNow(self.term, self.id, to))
        else:
            self._send_append(to)

    def step(self, m: Message) -> None:
        """Process one message from a peer (the shell decoded it with `from_wire`)."""
        self._guard()
        if m.dst != self.id or m.src in (self.id, NONE):
            return
        if m.term > self.term:
            if isinstance(m, RequestVote):
                in_lease = (
                    self.config.check_quorum
                    and self.lead != NONE
                    and self.election_elapsed < self.config.election_tick
                )
                if in_lease and not m.leadership_transfer:
                    # Thesis §4.2.3: a node hearing from a leader ignores vote requests, so a
                    # removed or partitioned server cannot disrupt the cluster.
                    return
            if isinstance(m, RequestVote) and m.pre_vote:
                pass  # thesis §9.6: a pre-vote never changes the receiver's term
            elif isinstance(m, RequestVoteResponse) and m.pre_vote and m.vote_granted:
                pass  # the term is bumped once the pre-vote wins
            elif isinstance(m, AppendEntries | Heartbeat | InstallSnapshot):
                self._become_follower(m.term, m.src)
            else:
                self._become_follower(m.term, NONE)
        elif m.term < self.term:
            if isinstance(m, AppendEntries | Heartbeat):
                # Figure 2: "Reply false if term < currentTerm" - the reply carries our term so a
                # deposed leader steps down; with pre-vote it might never see a higher term else.
                self._send(AppendEntriesResponse(self.term, self.id, m.src, 0))
            elif isinstance(m, RequestVote) and m.pre_vote:
                self._send(RequestVoteResponse(self.term, self.id, m.src, False, pre_vote=True))
            return
        if isinstance(m, RequestVote):
            self._handle_vote_request(m)
            return
        handler = _HANDLERS[self.role].get(type(m))
        if handler is not None:
            handler(self, m)

    # ---------------------------------------------------------------------------------------
    # Ready / advance
    # ---------------------------------------------------------------------------------------

    def has_ready(self) -> bool:
        if self._outstanding is not None:
            return False
        return bool(
            self.msgs
            or self.read_states
            or self.log.unstable
            or self.log.unstable_snapshot is not None
            or (self.role is Role.LEADER and (self._bcast_due or self._read_round_due))
            or self.soft_state() != self._prev_soft
            or self.hard_state() != self._prev_hard
            or self.log.has_next_committed_entries()
        )

    def ready(self) -> Ready:
        """Collect the work for the shell; call `advance(ready)` once it is done."""
        self._guard()
        self._flush()
        soft = self.soft_state()
        hard = self.hard_state()
        entries = tuple(self.log.unstable)
        snapshot = self.log.unstable_snapshot
        rd = Ready(
            soft_state=soft if soft != self._prev_soft else None,
            hard_state=hard if hard != self._prev_hard else None,
            entries=entries,
            snapshot=snapshot,
            committed_entries=tuple(
                self.log.next_committed_entries(self.config.max_committed_size_per_ready)
            ),
            messages=tuple(self.msgs),
            read_states=tuple(self.read_states),
            must_sync=bool(entries)
            or snapshot is not None
            or hard.term != self._prev_hard.term
            or hard.vote != self._prev_hard.vote,
        )
        self.msgs = []
        self.read_states = []
        self._prev_soft = soft
        self._prev_hard = hard
        self._outstanding = rd
        return rd

    def advance(self, rd: Ready) -> None:
        """The shell persisted, sent and applied `rd`; record that in storage and in the log."""
        if rd is not self._outstanding:
            raise RaftUsageError("advance() must be given the Ready returned by ready()")
        self._outstanding = None
        storage = self.log.storage
        if rd.snapshot is not None:
            storage.apply_snapshot(rd.snapshot)
            self.log.stable_snap_to(rd.snapshot.meta.index)
            self.log.applied = max(self.log.applied, rd.snapshot.meta.index)
        if rd.entries:
            storage.append(rd.entries)
            last = rd.entries[-1]
            self.log.stable_to(last.index, last.term)
        if rd.hard_state is not None:
            storage.set_hard_state(rd.hard_state)
        for entry in rd.committed_entries:
            if entry.index <= self.log.applied:
                continue
            self.log.applied_to(entry.index)
            if entry.kind is EntryKind.CONF_CHANGE:
                self._apply_conf_change(ConfChange.decode(entry.data))
        if self.role is Role.LEADER:
            own = self.prs.get(self.id)
            if own is not None and own.maybe_update(self.log.stable_last_index()):
                self._maybe_commit()

    # ---------------------------------------------------------------------------------------
    # Role transitions
    # ---------------------------------------------------------------------------------------

    def _reset(self, term: int) -> None:
        if term != self.term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        # §5.2: "election timeouts are chosen randomly from a fixed interval".
        tick = self.config.election_tick
        self.randomized_election_timeout = tick + self._rng.randrange(tick)
        self.lead_transferee = NONE
        self.votes = {}
        self.pending_conf_index = 0
        self._reads.clear()
        self._reads_waiting_commit.clear()
        self._read_round_due = False
        self._bcast_due = False
        self._rebuild_progress()

    def _rebuild_progress(self) -> None:
        last = self.log.last_index()
        self.prs = {
            node: Progress(match=0, next=last + 1, is_learner=node in self.conf.learners)
            for node in self.conf.members()
        }
        own = self.prs.get(self.id)
        if own is not None:
            own.match = self.log.stable_last_index()
            own.recent_active = True

    def _become_follower(self, term: int, lead: int) -> None:
        self._reset(term)
        self.lead = lead
        self.role = Role.FOLLOWER

    def _become_pre_candidate(self) -> None:
        # Pre-vote changes neither term nor vote (thesis §9.6).
        self.role = Role.PRE_CANDIDATE
        self.votes = {}
        self.lead = NONE

    def _become_candidate(self) -> None:
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = Role.CANDIDATE

    def _become_leader(self) -> None:
        self._reset(self.term)
        self.lead = self.id
        self.role = Role.LEADER
        self.prs[self.id].become_replicate()
        # §8: the new leader commits a no-op of its own term to learn what is committed; no conf
        # change may be proposed until it is applied.
        entry = self._append_entries([(EntryKind.EMPTY, b"")])[0]
        self.pending_conf_index = entry.index

    # ---------------------------------------------------------------------------------------
    # Elections
    # ---------------------------------------------------------------------------------------

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.election_elapsed >= self.randomized_election_timeout:
            self.election_elapsed = 0
            self._hup(transfer=False)

    def _hup(self, transfer: bool) -> None:
        if self.role is Role.LEADER or not self.promotable():
            return
        # A committed but unapplied conf change could remove us; wait until it is applied.
        pending = self.log.slice(self.log.applied + 1, self.log.committed + 1)
        if any(entry.kind is EntryKind.CONF_CHANGE for entry in pending):
            return
        self._campaign(pre=self.config.pre_vote and not transfer, transfer=transfer)

    def _campaign(self, pre: bool, transfer: bool) -> None:
        if pre:
            self._become_pre_candidate()
            vote_term = self.term + 1
        else:
            self._become_candidate()
            vote_term = self.term
        self.votes = {self.id: True}
        if self._tally() is _Tally.WON:
            if pre:
                self._campaign(pre=False, transfer=transfer)
            else:
                self._become_leader()
            return
        last_index, last_term = self.log.last_index(), self.log.last_term()
        for voter in sorted(self.conf.voters - {self.id}):
            self._send(RequestVote(vote_term, self.id, voter, last_index, last_term, pre, transfer))

    def _tally(self) -> _Tally:
        voters = self.conf.voters
        granted = sum(1 for v in voters if self.votes.get(v) is True)
        rejected = sum(1 for v in voters if self.votes.get(v) is False)
        if granted >= quorum(voters):
            return _Tally.WON
        if rejected > len(voters) - quorum(voters):
            return _Tally.LOST
        return _Tally.PENDING

    def _handle_vote_request(self, m: RequestVote) -> None:
        # Figure 2 RequestVote rule 2: one vote per term, only for an up-to-date log (§5.4.1).
        can_vote = (
            self.vote == m.src
            or (self.vote == NONE and self.lead == NONE)
            or (m.pre_vote and m.term > self.term)
        )
        if can_vote and self.log.is_up_to_date(m.last_log_index, m.last_log_term):
            # The grant carries the candidate's term so a pre-candidate can count it.
            self._send(RequestVoteResponse(m.term, self.id, m.src, True, m.pre_vote))
            if not m.pre_vote:
                self.election_elapsed = 0
                self.vote = m.src
        else:
            self._send(RequestVoteResponse(self.term, self.id, m.src, False, m.pre_vote))

    def _handle_vote_response(self, m: Message) -> None:
        assert isinstance(m, RequestVoteResponse)
        if m.pre_vote != (self.role is Role.PRE_CANDIDATE):
            return
        self.votes.setdefault(m.src, m.vote_granted)
        result = self._tally()
        if result is _Tally.WON:
            if self.role is Role.PRE_CANDIDATE:
                self._campaign(pre=False, transfer=False)
            else:
                self._become_leader()
        elif result is _Tally.LOST:
            self._become_follower(self.term, NONE)

    # ---------------------------------------------------------------------------------------
    # Follower side of replication
    # ---------------------------------------------------------------------------------------

    def _follow(self, m: Message) -> None:
        """A message from the current term's leader: a candidate steps down (§5.2)."""
        if self.role is not Role.FOLLOWER:
            self._become_follower(m.term, m.src)
        self.election_elapsed = 0
        self.lead = m.src

    def _handle_append(self, m: Message) -> None:
        assert isinstance(m, AppendEntries)
        self._follow(m)
        if m.prev_log_index < self.log.committed:
            self._send(AppendEntriesResponse(self.term, self.id, m.src, self.log.committed))
            return
        last = self.log.maybe_append(m.prev_log_index, m.prev_log_term, m.leader_commit, m.entries)
        if last is not None:
            self._send(AppendEntriesResponse(self.term, self.id, m.src, last))
            return
        # Figure 2 rule 2 failed: hint the leader past a whole conflicting term (§5.3).
        hint = min(m.prev_log_index, self.log.last_index())
        hint = self.log.find_conflict_by_term(hint, m.prev_log_term)
        hint_term = self.log.term(hint) or 0
        self._send(
            AppendEntriesResponse(
                self.term, self.id, m.src, m.prev_log_index, True, hint, hint_term
            )
        )

    def _handle_heartbeat(self, m: Message) -> None:
        assert isinstance(m, Heartbeat)
        self._follow(m)
        # The leader caps `commit` at our matchIndex, so these entries match its log.
        if m.commit <= self.log.last_index():
            self.log.commit_to(m.commit)
        self._send(HeartbeatResponse(self.term, self.id, m.src, m.read_seq))

    def _handle_snapshot_chunk(self, m: Message) -> None:
        assert isinstance(m, InstallSnapshot)
        self._follow(m)
        meta = m.meta
        if meta.index <= self.log.committed:
            self._snap_rx = None
            self._send(AppendEntriesResponse(self.term, self.id, m.src, self.log.committed))
            return
        rx = self._snap_rx
        if m.offset == 0:
            rx = _SnapshotReceive(meta, [], 0)
        elif rx is None or rx.meta != meta or rx.size != m.offset:
            expected = rx.size if rx is not None and rx.meta == meta else 0
            self._send(InstallSnapshotResponse(self.term, self.id, m.src, meta.index, expected))
            return
        rx.chunks.append(m.data)
        rx.size += len(m.data)
        if not m.done:
            self._snap_rx = rx
            self._send(InstallSnapshotResponse(self.term, self.id, m.src, meta.index, rx.size))
            return
        self._snap_rx = None
        self._restore(Snapshot(meta, b"".join(rx.chunks)))
        self._send(AppendEntriesResponse(self.term, self.id, m.src, self.log.last_index()))

    def _restore(self, snapshot: Snapshot) -> None:
        """§7 receiver rules 6-7: keep the log if it already has the snapshot's last entry."""
        meta = snapshot.meta
        if meta.index <= self.log.committed:
            return
        if self.log.match_term(meta.index, meta.term):
            self.log.commit_to(meta.index)
            return
        self.log.restore(snapshot)
        self.conf = meta.conf_state
        self._rebuild_progress()

    def _handle_timeout_now(self, m: Message) -> None:
        # Thesis §3.10: start an election at once, skipping pre-vote and the leader lease.
        self._hup(transfer=True)

    def _handle_read_response(self, m: Message) -> None:
        assert isinstance(m, ReadIndexResponse)
        self.read_states.append(ReadState(m.index, m.context))

    # ---------------------------------------------------------------------------------------
    # Leader side
    # ---------------------------------------------------------------------------------------

    def _check_can_propose(self) -> None:
        if self.role is not Role.LEADER:
            raise ProposalDropped("not the leader", self.lead)
        if self.lead_transferee != NONE:
            raise ProposalDropped("leadership transfer in progress", self.lead)

    def _append_entries(self, items: list[tuple[EntryKind, bytes]]) -> list[Entry]:
        first = self.log.last_index() + 1
        entries = [Entry(self.term, first + i, kind, data) for i, (kind, data) in enumerate(items)]
        self.log.append(entries)
        self._bcast_due = True
        return entries

    def _validate_conf_change(self, change: ConfChange) -> None:
        node, conf = change.node_id, self.conf
        refusals = {
            ConfChangeKind.ADD_NODE: (
                f"node {node} is already a voter" if node in conf.voters else None
            ),
            ConfChangeKind.ADD_LEARNER: (
                f"node {node} is already a member" if node in conf.members() else None
            ),
            ConfChangeKind.REMOVE_NODE: (
                f"node {node} is not a member"
                if node not in conf.members()
                else "cannot remove the last voter"
                if conf.voters == {node}
                else None
            ),
        }
        reason = refusals[change.kind]
        if reason is None and change.kind is ConfChangeKind.ADD_NODE and node in conf.learners:
            # Thesis §4.2.1: a new server joins as a non-voting member until it has caught up.
            match = self.prs[node].match
            if match + self.config.learner_promotion_lag < self.log.committed:
                reason = f"learner {node} has not caught up (match {match})"
        if reason is not None:
            raise ProposalDropped(reason, self.lead)

    def _apply_conf_change(self, change: ConfChange) -> None:
        self.conf = self.conf.apply(change)
        last = self.log.last_index()
        for node in self.conf.members():
            if node not in self.prs:
                self.prs[node] = Progress(match=0, next=last + 1)
            self.prs[node].is_learner = node in self.conf.learners
        for node in list(self.prs):
            if node not in self.conf.members():
                del self.prs[node]
        if self.role is Role.LEADER:
            if self.id not in self.conf.voters:
                # §6: a leader that is no longer part of the configuration steps down once the
                # change is committed.
                self._become_follower(self.term, NONE)
                return
            if self.lead_transferee not in self.conf.voters:
                self.lead_transferee = NONE
            self._maybe_commit()
            self._release_reads()
            self._bcast_due = True
        elif self.role is not Role.FOLLOWER and self.id not in self.conf.voters:
            self._become_follower(self.term, NONE)

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
        if self._reads_waiting_commit:
            waiting, self._reads_waiting_commit = self._reads_waiting_commit, []
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
                self._send(Heartbeat(self.term, self.id, node, commit, self._read_seq))

    def _flush(self) -> None:
        """Turn the batched "something changed" flags into messages, once per Ready."""
        if self.role is not Role.LEADER:
            self._bcast_due = self._read_round_due = False
            return
        if self._read_round_due:
            self._read_round_due = False
            self._read_seq += 1
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
        self._send(
            AppendEntries(
                self.term, self.id, to, prev_index, prev_term, tuple(entries), self.log.committed
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
            self._answer_read(_PendingRead(0, self.log.committed, context, requester))
            return
        if self.log.term(self.log.committed) != self.term:
            # Thesis §6.4 step 1: until its no-op commits, the leader does not know the commit
            # index of the cluster; hold the read until it does.
            self._reads_waiting_commit.append((context, requester))
            return
        # Step 2-3: record the commit index and confirm leadership with a heartbeat round.
        self._reads.append(_PendingRead(self._read_seq + 1, self.log.committed, context, requester))
        self._read_round_due = True

    def _release_reads(self) -> None:
        voters = self.conf.voters
        while self._reads:
            read = self._reads[0]
            acks = sum(
                1
                for v in voters
                if v == self.id or (v in self.prs and self.prs[v].read_acked >= read.seq)
            )
            if acks < quorum(voters):
                return
            self._reads.popleft()
            self._answer_read(read)

    def _answer_read(self, read: _PendingRead) -> None:
        if read.requester == self.id:
            self.read_states.append(ReadState(read.index, read.context))
        else:
            self._send(
                ReadIndexResponse(self.term, self.id, read.requester, read.index, read.context)
            )

    # ---------------------------------------------------------------------------------------

    def _send(self, m: Message) -> None:
        self.msgs.append(m)

    def _guard(self) -> None:
        if self._outstanding is not None:
            raise RaftUsageError("call advance() with the outstanding Ready first")


Handler = Callable[[RaftNode, Message], None]

# Role x message type -> handler; a pair missing here is ignored (stale or misdirected).
_CANDIDATE_HANDLERS: Final[dict[type, Handler]] = {
    AppendEntries: RaftNode._handle_append,
    Heartbeat: RaftNode._handle_heartbeat,
    InstallSnapshot: RaftNode._handle_snapshot_chunk,
    RequestVoteResponse: RaftNode._handle_vote_response,
}
_HANDLERS: Final[dict[Role, dict[type, Handler]]] = {
    Role.FOLLOWER: {
        AppendEntries: RaftNode._handle_append,
        Heartbeat: RaftNode._handle_heartbeat,
        InstallSnapshot: RaftNode._handle_snapshot_chunk,
        TimeoutNow: RaftNode._handle_timeout_now,
        ReadIndexResponse: RaftNode._handle_read_response,
    },
    Role.PRE_CANDIDATE: _CANDIDATE_HANDLERS,
    Role.CANDIDATE: _CANDIDATE_HANDLERS,
    Role.LEADER: {
        AppendEntriesResponse: RaftNode._handle_append_response,
        HeartbeatResponse: RaftNode._handle_heartbeat_response,
        InstallSnapshotResponse: RaftNode._handle_snapshot_response,
        ReadIndexRequest: RaftNode._handle_read_request,
    },
}
