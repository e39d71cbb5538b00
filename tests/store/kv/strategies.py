"""Hypothesis strategies for KV requests (small key alphabets so that operations collide)."""

from __future__ import annotations

from hypothesis import strategies as st

from store.kv.messages import (
    AlarmAction,
    AlarmRequest,
    AlarmType,
    CompactRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DefragmentRequest,
    DeleteRangeRequest,
    LeaseCheckpoint,
    LeaseCheckpointRequest,
    LeaseGrantRequest,
    LeaseRevokeRequest,
    PutRequest,
    RangeRequest,
    Request,
    RequestOp,
    SortOrder,
    SortTarget,
    TxnRequest,
)

keys = st.sampled_from([b"a", b"ab", b"b", b"ba", b"c", b"d"])
values = st.binary(max_size=4)
range_ends = st.sampled_from([b"", b"", b"\0", b"b", b"c", b"e", b"ac"])
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
uint = st.integers(min_value=0, max_value=2**63 - 1)
small = st.integers(min_value=0, max_value=12)

revs = st.sampled_from([0, 0, 0, 0, 2, 3, 5, 8])
ranges = st.builds(
    RangeRequest,
    keys,
    range_ends,
    small,
    st.just(0),
    st.booleans(),
    st.booleans(),
    st.sampled_from(SortOrder),
    st.sampled_from([SortTarget.KEY, SortTarget.KEY, *SortTarget]),
    revs,
    revs,
    revs,
    revs,
)
puts = st.builds(PutRequest, keys, values, st.just(0), st.booleans())
txn_ranges = st.builds(
    RangeRequest,
    keys,
    range_ends,
    small,
    st.sampled_from([0, 0, 0, 1, 2, 3, 4, 5, 6, 8]),
    st.booleans(),
    st.booleans(),
)
deletes = st.builds(DeleteRangeRequest, keys, range_ends, st.booleans())


def compares(ints: st.SearchStrategy[int] = small) -> st.SearchStrategy[Compare]:
    def build(
        key: bytes, target: CompareTarget, result: CompareResult, n: int, v: bytes, end: bytes
    ) -> Compare:
        return Compare(key, target, result, v if target is CompareTarget.VALUE else n, end)

    return st.builds(
        build,
        keys,
        st.sampled_from(CompareTarget),
        st.sampled_from(CompareResult),
        ints,
        values,
        st.sampled_from([b"", b"", b"", b"c"]),
    )


def txn_ops(depth: int = 1) -> st.SearchStrategy[RequestOp]:
    base = st.one_of(txn_ranges, puts, deletes)
    if depth <= 0:
        return base
    return st.one_of(base, txns(depth - 1))


def txns(depth: int = 1) -> st.SearchStrategy[TxnRequest]:
    ops = st.lists(txn_ops(depth), max_size=3).map(tuple)
    return st.builds(TxnRequest, st.lists(compares(), max_size=2).map(tuple), ops, ops)


# Any request, with field values across their whole wire range (for codec round trips).
any_requests: st.SearchStrategy[Request] = st.one_of(
    st.builds(
        RangeRequest,
        st.binary(),
        st.binary(),
        uint,
        uint,
        st.booleans(),
        st.booleans(),
        st.sampled_from(SortOrder),
        st.sampled_from(SortTarget),
        uint,
        uint,
        uint,
        uint,
    ),
    st.builds(
        PutRequest, st.binary(), st.binary(), int64, st.booleans(), st.booleans(), st.booleans()
    ),
    st.builds(DeleteRangeRequest, st.binary(), st.binary(), st.booleans()),
    txns(2),
    st.builds(TxnRequest, st.lists(compares(int64), max_size=3).map(tuple)),
    st.builds(CompactRequest, uint, st.booleans()),
    st.builds(LeaseGrantRequest, int64, uint),
    st.builds(LeaseRevokeRequest, int64),
    st.builds(
        LeaseCheckpointRequest,
        st.lists(st.builds(LeaseCheckpoint, int64, int64), max_size=3).map(tuple),
    ),
    st.builds(AlarmRequest, st.sampled_from(AlarmAction), st.sampled_from(AlarmType)),
    st.just(DefragmentRequest()),
)
