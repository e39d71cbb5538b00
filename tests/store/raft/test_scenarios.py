"""Scripted scenarios for the etcd-style extensions: pre-vote, check-quorum, ReadIndex, chunked
InstallSnapshot, learners and single-server membership changes, leadership transfer, flow
control and the Ready protocol itself (thesis chapters cited per test)."""

from __future__ import annotations

import pytest

from store.raft import (
    ConfChange,
    ConfChangeKind,
    ProposalDropped,
    RaftUsageError,
    ReadState,
    Role,
)
from store.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    RequestVote,
    RequestVoteResponse,
    TimeoutNow,
)
from tests.store.raft.helpers import drain, entries, make_leader, make_node, of_type
from tests.store.raft.sim import Cluster

# --- pre-vote and check-quorum (thesis §9.6, §6.2, §4.2.3) ----------------------------------


def _isolate_follower_and_wait(cluster: Cluster, ticks: int = 60) -> tuple[int, int, int]:
    leader = cluster.elect()
    follower = max(n for n in cluster.nodes if n != leader.id)
    term = leader.term
    cluster.partition({follower})
    cluster.run(ticks)
    return leader.id, follower, term


def test_pre_vote_keeps_a_partitioned_node_from_disrupting_the_cluster_on_rejoin() -> None:
    """Thesis §9.6: with pre-vote a partitioned server does not increment its term, so when it
    rejoins it does not force the leader to step down."""
    cluster = Cluster(3, seed=3, pre_vote=True)
    leader, follower, term = _isolate_follower_and_wait(cluster)
    assert cluster.raft(follower).term == term
    assert cluster.raft(follower).role is Role.PRE_CANDIDATE
    cluster.heal()
    cluster.run(5)
    assert cluster.raft(leader).is_leader
    assert cluster.raft(leader).term == term
    assert cluster.raft(follower).leader == leader


def test_without_pre_vote_a_rejoining_node_disrupts_the_leader() -> None:
    """The contrast case for the pre-vote test: the isolated node's term grows while it is cut
    off and its return deposes the leader (the problem thesis §9.6 describes)."""
    cluster = Cluster(3, seed=3, pre_vote=False, check_quorum=False)
    leader, follower, term = _isolate_follower_and_wait(cluster)
    assert cluster.raft(follower).term > term
    cluster.heal()
    cluster.run(1)
    assert cluster.raft(leader).term > term


def test_check_quorum_leader_steps_down_when_it_cannot_reach_a_majority() -> None:
    """Thesis §6.2: "a leader steps down if an election timeout elapses without a successful
    round of heartbeats to a majority of its cluster." """
    cluster = Cluster(3, seed=5)
    leader = cluster.elect()
    cluster.partition({leader.id})
    cluster.run(2 * leader.config.election_tick + 1)
    assert leader.role is Role.FOLLOWER


def test_without_check_quorum_an_isolated_leader_keeps_believing_it_leads() -> None:
    """Contrast for check-quorum: the stale leader stays leader (and would serve stale reads if
    it trusted its lease), which is why ReadIndex still confirms leadership each time."""
    cluster = Cluster(3, seed=5, pre_vote=False, check_quorum=False)
    leader = cluster.elect()
    cluster.partition({leader.id})
    cluster.run(3 * leader.config.election_tick)
    assert leader.role is Role.LEADER


def test_follower_in_leader_lease_ignores_vote_requests() -> None:
    """Thesis §4.2.3: "if a server receives a RequestVote request within the minimum election
    timeout of hearing from a current leader, it does not update its term or grant its vote"."""
    raft = make_node(2, check_quorum=True)
    raft.step(Heartbeat(1, 1, 2, 3))
    drain(raft)
    raft.step(RequestVote(5, 3, 2, 99, 9))
    assert drain(raft) == []
    assert raft.term == 1
    # A leadership transfer overrides the lease (thesis §3.10).
    raft.step(RequestVote(5, 3, 2, 99, 9, leadership_transfer=True))
    assert of_type(drain(raft), RequestVoteResponse)[0].vote_granted
    assert raft.term == 5


def test_pre_vote_does_not_change_the_receivers_term_or_vote() -> None:
    """Thesis §9.6: a pre-vote request is answered as a vote would be, without side effects."""
    raft = make_node(2, check_quorum=False)
    raft.step(RequestVote(2, 3, 2, 3, 1, pre_vote=True))
    reply = of_type(drain(raft), RequestVoteResponse)[0]
    assert reply.vote_granted and reply.pre_vote and reply.term == 2
    assert (raft.term, raft.vote) == (1, 0)


