"""Watch guarantees, one test each (etcd api_guarantees.md "Watch APIs"; the robustness suite's
validators in tests/robustness/validate/watch.go: ordered, unique, atomic, reliable, resumable,
bookmarkable, prev_kv, IsCreate, filters), plus compaction and slow-watcher cancellation."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from store.kv.machine import KVStateMachine
from store.kv.messages import (
    CompactRequest,
    DeleteRangeRequest,
    Event,
    EventType,
    LeaseGrantRequest,
    LeaseRevokeRequest,
    PutRequest,
    TxnRequest,
)
from store.kv.mvcc import in_range
from store.kv.watch import (
    COMPACTED_REASON,
    WatchCreateRequest,
    WatchFilter,
    WatchHub,
    WatchResponse,
)
from tests.store.kv.helpers import Applier

ALL = WatchCreateRequest(b"\0", b"\0")


def drain(hub: WatchHub, watch_id: int, max_events: int = 1000) -> list[WatchResponse]:
    """Take until nothing is pending (a None with work pending is a bounded replay step)."""
    out: list[WatchResponse] = []
    for _ in range(10_000):
        resp = hub.take(watch_id, max_events)
        if resp is not None:
            out.append(resp)
        elif not hub.pending(watch_id):
            return out
    raise AssertionError("take never ran dry")


def events(resps: list[WatchResponse]) -> list[Event]:
    return [ev for r in resps for ev in r.events]


def keys_revs(evs: list[Event]) -> list[tuple[bytes, int]]:
    return [(ev.kv.key, ev.kv.mod_revision) for ev in evs]


def setup(**hub_args: int) -> tuple[Applier, WatchHub]:
    a = Applier()
    return a, WatchHub(a.machine, **hub_args)


def test_ordered_events_by_revision_then_write_order() -> None:
    a, hub = setup()
    w = hub.create(ALL).watch_id
    a.ok(PutRequest(b"b", b"1"))
    a.ok(TxnRequest((), (PutRequest(b"z"), PutRequest(b"a"), DeleteRangeRequest(b"b")), ()))
    a.ok(PutRequest(b"c"))
    got = keys_revs(events(drain(hub, w)))
    assert got == [(b"b", 2), (b"z", 3), (b"a", 3), (b"b", 3), (b"c", 4)]


def test_unique_no_event_delivered_twice_across_replay_and_live() -> None:
    """Takes interleaved with writes, while the watch moves from replaying to caught up."""
    a, hub = setup(max_scan_revisions=2)
    for i in range(10):
        a.ok(PutRequest(b"k%d" % i))
    w = hub.create(WatchCreateRequest(b"\0", b"\0", start_revision=2)).watch_id
    seen: list[Event] = []
    for i in range(10):
        r = hub.take(w, max_events=1)
        if r is not None:
            seen.extend(r.events)
        a.ok(PutRequest(b"n%d" % i))
    seen.extend(events(drain(hub, w)))
    revs = [ev.kv.mod_revision for ev in seen]
    assert revs == list(range(2, 22))


def test_atomic_a_revision_is_never_split_between_responses() -> None:
    a, hub = setup()
    w = hub.create(ALL).watch_id
    a.ok(TxnRequest((), tuple(PutRequest(b"k%d" % i) for i in range(5)), ()))
    a.ok(PutRequest(b"x"))
    resps = drain(hub, w, max_events=1)
    assert [len(r.events) for r in resps] == [5, 1]
    replay = hub.create(WatchCreateRequest(b"\0", b"\0", start_revision=2)).watch_id
    assert [len(r.events) for r in drain(hub, replay, max_events=2)] == [5, 1]


def test_reliable_and_resumable_from_last_seen_revision_without_gaps() -> None:
    a, hub = setup()
    w = hub.create(ALL).watch_id
    for i in range(6):
        a.ok(PutRequest(b"k", b"%d" % i))
    first = drain(hub, w, max_events=2)[:2]  # the client saw two responses, then went away
    hub.cancel(w)
    for i in range(6, 9):
        a.ok(PutRequest(b"k", b"%d" % i))
    last = first[-1].events[-1].kv.mod_revision
    again = hub.create(WatchCreateRequest(b"\0", b"\0", start_revision=last + 1)).watch_id
    values = [ev.kv.value for ev in events(first) + events(drain(hub, again))]
    assert values == [b"%d" % i for i in range(9)]


def test_watch_from_a_compacted_revision_is_cancelled_with_compact_revision() -> None:
    """api.md: the watch is cancelled with compact_revision set; the client must re-list."""
    a, hub = setup()
    for i in range(5):
        a.ok(PutRequest(b"k", b"%d" % i))
    a.ok(CompactRequest(4))
    created = hub.create(WatchCreateRequest(b"k", start_revision=3))
    assert created.created
    assert hub.ready() == [created.watch_id]
    resp = hub.take(created.watch_id)
    assert resp is not None and resp.canceled and resp.compact_revision == 4
    assert resp.cancel_reason == COMPACTED_REASON
    assert hub.take(created.watch_id) is None and len(hub) == 0


def test_compaction_cancels_a_replaying_watcher_it_overtakes() -> None:
    a, hub = setup(max_scan_revisions=1)
    for i in range(6):
        a.ok(PutRequest(b"k", b"%d" % i))
    w = hub.create(WatchCreateRequest(b"k", start_revision=2)).watch_id
    hub.take(w)  # replayed revision 2 only; cursor at 3
    synced = hub.create(ALL).watch_id
    a.ok(CompactRequest(5))
    resp = hub.take(w)
    assert resp is not None and resp.canceled and resp.compact_revision == 5
    a.ok(PutRequest(b"k", b"after"))
    assert [ev.kv.value for ev in events(drain(hub, synced))] == [b"after"]


def test_watch_at_the_compact_revision_still_gets_its_delete_event() -> None:
    """etcd #19179: the DELETE at exactly the compaction revision was lost. Its prev_kv is
    compacted, so it comes empty, as etcd's watch leaves it."""
    a, hub = setup()
    a.ok(PutRequest(b"k", b"v"))  # 2
    a.ok(DeleteRangeRequest(b"k"))  # 3
    a.ok(CompactRequest(3))
    w = hub.create(WatchCreateRequest(b"k", start_revision=3, prev_kv=True)).watch_id
    (ev,) = events(drain(hub, w))
    assert ev.type is EventType.DELETE and ev.kv.mod_revision == 3
    assert ev.prev_kv is None


