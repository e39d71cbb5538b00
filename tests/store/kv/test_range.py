"""Range semantics (etcd api.md "Range"; server/etcdserver/apply: sort, filters, limit, count)."""

from __future__ import annotations

import pytest

from store.kv.errors import ErrorKind, KVError
from store.kv.messages import (
    CompactRequest,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    SortOrder,
    SortTarget,
)
from tests.store.kv.helpers import Applier


@pytest.fixture
def a() -> Applier:
    a = Applier()
    a.ok(PutRequest(b"/p/b", b"2"))  # rev 2
    a.ok(PutRequest(b"/p/a", b"3"))  # rev 3
    a.ok(PutRequest(b"/p/c", b"1"))  # rev 4
    a.ok(PutRequest(b"/p/a", b"4"))  # rev 5: /p/a version 2
    a.ok(PutRequest(b"/q", b"0"))  # rev 6
    return a


def keys(a: Applier, req: RangeRequest) -> list[bytes]:
    return [kv.key for kv in a.machine.range(req).kvs]


def test_single_key_prefix_from_key_and_everything(a: Applier) -> None:
    assert keys(a, RangeRequest(b"/p/a")) == [b"/p/a"]
    assert keys(a, RangeRequest(b"/p/", b"/p0")) == [b"/p/a", b"/p/b", b"/p/c"]
    assert keys(a, RangeRequest(b"/p/b", b"\0")) == [b"/p/b", b"/p/c", b"/q"]
    assert len(keys(a, RangeRequest(b"\0", b"\0"))) == 4
    assert keys(a, RangeRequest(b"/p/c", b"/p/a")) == []  # an inverted range is empty


def test_limit_more_and_count(a: Applier) -> None:
    resp = a.machine.range(RangeRequest(b"/p/", b"/p0", limit=2))
    assert [kv.key for kv in resp.kvs] == [b"/p/a", b"/p/b"]
    assert resp.more and resp.count == 3
    exact = a.machine.range(RangeRequest(b"/p/", b"/p0", limit=3))
    assert not exact.more and exact.count == 3


def test_keys_only_and_count_only(a: Applier) -> None:
    resp = a.machine.range(RangeRequest(b"/p/", b"/p0", keys_only=True))
    assert [kv.value for kv in resp.kvs] == [b"", b"", b""]
    assert [kv.version for kv in resp.kvs] == [2, 1, 1]
    counted = a.machine.range(RangeRequest(b"/p/", b"/p0", limit=1, count_only=True))
    assert counted.kvs == () and counted.count == 3 and not counted.more


@pytest.mark.parametrize(
    ("order", "target", "want"),
    [
        (SortOrder.NONE, SortTarget.KEY, [b"/p/a", b"/p/b", b"/p/c"]),
        (SortOrder.DESCEND, SortTarget.KEY, [b"/p/c", b"/p/b", b"/p/a"]),
        (SortOrder.NONE, SortTarget.VALUE, [b"/p/c", b"/p/b", b"/p/a"]),  # NONE + target: ascend
        (SortOrder.ASCEND, SortTarget.MOD, [b"/p/b", b"/p/c", b"/p/a"]),
        (SortOrder.DESCEND, SortTarget.CREATE, [b"/p/c", b"/p/a", b"/p/b"]),
        (SortOrder.DESCEND, SortTarget.VERSION, [b"/p/a", b"/p/b", b"/p/c"]),  # ties in key order
    ],
)
def test_sort_order_and_target(
    a: Applier, order: SortOrder, target: SortTarget, want: list[bytes]
) -> None:
    assert keys(a, RangeRequest(b"/p/", b"/p0", sort_order=order, sort_target=target)) == want


def test_sort_applies_before_limit(a: Applier) -> None:
    req = RangeRequest(b"/p/", b"/p0", limit=1, sort_order=SortOrder.DESCEND)
    resp = a.machine.range(req)
    assert [kv.key for kv in resp.kvs] == [b"/p/c"] and resp.more and resp.count == 3


def test_revision_filters_prune_but_count_ignores_them(a: Applier) -> None:
    """api.md: count is the number of keys in the range, before filters and limit."""
    resp = a.machine.range(RangeRequest(b"/p/", b"/p0", min_mod_revision=4))
    assert [kv.key for kv in resp.kvs] == [b"/p/a", b"/p/c"] and resp.count == 3
    assert keys(a, RangeRequest(b"/p/", b"/p0", max_mod_revision=3)) == [b"/p/b"]
    assert keys(a, RangeRequest(b"/p/", b"/p0", min_create_revision=3, max_create_revision=3)) == [
        b"/p/a"
    ]
    limited = a.machine.range(RangeRequest(b"/p/", b"/p0", limit=1, min_mod_revision=5))
    assert not limited.more  # only one key is left after filtering


def test_reads_at_old_revisions(a: Applier) -> None:
    a.ok(DeleteRangeRequest(b"/p/", b"/p0"))  # rev 7
    assert keys(a, RangeRequest(b"/p/", b"/p0")) == []
    at_4 = a.machine.range(RangeRequest(b"/p/", b"/p0", revision=4))
    assert [(kv.key, kv.value) for kv in at_4.kvs] == [
        (b"/p/a", b"3"),
        (b"/p/b", b"2"),
        (b"/p/c", b"1"),
    ]
    assert at_4.revision == 7  # the header carries the current revision, as etcd's does
    with pytest.raises(KVError) as future:
        a.machine.range(RangeRequest(b"/p/a", revision=8))
    assert future.value.kind is ErrorKind.FUTURE_REV
    a.ok(CompactRequest(5))
    assert keys(a, RangeRequest(b"/p/", b"/p0", revision=5)) == [b"/p/a", b"/p/b", b"/p/c"]
    with pytest.raises(KVError) as compacted:
        a.machine.range(RangeRequest(b"/p/a", revision=4))
    assert compacted.value.kind is ErrorKind.COMPACTED


def test_negative_limit_and_revision_mean_none_and_current_as_in_etcd(a: Applier) -> None:
    resp = a.machine.range(RangeRequest(b"/p/", b"/p0", limit=-1, revision=-5))
    assert len(resp.kvs) == 3 and not resp.more