# --- ReadIndex (thesis §6.4) ----------------------------------------------------------------


def test_read_index_is_answered_after_a_heartbeat_round_confirms_leadership() -> None:
    """Thesis §6.4: the leader records its commit index, then "sends a new round of heartbeats
    and waits for their acknowledgments from a majority"."""
    raft = make_leader()
    raft.read_index(b"ctx")
    rd = raft.ready()
    beats = of_type(list(rd.messages), Heartbeat)
    assert rd.read_states == ()
    assert beats and all(b.read_seq == beats[0].read_seq > 0 for b in beats)
    raft.advance(rd)
    raft.step(HeartbeatResponse(raft.term, 2, 1, beats[0].read_seq))
    assert raft.ready().read_states == (ReadState(4, b"ctx"),)


def test_read_index_waits_until_the_leader_commits_an_entry_of_its_term() -> None:
    """Thesis §6.4 step 1: "If the leader has not yet marked an entry from its current term
    committed, it waits until it has done so." """
    raft = make_node(1, pre_vote=False)
    raft.campaign()
    drain(raft)
    raft.step(RequestVoteResponse(raft.term, 2, 1, True))
    drain(raft)
    raft.read_index(b"early")
    assert of_type(drain(raft), Heartbeat) == []
    raft.step(AppendEntriesResponse(raft.term, 2, 1, 4))  # the no-op commits
    beats = of_type(drain(raft), Heartbeat)
    assert beats
    raft.step(HeartbeatResponse(raft.term, 2, 1, beats[0].read_seq))
    assert raft.ready().read_states == (ReadState(4, b"early"),)


def test_read_index_on_an_isolated_leader_is_never_answered() -> None:
    """Linearizability: a deposed leader must not serve reads; without a heartbeat quorum the
    read stays pending (and is dropped when it steps down)."""
    cluster = Cluster(3, seed=11)
    leader = cluster.elect()
    cluster.partition({leader.id})
    leader.read_index(b"stale?")
    cluster.run(30)
    assert cluster.nodes[leader.id].read_states == []
    cluster.heal()
    cluster.run(30)
    assert cluster.nodes[leader.id].read_states == []


def test_read_index_from_a_follower_is_forwarded_and_covers_earlier_commits() -> None:
    """Thesis §6.4: followers ask the leader for the read index; it is at least the commit
    index at the time of the request."""
    cluster = Cluster(3, seed=12)
    leader = cluster.elect()
    for i in range(5):
        leader.propose(b"w%d" % i)
    cluster.run(2)
    committed = leader.commit_index
    follower = next(n for n in cluster.nodes if n != leader.id)
    cluster.raft(follower).read_index(b"f")
    cluster.run(2)
    (state,) = cluster.nodes[follower].read_states
    assert state.context == b"f" and state.index >= committed


def test_read_index_without_a_known_leader_is_refused() -> None:
    raft = make_node(2)
    with pytest.raises(ProposalDropped):
        raft.read_index(b"x")


# --- log compaction and InstallSnapshot (§7) ------------------------------------------------


def test_lagging_follower_receives_a_chunked_snapshot_then_entries() -> None:
    """§7: "the leader must occasionally send snapshots to followers that lag behind", here in
    chunks of `snapshot_chunk_size` bytes, after which replication resumes."""
    cluster = Cluster(3, seed=21, snapshot_chunk_size=8)
    leader = cluster.elect()
    follower = next(n for n in cluster.nodes if n != leader.id)
    cluster.partition({follower})
    for i in range(20):
        leader.propose(b"value-%d" % i)
    cluster.run(2)
    for node_id in cluster.nodes:
        cluster.compact(node_id)
    assert leader.log.first_index() > cluster.raft(follower).log.last_index() + 1
    sent: list[InstallSnapshot] = []
    original_send = cluster.send

    def spy(m: object) -> None:
        if isinstance(m, InstallSnapshot):
            sent.append(m)
        original_send(m)  # type: ignore[arg-type]

    cluster.send = spy  # type: ignore[method-assign]
    cluster.heal()
    leader.propose(b"after")
    cluster.run(5)
    assert len({m.offset for m in sent}) > 3
    assert sent[-1].done
    assert cluster.nodes[follower].sm.values == cluster.nodes[leader.id].sm.values
    assert cluster.nodes[follower].sm.values[-1] == b"after"


