"""Wire form of Raft messages: round trips and total decoding.

`from_wire(to_wire(m)) == m` for every message (also after a real msgpack round trip), and
`from_wire` on arbitrary input either returns a message or raises `WireError`, never anything
else (the ExaBGP rule "arbitrary bytes decode or raise the protocol error")."""

from __future__ import annotations

from dataclasses import replace

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.raft import ConfState, Entry, EntryKind, SnapshotMeta, WireError, from_wire, to_wire
from store.raft.messages import (
    WIRE_CODES,
    AppendEntries,
    Heartbeat,
    Message,
    RequestVote,
)

U64 = st.integers(0, 2**64 - 1)
IDS = st.integers(1, 2**64 - 1)
SMALL = st.integers(0, 1000)


@st.composite
def entry_runs(draw: st.DrawFn) -> tuple[Entry, ...]:
    first = draw(st.integers(1, 2**40))
    kinds = draw(st.lists(st.sampled_from(list(EntryKind)), max_size=5))
    return tuple(
        Entry(draw(SMALL), first + i, kind, draw(st.binary(max_size=16)))
        for i, kind in enumerate(kinds)
    )


@st.composite
def metas(draw: st.DrawFn) -> SnapshotMeta:
    voters = draw(st.frozensets(st.integers(1, 9), max_size=5))
    learners = draw(st.frozensets(st.integers(10, 19), max_size=3))
    return SnapshotMeta(draw(U64), draw(U64), ConfState(voters, learners))


def _strategy_for(cls: type[Message]) -> st.SearchStrategy[Message]:
    kinds = {
        "entries": entry_runs(),
        "meta": metas(),
        "data": st.binary(max_size=32),
        "context": st.binary(max_size=32),
    }
    bools = {"pre_vote", "leadership_transfer", "vote_granted", "reject", "done", "commit_only"}
    fields: dict[str, st.SearchStrategy[object]] = {}
    for name in cls.__dataclass_fields__:
        if name in kinds:
            fields[name] = kinds[name]
        elif name in bools:
            fields[name] = st.booleans()
        elif name in ("src", "dst"):
            fields[name] = IDS
        else:
            fields[name] = U64
    built: st.SearchStrategy[Message] = st.builds(cls, **fields)
    if cls is AppendEntries:
        return built.map(_consistent_prev)
    return built


def _consistent_prev(m: Message) -> Message:
    assert isinstance(m, AppendEntries)
    if not m.entries:
        return m
    return replace(m, prev_log_index=m.entries[0].index - 1)


MESSAGES = st.one_of([_strategy_for(cls) for cls in WIRE_CODES.values()])


@given(MESSAGES)
def test_every_message_round_trips_through_msgpack(message: Message) -> None:
    wire = to_wire(message)
    assert from_wire(wire) == message
    packed = msgpack.packb(wire, use_bin_type=True)
    assert from_wire(msgpack.unpackb(packed, raw=False)) == message
    assert from_wire(msgpack.unpackb(packed, raw=False, use_list=False)) == message
    assert type(message).from_wire(wire) == message
    assert message.to_wire() == wire


JUNK = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.binary(max_size=8)
    | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=9) | st.dictionaries(st.text(max_size=2), inner, max_size=2)
    ),
    max_leaves=30,
)


@given(JUNK)
def test_arbitrary_input_decodes_or_raises_wire_error(value: object) -> None:
    try:
        decoded = from_wire(value)
    except WireError:
        return
    assert from_wire(to_wire(decoded)) == decoded


@given(MESSAGES, st.data())
def test_mutated_messages_decode_or_raise_wire_error(message: Message, data: st.DataObject) -> None:
    wire: list[object] = list(to_wire(message))
    position = data.draw(st.integers(0, len(wire) - 1))
    wire[position] = data.draw(JUNK)
    try:
        decoded = from_wire(wire)
    except WireError:
        return
    assert from_wire(to_wire(decoded)) == decoded


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([], "empty"),
        ("not a list", "expected a list"),
        ([99, 1, 2, 3], "unknown"),
        ([5, 1, 2, 3], "expected 5 fields"),
        ([5, True, 2, 3, 4, 0], "unsigned"),
        ([5, -1, 2, 3, 4, 0], "unsigned"),
        ([5, 2**64, 2, 3, 4, 0], "unsigned"),
        ([1, 1, 2, 3, 4, 5, 1, False], "boolean"),
        ([3, 1, 2, 3, 4, 5, [[1, 7, 0, b""], [1, 9, 0, b""]], 0], "consecutive"),
        ([3, 1, 2, 3, 4, 5, [[1, 7, 9, b""]], 0], "entry kind"),
        ([3, 1, 2, 3, 4, 5, [[1, 7, 0, "text"]], 0], "bytes"),
        ([7, 1, 2, 3, [1, 1, [1], [1]], 0, b"", True], "both voter and learner"),
        ([7, 1, 2, 3, [1, 1, [0], []], 0, b"", True], "reserved"),
    ],
)
def test_malformed_input_is_rejected_with_a_clear_error(value: object, reason: str) -> None:
    with pytest.raises(WireError, match=reason):
        from_wire(value)


def test_from_wire_on_a_class_checks_the_message_type() -> None:
    wire = to_wire(Heartbeat(1, 2, 3, 4))
    with pytest.raises(WireError, match="expected RequestVote"):
        RequestVote.from_wire(wire)


def test_wire_form_is_plain_lists_of_ints_bools_and_bytes() -> None:
    m = AppendEntries(3, 1, 2, 7, 2, (Entry(3, 8, EntryKind.CONF_CHANGE, b"cc"),), 6)
    assert to_wire(m) == [3, 3, 1, 2, 7, 2, [[3, 8, 1, b"cc"]], 6]


def test_append_entries_must_follow_prev_log_index() -> None:
    with pytest.raises(WireError, match="prev_log_index"):
        from_wire([3, 1, 2, 3, 4, 5, [[1, 9, 0, b""]], 0])


def test_commit_only_is_an_optional_tail_field() -> None:
    """Added after the first wire format: on the wire only when set, so a plain append keeps
    the old form (and older members decode it); both forms decode, anything longer does not."""
    plain = AppendEntries(3, 1, 2, 7, 3, (), 6)
    flagged = AppendEntries(3, 1, 2, 7, 3, (), 6, commit_only=True)
    assert to_wire(plain) == [3, 3, 1, 2, 7, 3, [], 6]
    assert to_wire(flagged) == [3, 3, 1, 2, 7, 3, [], 6, True]
    assert from_wire(to_wire(plain)) == plain and from_wire(to_wire(flagged)) == flagged
    assert from_wire([3, 3, 1, 2, 7, 3, [], 6, False]) == plain
    with pytest.raises(WireError, match="expected 7 to 8 fields, got 9"):
        from_wire([3, 3, 1, 2, 7, 3, [], 6, True, 0])
    with pytest.raises(WireError, match="boolean"):
        from_wire([3, 3, 1, 2, 7, 3, [], 6, 1])
