"""Tests named after sentences of the Raft paper (Ongaro & Ousterhout, "In Search of an
Understandable Consensus Algorithm", 2014), in the manner of etcd-io/raft's raft_paper_test.go.

Each test quotes (or closely paraphrases) the sentence it checks in its docstring.
"""

from __future__ import annotations

import random

import pytest

from store.raft import (
    Config,
    Entry,
    EntryKind,
    HardState,
    MemoryStorage,
    RaftNode,
    Role,
    bootstrap,
)
from store.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
    RequestVote,
    RequestVoteResponse,
)
from tests.store.raft.helpers import (
    acknowledge,
    drain,
    entries,
    make_leader,
    make_node,
    of_type,
    tick_until_campaign,
)
from tests.store.raft.sim import Cluster

# --- §5.1 / §5.2 leader election ------------------------------------------------------------


def test_when_servers_start_up_they_begin_as_followers() -> None:
    """§5.2: "When servers start up, they begin as followers." """
    raft = make_node()
    assert raft.role is Role.FOLLOWER
    assert raft.leader == 0


def test_follower_with_no_communication_over_election_timeout_begins_an_election() -> None:
    """§5.2: "If a follower receives no communication over a period of time called the election
    timeout, then it assumes there is no viable leader and begins an election. To begin an
    election, a follower increments its current term and transitions to candidate state. It then
    votes for itself and issues RequestVote RPCs in parallel to each of the other servers." """
    raft = make_node(pre_vote=False)
    msgs = tick_until_campaign(raft)
    assert raft.role is Role.CANDIDATE
    assert raft.term == 2
    assert raft.vote == 1
    votes = of_type(msgs, RequestVote)
    assert sorted(m.dst for m in votes) == [2, 3]
    assert all(m.term == 2 and not m.pre_vote for m in votes)


def test_election_timeouts_are_chosen_randomly_from_a_fixed_interval() -> None:
    """§5.2: "Raft uses randomized election timeouts ... chosen randomly from a fixed interval
    (e.g., 150–300ms)" - here [election_tick, 2 * election_tick)."""
    seen = set()
    for seed in range(40):
        raft = make_node(seed=seed, pre_vote=False)
        ticks = 0
        while raft.role is Role.FOLLOWER:
            raft.tick()
            ticks += 1
        assert 10 <= ticks < 20
        seen.add(ticks)
    assert len(seen) > 3


def test_candidate_wins_an_election_if_it_receives_votes_from_a_majority() -> None:
    """§5.2: "A candidate wins an election if it receives votes from a majority of the servers
    in the full cluster for the same term." """
    raft = make_node(1, (1, 2, 3, 4, 5), pre_vote=False)
    raft.campaign()
    drain(raft)
    raft.step(RequestVoteResponse(raft.term, 2, 1, True))
    assert raft.role is Role.CANDIDATE  # 2 of 5
    raft.step(RequestVoteResponse(raft.term, 3, 1, True))
    assert raft.is_leader  # 3 of 5


def test_candidate_returns_to_follower_when_a_majority_rejects_it() -> None:
    """§5.2: a candidate that cannot win (a majority voted otherwise) stops campaigning."""
    raft = make_node(1, (1, 2, 3), pre_vote=False)
    raft.campaign()
    drain(raft)
    raft.step(RequestVoteResponse(raft.term, 2, 1, False))
    raft.step(RequestVoteResponse(raft.term, 3, 1, False))
    assert raft.role is Role.FOLLOWER


def test_each_server_votes_for_at_most_one_candidate_in_a_given_term() -> None:
    """§5.2: "Each server will vote for at most one candidate in a given term, on a
    first-come-first-served basis." """
    raft = make_node(3, pre_vote=False, check_quorum=False)
    raft.step(RequestVote(2, 1, 3, 3, 1))
    raft.step(RequestVote(2, 2, 3, 3, 1))
    replies = of_type(drain(raft), RequestVoteResponse)
    assert [(m.dst, m.vote_granted) for m in replies] == [(1, True), (2, False)]
    assert raft.hard_state().vote == 1


def test_vote_is_persisted_before_the_reply_is_sent_and_survives_a_restart() -> None:
    """Figure 2: "Persistent state on all servers: (Updated on stable storage before responding
    to RPCs) currentTerm, votedFor" - the Ready carrying the grant also carries the vote."""
    storage = bootstrap((1, 2, 3))
    raft = make_node(3, storage=storage, pre_vote=False, check_quorum=False)
    raft.step(RequestVote(2, 1, 3, 3, 1))
    rd = raft.ready()
    assert rd.hard_state == HardState(term=2, vote=1, commit=3)
    assert rd.must_sync
    assert of_type(list(rd.messages), RequestVoteResponse)[0].vote_granted
    raft.advance(rd)
    restarted = RaftNode(
        Config(id=3, pre_vote=False, check_quorum=False), storage, random.Random(1)
    )
    restarted.step(RequestVote(2, 2, 3, 3, 1))
    assert not of_type(drain(restarted), RequestVoteResponse)[0].vote_granted