def test_lost_snapshot_chunks_are_resent() -> None:
    """§7 over a lossy link: a dropped chunk is sent again (on the next heartbeat reply)."""
    cluster = Cluster(3, seed=22, snapshot_chunk_size=8)
    leader = cluster.elect()
    follower = next(n for n in cluster.nodes if n != leader.id)
    cluster.partition({follower})
    for i in range(10):
        leader.propose(b"v%d" % i)
    cluster.run(2)
    for node_id in cluster.nodes:
        cluster.compact(node_id)
    dropped = 0
    original_send = cluster.send

    def lossy(m: object) -> None:
        nonlocal dropped
        if isinstance(m, InstallSnapshot) and m.offset > 0 and dropped < 3:
            dropped += 1
            return
        original_send(m)  # type: ignore[arg-type]

    cluster.send = lossy  # type: ignore[method-assign]
    cluster.heal()
    cluster.run(20)
    assert dropped == 3
    assert cluster.nodes[follower].sm.values == cluster.nodes[leader.id].sm.values


def test_snapshot_on_restart_restores_the_state_machine() -> None:
    """§7: a node restarts from its latest snapshot plus the entries after it."""
    cluster = Cluster(3, seed=23)
    leader = cluster.elect()
    for i in range(10):
        leader.propose(b"%d" % i)
    cluster.run(2)
    node = next(n for n in cluster.nodes if n != leader.id)
    cluster.compact(node)
    leader.propose(b"tail")
    cluster.run(2)
    expected = list(cluster.nodes[node].sm.values)
    cluster.crash(node)
    cluster.restart(node)
    cluster.run(2)
    assert cluster.nodes[node].sm.values == expected


# --- membership changes (thesis §4.1, §4.2.1) ---------------------------------------------


def _propose_conf(cluster: Cluster, kind: ConfChangeKind, node: int) -> None:
    leader = cluster.leader()
    assert leader is not None
    leader.propose_conf_change(ConfChange(kind, node))
    cluster.run(2)


def test_learner_catches_up_and_is_promoted_to_voter() -> None:
    """Thesis §4.2.1: new servers join as non-voting members until they have caught up; only
    then are they added to the configuration as voters."""
    cluster = Cluster(3, seed=31)
    leader = cluster.elect()
    for i in range(15):
        leader.propose(b"%d" % i)
    cluster.run(2)
    cluster.add_node(4)
    _propose_conf(cluster, ConfChangeKind.ADD_LEARNER, 4)
    learner = cluster.raft(4)
    assert learner.conf_state.learners == {4}
    assert cluster.nodes[4].sm.values == cluster.nodes[leader.id].sm.values
    assert not learner.promotable()
    _propose_conf(cluster, ConfChangeKind.ADD_NODE, 4)
    assert 4 in leader.conf_state.voters and 4 in learner.conf_state.voters
    # The new voter now counts: with two of four down, nothing commits.
    others = [n for n in (1, 2, 3) if n != leader.id]
    cluster.crash(others[0])
    cluster.crash(4)
    entry = leader.propose(b"needs 3 of 4")
    cluster.run(3)
    assert leader.commit_index < entry.index


def test_learner_does_not_vote_or_count_towards_quorum() -> None:
    """Thesis §4.2.1: learners receive the log but are not part of any majority."""
    cluster = Cluster(3, seed=32)
    leader = cluster.elect()
    cluster.add_node(4)
    _propose_conf(cluster, ConfChangeKind.ADD_LEARNER, 4)
    others = [n for n in (1, 2, 3) if n != leader.id]
    cluster.crash(others[0])
    cluster.crash(others[1])
    entry = leader.propose(b"x")
    cluster.run(3)
    assert cluster.raft(4).log.last_index() >= entry.index
    assert leader.commit_index < entry.index
    cluster.run(50)
    assert cluster.raft(4).role is Role.FOLLOWER


def test_promotion_of_a_lagging_learner_is_refused() -> None:
    """Thesis §4.2.1: the leader refuses to promote a learner that has not caught up."""
    cluster = Cluster(3, seed=33)
    leader = cluster.elect()
    cluster.add_node(4)
    _propose_conf(cluster, ConfChangeKind.ADD_LEARNER, 4)
    cluster.crash(4)
    for i in range(10):
        leader.propose(b"%d" % i)
    cluster.run(2)
    with pytest.raises(ProposalDropped, match="not caught up"):
        leader.propose_conf_change(ConfChange(ConfChangeKind.ADD_NODE, 4))


