"""A simulated Raft cluster: pure `RaftNode`s over a fake network with a fake (tick) clock.

The harness plays the shell for every node exactly as a real server must (the Ready contract:
persist snapshot, entries and hard state to a simulated disk, then send, then apply, then
advance). Faults are explicit operations: drop, duplicate and reorder messages, partition and heal,
crash (everything not yet persisted is lost, and so is the state machine) and restart from disk.

After every operation `check()` verifies the Raft paper's Figure 3 properties:
Election Safety, Log Matching, Leader Completeness and State Machine Safety, plus a brute-force
bound on every leader's commit index computed from the nodes' disks.
"""

from __future__ import annotations

import hashlib
import random
import struct
from dataclasses import dataclass, field

from store.raft import (
    Config,
    ConfState,
    Entry,
    EntryKind,
    MemoryStorage,
    Message,
    RaftNode,
    ReadState,
    Ready,
    Role,
    bootstrap,
)
from store.raft.messages import from_wire, to_wire


class SafetyViolation(AssertionError):
    """A Raft safety property failed in the simulation."""


class StateMachine:
    """A hash chain over applied entries: equal digests at an index mean equal histories."""

    def __init__(self) -> None:
        self.applied = 0
        self.digest = b"\x00" * 32
        self.values: list[bytes] = []

    def apply(self, entry: Entry) -> None:
        if entry.index != self.applied + 1:
            raise SafetyViolation(f"applied {entry.index} after {self.applied}: a gap")
        self.applied = entry.index
        self.digest = hashlib.sha256(self.digest + bytes([entry.kind]) + entry.data).digest()
        if entry.kind is EntryKind.NORMAL:
            self.values.append(entry.data)

    def snapshot(self) -> bytes:
        # Values are kept so that a restored node can be compared with the others.
        body = b"".join(struct.pack(">I", len(v)) + v for v in self.values)
        return struct.pack(">Q", self.applied) + self.digest + body

    def restore(self, data: bytes) -> None:
        self.applied = struct.unpack_from(">Q", data)[0]
        self.digest = data[8:40]
        self.values = []
        pos = 40
        while pos < len(data):
            (n,) = struct.unpack_from(">I", data, pos)
            self.values.append(data[pos + 4 : pos + 4 + n])
            pos += 4 + n


@dataclass
class SimNode:
    id: int
    disk: MemoryStorage
    config: Config
    rng: random.Random
    raft: RaftNode | None = None
    sm: StateMachine = field(default_factory=StateMachine)
    read_states: list[ReadState] = field(default_factory=list)

    def start(self) -> None:
        self.raft = RaftNode(self.config, self.disk.copy(), self.rng)
        self.sm = StateMachine()
        snap = self.disk.snapshot()
        if snap.meta.index:
            self.sm.restore(snap.data)


@dataclass
class Envelope:
    message: Message
    # Wire form: every message crosses the fake network encoded, as on a real link.
    wire: list[object]


