"""Any message that decodes is safe to step into any node: no exception escapes `step()`.

A peer may be buggy, stale or confused about membership; the core must ignore what it cannot
use rather than crash the server (STYLE.md: errors say whose fault it was)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from store.raft import from_wire, to_wire
from store.raft.messages import Message
from tests.store.raft.helpers import drain, make_leader, make_node
from tests.store.raft.test_wire import MESSAGES

SMALL_MESSAGES = MESSAGES.map(lambda m: replace(m, term=m.term % 8))


def _aimed(m: Message, dst: int, src: int) -> Message:
    return replace(m, dst=dst, src=src)


@settings(max_examples=50)
@given(st.lists(st.tuples(SMALL_MESSAGES, st.integers(2, 4)), max_size=8))
def test_random_messages_never_crash_a_follower(batch: list[tuple[Message, int]]) -> None:
    raft = make_node(1)
    for message, src in batch:
        m = from_wire(to_wire(_aimed(message, 1, src)))
        raft.step(m)
        drain(raft)


@settings(max_examples=50)
@given(st.lists(st.tuples(SMALL_MESSAGES, st.integers(2, 4)), max_size=8))
def test_random_messages_never_crash_a_leader(batch: list[tuple[Message, int]]) -> None:
    raft = make_leader()
    for message, src in batch:
        m = from_wire(to_wire(_aimed(message, 1, src)))
        raft.step(m)
        drain(raft)