def test_only_one_configuration_change_may_be_pending_at_a_time() -> None:
    """Thesis §4.1: "the leader ... does not begin a new change until the previous one has
    committed" (here: until it is applied, as etcd does)."""
    raft = make_leader()
    raft.propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, 4))
    with pytest.raises(ProposalDropped, match="pending"):
        raft.propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, 5))


def test_new_leader_accepts_no_conf_change_before_its_no_op_is_applied() -> None:
    """Ongaro's 2015 single-server change fix: a leader first commits an entry of its term."""
    raft = make_node(1, pre_vote=False)
    raft.campaign()
    drain(raft)
    raft.step(RequestVoteResponse(raft.term, 2, 1, True))
    drain(raft)
    with pytest.raises(ProposalDropped, match="pending"):
        raft.propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, 4))


def test_removed_leader_steps_down_once_the_change_is_committed() -> None:
    """§6: "the leader steps down ... once it has committed the C_new entry"; the rest elect
    a new leader among themselves."""
    cluster = Cluster(3, seed=34)
    leader = cluster.elect()
    _propose_conf(cluster, ConfChangeKind.REMOVE_NODE, leader.id)
    assert not leader.is_leader
    new = cluster.elect()
    assert new.id != leader.id and leader.id not in new.conf_state.voters
    entry = new.propose(b"after removal")
    cluster.run(2)
    assert new.commit_index >= entry.index


def test_invalid_conf_changes_are_refused() -> None:
    raft = make_leader()
    cases = [
        ConfChange(ConfChangeKind.ADD_NODE, 2),
        ConfChange(ConfChangeKind.ADD_LEARNER, 3),
        ConfChange(ConfChangeKind.REMOVE_NODE, 9),
    ]
    for change in cases:
        with pytest.raises(ProposalDropped):
            raft.propose_conf_change(change)


# --- leadership transfer (thesis §3.10) -----------------------------------------------------


def test_leadership_transfer_to_an_up_to_date_follower() -> None:
    """Thesis §3.10: the leader sends TimeoutNow to a caught-up target, which campaigns at once
    and wins without waiting for an election timeout."""
    cluster = Cluster(3, seed=41)
    leader = cluster.elect()
    target = max(n for n in cluster.nodes if n != leader.id)
    leader.transfer_leadership(target)
    cluster.flush()
    assert cluster.raft(target).is_leader
    assert not leader.is_leader


def test_leadership_transfer_to_a_lagging_follower_catches_it_up_first() -> None:
    cluster = Cluster(3, seed=42)
    leader = cluster.elect()
    target = max(n for n in cluster.nodes if n != leader.id)
    cluster.partition({target})
    for i in range(10):
        leader.propose(b"%d" % i)
    cluster.run(1)
    cluster.heal()
    leader.transfer_leadership(target)
    with pytest.raises(ProposalDropped, match="transfer"):
        leader.propose(b"refused during transfer")
    cluster.run(2)
    new = cluster.raft(target)
    assert new.is_leader
    assert cluster.nodes[target].sm.values[-1] == b"9"


def test_leadership_transfer_is_abandoned_after_an_election_timeout() -> None:
    cluster = Cluster(3, seed=43)
    leader = cluster.elect()
    target = max(n for n in cluster.nodes if n != leader.id)
    cluster.crash(target)
    leader.transfer_leadership(target)
    cluster.run(leader.config.election_tick + 1)
    assert leader.is_leader
    leader.propose(b"accepted again")


def test_timeout_now_makes_a_follower_campaign_without_pre_vote() -> None:
    raft = make_node(2)
    raft.step(TimeoutNow(1, 1, 2))
    votes = of_type(drain(raft), RequestVote)
    assert raft.role is Role.CANDIDATE
    assert votes and all(v.leadership_transfer and not v.pre_vote for v in votes)


# --- flow control, batching, the Ready protocol ---------------------------------------------


