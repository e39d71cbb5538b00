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
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Final, NoReturn

from store.raft.config import Config, ConfigError
from store.raft.leader import LeaderRole
from store.raft.log import RaftLog
from store.raft.membership import quorum, refusal
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
from store.raft.progress import Progress
from store.raft.readindex import ReadIndexQueue
from store.raft.ready import PeerStatus, Ready, Role, SoftState, Status
from store.raft.storage import MemoryStorage
from store.raft.types import (
    NONE,
    ConfChange,
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
class _SnapshotReceive:
    meta: SnapshotMeta
    chunks: list[bytes]
    size: int


class RaftNode(LeaderRole):
    """One Raft peer. Not thread-safe: one owner task drives it (STYLE.md rule 2)."""

    def __init__(self, config: Config, storage: MemoryStorage, rng: random.Random) -> None:
        config.validate()
        self.id = config.id
        self.config = config
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
        self._reads = ReadIndexQueue()
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

    def status(self) -> Status:
        progress: tuple[tuple[int, PeerStatus], ...] = ()
        if self.role is Role.LEADER:
            progress = tuple(
                (node, PeerStatus(pr.match, pr.next, pr.state.value, pr.is_learner))
                for node, pr in sorted(self.prs.items())
            )
        return Status(
            self.id,
            self.role,
            self.lead,
            self.term,
            self.vote,
            self.log.committed,
            self.log.applied,
            self.log.last_index(),
            self.log.first_index(),
            self.conf.voters,
            self.conf.learners,
            progress,
        )

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
            if isinstance(m, AppendEntries | Heartbeat | InstallSnapshot):
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
            or (self.role is Role.LEADER and (self._bcast_due or self._reads.round_due))
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
            may_send_before_persist=self.role is Role.LEADER
            and snapshot is None
            and hard.term == self._prev_hard.term
            and hard.vote == self._prev_hard.vote,
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
        if rd.committed_entries and rd.committed_entries[-1].index > self.log.applied:
            # Conf changes take effect in log order, each once its entry is applied.
            for entry in rd.committed_entries:
                if entry.kind is EntryKind.CONF_CHANGE and entry.index > self.log.applied:
                    self.log.applied_to(entry.index)
                    self._apply_conf_change(ConfChange.decode(entry.data))
            self.log.applied_to(rd.committed_entries[-1].index)
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
            if not (m.commit_only and not m.entries):
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

    def _validate_conf_change(self, change: ConfChange) -> None:
        pr = self.prs.get(change.node_id)
        reason = refusal(
            change,
            self.conf,
            pr.match if pr is not None else 0,
            self.log.committed,
            self.config.learner_promotion_lag,
        )
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

    # ---------------------------------------------------------------------------------------

    def _send(self, m: Message) -> None:
        self.msgs.append(m)

    def _refuse(self, reason: str) -> NoReturn:
        raise ProposalDropped(reason, self.lead)

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