def test_candidate_steps_down_on_append_entries_from_a_leader_of_at_least_its_term() -> None:
    """§5.2: "If the leader's term ... is at least as large as the candidate's current term,
    then the candidate recognizes the leader as legitimate and returns to follower state." """
    raft = make_node(1, pre_vote=False)
    raft.campaign()
    drain(raft)
    raft.step(AppendEntries(raft.term, 2, 1, 3, 1, (), 3))
    assert raft.role is Role.FOLLOWER
    assert raft.leader == 2


def test_server_with_a_smaller_current_term_updates_it_and_reverts_to_follower() -> None:
    """§5.1: "If a candidate or leader discovers that its term is out of date, it immediately
    reverts to follower state." """
    raft = make_leader()
    raft.step(Heartbeat(raft.term + 5, 3, 1, 0))
    assert raft.role is Role.FOLLOWER
    assert raft.term == 7
    assert raft.leader == 3


def test_server_rejects_a_request_with_a_stale_term_number() -> None:
    """§5.1: "If a server receives a request with a stale term number, it rejects the request." """
    raft = make_node(2, pre_vote=False, check_quorum=False)
    raft.step(Heartbeat(5, 1, 2, 0))
    drain(raft)
    raft.step(AppendEntries(3, 3, 2, 3, 1, entries(3, 4, 1), 4))
    out = drain(raft)
    assert raft.log.last_index() == 3
    assert raft.leader == 1
    # The stale leader is told the newer term so that it steps down.
    assert [m.term for m in of_type(out, AppendEntriesResponse)] == [5]


def test_leader_sends_periodic_heartbeats_to_maintain_its_authority() -> None:
    """§5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that carry no log entries) to
    all followers in order to maintain their authority." """
    raft = make_leader()
    raft.tick()
    beats = of_type(drain(raft), Heartbeat)
    assert sorted(m.dst for m in beats) == [2, 3]


def test_follower_resets_its_election_timer_when_it_hears_from_the_leader() -> None:
    """§5.2: "A server remains in follower state as long as it receives valid RPCs from a leader
    or candidate." """
    raft = make_node(2, pre_vote=False)
    for _ in range(100):
        raft.tick()
        raft.step(Heartbeat(1, 1, 2, 0))
        drain(raft)
    assert raft.role is Role.FOLLOWER


def test_election_safety_at_most_one_leader_per_term() -> None:
    """Figure 3, Election Safety: "at most one leader can be elected in a given term" - over many
    elections in a 5-node cluster with lossy links (the simulator checks every step)."""
    for seed in range(3):
        cluster = Cluster(5, seed, pre_vote=False, check_quorum=False)
        rng = random.Random(seed)
        for step in range(150):
            leader = cluster.leader()
            if step % 30 == 0 and leader is not None:
                cluster.partition({leader.id})  # force a new election elsewhere
            elif step % 30 == 15:
                cluster.heal()
            for node in cluster.live():
                assert node.raft is not None
                node.raft.tick()
            for node_id in cluster.nodes:
                cluster.process_ready(node_id)
            while cluster.network:
                k = rng.randrange(len(cluster.network))
                if rng.random() < 0.3:
                    cluster.drop(k)
                else:
                    cluster.deliver(k)
                cluster.check()
        assert len(cluster.leader_of_term) > 1


# --- §5.3 log replication -------------------------------------------------------------------


def test_leader_appends_the_command_to_its_log_and_issues_append_entries_in_parallel() -> None:
    """§5.3: "The leader appends the command to its log as a new entry, then issues
    AppendEntries RPCs in parallel to each of the other servers to replicate the entry." """
    raft = make_leader()
    entry = raft.propose(b"cmd")
    assert raft.log.last_index() == entry.index
    appends = of_type(drain(raft), AppendEntries)
    assert sorted(m.dst for m in appends) == [2, 3]
    assert all(m.entries == (entry,) for m in appends)


def test_entry_is_committed_once_the_leader_has_replicated_it_on_a_majority() -> None:
    """§5.3: "A log entry is committed once the leader that created the entry has replicated it
    on a majority of the servers." """
    raft = make_leader((1, 2, 3, 4, 5))
    entry = raft.propose(b"cmd")
    drain(raft)
    raft.step(AppendEntriesResponse(raft.term, 2, 1, entry.index))
    drain(raft)
    assert raft.commit_index < entry.index  # leader + 1 of 5
    raft.step(AppendEntriesResponse(raft.term, 3, 1, entry.index))
    drain(raft)
    assert raft.commit_index == entry.index