def test_replicate_state_pipelines_at_most_max_inflight_messages() -> None:
    """etcd flow control: a REPLICATE follower gets at most `max_inflight_msgs` unacknowledged
    AppendEntries; acknowledgements open the window again."""
    raft = make_leader(max_inflight_msgs=3, max_size_per_msg=1)
    for i in range(10):
        raft.propose(b"%d" % i)
    to_two = [m for m in of_type(drain(raft), AppendEntries) if m.dst == 2]
    assert len(to_two) == 3
    raft.step(AppendEntriesResponse(raft.term, 2, 1, to_two[0].entries[-1].index))
    more = [m for m in of_type(drain(raft), AppendEntries) if m.dst == 2]
    assert len(more) == 1


def test_probe_state_sends_one_message_until_the_follower_answers() -> None:
    """etcd flow control: a follower in PROBE (state unknown, e.g. just after an election) gets
    one AppendEntries at a time; its answer moves it to REPLICATE and the backlog flows."""
    raft = make_node(1, pre_vote=False, max_size_per_msg=1)
    raft.campaign()
    drain(raft)
    raft.step(RequestVoteResponse(raft.term, 2, 1, True))
    first = [m for m in of_type(drain(raft), AppendEntries) if m.dst == 2]
    assert len(first) == 1  # the probe carrying the no-op
    for i in range(5):
        raft.propose(b"%d" % i)
    assert [m for m in of_type(drain(raft), AppendEntries) if m.dst == 2] == []
    raft.step(AppendEntriesResponse(raft.term, 2, 1, 4))
    after = [m for m in of_type(drain(raft), AppendEntries) if m.dst == 2]
    assert [e.index for m in after for e in m.entries] == [5, 6, 7, 8, 9]


def test_commit_news_to_a_caught_up_follower_is_commit_only_and_not_answered() -> None:
    """After a commit, a follower the leader knows holds its whole log gets an empty append
    marked `commit_only`; one whose acknowledgement is still outstanding gets a plain one.
    A follower that matches a commit-only append advances its commit and sends nothing (the
    answer would carry no news); one that does not match still rejects it, as Figure 2 says."""
    raft = make_leader()
    raft.propose(b"x")
    index = raft.log.last_index()
    drain(raft)
    raft.step(AppendEntriesResponse(raft.term, 2, 1, index))  # 2 acks: committed, 3 still out
    news = {m.dst: m for m in of_type(drain(raft), AppendEntries)}
    assert raft.log.committed == index
    assert news[2].commit_only and not news[2].entries and news[2].leader_commit == index
    assert not news[3].commit_only

    follower = make_node(2, pre_vote=False)
    leader_term = raft.term
    follower.step(AppendEntries(leader_term, 1, 2, 3, 1, entries(leader_term, 4, 2), 3))
    assert of_type(drain(follower), AppendEntriesResponse)[0].index == 5
    follower.step(AppendEntries(leader_term, 1, 2, 5, leader_term, (), 5, commit_only=True))
    assert drain(follower) == [] and follower.log.committed == 5
    # The same message without the flag is answered, and a commit-only one that does not
    # match the follower's log is rejected with a hint.
    follower.step(AppendEntries(leader_term, 1, 2, 5, leader_term, (), 5))
    assert [m.index for m in of_type(drain(follower), AppendEntriesResponse)] == [5]
    follower.step(AppendEntries(leader_term, 1, 2, 9, leader_term, (), 5, commit_only=True))
    rejected = of_type(drain(follower), AppendEntriesResponse)
    assert len(rejected) == 1 and rejected[0].reject


def test_proposals_between_readies_are_batched_into_one_message_per_follower() -> None:
    raft = make_leader()
    for i in range(50):
        raft.propose(b"%d" % i)
    appends = of_type(drain(raft), AppendEntries)
    assert sorted(m.dst for m in appends) == [2, 3]
    assert all(len(m.entries) == 50 for m in appends)


def test_input_between_ready_and_advance_is_refused() -> None:
    raft = make_leader()
    raft.propose(b"x")
    rd = raft.ready()
    with pytest.raises(RaftUsageError):
        raft.tick()
    with pytest.raises(RaftUsageError):
        raft.ready()
    assert not raft.has_ready()
    raft.advance(rd)
    with pytest.raises(RaftUsageError):
        raft.advance(rd)


def test_proposal_on_a_follower_is_refused_with_the_leader_hint() -> None:
    raft = make_node(2)
    raft.step(Heartbeat(1, 1, 2, 3))
    with pytest.raises(ProposalDropped) as info:
        raft.propose(b"x")
    assert info.value.leader == 1