def test_slow_watcher_is_cancelled_with_a_reason_and_never_stalls_writes() -> None:
    a, hub = setup(max_buffered_events=10)
    slow = hub.create(ALL).watch_id
    fast = hub.create(ALL).watch_id
    for i in range(30):
        a.ok(PutRequest(b"k%d" % i))  # apply never blocks or fails because of watchers
        assert hub.take(fast) is not None
    resp = hub.take(slow)
    assert resp is not None and resp.canceled and "too slow" in resp.cancel_reason
    assert resp.compact_revision == 0
    assert len(hub) == 1


def test_filters_noput_and_nodelete() -> None:
    a, hub = setup()
    no_put = hub.create(WatchCreateRequest(b"\0", b"\0", filters=(WatchFilter.NOPUT,))).watch_id
    no_del = hub.create(WatchCreateRequest(b"\0", b"\0", filters=(WatchFilter.NODELETE,))).watch_id
    a.ok(PutRequest(b"k"))
    a.ok(DeleteRangeRequest(b"k"))
    assert [ev.type for ev in events(drain(hub, no_put))] == [EventType.DELETE]
    assert [ev.type for ev in events(drain(hub, no_del))] == [EventType.PUT]


def test_prev_kv_and_is_create() -> None:
    """Calico's conversion needs prevKV on DELETE and IsCreate (version 1) on PUT."""
    a, hub = setup()
    with_prev = hub.create(WatchCreateRequest(b"k", prev_kv=True)).watch_id
    without = hub.create(WatchCreateRequest(b"k")).watch_id
    a.ok(PutRequest(b"k", b"1"))
    a.ok(PutRequest(b"k", b"2"))
    a.ok(DeleteRangeRequest(b"k"))
    evs = events(drain(hub, with_prev))
    assert [ev.is_create for ev in evs] == [True, False, False]
    assert [ev.prev_kv.value if ev.prev_kv else None for ev in evs] == [None, b"1", b"2"]
    assert all(ev.prev_kv is None for ev in events(drain(hub, without)))
    replay = hub.create(WatchCreateRequest(b"k", start_revision=2, prev_kv=True)).watch_id
    assert events(drain(hub, replay)) == evs


