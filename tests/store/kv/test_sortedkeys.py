"""The chunked sorted key index against a plain sorted list."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from store.kv import sortedkeys
from store.kv.sortedkeys import SortedKeys

keys = st.binary(min_size=1, max_size=3)
ops = st.lists(st.tuples(st.booleans(), keys), max_size=400)


@given(ops, keys, st.one_of(st.none(), keys), st.integers(0, 5))
def test_matches_sorted_list(
    script: list[tuple[bool, bytes]], lo: bytes, hi: bytes | None, limit: int
) -> None:
    old = sortedkeys.LOAD
    sortedkeys.LOAD = 4  # small chunks: splits and merges happen within a few operations
    try:
        sk = SortedKeys()
        model: set[bytes] = set()
        for add, k in script:
            if add and k not in model:
                sk.add(k)
                model.add(k)
            elif not add and k in model:
                sk.remove(k)
                model.discard(k)
        ordered = sorted(model)
        assert list(sk) == ordered
        assert len(sk) == len(ordered)
        want = [k for k in ordered if k >= lo and (hi is None or k < hi)]
        assert list(sk.irange(lo, hi)) == want
        assert sk.count(lo, hi) == len(want)
        assert sk.take(lo, hi, limit) == (want[:limit] if limit else want)
        assert list(SortedKeys(ordered)) == ordered
    finally:
        sortedkeys.LOAD = old
