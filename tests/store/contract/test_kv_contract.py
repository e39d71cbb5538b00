"""The `KVClient` contract, run unchanged against tabby-store and against a real etcd 3.4.

DESIGN.md: "nothing above the client may depend on tabby-store-only behaviour". Every test
here states one etcd v3 behaviour a Tabby consumer relies on (Calico's list-then-watch, its CAS
shapes, status keys on leases); if the two backends ever differ, one of them is wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from resources.keys import key_of, list_prefix
from resources.resource import parse_resource
from resources.values import encode_value
from store.client import KVClient, prefix_end
from store.kv import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    EventType,
    KVError,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    WatchFilter,
    WatchResponse,
)
from store.kv.errors import ErrorKind
from store.listwatch import Changes, ListWatcher, Resync
from store.resourcewatch import watch_resources
from tests.resources.fixtures import by_kind
from tests.store.contract.conftest import Backend

pytestmark = pytest.mark.slow


async def _collect(
    it: AsyncIterator[WatchResponse], n_events: int, timeout: float = 10.0
) -> list[WatchResponse]:
    """Watch responses until `n_events` events arrived (or a cancel), bounded in time."""
    out: list[WatchResponse] = []
    got = 0

    async def run() -> None:
        nonlocal got
        async for resp in it:
            out.append(resp)
            got += len(resp.events)
            if got >= n_events or resp.canceled:
                return

    await asyncio.wait_for(run(), timeout)
    return out


# --- Range ---------------------------------------------------------------------------------


async def test_range_single_prefix_limit_count(kv: KVClient, prefix: bytes) -> None:
    """etcd api.md Range: [key, range_end), limit with `more`, count ignoring the limit,
    keys_only, count_only; key order is byte order."""
    for name in (b"b", b"a", b"c"):
        await kv.put(prefix + name, b"v-" + name)
    end = prefix_end(prefix)
    one = await kv.range(prefix + b"a")
    assert [(x.key, x.value) for x in one.kvs] == [(prefix + b"a", b"v-a")]
    assert one.count == 1 and not one.more
    assert (await kv.range(prefix + b"zz")).kvs == ()
    every = await kv.range(prefix, end)
    assert [x.key for x in every.kvs] == [prefix + b"a", prefix + b"b", prefix + b"c"]
    limited = await kv.range(prefix, end, limit=2)
    assert [x.key for x in limited.kvs] == [prefix + b"a", prefix + b"b"]
    assert limited.more and limited.count == 3
    keys = await kv.range(prefix, end, keys_only=True)
    assert [x.value for x in keys.kvs] == [b"", b"", b""] and keys.kvs[0].version == 1
    counted = await kv.range(prefix, end, count_only=True)
    assert counted.kvs == () and counted.count == 3
    half = await kv.range(prefix + b"b", end)  # range_end bounds, key inclusive
    assert [x.key for x in half.kvs] == [prefix + b"b", prefix + b"c"]
    # The response revision is the store's, not the keys'.
    assert every.revision >= max(x.mod_revision for x in every.kvs)


async def test_range_at_revision_and_its_errors(kv: KVClient, prefix: bytes) -> None:
    """Range at an older revision sees the value as it was; a future revision and an empty
    key are refused with etcd's errors."""
    r1 = await kv.put(prefix + b"k", b"1")
    r2 = await kv.put(prefix + b"k", b"2")
    old = await kv.range(prefix + b"k", revision=r1.revision)
    assert [x.value for x in old.kvs] == [b"1"]
    assert old.kvs[0].mod_revision == r1.revision and old.kvs[0].version == 1
    new = await kv.range(prefix + b"k")
    assert new.kvs[0].value == b"2" and new.kvs[0].version == 2
    assert new.kvs[0].create_revision == r1.revision and new.kvs[0].mod_revision == r2.revision
    with pytest.raises(KVError) as err:
        await kv.range(prefix + b"k", revision=r2.revision + 1000)
    assert err.value.kind is ErrorKind.FUTURE_REV
    with pytest.raises(KVError) as err:
        await kv.range(b"")
    assert err.value.kind is ErrorKind.EMPTY_KEY
    serial = await kv.range(prefix + b"k", serializable=True)
    assert serial.kvs[0].value == b"2"


# --- Put / DeleteRange ---------------------------------------------------------------------


