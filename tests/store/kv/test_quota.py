"""Space quota and the NOSPACE alarm (etcd quota.go, applierV3Capped; maintenance.md "Space
quota"): over quota, puts, txns that put and lease grants fail with ErrNoSpace and the alarm is
raised; reads, deletes, revokes and compaction still work; only a disarm clears the alarm."""

from __future__ import annotations

from store.kv.errors import ErrorKind
from store.kv.machine import KVConfig, KVStateMachine
from store.kv.messages import (
    AlarmAction,
    AlarmRequest,
    AlarmResponse,
    AlarmType,
    CompactRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DefragmentRequest,
    DefragmentResponse,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseRevokeRequest,
    PutRequest,
    RangeRequest,
    TxnRequest,
)
from tests.store.kv.helpers import Applier

QUOTA = 4096


def full() -> Applier:
    a = Applier(KVConfig(quota_bytes=QUOTA))
    a.ok(LeaseGrantRequest(60, 1))
    for i in range(100):
        resp = a(PutRequest(b"k", b"x" * 500 + b"%d" % i))
        if resp.__class__.__name__ == "ErrorResponse":
            break
    assert a.machine.alarms() == (AlarmType.NOSPACE,)
    return a


def test_exceeding_the_quota_raises_nospace_and_refuses_the_put() -> None:
    a = full()
    err = a.err(PutRequest(b"small", b"1"))
    assert err.kind == ErrorKind.NO_SPACE
    assert (err.code, err.message) == (
        "ResourceExhausted",
        "etcdserver: mvcc: database space exceeded",
    )
    assert a.machine.db_size <= QUOTA


def test_while_alarmed_txns_that_put_and_lease_grants_are_refused() -> None:
    a = full()
    put_in_else = TxnRequest(
        (Compare(b"k", CompareTarget.VERSION, CompareResult.EQUAL, 0),), (), (PutRequest(b"z"),)
    )
    assert a.err(put_in_else).kind == ErrorKind.NO_SPACE  # etcd costs the dearer branch
    assert a.err(LeaseGrantRequest(60)).kind == ErrorKind.NO_SPACE
    a.ok(TxnRequest((), (RangeRequest(b"k"), DeleteRangeRequest(b"nothing")), ()))


def test_while_alarmed_reads_deletes_revokes_and_compaction_work() -> None:
    a = full()
    a.ok(RangeRequest(b"k"))
    a.ok(DeleteRangeRequest(b"k"))
    a.ok(LeaseRevokeRequest(1))
    a.ok(CompactRequest(a.machine.revision))
    assert a.machine.alarms() == (AlarmType.NOSPACE,)  # compaction alone does not disarm


def test_only_disarm_clears_the_alarm_and_defragmentation_makes_room_again() -> None:
    """etcd maintenance.md "Space quota": compact, defrag, disarm, and puts work again."""
    a = full()
    filled = a.machine.db_size
    a.ok(CompactRequest(a.machine.revision))
    assert a.machine.db_size_in_use < filled  # compaction freed space...
    assert a.machine.db_size == filled  # ...that stays allocated until a defrag, as in etcd
    assert a.err(PutRequest(b"k", b"v")).kind == ErrorKind.NO_SPACE
    resp = a.ok(AlarmRequest(AlarmAction.DEACTIVATE, AlarmType.NOSPACE))
    assert isinstance(resp, AlarmResponse) and resp.alarms == ()
    # Disarmed but not defragmented: the put still does not fit and raises the alarm again.
    assert a.err(PutRequest(b"k", b"v")).kind == ErrorKind.NO_SPACE
    assert a.machine.alarms() == (AlarmType.NOSPACE,)
    defrag = a.ok(DefragmentRequest())
    assert isinstance(defrag, DefragmentResponse) and defrag.revision == a.machine.revision
    assert a.machine.db_size == a.machine.db_size_in_use
    assert a.machine.alarms() == (AlarmType.NOSPACE,)  # defrag alone does not disarm
    a.ok(AlarmRequest(AlarmAction.DEACTIVATE, AlarmType.NOSPACE))
    a.ok(PutRequest(b"k", b"v"))
    listed = a.ok(AlarmRequest(AlarmAction.GET))
    assert isinstance(listed, AlarmResponse) and listed.alarms == ()


