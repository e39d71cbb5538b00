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


def test_only_disarm_clears_the_alarm_and_compaction_makes_room_again() -> None:
    a = full()
    a.ok(CompactRequest(a.machine.revision))
    assert a.err(PutRequest(b"k", b"v")).kind == ErrorKind.NO_SPACE
    resp = a.ok(AlarmRequest(AlarmAction.DEACTIVATE, AlarmType.NOSPACE))
    assert isinstance(resp, AlarmResponse) and resp.alarms == ()
    a.ok(PutRequest(b"k", b"v"))
    listed = a.ok(AlarmRequest(AlarmAction.GET))
    assert isinstance(listed, AlarmResponse) and listed.alarms == ()


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