async def test_put_prev_kv_and_revisions(kv: KVClient, prefix: bytes) -> None:
    """Put returns the revision it created; prev_kv is the value it replaced (none for a new
    key); each put is one new global revision; version counts puts since creation."""
    first = await kv.put(prefix + b"p", b"one", prev_kv=True)
    assert first.prev_kv is None
    second = await kv.put(prefix + b"p", b"two", prev_kv=True)
    assert second.revision == first.revision + 1
    assert second.prev_kv is not None
    assert (second.prev_kv.key, second.prev_kv.value) == (prefix + b"p", b"one")
    assert second.prev_kv.mod_revision == first.revision and second.prev_kv.version == 1
    quiet = await kv.put(prefix + b"p", b"three")
    assert quiet.prev_kv is None
    got = (await kv.range(prefix + b"p")).kvs[0]
    assert got.version == 3 and got.create_revision == first.revision
    # ignore_value keeps the value and bumps the revision; without a key it is refused.
    kept = await kv.put(prefix + b"p", b"", ignore_value=True)
    assert (await kv.range(prefix + b"p")).kvs[0].value == b"three"
    assert (await kv.range(prefix + b"p")).kvs[0].mod_revision == kept.revision
    with pytest.raises(KVError) as err:
        await kv.put(prefix + b"absent", b"", ignore_value=True)
    assert err.value.kind is ErrorKind.KEY_NOT_FOUND


async def test_delete_single_range_prev_kv(kv: KVClient, prefix: bytes) -> None:
    """DeleteRange: `deleted` counts keys, prev_kvs holds them, all at one revision; deleting
    nothing does not create a revision."""
    for name in (b"a", b"b", b"c"):
        await kv.put(prefix + name, name)
    gone = await kv.delete(prefix + b"a", prev_kv=True)
    assert gone.deleted == 1 and [x.value for x in gone.prev_kvs] == [b"a"]
    rest = await kv.delete(prefix, prefix_end(prefix), prev_kv=True)
    assert rest.deleted == 2 and sorted(x.key for x in rest.prev_kvs) == [
        prefix + b"b",
        prefix + b"c",
    ]
    assert rest.revision == gone.revision + 1
    none = await kv.delete(prefix + b"a")
    assert none.deleted == 0 and none.revision == rest.revision
    assert (await kv.range(prefix, prefix_end(prefix), count_only=True)).count == 0


# --- Txn -----------------------------------------------------------------------------------


async def test_txn_mod_revision_cas_with_else_branch(kv: KVClient, prefix: bytes) -> None:
    """Calico's update: If(ModRevision(k) == rev).Then(Put).Else(Get); on failure the current
    value is readable in the else branch, and a failed txn writes nothing."""
    key = prefix + b"cas"
    p = await kv.put(key, b"v1")
    q = await kv.put(key, b"v2")
    stale = Compare(key, CompareTarget.MOD, CompareResult.EQUAL, p.revision)
    lost = await kv.txn([stale], [PutRequest(key, b"mine")], [RangeRequest(key)])
    assert not lost.succeeded and lost.revision == q.revision
    (current,) = lost.responses
    assert isinstance(current, RangeResponse)
    assert [(x.value, x.mod_revision) for x in current.kvs] == [(b"v2", q.revision)]
    fresh = Compare(key, CompareTarget.MOD, CompareResult.EQUAL, q.revision)
    won = await kv.txn(
        [fresh], [PutRequest(key, b"mine", prev_kv=True), RangeRequest(key)], [RangeRequest(key)]
    )
    assert won.succeeded and won.revision == q.revision + 1
    put, read = won.responses
    assert isinstance(put, PutResponse) and put.prev_kv is not None
    assert put.prev_kv.value == b"v2"
    assert isinstance(read, RangeResponse) and read.kvs[0].value == b"mine"
    assert read.kvs[0].mod_revision == won.revision


