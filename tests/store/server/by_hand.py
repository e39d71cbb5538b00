"""A member of a three-member cluster whose peers the test plays by hand: members 2 and 3
exist only as the messages the test delivers, so it decides what they say and when."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from store.raft.messages import AppendEntriesResponse, RequestVoteResponse
from store.server.config import StoreConfig
from store.server.member import Member


def three_member_config(tmp_path: Path, **settings: object) -> StoreConfig:
    """Member 1 of {1, 2, 3}; peers unreachable, elections only when the test asks."""
    return StoreConfig(
        id=1,
        data_dir=tmp_path / "d",
        initial_cluster=["1=unix:/nonexistent/1", "2=unix:/nonexistent/2", "3=unix:/nonexistent/3"],
        election_timeout=60.0,
        **settings,  # type: ignore[arg-type]
    )


async def until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll `check` (a bounded wait: the member's own task makes the progress)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "not reached"
        await asyncio.sleep(0.005)


async def elect_member_1(m: Member) -> int:
    """Member 2 grants the pre-vote and the vote, then acknowledges the leader's no-op;
    returns the new term. Member 3 stays silent."""
    await until(lambda: m.applied_index == m.node.commit_index == 3)  # the bootstrap
    term = m.node.term + 1
    m.node.campaign()
    m.kick()
    await until(lambda: m.node.role.value != "follower")
    m.deliver([RequestVoteResponse(term, 2, 1, True, pre_vote=True)])
    await until(lambda: m.node.term == term and m.node.vote == 1)
    m.deliver([RequestVoteResponse(term, 2, 1, True)])
    await until(lambda: m.is_leader)
    m.deliver([AppendEntriesResponse(term, 2, 1, m.node.log.last_index())])
    await until(lambda: m.node.commit_index == m.node.log.last_index() == m.applied_index)
    return term