class Cluster:
    def __init__(
        self,
        voters: int = 3,
        seed: int = 0,
        *,
        pre_vote: bool = True,
        check_quorum: bool = True,
        election_tick: int = 10,
        max_inflight: int = 4,
        max_size_per_msg: int = 64,
        snapshot_chunk_size: int = 16,
        learner_promotion_lag: int = 0,
    ) -> None:
        self.seed = seed
        self.nodes: dict[int, SimNode] = {}
        self.network: list[Envelope] = []
        self.groups: dict[int, int] = {}
        self.blocked: set[tuple[int, int]] = set()  # one-way links that lose everything
        self.configs = {
            "pre_vote": pre_vote,
            "check_quorum": check_quorum,
            "election_tick": election_tick,
            "max_inflight_msgs": max_inflight,
            "max_size_per_msg": max_size_per_msg,
            "snapshot_chunk_size": snapshot_chunk_size,
            "learner_promotion_lag": learner_promotion_lag,
        }
        # Global observations for the safety checks.
        self.leader_of_term: dict[int, int] = {}
        self.entry_at: dict[tuple[int, int], tuple[int, bytes, int | None]] = {}
        self.committed: dict[int, int] = {}  # index -> entry term
        self.decided_in: dict[int, int] = {}  # index -> lowest leader term seen committing it
        self.applied_digest: dict[int, bytes] = {}
        self.leader_commit_seen: dict[tuple[int, int], int] = {}
        self.leader_tail: dict[tuple[int, int], tuple[int, int | None]] = {}
        self.conf_before: dict[int, ConfState] = {}
        self.steps = 0
        # What a schedule exercised, reported as hypothesis events.
        self.stats: dict[str, int] = {}
        ids = list(range(1, voters + 1))
        for node_id in ids:
            self.add_node(node_id, bootstrap(ids))

    # --- membership of the simulation --------------------------------------------------------

    def add_node(self, node_id: int, disk: MemoryStorage | None = None) -> SimNode:
        config = Config(id=node_id, **self.configs)  # type: ignore[arg-type]
        rng = random.Random(self.seed * 1000 + node_id)
        node = SimNode(node_id, disk if disk is not None else MemoryStorage(), config, rng)
        node.start()
        self.nodes[node_id] = node
        return node

    def live(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.raft is not None]

    def raft(self, node_id: int) -> RaftNode:
        raft = self.nodes[node_id].raft
        assert raft is not None, f"node {node_id} is down"
        return raft

    def leaders(self) -> list[RaftNode]:
        return [n.raft for n in self.live() if n.raft is not None and n.raft.is_leader]

    def leader(self) -> RaftNode | None:
        """The leader with the highest term, if any."""
        leaders = self.leaders()
        return max(leaders, key=lambda r: r.term) if leaders else None

    # --- the shell's job ----------------------------------------------------------------------

    def process_ready(self, node_id: int) -> bool:
        node = self.nodes[node_id]
        raft = node.raft
        if raft is None or not raft.has_ready():
            return False
        self.conf_before[node_id] = raft.conf_state
        rd = raft.ready()
        self._persist(node, raft, rd)
        for m in rd.messages:
            self.send(m)
        self._count_ready(rd)
        if rd.snapshot is not None:
            node.sm.restore(rd.snapshot.data)
            self._check_digest(node)
        for entry in rd.committed_entries:
            self._check_apply(node_id, entry)
            node.sm.apply(entry)
            self._check_digest(node)
        node.read_states.extend(rd.read_states)
        raft.advance(rd)
        return True

    def send_then_crash(self, node_id: int) -> None:
        """Thesis §10.2.1 fault: a leader sends a Ready's messages before persisting it (as
        `may_send_before_persist` allows) and loses power before the write completes."""
        raft = self.nodes[node_id].raft
        if raft is None or not raft.has_ready():
            return
        rd = raft.ready()
        if rd.may_send_before_persist:
            for m in rd.messages:
                self.send(m)
        self.crash(node_id)

    def _count_ready(self, rd: Ready) -> None:
        counts = {
            "snapshot installed": rd.snapshot is not None,
            "read state": bool(rd.read_states),
            "conf change applied": any(
                e.kind is EntryKind.CONF_CHANGE and e.term > 1 for e in rd.committed_entries
            ),
            "became leader": rd.soft_state is not None and rd.soft_state.role is Role.LEADER,
            "chunked snapshot sent": any(
                type(m).__name__ == "InstallSnapshot" and m.offset > 0  # type: ignore[union-attr]
                for m in rd.messages
            ),
            "append rejected": any(getattr(m, "reject", False) for m in rd.messages),
            "timeout now": any(type(m).__name__ == "TimeoutNow" for m in rd.messages),
        }
        for name, hit in counts.items():
            if hit:
                self.stats[name] = self.stats.get(name, 0) + 1

    def _persist(self, node: SimNode, raft: RaftNode, rd: Ready) -> None:
        if rd.snapshot is not None:
            node.disk.apply_snapshot(rd.snapshot)
        if rd.entries:
            prev_term = raft.log.term(rd.entries[0].index - 1)
            for entry in rd.entries:
                self._check_entry(entry, prev_term)
                prev_term = entry.term
            node.disk.append(rd.entries)
        if rd.hard_state is not None:
            node.disk.set_hard_state(rd.hard_state)

    def send(self, m: Message) -> None:
        self.network.append(Envelope(m, to_wire(m)))  # type: ignore[arg-type]

    def deliver(self, k: int) -> None:
        if not self.network:
            return
        env = self.network.pop(k % len(self.network))
        m = from_wire(env.wire)
        if m != env.message:
            raise SafetyViolation(f"wire round trip changed {env.message}")
        if self.groups.get(m.src, 0) != self.groups.get(m.dst, 0):
            return
        if (m.src, m.dst) in self.blocked:
            return
        target = self.nodes.get(m.dst)
        if target is None or target.raft is None:
            return
        target.raft.step(m)

    def drop(self, k: int) -> None:
        if self.network:
            self.network.pop(k % len(self.network))

    def duplicate(self, k: int) -> None:
        if self.network:
            self.network.append(self.network[k % len(self.network)])

    def tick(self, node_id: int) -> None:
        raft = self.nodes[node_id].raft
        if raft is not None:
            raft.tick()

    def crash(self, node_id: int) -> None:
        """Power loss: RAM (unpersisted log tail, votes in flight, the state machine) is gone."""
        self.nodes[node_id].raft = None

    def restart(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.raft is None:
            node.start()

    def partition(self, *groups: set[int]) -> None:
        self.groups = {n: i + 1 for i, group in enumerate(groups) for n in group}

    def heal(self) -> None:
        self.groups = {}
        self.blocked = set()

    def block(self, src: int, dst: int) -> None:
        """An asymmetric fault: messages from `src` to `dst` are lost, the reverse still flows."""
        self.blocked.add((src, dst))

    def compact(self, node_id: int, keep: int = 0) -> bool:
        """Snapshot the state machine at its applied index and drop the log before it."""
        node = self.nodes[node_id]
        raft = node.raft
        if raft is None:
            return False
        index = node.sm.applied
        if index <= node.disk.snapshot().meta.index or index != raft.applied_index:
            return False
        data = node.sm.snapshot()
        for storage in (raft.log.storage, node.disk):
            storage.create_snapshot(index, raft.conf_state, data)
            if index - keep > storage.first_index() - 1:
                storage.compact(index - keep)
        return True

    # --- schedules ----------------------------------------------------------------------------

    def flush(self, max_rounds: int = 50) -> None:
        """Process every Ready and deliver every message until the cluster is quiet."""
        for _ in range(max_rounds):
            busy = False
            for node_id in list(self.nodes):
                busy |= self.process_ready(node_id)
            self.check()
            if self.network:
                busy = True
                pending, self.network = self.network, []
                for env in pending:
                    self.network.append(env)
                    self.deliver(len(self.network) - 1)
                self.check()
            if not busy:
                return

    def run(self, ticks: int = 1) -> None:
        """`ticks` rounds of: every live node ticks once, then the cluster settles."""
        for _ in range(ticks):
            for node in self.live():
                assert node.raft is not None
                node.raft.tick()
            self.flush()

    def run_until(self, predicate: object, max_ticks: int = 200) -> bool:
        assert callable(predicate)
        for _ in range(max_ticks):
            if predicate():
                return True
            self.run(1)
        return bool(predicate())

    def elect(self, max_ticks: int = 200) -> RaftNode:
        """Run until exactly one leader exists and every live node knows it."""

        def settled() -> bool:
            leader = self.leader()
            return leader is not None and all(
                n.raft is not None and n.raft.leader == leader.id
                for n in self.live()
                if n.id in leader.conf_state.members()
            )

        if not self.run_until(settled, max_ticks):
            raise AssertionError("no stable leader emerged")
        leader = self.leader()
        assert leader is not None
        return leader

    def committed_max(self) -> int:
        """The highest index any node has seen committed so far."""
        return max(self.committed, default=0)

    def brute_force_commit(self, leader: RaftNode) -> int:
        """The highest current-term index durably on a quorum of the leader's voters (§5.4.2),
        found by reading every disk rather than trusting the leader's bookkeeping."""
        best = 0
        voters = leader.conf_state.voters
        for index in range(leader.log.first_index(), leader.log.last_index() + 1):
            term = leader.log.term(index)
            if term != leader.term:
                continue
            holders = sum(1 for v in voters if self._disk_has(v, index, term))
            if holders >= len(voters) // 2 + 1:
                best = index
        return best or leader.commit_index

    def _disk_has(self, node_id: int, index: int, term: int | None) -> bool:
        node = self.nodes.get(node_id)
        if node is None:
            return False
        disk = node.disk
        if disk.snapshot().meta.index >= index:
            return True
        return disk.first_index() <= index <= disk.last_index() and disk.term(index) == term

    # --- safety checks ------------------------------------------------------------------------

    def _check_entry(self, entry: Entry, prev_term: int | None) -> None:
        """Log Matching: one (index, term) names one entry and one predecessor term."""
        key = (entry.index, entry.term)
        value = (int(entry.kind), entry.data, prev_term)
        seen = self.entry_at.setdefault(key, value)
        if seen[:2] != value[:2] or (
            seen[2] is not None and prev_term is not None and seen[2] != prev_term
        ):
            raise SafetyViolation(f"log matching violated at {key}: {seen} vs {value}")

    def _check_apply(self, node_id: int, entry: Entry) -> None:
        term = self.committed.get(entry.index)
        if term is not None and term != entry.term:
            raise SafetyViolation(
                f"state machine safety: node {node_id} applies {entry.index}@{entry.term}, "
                f"committed was @{term}"
            )
        self.committed[entry.index] = entry.term

    def _check_digest(self, node: SimNode) -> None:
        seen = self.applied_digest.setdefault(node.sm.applied, node.sm.digest)
        if seen != node.sm.digest:
            raise SafetyViolation(f"node {node.id} state differs at index {node.sm.applied}")

    def check(self) -> None:
        self.steps += 1
        for node in self.live():
            raft = node.raft
            assert raft is not None
            self._check_commits(node, raft)
            if raft.role is Role.LEADER:
                holder = self.leader_of_term.setdefault(raft.term, raft.id)
                if holder != raft.id:
                    raise SafetyViolation(
                        f"election safety: term {raft.term} has leaders {holder} and {raft.id}"
                    )
        for node in self.live():
            raft = node.raft
            assert raft is not None
            if raft.role is Role.LEADER:
                self._check_completeness(raft)
                self._check_append_only(raft)

    def _check_commits(self, node: SimNode, raft: RaftNode) -> None:
        log = raft.log
        is_leader = raft.role is Role.LEADER
        key = (raft.id, raft.term)
        if is_leader and key not in self.leader_commit_seen:
            # What it commits from now on is its own doing; what it knew before was decided by
            # earlier leaders, possibly under another configuration.
            self.leader_commit_seen[key] = log.committed
        low = self.leader_commit_seen.get(key, 0) if is_leader else log.committed
        for index in range(max(low + 1, log.first_index()), log.committed + 1):
            term = log.term(index)
            assert term is not None
            seen = self.committed.setdefault(index, term)
            if seen != term:
                raise SafetyViolation(f"node {raft.id} commits {index}@{term}, was @{seen}")
            if is_leader:
                self.decided_in[index] = min(self.decided_in.get(index, raft.term), raft.term)
        if is_leader and log.committed > self.leader_commit_seen.get(key, 0):
            self._check_commit_brute_force(raft)
            self.leader_commit_seen[key] = log.committed

    def _check_commit_brute_force(self, raft: RaftNode) -> None:
        """A leader's commit index must name an entry durably stored on a quorum of voters."""
        index = raft.log.committed
        term = raft.log.term(index)
        for conf in (raft.conf_state, self.conf_before.get(raft.id, raft.conf_state)):
            holders = sum(1 for v in conf.voters if self._disk_has(v, index, term))
            if holders >= len(conf.voters) // 2 + 1:
                return
        raise SafetyViolation(f"leader {raft.id} committed {index} without a durable quorum")

    def _check_append_only(self, raft: RaftNode) -> None:
        """Leader Append-Only: "a leader never overwrites or deletes entries in its log"; with
        Log Matching it suffices that the last entry seen earlier in this term is unchanged."""
        key = (raft.id, raft.term)
        seen = self.leader_tail.get(key)
        if seen is not None:
            index, term = seen
            if raft.log.last_index() < index or raft.log.term(index) != term:
                raise SafetyViolation(f"leader {raft.id} rewrote its log at {index}")
        last = raft.log.last_index()
        self.leader_tail[key] = (last, raft.log.term(last))

    def _check_completeness(self, raft: RaftNode) -> None:
        """Leader Completeness: entries committed in earlier terms are in the leader's log."""
        first = raft.log.first_index()
        for index, decided in self.decided_in.items():
            lacking = raft.log.term(index) != self.committed[index]
            if decided < raft.term and index >= first and lacking:
                raise SafetyViolation(
                    f"leader completeness: leader {raft.id} (term {raft.term}) lacks "
                    f"{index}@{self.committed[index]} committed in term {decided}"
                )