async def test_txn_create_if_absent_value_and_multi_op(kv: KVClient, prefix: bytes) -> None:
    """Calico's create (version == 0), compares on value and create_revision, several ops in
    one revision, a delete inside a txn, and the refusal of a key written twice in one txn."""
    key = prefix + b"new"
    absent = Compare(key, CompareTarget.VERSION, CompareResult.EQUAL, 0)
    made = await kv.txn([absent], [PutRequest(key, b"1"), PutRequest(prefix + b"other", b"2")])
    assert made.succeeded
    again = await kv.txn([absent], [PutRequest(key, b"x")], [])
    assert not again.succeeded and again.responses == ()
    both = await kv.range(prefix, prefix_end(prefix))
    assert {x.mod_revision for x in both.kvs} == {made.revision}
    by_value = Compare(key, CompareTarget.VALUE, CompareResult.EQUAL, b"1")
    created = Compare(key, CompareTarget.CREATE, CompareResult.EQUAL, made.revision)
    newer = Compare(key, CompareTarget.MOD, CompareResult.LESS, made.revision + 1)
    dropped = await kv.txn([by_value, created, newer], [DeleteRangeRequest(key, prev_kv=True)], [])
    assert dropped.succeeded
    (deleted,) = dropped.responses
    assert isinstance(deleted, DeleteRangeResponse) and deleted.deleted == 1
    assert deleted.prev_kvs[0].value == b"1"
    with pytest.raises(KVError) as err:
        await kv.txn([], [PutRequest(key, b"a"), PutRequest(key, b"b")], [])
    assert err.value.kind is ErrorKind.DUPLICATE_KEY


# --- Watch ---------------------------------------------------------------------------------


async def test_watch_from_revision_with_prev_kv(kv: KVClient, prefix: bytes) -> None:
    """A watch from an old revision replays the history in order, PUT and DELETE with their
    previous values, then delivers live events; no event twice."""
    end = prefix_end(prefix)
    a1 = await kv.put(prefix + b"a", b"1")
    await kv.put(prefix + b"a", b"2")
    await kv.delete(prefix + b"a")
    it = kv.watch(prefix, end, start_revision=a1.revision, prev_kv=True)
    try:
        replay = await _collect(it, 3)
        events = [ev for r in replay for ev in r.events]
        assert [(ev.type, ev.kv.value) for ev in events] == [
            (EventType.PUT, b"1"),
            (EventType.PUT, b"2"),
            (EventType.DELETE, b""),
        ]
        assert events[0].prev_kv is None and events[0].is_create
        assert events[1].prev_kv is not None and events[1].prev_kv.value == b"1"
        assert events[2].prev_kv is not None and events[2].prev_kv.value == b"2"
        assert events[2].kv.key == prefix + b"a" and events[2].kv.version == 0
        revs = [ev.kv.mod_revision for ev in events]
        assert revs == sorted(revs) and revs[0] == a1.revision
        live = await kv.put(prefix + b"b", b"3")
        await kv.put(b"/contract-outside/" + prefix, b"not watched")
        more = await _collect(it, 1)
        (ev,) = [ev for r in more for ev in r.events]
        assert (ev.kv.key, ev.kv.mod_revision) == (prefix + b"b", live.revision)
    finally:
        await it.aclose()  # type: ignore[attr-defined]


async def test_watch_txn_events_share_one_response(kv: KVClient, prefix: bytes) -> None:
    """All events of one revision arrive together (a txn touching two keys), and filters drop
    what the watcher asked not to see."""
    start = (await kv.put(prefix + b"x", b"0")).revision + 1
    it = kv.watch(prefix, prefix_end(prefix), start_revision=start)
    nodel = kv.watch(
        prefix, prefix_end(prefix), start_revision=start, filters=[WatchFilter.NODELETE]
    )
    try:
        t = await kv.txn([], [PutRequest(prefix + b"x", b"1"), PutRequest(prefix + b"y", b"1")])
        await kv.delete(prefix + b"x")
        await kv.put(prefix + b"z", b"end")
        got = await _collect(it, 4)
        # A response may carry several revisions, but one revision is never split.
        where = {ev.kv.mod_revision: i for i, r in enumerate(got) for ev in r.events}
        for i, r in enumerate(got):
            assert all(where[ev.kv.mod_revision] == i for ev in r.events)
        of_txn = [ev.kv.key for r in got for ev in r.events if ev.kv.mod_revision == t.revision]
        assert of_txn == [prefix + b"x", prefix + b"y"]
        filtered = await _collect(nodel, 3)
        kinds = [ev.type for r in filtered for ev in r.events]
        assert kinds == [EventType.PUT] * 3
    finally:
        await it.aclose()  # type: ignore[attr-defined]
        await nodel.aclose()  # type: ignore[attr-defined]


