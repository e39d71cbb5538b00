"""Three tabby-store members as real processes on Unix sockets (issue 6 "Tests": multi-process
clusters on loopback): forwarding from followers, SIGKILL of the leader with 256 writes in
flight, SIGSTOP/SIGCONT of a follower, and a restarted member catching up."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from store.client import StoreClient, StoreUnavailableError, prefix_end
from store.kv import Event, KVError, PutRequest, RangeRequest, encode_request
from store.raft import ConfChange, ConfChangeKind, Message
from store.raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Heartbeat,
)
from store.server.config import StoreConfig
from store.server.member import MAX_PENDING_STEPS, Member
from store.server.transport import PeerTransport
from store.wal import WAL
from tests.store.server.by_hand import elect_member_1, three_member_config, until
from tests.store.server.cluster import Cluster

pytestmark = pytest.mark.slow


async def _eventually(check: Callable[[], object], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            if await check():  # type: ignore[misc]
                return
        except (StoreUnavailableError, KVError):
            pass
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.1)


async def test_follower_forwards_writes_and_serves_reads(
    make_cluster: Callable[..., Cluster],
) -> None:
    """Issue 6: a request sent to a follower is forwarded to the leader; a linearizable read on
    a follower sees every write acknowledged before it started (ReadIndex, thesis §6.4)."""
    c = make_cluster(3)
    c.start_all()
    leader = await c.wait_leader()
    follower = next(i for i in c.ids if i != leader)
    kv = c.client([follower])
    watch_kv = c.client([follower])
    try:
        events: list[Event] = []

        async def watch() -> None:
            async for resp in watch_kv.watch(b"/f/", prefix_end(b"/f/")):
                events.extend(resp.events)
                if len(events) >= 20:
                    return

        task = asyncio.create_task(watch())
        await asyncio.sleep(0.3)
        for i in range(20):
            r = await kv.put(b"/f/%02d" % i, b"%d" % i)
            got = await kv.range(b"/f/%02d" % i)
            assert got.kvs and got.kvs[0].mod_revision == r.revision
        await asyncio.wait_for(task, 15)
        assert [e.kv.key for e in events] == [b"/f/%02d" % i for i in range(20)]
        st = await kv.status()
        assert st.member_id == follower and st.leader == leader
        g = await kv.lease_grant(30)
        assert await kv.lease_keep_alive(g.id) == 30  # forwarded to the leader's lease clock
        members = await kv.member_list()
        assert [m.id for m in members] == [1, 2, 3]
        # Many forwards at once share the follower's one connection to the leader.
        await asyncio.gather(*(kv.put(b"/many/%03d" % i, b"v" * 256) for i in range(400)))
        many = await kv.range(b"/many/", prefix_end(b"/many/"), count_only=True)
        assert many.count == 400
    finally:
        await kv.close()
        await watch_kv.close()


async def test_sigkill_leader_with_256_in_flight_loses_no_acknowledged_write(
    make_cluster: Callable[..., Cluster],
) -> None:
    """Issue 6: kill -9 the leader during writes with 256 in flight; a new leader is elected and
    every acknowledged write is present afterwards (Raft §5.4 Leader Completeness)."""
    c = make_cluster(3)
    c.start_all()
    leader = await c.wait_leader()
    kv = c.client(timeout=15.0)
    acked: dict[bytes, bytes] = {}
    unknown = 0
    sem = asyncio.Semaphore(256)
    killed = asyncio.Event()

    async def put(i: int) -> None:
        nonlocal unknown
        key, value = b"/k/%05d" % i, b"v%05d" % i
        async with sem:
            try:
                await kv.put(key, value)
            except StoreUnavailableError:
                unknown += 1
                return
            acked[key] = value
            if len(acked) == 400 and not killed.is_set():
                killed.set()
                c.kill(leader)

    try:
        await asyncio.gather(*(put(i) for i in range(1500)))
        assert killed.is_set()
        survivors = [i for i in c.ids if i != leader]
        new_leader = await c.wait_leader(survivors)
        assert new_leader != leader
        got = await kv.range(b"/k/", prefix_end(b"/k/"))
        stored = {x.key: x.value for x in got.kvs}
        missing = [k for k in acked if stored.get(k) != acked[k]]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
        assert len(acked) > 400
        # The old leader comes back as a follower and catches up from the WAL and the leader.
        c.start(leader)
        solo = c.client([leader])
        try:

            async def caught_up() -> bool:
                r = await solo.range(b"/k/", prefix_end(b"/k/"), serializable=True, count_only=True)
                return r.count == len(stored)

            await _eventually(caught_up, 30)
        finally:
            await solo.close()
    finally:
        await kv.close()


async def test_sigstop_follower_then_sigcont_catches_up(
    make_cluster: Callable[..., Cluster],
) -> None:
    """A paused follower (SIGSTOP) does not stop a quorum from committing; after SIGCONT it
    catches up with everything committed meanwhile (Raft §5.3)."""
    c = make_cluster(3)
    c.start_all()
    leader = await c.wait_leader()
    follower = next(i for i in c.ids if i != leader)
    others = [i for i in c.ids if i != follower]
    kv = c.client(others)
    solo: StoreClient | None = None
    try:
        c.signal(follower, signal.SIGSTOP)
        for i in range(50):
            await kv.put(b"/s/%02d" % i, b"x")
        c.signal(follower, signal.SIGCONT)
        solo = c.client([follower])

        async def caught_up() -> bool:
            assert solo is not None
            r = await solo.range(b"/s/", prefix_end(b"/s/"), serializable=True, count_only=True)
            return r.count == 50

        await _eventually(caught_up)
        assert await c.wait_leader() in c.ids
    finally:
        await kv.close()
        if solo is not None:
            await solo.close()


async def test_sigterm_on_the_leader_transfers_leadership_and_exits_cleanly(
    make_cluster: Callable[..., Cluster],
) -> None:
    """Issue 6: leadership transfer is used for clean shutdown (thesis §3.10)."""
    c = make_cluster(3)
    c.start_all()
    leader = await c.wait_leader()
    assert c.stop(leader) == 0
    log = c.log(leader)
    assert "event=stopped" in log
    others = [i for i in c.ids if i != leader]
    assert await c.wait_leader(others) in others
    kv = c.client(others)
    try:
        await kv.put(b"/after-stop", b"1")
    finally:
        await kv.close()


async def test_watch_resumes_on_another_member_without_gaps_or_duplicates(
    make_cluster: Callable[..., Cluster],
) -> None:
    """etcd api_guarantees "resumable": the member serving a watch is SIGKILLed mid-stream; the
    client re-creates the watch elsewhere from the last revision seen, and listwatch's consumer
    sees every write exactly once, in order."""
    c = make_cluster(3)
    c.start_all()
    leader = await c.wait_leader()
    served_by = next(i for i in c.ids if i != leader)
    order = [served_by] + [i for i in c.ids if i != served_by]
    watcher = c.client(order)
    writer = c.client([leader])
    events: list[Event] = []
    try:

        async def consume() -> None:
            async for resp in watcher.watch(b"/rw/", prefix_end(b"/rw/")):
                events.extend(resp.events)
                if len(events) >= 120:
                    return

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        for i in range(120):
            await writer.put(b"/rw/%03d" % i, b"x")
            if i == 40:
                c.kill(served_by)
        await asyncio.wait_for(task, 30)
        assert [e.kv.key for e in events] == [b"/rw/%03d" % i for i in range(120)]
        assert watcher.failovers >= 1
    finally:
        await watcher.close()
        await writer.close()


async def test_leader_change_extends_leases_instead_of_expiring_them(
    make_cluster: Callable[..., Cluster],
) -> None:
    """Issue 6 Leases: expiry is decided by the leader; a new leader restarts each lease's
    clock (extended by the election timeout) rather than revoking what the old leader would
    have, and keeps expiring leases afterwards (etcd #9888 for the opposite bug)."""
    c = make_cluster(3)
    c.start_all()
    leader = await c.wait_leader()
    others = [i for i in c.ids if i != leader]
    kv = c.client(others)
    try:
        g = await kv.lease_grant(6)
        await kv.put(b"/lease/k", b"1", lease=g.id)
        c.kill(leader)
        await c.wait_leader(others)
        # A fresh clock on the new leader: the lease is alive, with up to its full TTL left.
        ttl = await kv.lease_time_to_live(g.id)
        assert ttl.ttl > 0 and (await kv.range(b"/lease/k")).kvs
        for _ in range(250):
            if not (await kv.range(b"/lease/k")).kvs:
                break
            await asyncio.sleep(0.1)
        assert (await kv.range(b"/lease/k")).kvs == (), "the new leader never expired the lease"
        assert (await kv.lease_time_to_live(g.id)).ttl == -1
    finally:
        await kv.close()


async def test_five_members_lose_leader_and_a_follower_under_load(
    make_cluster: Callable[..., Cluster],
) -> None:
    """Issue 6: a 5-member cluster with 256 writes in flight loses its leader and then a
    follower to SIGKILL; the remaining majority of 3 keeps every acknowledged write."""
    c = make_cluster(5)
    c.start_all()
    leader = await c.wait_leader()
    follower = next(i for i in c.ids if i != leader)
    kv = c.client([i for i in c.ids if i != follower] + [follower], timeout=20.0)
    acked: dict[bytes, bytes] = {}
    sem = asyncio.Semaphore(256)
    kills = {300: leader, 600: follower}

    async def put(i: int) -> None:
        key, value = b"/five/%05d" % i, b"v%05d" % i
        async with sem:
            try:
                await kv.put(key, value)
            except StoreUnavailableError:
                return
            acked[key] = value
            victim = kills.pop(len(acked), None)
            if victim is not None:
                c.kill(victim)

    try:
        await asyncio.gather(*(put(i) for i in range(1000)))
        assert not kills, "the schedule did not reach both kills"
        survivors = [i for i in c.ids if i not in (leader, follower)]
        await c.wait_leader(survivors)
        got = await kv.range(b"/five/", prefix_end(b"/five/"))
        stored = {x.key: x.value for x in got.kvs}
        missing = [k for k in acked if stored.get(k) != acked[k]]
        assert not missing, f"{len(missing)} acknowledged writes lost"
    finally:
        await kv.close()


class _CapturingTransport:
    """Stands in for PeerTransport: the test plays members 2 and 3 by hand."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.blocked: set[int] = set()

    def set_peers(self, endpoints: dict[int, str]) -> None:
        pass

    def send(self, messages: tuple[Message, ...] | list[Message]) -> None:
        self.sent.extend(messages)


class _GatedWAL:
    """A WAL whose saves wait for a permit, so the test decides when each fsync "finishes"."""

    def __init__(self, wal: object) -> None:
        self._wal = wal
        self.permits = threading.Semaphore(0)
        self.entered = 0

    def save(self, *args: object) -> None:
        self.entered += 1
        assert self.permits.acquire(timeout=20), "save never released"
        self._wal.save(*args)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._wal, name)


async def test_a_durable_committed_entry_is_answered_without_waiting_for_the_next_fsync(
    tmp_path: Path,
) -> None:
    """The leader applies (and answers) entries it already holds durably as soon as they
    commit, in the same Ready that starts writing newer entries: under pipelined load an
    answer must not wait one more fdatasync (etcd applies concurrently with its Save)."""
    # Every save in the executor, so the test can hold it.
    cfg = three_member_config(tmp_path, wal_inline_entries=0)
    transport = _CapturingTransport()
    m = Member(cfg, cast(PeerTransport, transport))
    await m.open()
    m.start()
    gated = _GatedWAL(m._wal)
    try:
        term = await elect_member_1(m)

        m._wal = cast(WAL, gated)
        first = asyncio.ensure_future(m.propose_local(encode_request(PutRequest(b"a", b"1"))))
        await until(lambda: gated.entered == 1)  # entry A is being written
        a_index = m.node.log.last_index()
        # While A's fsync runs, member 2 acknowledges A and a client proposes B.
        m.deliver([AppendEntriesResponse(term, 2, 1, a_index)])
        second = asyncio.ensure_future(m.propose_local(encode_request(PutRequest(b"b", b"2"))))
        gated.permits.release()  # A is durable on the leader: with member 2, a quorum
        await until(lambda: gated.entered == 2)  # the Ready that writes B holds A's commit
        await asyncio.wait_for(first, 20)  # answered while B's fsync is still held
        assert not second.done()
        assert m.machine.range(RangeRequest(b"a")).kvs[0].value == b"1"
        gated.permits.release()
        m.deliver([AppendEntriesResponse(term, 2, 1, a_index + 1)])
        await asyncio.wait_for(second, 20)
    finally:
        for _ in range(4):
            gated.permits.release()
        await m.stop()


class _ThreadRecordingWAL:
    """Records on which thread each save ran, and how many entries it carried; with
    `slow_sync`, each save takes that much longer."""

    def __init__(self, wal: object) -> None:
        self._wal = wal
        self.saves: list[tuple[int, bool]] = []
        self.slow_sync = 0.0

    def save(self, hard_state: object, entries: list[object], *rest: object) -> None:
        self.saves.append((len(entries), threading.current_thread() is threading.main_thread()))
        self._wal.save(hard_state, entries, *rest)  # type: ignore[attr-defined]
        time.sleep(self.slow_sync)  # a disk this slow

    def __getattr__(self, name: str) -> object:
        return getattr(self._wal, name)


async def test_small_wal_batches_are_saved_on_the_loop_thread_and_big_ones_in_the_executor(
    tmp_path: Path,
) -> None:
    """At light load a save of a few entries runs on the loop thread (the executor's two thread
    hops would be most of its latency); a batch over `wal_inline_entries` goes to the executor
    so the fsync overlaps the next batch's work. Both are durable before they are answered."""
    cfg = StoreConfig(id=1, data_dir=tmp_path / "d", wal_inline_entries=4)
    m = Member(cfg, cast(PeerTransport, _CapturingTransport()))
    await m.open()
    m.start()
    try:
        await m.wait_leader(20)
        rec = _ThreadRecordingWAL(m._wal)
        m._wal = cast(WAL, rec)
        await m.propose_local(encode_request(PutRequest(b"one", b"1")))
        # Queued before the owner task runs: one Ready, one save of all ten.
        many = [
            asyncio.ensure_future(m.propose_local(encode_request(PutRequest(b"k%d" % i, b"v"))))
            for i in range(10)
        ]
        await asyncio.wait_for(asyncio.gather(*many), 20)
        with_entries = [s for s in rec.saves if s[0]]
        assert with_entries[0] == (1, True)
        assert (10, False) in with_entries
        assert all(on_loop == (n <= 4) for n, on_loop in with_entries)
        assert m.machine.range(RangeRequest(b"k9")).kvs[0].value == b"v"
        # A slow disk (saves averaging over INLINE_SAVE_LIMIT) must not stall the loop:
        # single-entry saves move to the executor too.
        rec.slow_sync = 0.01
        for i in range(6):
            await m.propose_local(encode_request(PutRequest(b"slow%d" % i, b"v")))
        assert rec.saves[-1] == (1, False)
    finally:
        await m.stop()


async def test_a_commit_only_ready_is_sent_after_the_answers_it_releases(
    tmp_path: Path,
) -> None:
    """When an acknowledgement commits an entry and the leader has nothing new to replicate,
    the client's answer is resolved before the commit-index news goes to the followers: those
    messages help nobody wait less, the answer does."""
    cfg = three_member_config(tmp_path)
    transport = _CapturingTransport()
    m = Member(cfg, cast(PeerTransport, transport))
    await m.open()
    m.start()
    try:
        term = await elect_member_1(m)

        seen_at_answer: list[int] = []

        def commit_news() -> list[AppendEntries]:
            return [
                x
                for x in transport.sent[sent_before:]
                if isinstance(x, AppendEntries) and x.leader_commit >= index
            ]

        async def client() -> None:
            # As the RPC server does: the answer is written in the step that resumes here.
            await m.propose_local(encode_request(PutRequest(b"a", b"1")))
            seen_at_answer.append(len(commit_news()))

        put = asyncio.ensure_future(client())
        await until(lambda: m.node.log.last_index() > m.node.commit_index)
        index = m.node.log.last_index()
        await until(lambda: any(isinstance(x, AppendEntries) and x.entries for x in transport.sent))
        sent_before = len(transport.sent)
        m.deliver([AppendEntriesResponse(term, 2, 1, index)])  # commits the entry
        await asyncio.wait_for(put, 20)

        # Member 3 never answered (its progress is paused in probe), so member 2 gets it.
        await until(lambda: any(x.dst == 2 for x in commit_news()))
        assert seen_at_answer == [0]  # none of it had been sent when the answer came
    finally:
        await m.stop()


class _DurableTermRecorder:
    """Records, for each AppendEntries sent, its term and the term the WAL holds durably."""

    def __init__(self) -> None:
        self.member: Member | None = None
        self.seen: list[tuple[int, int]] = []
        self.blocked: set[int] = set()

    def set_peers(self, endpoints: dict[int, str]) -> None:
        pass

    def send(self, messages: tuple[Message, ...] | list[Message]) -> None:
        assert self.member is not None and self.member._wal is not None
        durable = self.member._wal._hard_state
        for m in messages:
            if isinstance(m, AppendEntries):
                self.seen.append((m.term, durable[0] if durable else 0))


async def test_a_new_term_is_durable_before_the_leader_sends_anything_in_it(
    tmp_path: Path,
) -> None:
    """Figure 2: act on a term or vote only once it is on stable storage. A lone voter with a
    learner wins its election and replicates in one Ready; it may send early (thesis §10.2.1)
    only when the core says so (`may_send_before_persist`), not merely because it leads: else
    a crash before the fsync could make it win the same term again with other entries."""
    cfg = StoreConfig(id=1, data_dir=tmp_path / "d", election_timeout=60.0, snapshot_count=3)
    first = _DurableTermRecorder()
    m = Member(cfg, cast(PeerTransport, first))
    first.member = m
    await m.open()
    m.start()
    try:
        await m.wait_leader(20)
        await m.conf_change_local(ConfChange(ConfChangeKind.ADD_LEARNER, 2))
        for i in range(6):
            await m.propose_local(encode_request(PutRequest(b"k%d" % i, b"v")))
        await until(lambda: m._snap_index > 0)
    finally:
        await m.stop()
    again = _DurableTermRecorder()
    m = Member(cfg, cast(PeerTransport, again))
    again.member = m
    await m.open()
    m.start()
    try:
        await until(lambda: m.is_leader and bool(again.seen))
        assert all(term <= durable for term, durable in again.seen), again.seen
    finally:
        await m.stop()


async def test_peer_messages_queued_for_the_owner_are_bounded(tmp_path: Path) -> None:
    """A peer flooding a member whose loop is busy (e.g. waiting for the disk) costs at most
    MAX_PENDING_STEPS queued messages; the rest are dropped and counted, as a lossy network
    would drop them (Raft resends what matters)."""
    m = Member(three_member_config(tmp_path), cast(PeerTransport, _CapturingTransport()))
    await m.open()  # not started: nothing steps the queue
    flood: list[Message] = [Heartbeat(1, 2, 1, 0) for _ in range(MAX_PENDING_STEPS + 100)]
    m.deliver(flood[:10])
    m.deliver(flood[10:])
    assert len(m._cmds.steps) == MAX_PENDING_STEPS
    assert m.dropped_steps == 100


def test_deferred_messages_are_never_overtaken_by_later_ones(tmp_path: Path) -> None:
    transport = _CapturingTransport()
    m = Member(three_member_config(tmp_path), cast(PeerTransport, transport))
    early, late = Heartbeat(1, 1, 2, 0), Heartbeat(1, 1, 3, 0)

    async def scenario() -> None:
        m._send_later((early,))
        m._send_now((late,))  # a later Ready's direct send flushes the deferred ones first
        assert transport.sent == [early, late]
        await asyncio.sleep(0)
        assert transport.sent == [early, late]  # and the scheduled flush sends nothing twice

    asyncio.run(scenario())
