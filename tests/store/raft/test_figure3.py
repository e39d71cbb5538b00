"""Figure 3 of the Raft paper, one named test per property, plus proof that the simulator's
checks can fail: deliberately broken cores must be caught.

The chaos schedule (seeded, deterministic) crashes and restarts nodes, partitions the leader
away, drops a share of messages and keeps proposing; `Cluster.check()` runs after every step.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest

from store.raft import ProposalDropped, RaftNode
from store.raft.messages import RequestVote, RequestVoteResponse
from tests.store.raft.sim import Cluster, SafetyViolation


def chaos(cluster: Cluster, seed: int, steps: int = 200) -> None:
    rng = random.Random(seed)
    ids = sorted(cluster.nodes)
    for step in range(steps):
        roll = rng.random()
        leader = cluster.leader()
        if roll < 0.05:
            cluster.crash(rng.choice(ids))
        elif roll < 0.15:
            cluster.restart(rng.choice(ids))
        elif roll < 0.2 and leader is not None:
            cluster.partition({leader.id})
        elif roll < 0.25:
            cluster.heal()
        elif roll < 0.3:
            cluster.compact(rng.choice(ids))
        if leader is not None and rng.random() < 0.5:
            with suppress(ProposalDropped):
                leader.propose_batch([b"s%d-%d" % (step, i) for i in range(rng.randint(1, 3))])
        for node in cluster.live():
            assert node.raft is not None
            node.raft.tick()
        for _ in range(3):
            for node_id in ids:
                cluster.process_ready(node_id)
            while cluster.network:
                k = rng.randrange(len(cluster.network))
                if rng.random() < 0.1:
                    cluster.drop(k)
                else:
                    cluster.deliver(k)
                cluster.check()
    cluster.heal()
    for node_id in ids:
        cluster.restart(node_id)
    cluster.run(40)


def _common_prefix_is_identical(a: RaftNode, b: RaftNode) -> int:
    """Log Matching across two logs; returns how many shared (index, term) pairs were seen."""
    lo = max(a.log.first_index(), b.log.first_index())
    hi = min(a.log.last_index(), b.log.last_index())
    shared = 0
    for index in range(hi, lo - 1, -1):
        if a.log.term(index) == b.log.term(index):
            assert a.log.slice(lo, index + 1) == b.log.slice(lo, index + 1)
            shared = index - lo + 1
            break
    return shared


@pytest.mark.parametrize("seed", range(2))
def test_election_safety_at_most_one_leader_can_be_elected_in_a_given_term(seed: int) -> None:
    cluster = Cluster(5, seed)
    chaos(cluster, seed)
    assert len(cluster.leader_of_term) >= 2  # several elections happened, each checked


@pytest.mark.parametrize("seed", range(2))
def test_log_matching_same_index_and_term_means_identical_logs_up_to_there(seed: int) -> None:
    cluster = Cluster(5, seed + 10)
    chaos(cluster, seed + 10)
    rafts = [n.raft for n in cluster.live() if n.raft is not None]
    shared = [_common_prefix_is_identical(a, b) for a in rafts for b in rafts if a is not b]
    assert max(shared) > 10


@pytest.mark.parametrize("seed", range(2))
def test_leader_completeness_committed_entries_are_in_every_later_leaders_log(seed: int) -> None:
    cluster = Cluster(3, seed + 20)
    chaos(cluster, seed + 20)
    assert cluster.decided_in and len(cluster.leader_of_term) >= 2


@pytest.mark.parametrize("seed", range(2))
def test_state_machine_safety_no_two_servers_apply_different_entries_at_an_index(
    seed: int,
) -> None:
    cluster = Cluster(3, seed + 30)
    chaos(cluster, seed + 30)
    states = {n.sm.applied: n.sm.digest for n in cluster.live()}
    histories = [n.sm.values for n in cluster.live()]
    shortest = min(len(h) for h in histories)
    assert shortest > 10
    assert all(h[:shortest] == histories[0][:shortest] for h in histories)
    assert all(cluster.applied_digest[i] == d for i, d in states.items())


# --- the checks can fail ------------------------------------------------------------------


@contextmanager
def patched(name: str, replacement: object) -> Iterator[None]:
    original = getattr(RaftNode, name)
    setattr(RaftNode, name, replacement)
    try:
        yield
    finally:
        setattr(RaftNode, name, original)


def test_simulator_catches_a_node_that_votes_twice_in_a_term() -> None:
    def vote_for_anyone(self: RaftNode, m: RequestVote) -> None:
        self._send(RequestVoteResponse(m.term, self.id, m.src, True, m.pre_vote))
        if not m.pre_vote:
            self.vote = m.src

    with patched("_handle_vote_request", vote_for_anyone), pytest.raises(SafetyViolation):
        for seed in range(20):
            chaos(Cluster(5, seed, pre_vote=False, check_quorum=False), seed, steps=150)


def test_simulator_catches_a_leader_that_commits_without_a_majority() -> None:
    def commit_everything(self: RaftNode) -> bool:
        last = self.log.last_index()
        if last > self.log.committed and self.log.term(last) == self.term:
            self.log.commit_to(last)
            return True
        return False

    with patched("_maybe_commit", commit_everything), pytest.raises(SafetyViolation):
        for seed in range(20):
            chaos(Cluster(3, seed), seed, steps=150)
