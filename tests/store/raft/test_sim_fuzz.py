"""Randomized fault schedules over simulated clusters (Raft paper Figure 3 properties).

Hypothesis chooses every fault: message drops, duplicates and reorders, partitions, crashes that
lose unpersisted state, restarts, compaction (so lagging nodes need InstallSnapshot), leadership
transfers, ReadIndex reads and single-server membership changes. `Cluster.check()` runs after
every step. Each schedule ends with a heal-and-restart phase in which the cluster must elect a
leader and commit a new entry on every voter (liveness once faults stop), and in which the
leader's commit index must equal the brute-force value computed from the disks.
"""

from __future__ import annotations

from hypothesis import event, given, settings
from hypothesis import strategies as st

from store.raft import ConfChange, ConfChangeKind, Entry, ProposalDropped
from tests.store.raft.sim import Cluster, SafetyViolation

NODES = st.integers(1, 5)
# Example counts scale with the profile: 60 and 40 under `gate`, thousands under `hunt`.
_PROFILE_EXAMPLES = settings.default.max_examples if settings.default is not None else 100

ACTIONS = st.one_of(
    st.tuples(st.just("run"), st.integers(1, 25)),
    st.tuples(st.just("tick"), NODES),
    st.tuples(st.just("ready"), NODES),
    st.tuples(st.just("deliver"), st.integers(0, 63)),
    st.tuples(st.just("drop"), st.integers(0, 63)),
    st.tuples(st.just("dup"), st.integers(0, 63)),
    st.tuples(st.just("propose"), st.binary(max_size=6)),
    st.tuples(st.just("propose_many"), st.integers(1, 12)),
    st.tuples(st.just("lag"), NODES, st.integers(1, 12)),
    st.tuples(st.just("crash"), NODES),
    st.tuples(st.just("send_then_crash"), NODES),
    st.tuples(st.just("restart"), NODES),
    st.tuples(st.just("partition"), st.frozensets(NODES, max_size=2)),
    st.tuples(st.just("heal"), st.just(0)),
    st.tuples(st.just("block"), NODES, NODES),
    st.tuples(st.just("compact"), NODES),
    st.tuples(st.just("read"), NODES),
    st.tuples(st.just("transfer"), NODES),
)

MEMBERSHIP = st.tuples(st.just("conf"), st.sampled_from(list(ConfChangeKind)), st.integers(1, 5))


def _apply(cluster: Cluster, action: tuple[object, ...], reads: dict[bytes, int]) -> None:
    op = action[0]
    arg = action[1]
    leader = cluster.leader()
    if op == "run":
        assert isinstance(arg, int)
        cluster.run(arg)
    elif op in (
        "tick",
        "ready",
        "crash",
        "send_then_crash",
        "restart",
        "compact",
        "read",
    ) and arg not in (cluster.nodes):
        return
    elif op == "tick":
        assert isinstance(arg, int)
        cluster.tick(arg)
    elif op == "ready":
        assert isinstance(arg, int)
        cluster.process_ready(arg)
    elif op == "deliver":
        assert isinstance(arg, int)
        cluster.deliver(arg)
    elif op == "drop":
        assert isinstance(arg, int)
        cluster.drop(arg)
    elif op == "dup":
        assert isinstance(arg, int)
        cluster.duplicate(arg)
    elif op == "propose" and leader is not None:
        assert isinstance(arg, bytes)
        _try(lambda: leader.propose(arg))
    elif op == "propose_many" and leader is not None:
        assert isinstance(arg, int)
        _try(lambda: leader.propose_batch([b"m%d" % i for i in range(arg)]))
    elif op == "lag":
        # Leave one node behind a compaction point so that it needs InstallSnapshot (§7).
        count = action[2]
        assert isinstance(arg, int) and isinstance(count, int)
        cluster.partition({arg})
        for i in range(count):
            current = cluster.leader()
            if current is not None:
                _try(lambda: current.propose(b"lag%d" % i))  # noqa: B023
            cluster.run(1)
        for node_id in cluster.nodes:
            cluster.compact(node_id)
        cluster.heal()
    elif op == "crash":
        assert isinstance(arg, int)
        cluster.crash(arg)
    elif op == "send_then_crash":
        assert isinstance(arg, int)
        cluster.send_then_crash(arg)
    elif op == "restart":
        assert isinstance(arg, int)
        cluster.restart(arg)
    elif op == "partition":
        assert isinstance(arg, frozenset)
        cluster.partition(set(arg))
    elif op == "heal":
        cluster.heal()
    elif op == "block":
        dst = action[2]
        assert isinstance(arg, int) and isinstance(dst, int)
        cluster.block(arg, dst)
    elif op == "compact":
        assert isinstance(arg, int)
        cluster.compact(arg)
    elif op == "read":
        assert isinstance(arg, int)
        raft = cluster.nodes[arg].raft
        if raft is not None:
            context = b"read-%d" % len(reads)
            before = cluster.committed_max()
            if _try(lambda: raft.read_index(context)):
                reads[context] = before
    elif op == "transfer" and leader is not None:
        assert isinstance(arg, int)
        _try(lambda: leader.transfer_leadership(arg))
    elif op == "conf" and leader is not None:
        kind, node = action[1], action[2]
        assert isinstance(kind, ConfChangeKind) and isinstance(node, int)
        if node not in cluster.nodes:
            cluster.add_node(node)
        _try(lambda: leader.propose_conf_change(ConfChange(kind, node)))


