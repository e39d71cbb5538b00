"""Small helpers for scripted single-node Raft tests (no network: the test is the network)."""

from __future__ import annotations

import random
from typing import TypeVar

from store.raft import Config, Entry, MemoryStorage, Message, RaftNode, Ready, bootstrap
from store.raft.messages import AppendEntries, AppendEntriesResponse, RequestVoteResponse

T = TypeVar("T")


def make_node(
    node_id: int = 1,
    voters: tuple[int, ...] = (1, 2, 3),
    *,
    storage: MemoryStorage | None = None,
    seed: int = 0,
    **config: object,
) -> RaftNode:
    """A node of a fresh cluster of `voters`, with its bootstrap entries already applied."""
    raft = RaftNode(
        Config(id=node_id, **config),  # type: ignore[arg-type]
        storage if storage is not None else bootstrap(voters),
        random.Random(seed),
    )
    drain(raft)
    return raft


def drain(raft: RaftNode) -> list[Message]:
    """Play a perfect shell: process every Ready and return the messages to send."""
    out: list[Message] = []
    while raft.has_ready():
        rd = raft.ready()
        out.extend(rd.messages)
        raft.advance(rd)
    return out


def one_ready(raft: RaftNode) -> Ready:
    rd = raft.ready()
    raft.advance(rd)
    return rd


def of_type(messages: list[Message], cls: type[T]) -> list[T]:
    return [m for m in messages if isinstance(m, cls)]


def tick_until_campaign(raft: RaftNode, limit: int = 100) -> list[Message]:
    """Tick until the node sends something (its election timeout fired)."""
    for _ in range(limit):
        raft.tick()
        msgs = drain(raft)
        if msgs:
            return msgs
    raise AssertionError("the node never campaigned")


def entries(term: int, first: int, count: int) -> tuple[Entry, ...]:
    return tuple(Entry(term, first + i, data=b"e%d" % (first + i)) for i in range(count))


def make_leader(voters: tuple[int, ...] = (1, 2, 3), **config: object) -> RaftNode:
    """Node 1 elected leader (no pre-vote), with every follower caught up to its no-op."""
    config.setdefault("pre_vote", False)
    raft = make_node(1, voters, **config)  # type: ignore[arg-type]
    raft.campaign()
    drain(raft)
    for voter in voters[1:]:
        raft.step(RequestVoteResponse(raft.term, voter, 1, True))
    msgs = drain(raft)
    assert raft.is_leader
    acknowledge(raft, msgs)
    return raft


def acknowledge(raft: RaftNode, msgs: list[Message]) -> list[Message]:
    """Every follower accepts every AppendEntries in `msgs`; returns the leader's output."""
    for m in of_type(msgs, AppendEntries):
        last = m.prev_log_index + len(m.entries)
        raft.step(AppendEntriesResponse(raft.term, m.dst, raft.id, last))
    return drain(raft)
