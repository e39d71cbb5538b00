"""The linearizability checker itself (Herlihy & Wing 1990 definitions), on hand-made histories."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from tests.store.server.lincheck import Op, check_history, check_register


def test_sequential_history_is_linearizable() -> None:
    ops = [Op(0, b"k", "put", b"1", 0, 1), Op(0, b"k", "get", b"1", 2, 3)]
    assert check_register(ops)


def test_stale_read_after_acknowledged_write_is_not_linearizable() -> None:
    """A read that starts after a write returned must see it (real-time order)."""
    ops = [
        Op(0, b"k", "put", b"1", 0, 1),
        Op(0, b"k", "put", b"2", 2, 3),
        Op(1, b"k", "get", b"1", 4, 5),
    ]
    assert not check_register(ops)


def test_concurrent_read_may_see_either_value() -> None:
    ops = [
        Op(0, b"k", "put", b"1", 0, 1),
        Op(0, b"k", "put", b"2", 2, 6),
        Op(1, b"k", "get", b"1", 3, 4),
        Op(2, b"k", "get", b"2", 3, 5),
    ]
    assert check_register(ops)


def test_reads_may_not_go_back_in_time() -> None:
    """Two sequential reads during one write: new then old is not linearizable."""
    ops = [
        Op(0, b"k", "put", b"1", 0, 1),
        Op(0, b"k", "put", b"2", 2, 10),
        Op(1, b"k", "get", b"2", 3, 4),
        Op(1, b"k", "get", b"1", 5, 6),
    ]
    assert not check_register(ops)


def test_unknown_outcome_write_may_or_may_not_have_happened() -> None:
    seen = [Op(0, b"k", "put", b"1", 0, math.inf), Op(1, b"k", "get", b"1", 5, 6)]
    unseen = [Op(0, b"k", "put", b"1", 0, math.inf), Op(1, b"k", "get", None, 5, 6)]
    assert check_register(seen) and check_register(unseen)


def test_per_key_check_names_the_bad_key() -> None:
    ops = [
        Op(0, b"a", "put", b"1", 0, 1),
        Op(0, b"b", "put", b"1", 0, 1),
        Op(1, b"b", "get", None, 2, 3),
    ]
    assert check_history(ops) == [b"b"]


@given(st.lists(st.sampled_from([b"1", b"2", b"3"]), min_size=1, max_size=12))
def test_any_sequential_history_of_a_register_is_linearizable(values: list[bytes]) -> None:
    ops: list[Op] = []
    t = 0.0
    for v in values:
        ops.append(Op(0, b"k", "put", v, t, t + 1))
        ops.append(Op(0, b"k", "get", v, t + 2, t + 3))
        t += 4
    assert check_register(ops)
    bad = [*ops, Op(1, b"k", "get", b"never", t, t + 1)]
    assert not check_register(bad)
