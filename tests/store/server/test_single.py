"""One tabby-store member as a real process: the client API round trips (issue 6, "Server,
client, CLI"), restart from the WAL, and compaction driving listwatch to re-list."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import msgpack
import pytest

from store.client import StoreClient, prefix_end
from store.kv import (
    AlarmType,
    Compare,
    CompareResult,
    CompareTarget,
    Event,
    EventType,
    KVError,
    PutRequest,
    RangeRequest,
)
from store.kv.errors import ErrorKind
from store.listwatch import Changes, ListWatcher, Resync
from tests.store.server.cluster import Cluster

pytestmark = pytest.mark.slow


async def _up(
    make_cluster: Callable[..., Cluster], **settings: object
) -> tuple[Cluster, StoreClient]:
    c = make_cluster(1, **settings)
    c.start_all()
    await c.wait_leader()
    return c, c.client()


async def test_put_get_delete_txn_round_trip(make_cluster: Callable[..., Cluster]) -> None:
    """etcd api.md Put/Range/DeleteRange/Txn through StoreClient, incl. the CAS shapes Calico uses."""
    _c, kv = await _up(make_cluster)
    try:
        r1 = await kv.put(b"/calico/a", b"1")
        got = await kv.range(b"/calico/a")
        assert [x.value for x in got.kvs] == [b"1"] and got.kvs[0].mod_revision == r1.revision
        p = await kv.put(b"/calico/a", b"2", prev_kv=True)
        assert p.prev_kv is not None and p.prev_kv.value == b"1"
        await kv.put(b"/calico/b", b"3")
        pre = await kv.range(b"/calico/", prefix_end(b"/calico/"))
        assert [x.key for x in pre.kvs] == [b"/calico/a", b"/calico/b"] and pre.count == 2
        assert (await kv.range(b"/calico/", prefix_end(b"/calico/"), count_only=True)).count == 2
        # Calico's update: If(ModRevision(key)=rev).Then(Put).Else(Get)
        stale = Compare(b"/calico/a", CompareTarget.MOD, CompareResult.EQUAL, r1.revision)
        t = await kv.txn([stale], [PutRequest(b"/calico/a", b"x")], [RangeRequest(b"/calico/a")])
        assert not t.succeeded
        current = t.responses[0]
        assert isinstance(current, type(got)) and current.kvs[0].value == b"2"
        fresh = Compare(b"/calico/a", CompareTarget.MOD, CompareResult.EQUAL, p.revision)
        t2 = await kv.txn([fresh], [PutRequest(b"/calico/a", b"y")], [])
        assert t2.succeeded
        d = await kv.delete(b"/calico/", prefix_end(b"/calico/"), prev_kv=True)
        assert d.deleted == 2 and {x.key for x in d.prev_kvs} == {b"/calico/a", b"/calico/b"}
        old = await kv.range(b"/calico/a", revision=r1.revision)
        assert old.kvs[0].value == b"1"
        with pytest.raises(KVError) as err:
            await kv.put(b"", b"v")
        assert err.value.kind is ErrorKind.EMPTY_KEY
    finally:
        await kv.close()


async def test_watch_from_revision_with_prev_kv(make_cluster: Callable[..., Cluster]) -> None:
    """etcd api_guarantees: a watch from a past revision replays history in order, with prev_kv."""
    _c, kv = await _up(make_cluster)
    try:
        first = await kv.put(b"/w/a", b"1")
        await kv.put(b"/w/a", b"2")
        await kv.delete(b"/w/a")
        seen: list[Event] = []

        async def consume() -> None:
            async for resp in kv.watch(
                b"/w/", prefix_end(b"/w/"), start_revision=first.revision, prev_kv=True
            ):
                seen.extend(resp.events)
                if len(seen) >= 4:
                    return

        task = asyncio.create_task(consume())
        await kv.put(b"/w/b", b"live")
        await asyncio.wait_for(task, 10)
        assert [(e.type, e.kv.key) for e in seen] == [
            (EventType.PUT, b"/w/a"),
            (EventType.PUT, b"/w/a"),
            (EventType.DELETE, b"/w/a"),
            (EventType.PUT, b"/w/b"),
        ]
        assert seen[1].prev_kv is not None and seen[1].prev_kv.value == b"1"
        assert seen[2].prev_kv is not None and seen[2].prev_kv.value == b"2"
        revs = [e.kv.mod_revision for e in seen]
        assert revs == sorted(revs) and len(set(revs)) == 4
    finally:
        await kv.close()


async def test_lease_grant_keepalive_ttl_revoke(make_cluster: Callable[..., Cluster]) -> None:
    """etcd Lease API: keys attached to a lease go when it is revoked, and when it expires."""
    _c, kv = await _up(make_cluster)
    try:
        g = await kv.lease_grant(60)
        await kv.put(b"/l/a", b"1", lease=g.id)
        assert await kv.lease_keep_alive(g.id) == 60
        ttl = await kv.lease_time_to_live(g.id, keys=True)
        assert ttl.granted_ttl == 60 and 0 < ttl.ttl <= 60 and ttl.keys == (b"/l/a",)
        assert g.id in await kv.lease_list()
        await kv.lease_revoke(g.id)
        assert (await kv.range(b"/l/a")).kvs == ()
        assert (await kv.lease_time_to_live(g.id)).ttl == -1
        short = await kv.lease_grant(2)
        await kv.put(b"/l/b", b"1", lease=short.id)
        for _ in range(100):
            if not (await kv.range(b"/l/b")).kvs:
                break
            await asyncio.sleep(0.1)
        assert (await kv.range(b"/l/b")).kvs == (), "expired lease did not delete its key"
    finally:
        await kv.close()


async def test_restart_recovers_from_wal_and_snapshot(make_cluster: Callable[..., Cluster]) -> None:
    """Issue 6 Storage: a member killed with SIGKILL restarts with every acknowledged write
    (from the WAL, and from a snapshot plus the WAL after it)."""
    c, kv = await _up(make_cluster, snapshot_count=50, snapshot_catchup_entries=10)
    try:
        acked = {}
        for i in range(120):
            r = await kv.put(b"/r/%03d" % i, b"v%d" % i)
            acked[b"/r/%03d" % i] = r.revision
        await kv.close()
        c.kill(1)
        c.start(1)
        await c.wait_leader()
        kv = c.client()
        got = await kv.range(b"/r/", prefix_end(b"/r/"))
        assert {x.key: x.mod_revision for x in got.kvs} == acked
        assert "snapshot.taken" in c.log(1)
    finally:
        await kv.close()


async def test_compaction_makes_listwatch_relist(make_cluster: Callable[..., Cluster]) -> None:
    """Issue 6 Watch: a watcher behind a compaction is cancelled with compact_revision, and
    listwatch answers with a full re-list instead of skipping updates."""
    _c, kv = await _up(make_cluster)
    try:
        await kv.put(b"/lw/a", b"1")
        lw = ListWatcher(kv, b"/lw/")
        it = lw.updates().__aiter__()
        first = await it.__anext__()
        assert isinstance(first, Resync) and [x.key for x in first.kvs] == [b"/lw/a"]
        await kv.put(b"/lw/b", b"2")
        nxt = await asyncio.wait_for(it.__anext__(), 10)
        assert isinstance(nxt, Changes) and nxt.events[0].kv.key == b"/lw/b"
        # Pretend the consumer fell behind: rewind its cursor, then compact past it.
        lw.revision = first.revision - 1
        rev = (await kv.put(b"/lw/c", b"3")).revision
        await kv.compact(rev)
        # The live watch keeps going; make it break so that the resume hits the compaction.
        resync: Resync | None = None
        watcher = ListWatcher(kv, b"/lw/")
        watcher.revision = first.revision - 1
        async for up in watcher.updates():
            if isinstance(up, Resync) and watcher.relists:
                resync = up
                break
            if isinstance(up, Resync):
                watcher.revision = first.revision - 1  # force the watch below the compaction
        assert resync is not None and {x.key for x in resync.kvs} == {b"/lw/a", b"/lw/b", b"/lw/c"}
        assert watcher.state.keys() == {b"/lw/a", b"/lw/b", b"/lw/c"}
        await lw_close(it)
    finally:
        await kv.close()


async def lw_close(it: object) -> None:
    aclose = getattr(it, "aclose", None)
    if aclose is not None:
        await aclose()


async def test_torn_wal_tail_after_sigkill_is_repaired(
    make_cluster: Callable[..., Cluster],
) -> None:
    """Issue 6 Storage: recovery truncates a torn tail (a batch that was being written when the
    process died, never acknowledged) and starts with every acknowledged write."""
    c, kv = await _up(make_cluster)
    try:
        acked = [(await kv.put(b"/t/%02d" % i, b"v")).revision for i in range(30)]
        await kv.close()
        c.kill(1)
        wal_dir = c.root / "m1.data" / "wal"
        last = sorted(p for p in wal_dir.iterdir() if p.is_file())[-1]
        data = last.read_bytes()
        end = len(data.rstrip(b"\0"))
        with last.open("r+b") as f:  # half a frame of garbage where the next batch would go
            f.seek(end)
            f.write(b"\xab" * 37)
        c.start(1)
        await c.wait_leader()
        kv = c.client()
        got = await kv.range(b"/t/", prefix_end(b"/t/"))
        assert [x.mod_revision for x in got.kvs] == acked
    finally:
        await kv.close()


async def test_quota_raises_nospace_alarm_until_disarmed(
    make_cluster: Callable[..., Cluster],
) -> None:
    """Issue 6 KV: a storage quota raises an alarm and refuses writes, but not deletes or
    compaction, until an operator clears it. The operator's way out is etcd's (maintenance.md
    "Space quota"): compact, defrag, disarm; then writes are accepted again."""
    _c, kv = await _up(make_cluster, quota_bytes=20_000)
    try:
        with pytest.raises(KVError) as err:
            for i in range(200):  # etcd's example fills the quota by overwriting one key
                await kv.put(b"/q/%d" % (i % 3), b"x" * 500)
        assert err.value.kind is ErrorKind.NO_SPACE
        assert AlarmType.NOSPACE in await kv.alarm_list()
        assert (await kv.status()).alarms == (AlarmType.NOSPACE,)
        deleted = await kv.delete(b"/q/2")
        assert deleted.deleted == 1
        await kv.compact(deleted.revision)
        with pytest.raises(KVError):
            await kv.put(b"/q/again", b"x")  # still refused: the alarm stays until disarmed
        status = await kv.status_raw()
        in_use, allocated = status["db_size_in_use"], status["db_size"]
        assert isinstance(in_use, int) and isinstance(allocated, int)
        assert in_use < 20_000 - 1_000 < allocated  # compaction freed space, still allocated
        await kv.alarm_disarm(AlarmType.NOSPACE)
        with pytest.raises(KVError) as err:
            await kv.put(b"/q/again", b"x")  # compacted, not defragmented: still no room
        assert err.value.kind is ErrorKind.NO_SPACE
        defrag = await kv.defragment()
        assert defrag.revision == deleted.revision
        status = await kv.status_raw()
        assert status["db_size"] == status["db_size_in_use"]
        assert await kv.alarm_list() == (AlarmType.NOSPACE,)  # defrag alone does not disarm
        await kv.alarm_disarm(AlarmType.NOSPACE)
        assert await kv.alarm_list() == ()
        put = await kv.put(b"/q/again", b"x")
        assert put.revision == deleted.revision + 1
        assert (await kv.get(b"/q/again")).kvs[0].value == b"x"
    finally:
        await kv.close()


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param([2, "raft.step", [1, [["not", "a", "message"]]]], id="undecodable-message"),
        pytest.param([2, "raft.step", [1, "not-a-batch"]], id="batch-not-an-array"),
        pytest.param([2, "raft.step", [[1], []]], id="source-not-an-id"),
        pytest.param([2, "raft.step", [1]], id="missing-batch"),
    ],
)
async def test_a_bad_raft_step_closes_only_that_peer_connection(
    make_cluster: Callable[..., Cluster], frame: list[object]
) -> None:
    """Raft traffic is one-way (no answer to carry an error): a batch that does not decode
    closes the sender's peer connection, and the member goes on serving."""
    c, kv = await _up(make_cluster)
    try:
        await kv.put(b"/before", b"1")
        reader, writer = await asyncio.open_unix_connection(c.peer[1][5:])
        writer.write(msgpack.packb(frame))
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed by the member
        writer.close()
        await kv.put(b"/after", b"2")
        assert (await kv.range(b"/after")).kvs[0].value == b"2"
        assert "notification.failed" not in c.log(1)  # refused as bad input, not a crash
    finally:
        await kv.close()