def test_key_range_and_prefix_selection() -> None:
    a, hub = setup()
    single = hub.create(WatchCreateRequest(b"/a")).watch_id
    prefix = hub.create(WatchCreateRequest(b"/a/", b"/a0")).watch_id
    from_key = hub.create(WatchCreateRequest(b"/b", b"\0")).watch_id
    for k in (b"/a", b"/a/x", b"/a/y", b"/ab", b"/b", b"/c"):
        a.ok(PutRequest(k))
    assert [e.kv.key for e in events(drain(hub, single))] == [b"/a"]
    assert [e.kv.key for e in events(drain(hub, prefix))] == [b"/a/x", b"/a/y"]
    assert [e.kv.key for e in events(drain(hub, from_key))] == [b"/b", b"/c"]


def test_lease_revoke_emits_deletes_with_prev_kv() -> None:
    a, hub = setup()
    a.ok(LeaseGrantRequest(60, 9))
    a.ok(PutRequest(b"s/1", b"x", lease=9))
    a.ok(PutRequest(b"s/2", b"y", lease=9))
    w = hub.create(WatchCreateRequest(b"s/", b"s0", prev_kv=True)).watch_id
    a.ok(LeaseRevokeRequest(9))
    evs = events(drain(hub, w))
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in evs] == [
        (EventType.DELETE, b"s/1", 4),
        (EventType.DELETE, b"s/2", 4),
    ]
    assert [e.prev_kv.value for e in evs if e.prev_kv] == [b"x", b"y"]


def test_future_start_revision_gets_nothing_before_it() -> None:
    """etcd #20221: a watch on a future revision must not see older events."""
    a, hub = setup()
    w = hub.create(WatchCreateRequest(b"k", start_revision=4)).watch_id
    for i in range(4):
        a.ok(PutRequest(b"k", b"%d" % i))
    assert [e.kv.mod_revision for e in events(drain(hub, w))] == [4, 5]


def test_progress_notifications_only_when_caught_up() -> None:
    """Bookmarkable: a progress revision promises every event up to it was delivered."""
    a, hub = setup(max_scan_revisions=1)
    for i in range(3):
        a.ok(PutRequest(b"k", b"%d" % i))
    replaying = hub.create(WatchCreateRequest(b"k", start_revision=2, progress_notify=True))
    idle = hub.create(WatchCreateRequest(b"other", progress_notify=True))
    assert hub.request_progress(replaying.watch_id) is None
    due = hub.progress_due()
    assert [(r.watch_id, r.revision, r.events) for r in due] == [(idle.watch_id, 4, ())]
    drain(hub, replaying.watch_id)
    note = hub.request_progress(replaying.watch_id)
    assert note is not None and note.revision == 4 and note.events == ()
    assert [r.watch_id for r in hub.progress_due()] == [idle.watch_id]  # it got events last round
    assert {r.watch_id for r in hub.progress_due()} == {idle.watch_id, replaying.watch_id}


def test_watchers_survive_a_snapshot_restore_without_loss_or_duplicates() -> None:
    a, hub = setup()
    w = hub.create(ALL).watch_id
    a.ok(PutRequest(b"a"))
    a.ok(PutRequest(b"b"))
    seen = events([r for r in [hub.take(w, max_events=1)] if r])
    restored = KVStateMachine.from_snapshot(a.machine.to_snapshot())
    hub.attach(restored)
    a.machine = restored
    a.ok(PutRequest(b"c"))
    seen += events(drain(hub, w))
    assert keys_revs(seen) == [(b"a", 2), (b"b", 3), (b"c", 4)]


key_ops = st.tuples(
    st.sampled_from(["put", "del", "txn"]), st.sampled_from([b"a", b"b", b"c", b"d"])
)
num_ops = st.tuples(st.sampled_from(["take", "watch", "compact", "restore"]), st.integers(0, 8))
ops = st.lists(st.one_of(key_ops, num_ops), max_size=40)