def _try(call: object) -> bool:
    assert callable(call)
    try:
        call()
    except ProposalDropped:
        return False
    return True


def _check_reads(cluster: Cluster, reads: dict[bytes, int]) -> None:
    """ReadIndex (thesis §6.4): the index handed out covers every entry committed before the
    read was requested, so a read served at that index is linearizable."""
    for node in cluster.nodes.values():
        for state in node.read_states:
            floor = reads.get(state.context)
            if floor is not None and state.index < floor:
                raise SafetyViolation(
                    f"read {state.context!r} at index {state.index} misses commit {floor}"
                )


def _final_liveness(cluster: Cluster) -> None:
    """Once faults stop, a leader is elected and a new entry reaches every voter (§5.2, §5.3).
    A proposal may still be lost to a leader change (a removed leader steps down), so retry."""
    cluster.heal()
    for node_id in cluster.nodes:
        cluster.restart(node_id)
    # A pending leadership transfer refuses proposals for up to an election timeout.
    for _ in range(40):
        leader = cluster.elect(max_ticks=300)
        try:
            entry = leader.propose(b"final")
        except ProposalDropped:
            cluster.run(1)
            continue

        def applied_everywhere(entry: Entry = entry) -> bool:
            current = cluster.leader()
            return (
                current is not None
                and cluster.committed.get(entry.index) == entry.term
                and all(cluster.raft(v).applied_index >= entry.index for v in current.conf.voters)
            )

        if cluster.run_until(applied_everywhere, 100):
            break
    else:
        raise AssertionError("no new entry reached every voter once faults stopped")
    current = cluster.elect()
    cluster.run(2)
    assert current.commit_index == cluster.brute_force_commit(current)


@settings(max_examples=_PROFILE_EXAMPLES * 6 // 10)
@given(
    voters=st.sampled_from([1, 3, 5]),
    seed=st.integers(0, 2**16),
    pre_vote=st.booleans(),
    actions=st.lists(ACTIONS, min_size=10, max_size=40),
)
def test_figure3_safety_properties_hold_under_random_faults(
    voters: int, seed: int, pre_vote: bool, actions: list[tuple[object, ...]]
) -> None:
    """Raft §5.2-§5.4, Figure 3: Election Safety, Log Matching, Leader Completeness and State
    Machine Safety hold after every step of any fault schedule."""
    cluster = Cluster(voters, seed, pre_vote=pre_vote, check_quorum=pre_vote)
    reads: dict[bytes, int] = {}
    cluster.elect()
    for action in actions:
        _apply(cluster, action, reads)
        cluster.check()
        _check_reads(cluster, reads)
    _final_liveness(cluster)
    _report(cluster)
    _check_reads(cluster, reads)
    _report(cluster)


def _report(cluster: Cluster) -> None:
    for name in sorted(cluster.stats):
        event(name)


@settings(max_examples=_PROFILE_EXAMPLES * 4 // 10)
@given(
    voters=st.sampled_from([3, 5]),
    seed=st.integers(0, 2**16),
    actions=st.lists(st.one_of(ACTIONS, MEMBERSHIP, MEMBERSHIP), min_size=10, max_size=40),
)
def test_single_server_membership_changes_keep_safety_under_faults(
    voters: int, seed: int, actions: list[tuple[object, ...]]
) -> None:
    """Thesis §4.1: one server added or removed at a time (learners first, §4.2.1) never lets two
    majorities disagree, whatever the faults."""
    cluster = Cluster(voters, seed)
    reads: dict[bytes, int] = {}
    cluster.elect()
    for action in actions:
        _apply(cluster, action, reads)
        cluster.check()
        _check_reads(cluster, reads)
    _final_liveness(cluster)
    _report(cluster)