def test_leader_counts_its_own_entry_only_once_it_is_persisted() -> None:
    """Figure 2 ("updated on stable storage before responding"): the leader's own copy counts
    towards the majority only after the shell persisted it (after `advance`)."""
    raft = make_leader((1, 2, 3))
    entry = raft.propose(b"cmd")
    raft.step(AppendEntriesResponse(raft.term, 2, 1, entry.index))
    assert raft.commit_index < entry.index
    rd = raft.ready()
    assert rd.entries == (entry,)
    raft.advance(rd)
    assert raft.commit_index == entry.index


def test_leader_commits_entries_from_previous_terms_only_indirectly() -> None:
    """§5.4.2 (Figure 8): "Raft never commits log entries from previous terms by counting
    replicas. Only log entries from the leader's current term are committed by counting." """
    storage = bootstrap((1, 2, 3))
    storage.append([Entry(2, 4, data=b"old")])
    storage.set_hard_state(HardState(term=3, vote=0, commit=3))
    raft = make_node(1, storage=storage, pre_vote=False)
    raft.campaign()
    drain(raft)
    raft.step(RequestVoteResponse(raft.term, 2, 1, True))
    drain(raft)
    assert raft.is_leader and raft.term == 4
    # A majority (1 and 2) holds the term-2 entry at index 4, but that alone commits nothing.
    raft.step(AppendEntriesResponse(raft.term, 2, 1, 4))
    drain(raft)
    assert raft.commit_index == 3
    # Once the no-op of term 4 (index 5) is on a majority, index 4 commits with it.
    raft.step(AppendEntriesResponse(raft.term, 2, 1, 5))
    drain(raft)
    assert raft.commit_index == 5


def test_follower_refuses_new_entries_if_its_log_lacks_the_preceding_entry() -> None:
    """§5.3: "If the follower does not find an entry in its log with the same index and term,
    then it refuses the new entries." """
    raft = make_node(2, pre_vote=False)
    raft.step(AppendEntries(2, 1, 2, 7, 2, entries(2, 8, 1), 3))
    reply = of_type(drain(raft), AppendEntriesResponse)[0]
    assert reply.reject
    assert reply.index == 7
    assert reply.reject_hint == 3  # our last index: the leader can jump straight there
    assert raft.log.last_index() == 3


def test_conflicting_entries_in_follower_logs_are_overwritten_with_the_leaders() -> None:
    """§5.3: "conflicting entries in follower logs will be overwritten with entries from the
    leader's log." """
    storage = bootstrap((1, 2, 3))
    storage.append(list(entries(2, 4, 3)))
    storage.set_hard_state(HardState(term=2, vote=0, commit=3))
    raft = make_node(2, storage=storage, pre_vote=False)
    new = entries(3, 5, 2)
    raft.step(AppendEntries(3, 1, 2, 4, 2, new, 4))
    reply = of_type(drain(raft), AppendEntriesResponse)[0]
    assert not reply.reject and reply.index == 6
    assert raft.log.slice(4, 7) == [entries(2, 4, 1)[0], *new]
    assert storage.last_index() == 6 and storage.term(6) == 3


def test_a_committed_entry_is_never_overwritten() -> None:
    """Figure 3, State Machine Safety: a follower never replaces a committed entry. A (stale)
    AppendEntries below its commit index is answered with that index and changes nothing; the
    log itself refuses such a truncation outright."""
    from store.raft.log import RaftInvariantError

    raft = make_node(2, pre_vote=False)
    before = raft.log.slice(1, 4)
    raft.step(AppendEntries(2, 1, 2, 2, 1, (Entry(2, 3, EntryKind.NORMAL, b"x"),), 3))
    reply = of_type(drain(raft), AppendEntriesResponse)[0]
    assert (reply.reject, reply.index) == (False, 3)
    assert raft.log.slice(1, 4) == before
    with pytest.raises(RaftInvariantError):
        raft.log.maybe_append(2, 1, 3, (Entry(2, 3, EntryKind.NORMAL, b"x"),))