@given(ops)
def test_every_watcher_sees_exactly_the_matching_history(
    script: list[tuple[str, bytes] | tuple[str, int]],
) -> None:
    """Ordered, unique, atomic, reliable, bookmarkable and compaction-cancelled together: watches
    created at random times and start revisions, drained in random amounts, across compactions
    and snapshot restores, against the history an always-drained all-keys watch records."""
    a, hub = setup(max_scan_revisions=2)
    shapes = [(b"a", b""), (b"b", b"d"), (b"\0", b"\0")]
    truth_id = hub.create(ALL).watch_id
    truth: list[Event] = []
    watches: dict[int, tuple[bytes, bytes, int]] = {}
    got: dict[int, list[WatchResponse]] = {}
    for op, arg in script:
        if isinstance(arg, bytes):
            if op == "put":
                a.ok(PutRequest(arg, b"v"))
            elif op == "del":
                a.ok(DeleteRangeRequest(arg))
            else:
                a.ok(TxnRequest((), (PutRequest(arg), PutRequest(b"z")), ()))
        elif op == "watch":
            key, end = shapes[arg % 3]
            start = max(0, a.machine.revision + 1 - arg)
            wid = hub.create(WatchCreateRequest(key, end, start_revision=start)).watch_id
            watches[wid] = (key, end, start or a.machine.revision + 1)
            got[wid] = []
        elif op == "compact":
            rev = a.machine.revision - arg
            if rev > a.machine.compact_revision:
                a.ok(CompactRequest(rev))
        elif op == "restore":
            a.machine = KVStateMachine.from_snapshot(a.machine.to_snapshot())
            hub.attach(a.machine)
        elif watches:
            wid = sorted(watches)[arg % len(watches)]
            resp = hub.take(wid, max_events=1 + arg)
            if resp is not None:
                got[wid].append(resp)
        truth.extend(events(drain(hub, truth_id)))
    for wid, (key, end, start) in watches.items():
        got[wid].extend(drain(hub, wid, max_events=2))
        want = [e for e in truth if e.kv.mod_revision >= start and in_range(e.kv.key, key, end)]
        resps = got[wid]
        delivered = events(resps)
        if resps and resps[-1].canceled:
            # Cancelled by compaction: what came before is a gap-free prefix, and the watch's
            # cursor (past its last event, at least its start) really was below the compaction.
            cancel = resps.pop()
            assert cancel.compact_revision > 0
            assert delivered == want[: len(delivered)]
            cursor = delivered[-1].kv.mod_revision + 1 if delivered else start
            assert cancel.compact_revision > cursor
        else:
            assert delivered == want
        for resp in resps:
            for rev in {e.kv.mod_revision for e in resp.events}:
                in_resp = [e for e in resp.events if e.kv.mod_revision == rev]
                assert in_resp == [e for e in want if e.kv.mod_revision == rev]
            assert resp.revision >= max(e.kv.mod_revision for e in resp.events)
        # Bookmarkable: a header revision promises every event up to it was delivered.
        for resp, nxt in itertools.pairwise(resps):
            assert resp.revision < min(e.kv.mod_revision for e in nxt.events)


def test_follower_restored_from_a_newer_snapshot_delivers_the_missed_revisions() -> None:
    """A lagging member installs the leader's snapshot: its watchers get what lies between."""
    leader, follower = Applier(), Applier()
    hub = WatchHub(follower.machine)
    w = hub.create(ALL).watch_id
    for i in range(5):
        leader.ok(PutRequest(b"k%d" % i))
        if i < 2:
            follower.ok(PutRequest(b"k%d" % i))
    assert keys_revs(events(drain(hub, w))) == [(b"k0", 2), (b"k1", 3)]
    hub.attach(KVStateMachine.from_snapshot(leader.machine.to_snapshot()))
    assert keys_revs(events(drain(hub, w))) == [(b"k2", 4), (b"k3", 5), (b"k4", 6)]


def test_follower_restored_past_a_compaction_cancels_the_watchers_it_skipped() -> None:
    leader, follower = Applier(), Applier()
    hub = WatchHub(follower.machine)
    w = hub.create(ALL).watch_id
    for i in range(5):
        leader.ok(PutRequest(b"k%d" % i))
    leader.ok(CompactRequest(5))
    hub.attach(KVStateMachine.from_snapshot(leader.machine.to_snapshot()))
    resp = hub.take(w)
    assert resp is not None and resp.canceled and resp.compact_revision == 5


def test_same_shape_watchers_share_one_events_tuple_so_the_shell_encodes_once() -> None:
    a, hub = setup()
    ids = [hub.create(WatchCreateRequest(b"/p/", b"/p0", prev_kv=True)).watch_id for _ in range(3)]
    other = hub.create(WatchCreateRequest(b"/q")).watch_id
    a.ok(PutRequest(b"/p/x"))
    resps = hub.take_ready()
    assert [r.watch_id for r in resps] == ids
    assert resps[0].events is resps[1].events is resps[2].events
    assert hub.take_ready() == [] and hub.ready() == []
    a.ok(PutRequest(b"/q"))
    assert [r.watch_id for r in hub.take_ready()] == [other]
