"""Edges of the `KVClient` contract where a second implementation most easily differs from
etcd: limits, nested txns, range compares, open-ended ranges, compaction bounds, lease TTLs."""

from __future__ import annotations

import asyncio

import pytest

from store.client import KVClient, prefix_end
from store.kv import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    KVError,
    PutRequest,
    RangeRequest,
    RangeResponse,
    TxnRequest,
    TxnResponse,
)
from store.kv.errors import ErrorKind

pytestmark = pytest.mark.slow


async def test_txn_too_many_ops_refused(kv: KVClient, prefix: bytes) -> None:
    """etcd --max-txn-ops defaults to 128: 128 puts pass, 129 are refused, nothing written."""
    ok = await kv.txn([], [PutRequest(prefix + b"%03d" % i, b"v") for i in range(128)])
    assert ok.succeeded
    with pytest.raises(KVError) as err:
        await kv.txn([], [PutRequest(prefix + b"x%03d" % i, b"v") for i in range(129)])
    assert err.value.kind is ErrorKind.TOO_MANY_OPS
    assert (await kv.range(prefix + b"x", prefix_end(prefix + b"x"), count_only=True)).count == 0


async def test_nested_txn_and_range_compare(kv: KVClient, prefix: bytes) -> None:
    """etcd 3.3: a txn inside a txn, and a compare over a key range (every key must satisfy
    it)."""
    a = await kv.put(prefix + b"a", b"1")
    await kv.put(prefix + b"b", b"1")
    inner = TxnRequest(
        (Compare(prefix + b"a", CompareTarget.VALUE, CompareResult.EQUAL, b"1"),),
        (PutRequest(prefix + b"c", b"inner"),),
        (),
    )
    outer = await kv.txn([], [inner, RangeRequest(prefix + b"c")], [])
    assert outer.succeeded
    nested, read = outer.responses
    assert isinstance(nested, TxnResponse) and nested.succeeded
    assert isinstance(read, RangeResponse) and read.kvs[0].value == b"inner"
    every = Compare(
        prefix + b"a", CompareTarget.VALUE, CompareResult.EQUAL, b"1", range_end=prefix + b"c"
    )
    assert (await kv.txn([every], [], [])).succeeded
    await kv.put(prefix + b"b", b"2")
    assert not (await kv.txn([every], [], [])).succeeded
    older = Compare(
        prefix + b"a",
        CompareTarget.MOD,
        CompareResult.GREATER,
        a.revision - 1,
        range_end=prefix + b"b",
    )
    assert (await kv.txn([older], [], [])).succeeded
    # An empty range compares as one absent key (etcd applyCompare): version 0, no value.
    empty = Compare(
        prefix + b"q", CompareTarget.VERSION, CompareResult.EQUAL, 0, range_end=prefix + b"z"
    )
    assert (await kv.txn([empty], [], [])).succeeded
    no_value = Compare(
        prefix + b"q", CompareTarget.VALUE, CompareResult.NOT_EQUAL, b"x", range_end=prefix + b"z"
    )
    assert not (await kv.txn([no_value], [], [])).succeeded


async def test_txn_nested_responses_carry_their_revision(kv: KVClient, prefix: bytes) -> None:
    """Inside a txn each nested answer carries the revision as of that op (etcd applyTxn:
    txn.Rev()): a range before the first write answers at the revision before the txn, one
    after it at the txn's revision; a delete that deletes nothing, in a txn that writes
    nothing, at the unchanged revision."""
    before = (await kv.put(prefix + b"other", b"0")).revision
    t = await kv.txn(
        [],
        [RangeRequest(prefix + b"k"), PutRequest(prefix + b"k", b"1"), RangeRequest(prefix + b"k")],
    )
    first, put, second = t.responses
    assert t.revision == before + 1
    assert isinstance(first, RangeResponse) and first.revision == before and first.kvs == ()
    assert put.revision == t.revision
    assert isinstance(second, RangeResponse) and second.revision == t.revision
    assert second.kvs[0].value == b"1"
    idle = await kv.txn([], [DeleteRangeRequest(prefix + b"absent")])
    (nothing,) = idle.responses
    assert isinstance(nothing, DeleteRangeResponse) and nothing.deleted == 0
    assert idle.revision == t.revision and nothing.revision == t.revision


async def test_open_ended_range_and_zero_key(kv: KVClient, prefix: bytes) -> None:
    """range_end b"\\0" means every key >= key; b"\\0" as the key with range_end b"\\0" is
    the whole keyspace."""
    await kv.put(prefix + b"m", b"1")
    await kv.put(prefix + b"n", b"2")
    tail = await kv.range(prefix + b"n", b"\0")
    assert tail.kvs[0].key == prefix + b"n" and all(x.key >= prefix + b"n" for x in tail.kvs)
    everything = await kv.range(b"\0", b"\0", count_only=True)
    assert everything.count >= 2


async def test_negative_limit_and_revision_read_as_zero(kv: KVClient, prefix: bytes) -> None:
    """etcd reads a negative range limit as "no limit" and a negative revision as "now"."""
    for i in range(3):
        await kv.put(prefix + b"n%d" % i, b"v")
    whole = await kv.range(prefix + b"n", prefix + b"o")
    got = await kv.range(prefix + b"n", prefix + b"o", limit=-1, revision=-1)
    assert [x.key for x in got.kvs] == [x.key for x in whole.kvs]
    assert (got.count, got.more, got.revision) == (3, False, whole.revision)