def test_single_node_cluster_commits_alone() -> None:
    raft = make_node(1, (1,))
    raft.campaign()
    drain(raft)
    entry = raft.propose(b"solo")
    drain(raft)
    assert raft.commit_index == entry.index == raft.applied_index
    raft.read_index(b"r")
    assert raft.ready().read_states == (ReadState(entry.index, b"r"),)


def test_restart_with_an_applied_index_skips_applied_entries_and_keeps_their_conf_changes() -> None:
    """The shell may restart with a state machine ahead of the snapshot (`Config.applied`):
    those entries are not handed out again, and conf changes among them are in force."""
    import random

    from store.raft import Config, EntryKind, HardState, RaftNode, bootstrap
    from store.raft.types import Entry

    storage = bootstrap((1, 2, 3))
    learner = ConfChange(ConfChangeKind.ADD_LEARNER, 4).encode()
    storage.append([Entry(2, 4, EntryKind.CONF_CHANGE, learner), Entry(2, 5, data=b"x")])
    storage.set_hard_state(HardState(term=2, vote=1, commit=5))
    raft = RaftNode(Config(id=1, applied=4), storage, random.Random(0))
    assert raft.conf_state.learners == {4}
    assert [e.index for e in raft.ready().committed_entries] == [5]


def test_soft_state_reports_leader_changes() -> None:
    raft = make_node(1, pre_vote=False)
    raft.campaign()
    rd = raft.ready()
    assert rd.soft_state is not None and rd.soft_state.role is Role.CANDIDATE
    raft.advance(rd)
    raft.step(RequestVoteResponse(raft.term, 2, 1, True))
    rd = raft.ready()
    assert rd.soft_state is not None
    assert (rd.soft_state.role, rd.soft_state.leader) == (Role.LEADER, 1)


def test_leader_may_send_before_persisting_and_a_crash_then_loses_nothing_committed() -> None:
    """Thesis §10.2.1: the leader writes its disk in parallel with replication. Its Ready says
    so; a candidate's never does (its vote must be on disk first). Crashing the leader after
    sending but before persisting leaves the cluster safe (the simulator checks every step)."""
    candidate = make_node(1, pre_vote=False)
    candidate.campaign()
    rd = candidate.ready()
    assert not rd.may_send_before_persist
    candidate.advance(rd)

    cluster = Cluster(3, seed=51)
    leader = cluster.elect()
    for i in range(5):
        leader.propose(b"early-%d" % i)
    rd = leader.ready()
    assert rd.may_send_before_persist
    for m in rd.messages:
        cluster.send(m)
    cluster.crash(leader.id)  # the Ready was never persisted nor advanced
    cluster.flush()
    new = cluster.elect()
    assert new.id != leader.id
    cluster.restart(leader.id)
    cluster.run(3)
    values = [v for v in cluster.nodes[new.id].sm.values if v.startswith(b"early")]
    assert values == [b"early-%d" % i for i in range(5)]
    assert cluster.nodes[leader.id].sm.values == cluster.nodes[new.id].sm.values


def test_new_learner_joins_through_a_snapshot_taken_before_it_was_added() -> None:
    """§7 with §4.2.1: a node added after compaction starts from the leader's snapshot (whose
    configuration predates it) and learns its own addition from the entries after it."""
    cluster = Cluster(3, seed=61)
    leader = cluster.elect()
    for i in range(12):
        leader.propose(b"%d" % i)
    cluster.run(2)
    for node_id in list(cluster.nodes):
        cluster.compact(node_id)
    cluster.add_node(4)
    _propose_conf(cluster, ConfChangeKind.ADD_LEARNER, 4)
    cluster.run(5)
    joined = cluster.nodes[4]
    assert joined.disk.snapshot().meta.index > 0
    assert 4 not in joined.disk.snapshot().meta.conf_state.members()
    assert cluster.raft(4).conf_state.learners == {4}
    assert joined.sm.values == cluster.nodes[leader.id].sm.values
    _propose_conf(cluster, ConfChangeKind.ADD_NODE, 4)
    assert cluster.raft(4).promotable()


def test_status_reports_the_leaders_view_of_its_peers() -> None:
    raft = make_leader()
    status = raft.status()
    assert (status.role, status.leader, status.commit, status.applied) == (Role.LEADER, 1, 4, 4)
    assert status.voters == {1, 2, 3}
    assert dict(status.progress)[2].match == 4
    assert dict(status.progress)[2].state == "replicate"
    assert make_node(2).status().progress == ()
