"""The logical log rules shared by writer and recovery (etcd-io/raft Ready contract, Raft §5.3, §7)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from store.wal.replay import LogShape
from tests.store.wal.util import LogModel, entries


def _shape(*batches: tuple[int, int, int]) -> LogShape:
    shape = LogShape(keep_data=True)
    for first, last, term in batches:
        for entry in entries(first, last, term):
            assert shape.entry_problem(entry[0]) is None
            shape.append(entry)
    return shape


def test_when_writing_index_i_discard_persisted_entries_at_or_after_i() -> None:
    """etcd-io/raft README: 'When writing index i, discard persisted entries >= i'."""
    shape = _shape((1, 10, 1), (6, 7, 2))
    assert [(e[0], e[1]) for e in shape.entries] == [(i, 1) for i in range(1, 6)] + [(6, 2), (7, 2)]
    assert shape.last_index == 7


def test_gaps_and_entries_before_the_log_are_problems() -> None:
    shape = _shape((5, 9, 1))
    assert shape.entry_problem(11) is not None
    assert shape.entry_problem(4) is not None
    assert shape.entry_problem(10) is None and shape.entry_problem(5) is None


def test_snapshot_with_matching_last_entry_retains_following_entries() -> None:
    """Raft §7: 'If existing log entry has same index and term as snapshot's last included
    entry, retain log entries following it'."""
    shape = _shape((1, 10, 1))
    shape.apply_snapshot(6, 1)
    assert shape.last_index == 10 and len(shape.entries) == 10


def test_snapshot_that_conflicts_discards_the_entire_log() -> None:
    """Raft §7: 'Discard the entire log'; the next entry must follow the snapshot."""
    shape = _shape((1, 10, 1))
    shape.apply_snapshot(20, 3)
    assert shape.empty and shape.last_index == 20
    assert shape.entry_problem(22) is not None
    assert shape.entry_problem(21) is None
    shape2 = _shape((1, 10, 1))
    shape2.apply_snapshot(6, 2)  # same index, other term
    assert shape2.empty and shape2.last_index == 6


def test_batch_problem_does_not_mutate() -> None:
    shape = _shape((1, 5, 1))
    assert shape.batch_problem([7], None, 0) is not None
    assert shape.batch_problem([3, 4], None, 0) is None
    assert shape.batch_problem([3, 5], None, 0) is not None
    assert shape.batch_problem([9], (8, 2), 0) is None
    assert shape.batch_problem([], (3, 1), 4) is not None  # older than the saved marker
    assert len(shape.entries) == 5


def test_release_keeps_the_next_expected_index() -> None:
    shape = _shape((1, 5, 1))
    shape.release_below(9)
    assert shape.empty and shape.last_index == 5 and shape.entry_problem(6) is None


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(1, 5)), max_size=40))
def test_overwrites_agree_with_a_dict_model(ops: list[tuple[int, int]]) -> None:
    """Differential: appends and suffix overwrites against an independent dict model."""
    shape = LogShape(keep_data=True)
    model = LogModel()
    term = 1
    for back, count in ops:
        start = max(1, shape.last_index + 1 - back) if not shape.empty else 1
        term += 1 if back else 0
        batch = entries(start, start + count - 1, term)
        assert shape.batch_problem([e[0] for e in batch], None, 0) is None
        for entry in batch:
            shape.append(entry)
        model.save(batch)
        assert shape.entries == model.ordered()