async def test_watch_behind_compaction_is_cancelled(kv: KVClient, prefix: bytes) -> None:
    """etcd: a watch from a compacted revision is cancelled with compact_revision (the client
    must re-list), and a range at a compacted revision fails with ErrCompacted."""
    first = await kv.put(prefix + b"c", b"1")
    last = await kv.put(prefix + b"c", b"2")
    await kv.compact(last.revision)
    with pytest.raises(KVError) as err:
        await kv.range(prefix + b"c", revision=first.revision)
    assert err.value.kind is ErrorKind.COMPACTED
    it = kv.watch(prefix, prefix_end(prefix), start_revision=first.revision)
    try:
        got = await _collect(it, 1)
    finally:
        await it.aclose()  # type: ignore[attr-defined]
    assert got[-1].canceled and got[-1].compact_revision == last.revision
    assert all(not r.events for r in got)
    assert [x.value for x in (await kv.range(prefix + b"c", revision=last.revision)).kvs] == [b"2"]


class _LateWatch:
    """A KVClient whose watches start only when the test says so: room to write and compact
    between ListWatcher's list and its watch, the window in which etcd cancels the watch."""

    def __init__(self, inner: KVClient) -> None:
        self.inner = inner
        self.go = asyncio.Event()
        self.watches = 0

    async def range(self, key: bytes, range_end: bytes = b"", **kw: object) -> RangeResponse:
        return await self.inner.range(key, range_end, **kw)  # type: ignore[arg-type]

    async def watch(
        self, key: bytes, range_end: bytes = b"", **kw: object
    ) -> AsyncIterator[WatchResponse]:
        self.watches += 1
        if self.watches == 1:
            await self.go.wait()
        async for resp in self.inner.watch(key, range_end, **kw):  # type: ignore[arg-type]
            yield resp


async def test_listwatch_relists_after_compaction(kv: KVClient, prefix: bytes) -> None:
    """store/listwatch over this backend: changes written and compacted away between the list
    and the watch come back as a fresh Resync holding the current state, never as a gap."""
    await kv.put(prefix + b"a", b"1")
    late = _LateWatch(kv)
    watcher = ListWatcher(late, prefix)  # type: ignore[arg-type]
    updates = watcher.updates()
    try:
        first = await asyncio.wait_for(updates.__anext__(), 10)
        assert isinstance(first, Resync) and [x.value for x in first.kvs] == [b"1"]
        pending = asyncio.ensure_future(updates.__anext__())
        await kv.put(prefix + b"a", b"2")
        await kv.put(prefix + b"b", b"3")
        last = await kv.delete(prefix + b"a")
        await kv.compact(last.revision)
        late.go.set()
        second = await asyncio.wait_for(pending, 10)
        assert isinstance(second, Resync), second
        assert [(x.key, x.value) for x in second.kvs] == [(prefix + b"b", b"3")]
        assert second.revision >= last.revision and watcher.relists == 1
        await kv.put(prefix + b"c", b"4")
        third = await asyncio.wait_for(updates.__anext__(), 10)
        assert isinstance(third, Changes) and [ev.kv.key for ev in third.events] == [prefix + b"c"]
        assert set(watcher.state) == {prefix + b"b", prefix + b"c"}
    finally:
        await updates.aclose()  # type: ignore[attr-defined]


# --- Leases --------------------------------------------------------------------------------