def test_freed_space_is_reused_before_the_allocation_grows() -> None:
    """Like bbolt's free pages: writes after a compaction fill freed space first, so db_size
    stays at its high-water mark until in-use data passes it."""
    a = Applier(KVConfig(quota_bytes=1 << 20))
    for i in range(10):
        a.ok(PutRequest(b"k", b"x" * 100 + b"%d" % i))
    high = a.machine.db_size
    a.ok(CompactRequest(a.machine.revision))
    for i in range(5):
        a.ok(PutRequest(b"k", b"y" * 100 + b"%d" % i))
    assert a.machine.db_size_in_use < high == a.machine.db_size
    for i in range(10):
        a.ok(PutRequest(b"k", b"z" * 100 + b"%d" % i))
    assert a.machine.db_size == a.machine.db_size_in_use > high


def test_a_revoke_frees_lease_space_only_for_a_defrag() -> None:
    a = Applier(KVConfig(quota_bytes=1 << 20))
    a.ok(LeaseGrantRequest(60, 7))
    before = a.machine.db_size
    a.ok(LeaseRevokeRequest(7))
    assert a.machine.db_size == before > a.machine.db_size_in_use
    a.ok(DefragmentRequest())
    assert a.machine.db_size == a.machine.db_size_in_use == 0


def test_allocation_is_replicated_state() -> None:
    """db_size decides NOSPACE inside apply, so a member restored from a snapshot must agree
    on it, defragmented or not."""
    a = full()
    a.ok(CompactRequest(a.machine.revision))
    restored = KVStateMachine.from_snapshot(a.machine.to_snapshot(), KVConfig(quota_bytes=QUOTA))
    assert (restored.db_size, restored.db_size_in_use) == (
        a.machine.db_size,
        a.machine.db_size_in_use,
    )
    assert restored.status() == a.machine.status()


def test_fresh_store_reports_compact_revision_minus_one_as_etcd_does() -> None:
    """etcd 3.4.23 on a fresh data dir: `etcdctl endpoint hashkv` reports compact_revision -1
    (mvcc compactMainRev starts at -1); `compact 0` then succeeds once, a second one fails with
    ErrCompacted, and after it the compact revision is 0 (observed against Debian's etcd)."""
    a = Applier()
    assert a.machine.compact_revision == -1
    assert a.machine.hash_kv()[2] == -1
    assert a.machine.status().compact_revision == -1
    a.ok(CompactRequest(0))
    assert a.machine.compact_revision == 0
    assert a.err(CompactRequest(0)).kind == ErrorKind.COMPACTED


def test_the_alarm_is_replicated_state() -> None:
    """Every member computes the same logical size, so the alarm survives in snapshots."""
    a = full()
    restored = KVStateMachine.from_snapshot(a.machine.to_snapshot(), KVConfig(quota_bytes=QUOTA))
    assert restored.alarms() == (AlarmType.NOSPACE,)
    assert restored.db_size == a.machine.db_size


def test_an_operator_can_raise_an_alarm_by_hand() -> None:
    a = Applier()
    a.ok(AlarmRequest(AlarmAction.ACTIVATE, AlarmType.NOSPACE))
    assert a.err(PutRequest(b"k")).kind == ErrorKind.NO_SPACE


def test_compaction_keeps_per_key_only_the_value_at_its_revision_as_etcd() -> None:
    """etcd keyIndex.compact(R): per key, the newest record at or below R (the value at R) and
    everything after it; a key deleted before R goes entirely. Only a tombstone at exactly R
    stays, for the DELETE event at R (etcd #19179)."""

    def cost(key: bytes, value: bytes = b"") -> int:
        return len(key) + len(value) + 256

    a = Applier()
    a.ok(PutRequest(b"k", b"old"))  # 2
    a.ok(PutRequest(b"k", b"new"))  # 3
    a.ok(PutRequest(b"gone", b"v"))  # 4
    a.ok(DeleteRangeRequest(b"gone"))  # 5
    a.ok(PutRequest(b"at", b"v"))  # 6
    a.ok(DeleteRangeRequest(b"at"))  # 7
    a.ok(CompactRequest(3))  # k's "old" goes: "new" is its value at 3
    kept = cost(b"k", b"new") + cost(b"gone", b"v") + cost(b"gone")
    assert a.machine.db_size_in_use == kept + cost(b"at", b"v") + cost(b"at")
    assert a.machine.range(RangeRequest(b"k", revision=3)).kvs[0].value == b"new"
    a.ok(CompactRequest(7))  # "gone" was absent at 7: dropped; "at" keeps its tombstone
    assert a.machine.db_size_in_use == cost(b"k", b"new") + cost(b"at")
    assert a.machine.range(RangeRequest(b"at", revision=7)).kvs == ()
    a.ok(PutRequest(b"x", b"1"))  # 8
    a.ok(CompactRequest(8))  # the tombstone at 7 is below 8 now
    assert a.machine.db_size_in_use == cost(b"k", b"new") + cost(b"x", b"1")