def test_leader_decrements_next_index_after_a_rejection_and_retries() -> None:
    """§5.3: "After a rejection, the leader decrements nextIndex and retries the
    AppendEntries RPC. Eventually nextIndex will reach a point where the leader and follower
    logs match." The hint lets it skip the follower's missing tail in one step."""
    storage = bootstrap((1, 2, 3))
    storage.append(list(entries(1, 4, 6)))  # indexes 4..9 of term 1
    storage.set_hard_state(HardState(term=1, vote=0, commit=3))
    raft = make_node(1, storage=storage, pre_vote=False)
    raft.campaign()
    drain(raft)
    raft.step(RequestVoteResponse(raft.term, 2, 1, True))
    first = [m for m in of_type(drain(raft), AppendEntries) if m.dst == 3]
    assert first[0].prev_log_index == 9  # optimistic: nextIndex = last + 1
    # Follower 3 only has the bootstrap entries: one rejection with a hint finds the match.
    raft.step(AppendEntriesResponse(raft.term, 3, 1, 9, True, 3, 1))
    retry = [m for m in of_type(drain(raft), AppendEntries) if m.dst == 3]
    assert retry and retry[0].prev_log_index == 3
    assert [e.index for e in retry[0].entries] == list(range(4, 11))
    # Without a useful hint, nextIndex goes down by one per rejection (the paper's rule).
    raft.step(AppendEntriesResponse(raft.term, 3, 1, 3, True, 2, 0))
    again = [m for m in of_type(drain(raft), AppendEntries) if m.dst == 3]
    assert again[0].prev_log_index == 2


def test_follower_applies_committed_entries_to_its_state_machine_in_log_order() -> None:
    """§5.3: "Once a follower learns that a log entry is committed, it applies the entry to its
    local state machine (in log order)." Only persisted entries are handed out."""
    raft = make_node(2, pre_vote=False)
    raft.step(AppendEntries(2, 1, 2, 3, 1, entries(2, 4, 3), 5))
    rd = raft.ready()
    assert [e.index for e in rd.entries] == [4, 5, 6]
    assert rd.committed_entries == ()  # not yet on stable storage
    raft.advance(rd)
    rd = raft.ready()
    assert [e.index for e in rd.committed_entries] == [4, 5]
    raft.advance(rd)
    assert raft.applied_index == 5


# --- §5.4 safety ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last_term", "last_index", "granted"),
    [(1, 3, True), (1, 2, False), (2, 1, True), (0, 9, False)],
)
def test_voter_denies_its_vote_if_its_own_log_is_more_up_to_date(
    last_term: int, last_index: int, granted: bool
) -> None:
    """§5.4.1: "the voter denies its vote if its own log is more up-to-date than that of the
    candidate ... If the logs have last entries with different terms, then the log with the
    later term is more up-to-date. If the logs end with the same term, then whichever log is
    longer is more up-to-date." (our log ends at index 3, term 1)"""
    raft = make_node(3, pre_vote=False, check_quorum=False)
    raft.step(RequestVote(2, 1, 3, last_index, last_term))
    assert of_type(drain(raft), RequestVoteResponse)[0].vote_granted is granted


def test_new_leader_commits_a_blank_no_op_entry_at_the_start_of_its_term() -> None:
    """§8: "Raft handles this by having each leader commit a blank no-op entry into the log at
    the start of its term." """
    raft = make_leader()
    noop = raft.log.slice(4, 5)[0]
    assert noop.kind is EntryKind.EMPTY and noop.term == raft.term
    assert raft.commit_index == 4


def test_restarted_node_recovers_term_vote_and_log_from_storage() -> None:
    """Figure 2: currentTerm, votedFor and log[] are persistent; commitIndex is re-learned."""
    storage = MemoryStorage()
    storage.append(list(entries(1, 1, 3)))
    storage.set_hard_state(HardState(term=4, vote=2, commit=2))
    raft = RaftNode(Config(id=1), storage, random.Random(0))
    assert (raft.term, raft.vote, raft.commit_index, raft.log.last_index()) == (4, 2, 2, 3)
    assert raft.applied_index == 0
    assert [e.index for e in raft.ready().committed_entries] == [1, 2]


def test_leader_catches_up_a_follower_that_restarted_with_an_empty_tail() -> None:
    """§5.3 end to end: the simulated follower loses its unpersisted tail, then is repaired."""
    cluster = Cluster(3, seed=7)
    leader = cluster.elect()
    follower = next(n for n in cluster.nodes if n != leader.id)
    cluster.crash(follower)
    for i in range(30):
        leader.propose(b"v%d" % i)
    cluster.run(2)
    cluster.restart(follower)
    cluster.run(5)
    assert cluster.nodes[follower].sm.values == cluster.nodes[leader.id].sm.values
    assert len(cluster.nodes[leader.id].sm.values) == 30


def test_acknowledge_helper_drives_commit() -> None:
    """Guard for the scripted helpers: an acknowledged proposal commits on the leader."""
    raft = make_leader()
    entry = raft.propose(b"x")
    acknowledge(raft, drain(raft))
    assert raft.commit_index == entry.index