async def test_lease_grant_keepalive_ttl_revoke(kv: KVClient, prefix: bytes) -> None:
    """etcd Lease API: grant, attach keys, keep-alive, time-to-live with keys, list, revoke
    (its keys go in one revision); a lease that does not exist: ttl -1, keep-alive and
    revoke refused with ErrLeaseNotFound, and so is a put that names it."""
    g = await kv.lease_grant(60)
    assert g.id > 0 and g.ttl == 60
    await kv.put(prefix + b"l1", b"1", lease=g.id)
    await kv.put(prefix + b"l2", b"2", lease=g.id)
    assert (await kv.range(prefix + b"l1")).kvs[0].lease == g.id
    assert await kv.lease_keep_alive(g.id) == 60
    ttl = await kv.lease_time_to_live(g.id, keys=True)
    assert ttl.id == g.id and ttl.granted_ttl == 60 and 0 < ttl.ttl <= 60
    assert sorted(ttl.keys) == [prefix + b"l1", prefix + b"l2"]
    assert (await kv.lease_time_to_live(g.id)).keys == ()
    assert g.id in await kv.lease_list()
    revoked = await kv.lease_revoke(g.id)
    assert (await kv.range(prefix, prefix_end(prefix))).kvs == ()
    assert (await kv.range(prefix, prefix_end(prefix))).revision == revoked.revision
    assert (await kv.lease_time_to_live(g.id)).ttl == -1
    assert g.id not in await kv.lease_list()
    for call in (kv.lease_keep_alive(g.id), kv.lease_revoke(g.id)):
        with pytest.raises(KVError) as err:
            await call
        assert err.value.kind is ErrorKind.LEASE_NOT_FOUND
    with pytest.raises(KVError) as err:
        await kv.put(prefix + b"l3", b"3", lease=g.id)
    assert err.value.kind is ErrorKind.LEASE_NOT_FOUND
    chosen = await kv.lease_grant(30, 0x7ABB1234)
    assert chosen.id == 0x7ABB1234
    with pytest.raises(KVError) as err:
        await kv.lease_grant(30, 0x7ABB1234)
    assert err.value.kind is ErrorKind.LEASE_EXIST
    await kv.lease_revoke(chosen.id)


async def test_lease_expiry_deletes_its_keys(kv: KVClient, prefix: bytes) -> None:
    """A lease not kept alive expires: its keys are deleted (a watcher sees DELETE events) and
    it is gone. TTL 2 s is the shortest both grant as asked (etcd's minimum is 1.5 election
    timeouts, rounded up)."""
    g = await kv.lease_grant(2)
    assert g.ttl >= 2
    put = await kv.put(prefix + b"status", b"alive", lease=g.id)
    it = kv.watch(prefix + b"status", start_revision=put.revision + 1)
    try:
        got = await _collect(it, 1, timeout=20.0)
    finally:
        await it.aclose()  # type: ignore[attr-defined]
    (ev,) = [ev for r in got for ev in r.events]
    assert ev.type is EventType.DELETE and ev.kv.key == prefix + b"status"
    assert (await kv.lease_time_to_live(g.id)).ttl == -1


async def test_status_reports_leader_and_revision(kv: KVClient, prefix: bytes) -> None:
    """Maintenance.Status: a leader is known and the revision is the store's."""
    put = await kv.put(prefix + b"s", b"1")
    st = await kv.status()
    assert st.leader != 0 and st.member_id != 0 and st.raft_term >= 1
    assert st.revision >= put.revision and not st.is_learner and st.alarms == ()


async def test_resourcewatch_over_the_configured_endpoints(backend: Backend, prefix: bytes) -> None:
    """What confd and felixd run: `watch_resources` given only endpoints picks the backend
    from their scheme (store.backend.connect), lists, then follows changes."""
    store_prefix = "/" + prefix.decode().strip("/").replace("[", "-").replace("]", "")
    pool = parse_resource(by_kind("IPPool"))
    key = key_of(pool, store_prefix).encode()
    writer = backend.client()
    stream = watch_resources(
        backend.endpoints, [list_prefix("IPPool", prefix=store_prefix)], store_prefix
    )
    try:
        await writer.put(key, encode_value(pool))
        first = await asyncio.wait_for(stream.__anext__(), 10)
        while not first:  # listed before the put landed: the change follows
            first = await asyncio.wait_for(stream.__anext__(), 10)
        assert [r.metadata.name for r in first] == [pool.metadata.name]
        await writer.delete(key)
        assert await asyncio.wait_for(stream.__anext__(), 10) == []
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
        await writer.close()


async def test_watch_progress_notify_on_a_quiet_key(kv: KVClient, prefix: bytes) -> None:
    """progress_notify: a watcher that sees no events still learns the store's revision (an
    empty response whose revision is at least the last write's), as etcd's WatchProgress."""
    await kv.put(prefix + b"quiet", b"1")
    elsewhere = await kv.put(prefix + b"busy", b"1")
    it = kv.watch(prefix + b"quiet", start_revision=elsewhere.revision + 1, progress_notify=True)
    try:
        resp = await asyncio.wait_for(it.__anext__(), 15)
    finally:
        await it.aclose()  # type: ignore[attr-defined]
    assert resp.events == () and not resp.canceled
    assert resp.revision >= elsewhere.revision