async def test_compact_bounds(kv: KVClient, prefix: bytes) -> None:
    """Compacting to a future revision is ErrFutureRev; to one already compacted,
    ErrCompacted."""
    now = (await kv.put(prefix + b"k", b"1")).revision
    with pytest.raises(KVError) as err:
        await kv.compact(now + 100)
    assert err.value.kind is ErrorKind.FUTURE_REV
    await kv.compact(now)
    with pytest.raises(KVError) as err:
        await kv.compact(now - 1)
    assert err.value.kind is ErrorKind.COMPACTED


async def test_put_ignore_lease_and_large_value(kv: KVClient, prefix: bytes) -> None:
    """ignore_lease keeps the key's lease; a lease given with it is refused; a 1 MiB value
    round-trips byte for byte."""
    g = await kv.lease_grant(60)
    try:
        await kv.put(prefix + b"k", b"1", lease=g.id)
        await kv.put(prefix + b"k", b"2", ignore_lease=True)
        assert (await kv.range(prefix + b"k")).kvs[0].lease == g.id
        with pytest.raises(KVError) as err:
            await kv.put(prefix + b"k", b"3", lease=g.id, ignore_lease=True)
        assert err.value.kind is ErrorKind.LEASE_PROVIDED
        await kv.put(prefix + b"k", b"4")
        assert (await kv.range(prefix + b"k")).kvs[0].lease == 0
    finally:
        await kv.lease_revoke(g.id)
    big = bytes(range(256)) * 4096
    await kv.put(prefix + b"big", big)
    assert (await kv.range(prefix + b"big")).kvs[0].value == big


async def test_lease_ttl_rounding(kv: KVClient, prefix: bytes) -> None:
    """A TTL below the minimum is raised to it (etcd: 1.5 election timeouts, rounded up to
    2 s at the default 1 s); time-to-live right after a grant is the full TTL or one less."""
    g = await kv.lease_grant(1)
    try:
        assert g.ttl == 2
        ttl = await kv.lease_time_to_live(g.id)
        assert ttl.granted_ttl == 2 and ttl.ttl in (1, 2)
    finally:
        await kv.lease_revoke(g.id)


async def test_watch_from_now(kv: KVClient, prefix: bytes) -> None:
    """start_revision 0: only changes after the watch was created."""
    await kv.put(prefix + b"before", b"1")
    it = kv.watch(prefix, prefix_end(prefix))
    try:
        first = asyncio.ensure_future(it.__anext__())
        await asyncio.sleep(0.5)  # let the watch be created before the write
        after = await kv.put(prefix + b"after", b"2")
        resp = await asyncio.wait_for(first, 10)
        assert [ev.kv.mod_revision for ev in resp.events] == [after.revision]
    finally:
        await it.aclose()  # type: ignore[attr-defined]


async def test_watch_from_the_compact_revision_lacks_the_compacted_prev_kv(
    kv: KVClient, prefix: bytes
) -> None:
    """Compacted at R, a watch from R with prev_kv gets the change at R without its prev_kv
    (the value before R is gone) and later changes with theirs."""
    await kv.put(prefix + b"c", b"1")
    at = (await kv.put(prefix + b"c", b"2")).revision
    await kv.compact(at)
    await kv.put(prefix + b"c", b"3")
    it = kv.watch(prefix + b"c", start_revision=at, prev_kv=True)
    seen: list[tuple[bytes, bytes | None]] = []
    try:
        while len(seen) < 2:
            resp = await asyncio.wait_for(it.__anext__(), 10)
            assert not resp.canceled
            seen += [(e.kv.value, e.prev_kv.value if e.prev_kv else None) for e in resp.events]
    finally:
        await it.aclose()  # type: ignore[attr-defined]
    assert seen == [(b"2", None), (b"3", b"2")]


@pytest.mark.parametrize("size", [1_600_000, 2_200_000])
async def test_request_over_the_size_limit_is_refused(
    kv: KVClient, prefix: bytes, size: int
) -> None:
    """etcd --max-request-bytes defaults to 1.5 MiB: a put over it is refused as too large
    (not an unknown outcome), whether etcd or gRPC below it notices; 1.5 MB still passes."""
    await kv.put(prefix + b"fits", b"x" * 1_500_000)
    with pytest.raises(KVError) as err:
        await kv.put(prefix + b"big", b"x" * size)
    assert err.value.kind is ErrorKind.REQUEST_TOO_LARGE
    assert (await kv.range(prefix + b"big")).kvs == ()


async def test_txn_with_two_faults_names_the_put_first(kv: KVClient, prefix: bytes) -> None:
    """etcd checks the puts of a txn's taken branch (lease, ignore_value) before its ranges
    (revision), whatever their order, so a txn that reads a future revision and then puts on
    an unknown lease fails with ErrLeaseNotFound."""
    now = (await kv.put(prefix + b"k", b"1")).revision
    with pytest.raises(KVError) as err:
        await kv.txn(
            [],
            [RangeRequest(prefix + b"k", revision=now + 100), PutRequest(prefix + b"k", b"2", 77)],
        )
    assert err.value.kind is ErrorKind.LEASE_NOT_FOUND


async def test_put_with_two_faults_names_the_lease_first(kv: KVClient, prefix: bytes) -> None:
    """etcd's Put looks the lease up before it looks for the key ignore_value needs, so a put
    naming an unknown lease on a missing key fails with ErrLeaseNotFound; the same put inside
    a txn is checked key first (checkRequestPut) and fails with ErrKeyNotFound."""
    put = PutRequest(prefix + b"absent", b"", 77, ignore_value=True)
    with pytest.raises(KVError) as err:
        await kv.put(put.key, b"", lease=77, ignore_value=True)
    assert err.value.kind is ErrorKind.LEASE_NOT_FOUND
    with pytest.raises(KVError) as err:
        await kv.txn([], [put])
    assert err.value.kind is ErrorKind.KEY_NOT_FOUND
