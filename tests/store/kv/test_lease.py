"""Leases: the state machine's grant/revoke/checkpoint and the leader's LeaseTracker
(etcd lessor.go: revoke rate limit, retry of lost revokes, Promote extends, checkpoints)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.kv.errors import ErrorKind, KVError
from store.kv.lease import LeaseTracker
from store.kv.machine import KVConfig, KVStateMachine
from store.kv.messages import (
    LeaseCheckpoint,
    LeaseCheckpointRequest,
    LeaseGrantRequest,
    LeaseGrantResponse,
    LeaseInfo,
    LeaseRevokeRequest,
    PutRequest,
    RangeRequest,
)
from tests.store.kv.helpers import Applier


def grant(a: Applier, ttl: int, lease_id: int = 0) -> int:
    resp = a.ok(LeaseGrantRequest(ttl, lease_id))
    assert isinstance(resp, LeaseGrantResponse)
    return resp.id


def test_grant_picks_ids_deterministically_and_refuses_an_existing_one() -> None:
    a, b = Applier(), Applier()
    assert [grant(a, 10) for _ in range(3)] == [grant(b, 10) for _ in range(3)] == [1, 2, 3]
    assert grant(a, 10, 100) == 100
    err = a.err(LeaseGrantRequest(10, 100))
    assert err.kind == ErrorKind.LEASE_EXIST and err.message == "etcdserver: lease already exists"
    assert a.err(LeaseGrantRequest(10**10)).kind == ErrorKind.LEASE_TTL_TOO_LARGE


def test_short_ttls_are_raised_to_the_minimum() -> None:
    """etcd lessor.Grant raises a TTL below minLeaseTTL (1.5 election timeouts) to it."""
    a = Applier(KVConfig(min_lease_ttl=5))
    resp = a.ok(LeaseGrantRequest(1))
    assert isinstance(resp, LeaseGrantResponse) and resp.ttl == 5


def test_revoke_deletes_attached_keys_in_one_revision() -> None:
    a = Applier()
    lease = grant(a, 30)
    a.ok(PutRequest(b"s/1", lease=lease))
    a.ok(PutRequest(b"s/2", lease=lease))
    a.ok(PutRequest(b"keep"))
    rev = a.machine.revision
    a.ok(LeaseRevokeRequest(lease))
    assert a.machine.revision == rev + 1
    assert [kv.key for kv in a.machine.range(RangeRequest(b"\0", b"\0")).kvs] == [b"keep"]
    err = a.err(LeaseRevokeRequest(lease))
    assert err.kind == ErrorKind.LEASE_NOT_FOUND and err.code == "NotFound"


def test_revoking_a_lease_without_keys_creates_no_revision() -> None:
    a = Applier()
    lease = grant(a, 30)
    a.ok(LeaseRevokeRequest(lease))
    assert a.machine.revision == 1


def test_put_moves_a_key_between_leases_and_delete_detaches_it() -> None:
    a = Applier()
    one, two = grant(a, 30), grant(a, 30)
    a.ok(PutRequest(b"k", lease=one))
    a.ok(PutRequest(b"k", lease=two))
    assert a.machine.lease(one).keys == () and a.machine.lease(two).keys == (b"k",)
    a.ok(PutRequest(b"k", b"new", ignore_lease=True))
    assert a.machine.lease(two).keys == (b"k",)
    a.ok(PutRequest(b"k"))  # no lease: detached
    assert a.machine.lease(two).keys == ()
    assert a.err(PutRequest(b"x", lease=77)).kind == ErrorKind.LEASE_NOT_FOUND


def test_checkpoint_persists_remaining_ttl_in_state_and_snapshots() -> None:
    a = Applier()
    lease = grant(a, 600)
    a.ok(LeaseCheckpointRequest((LeaseCheckpoint(lease, 240), LeaseCheckpoint(999, 5))))
    assert a.machine.lease(lease).remaining_ttl == 240
    restored = KVStateMachine.from_snapshot(a.machine.to_snapshot())
    assert restored.leases() == (LeaseInfo(lease, 600, 240, ()),)


# --- the leader's clock -------------------------------------------------------------------


def leader(leases: list[LeaseInfo], now: float = 0.0, **kw: float) -> LeaseTracker:
    t = LeaseTracker(**kw)  # type: ignore[arg-type]
    t.promote(now, leases, extend=0.0)
    return t


def test_a_follower_expires_nothing() -> None:
    t = LeaseTracker()
    t.lease_granted(1, 5)
    assert t.expired(1000.0) == []
    t.promote(0.0, [LeaseInfo(1, 5, 0, ())], extend=0.0)
    t.demote()
    assert t.expired(1000.0) == []


def test_expired_leases_come_out_earliest_first_in_rate_limited_batches() -> None:
    """etcd #8097/#12105: mass expiry must not turn into a revoke storm."""
    leases = [LeaseInfo(i, 10 + i % 5, 0, ()) for i in range(1, 2001)]
    t = leader(leases, max_revokes_per_second=100.0)
    assert t.expired(9.0) == []
    first = t.expired(20.0)
    assert len(first) == 50  # a burst of at most rate / 2
    ttl = {lease.id: lease.ttl for lease in leases}
    assert [ttl[r.id] for r in first] == sorted(ttl[r.id] for r in first)
    assert all(ttl[r.id] == 10 for r in first)
    assert t.expired(20.0) == []  # no tokens left at the same instant
    assert len(t.expired(20.25)) == 25  # refilled at 100/s
    issued = {r.id for r in first}
    for _ in range(200):
        # Over a long run the rate holds at 100 per second.
        issued |= {r.id for r in t.expired(20.25 + (_ + 1) * 0.1)}
    assert len(issued) <= 50 + 25 + 200 * 10 + 1


def test_an_issued_revoke_is_retried_only_after_the_retry_interval() -> None:
    t = leader([LeaseInfo(1, 5, 0, ())], retry_interval=3.0)
    assert [r.id for r in t.expired(6.0)] == [1]
    assert t.expired(7.0) == []
    assert [r.id for r in t.expired(9.5)] == [1]
    t.lease_revoked(1)  # the revoke was applied
    assert t.expired(100.0) == []


def test_keep_alive_pushes_the_deadline() -> None:
    t = leader([LeaseInfo(1, 10, 0, ())])
    assert t.renew(1, 8.0) == (10, None)
    assert t.expired(12.0) == []
    assert t.remaining(1, 12.0) == 6
    assert [r.id for r in t.expired(18.5)] == [1]
    with pytest.raises(KVError):
        t.renew(2, 0.0)


def test_leader_change_extends_remaining_ttls_instead_of_expiring_everything() -> None:
    """etcd Promote(extend): deadline = now + extend + remaining (checkpointed or full TTL)."""
    t = LeaseTracker()
    t.promote(1000.0, [LeaseInfo(1, 60, 0, ()), LeaseInfo(2, 600, 100, ())], extend=1.0)
    assert t.expired(1060.5) == []
    assert [r.id for r in t.expired(1061.5)] == [1]
    t.lease_revoked(1)
    assert t.remaining(2, 1061.5) == 40
    assert t.expired(1100.5) == []
    assert [r.id for r in t.expired(1101.5)] == [2]


def test_renewing_a_checkpointed_lease_clears_its_checkpoint() -> None:
    t = leader([LeaseInfo(1, 600, 100, ())])
    ttl, clear = t.renew(1, 5.0)
    assert ttl == 600
    assert clear == LeaseCheckpointRequest((LeaseCheckpoint(1, 0),))
    assert t.renew(1, 6.0) == (600, None)


def test_checkpoints_persist_remaining_ttls_in_bounded_batches() -> None:
    leases = [LeaseInfo(i, 3600, 0, ()) for i in range(1, 6)] + [LeaseInfo(9, 60, 0, ())]
    t = leader(leases, checkpoint_interval=300.0, max_checkpoint_batch=3)
    assert t.checkpoints(299.0) is None
    first = t.checkpoints(300.0)
    second = t.checkpoints(300.0)
    assert first is not None and second is not None
    assert [c.id for c in first.checkpoints] == [1, 2, 3]
    assert [(c.id, c.remaining_ttl) for c in second.checkpoints] == [(4, 3300), (5, 3300)]
    assert t.checkpoints(300.0) is None  # lease 9 is shorter than an interval


def test_leases_granted_while_leader_start_at_the_next_clock_reading() -> None:
    a = Applier()
    t = leader([])
    a.machine.lease_observer = t
    lease = grant(a, 10)
    assert t.next_deadline() == 0.0
    assert t.expired(100.0) == []  # stamped at 100, expires at 110
    assert t.next_deadline() == 110.0
    assert [r.id for r in t.expired(110.0)] == [lease]
    a.ok(LeaseRevokeRequest(lease))
    assert t.next_deadline() is None


lease_ops = st.lists(
    st.one_of(
        st.tuples(st.just("grant"), st.integers(1, 30)),
        st.tuples(st.just("renew"), st.integers(0, 5)),
        st.tuples(st.just("tick"), st.integers(0, 20)),
        st.tuples(st.just("revoke"), st.integers(0, 5)),
        st.tuples(st.just("promote"), st.integers(0, 5)),
        st.tuples(st.just("demote"), st.integers(0, 0)),
    ),
    max_size=50,
)


@given(lease_ops)
def test_tracker_never_expires_early_never_exceeds_its_rate_and_eventually_expires(
    script: list[tuple[str, int]],
) -> None:
    """etcd lessor: a lease lives at least its TTL from its last renewal (or from promotion plus
    `extend`), revokes never exceed the rate, and an unrenewed lease is revoked in the end."""
    rate = 4.0
    t = LeaseTracker(max_revokes_per_second=rate, retry_interval=3.0)
    ttl: dict[int, int] = {}
    earliest: dict[int, float] = {}  # a revoke before this instant would be premature
    now = 0.0
    next_id = 1
    issued: list[float] = []

    def check(revokes: list[LeaseRevokeRequest]) -> None:
        for r in revokes:
            assert t.primary and r.id in ttl
            assert now >= earliest[r.id], (r.id, now, earliest[r.id])
            issued.append(now)

    for op, n in script:
        if op == "grant":
            ttl[next_id] = n
            earliest[next_id] = now + n
            t.lease_granted(next_id, n)
            next_id += 1
        elif op == "renew" and t.primary and ttl:
            lease_id = sorted(ttl)[n % len(ttl)]
            t.renew(lease_id, now)
            earliest[lease_id] = now + ttl[lease_id]
        elif op == "tick":
            now += n / 2
            check(t.expired(now))
        elif op == "revoke" and ttl:
            lease_id = sorted(ttl)[n % len(ttl)]
            del ttl[lease_id]
            t.lease_revoked(lease_id)
        elif op == "promote":
            t.promote(now, [LeaseInfo(i, ttl[i], 0, ()) for i in sorted(ttl)], extend=float(n))
            earliest = {i: now + n + ttl[i] for i in ttl}
        elif op == "demote":
            t.demote()
    # Rate: over any window [a, b], at most rate * (b - a) + burst revokes.
    for i, start in enumerate(issued):
        in_window = [x for x in issued[i:] if x - start <= 1.0]
        assert len(in_window) <= rate * 1.0 + rate / 2 + 1
    # Liveness: as leader, every lease left is revoked once its time has come.
    t.promote(now, [LeaseInfo(i, ttl[i], 0, ()) for i in sorted(ttl)], extend=0.0)
    pending = set(ttl)
    for step in range(1, 200):
        for r in t.expired(now + 40 + step):
            pending.discard(r.id)
    assert not pending


def test_reset_after_a_snapshot_forgets_gone_leases_and_times_new_ones() -> None:
    t = leader([LeaseInfo(1, 10, 0, ()), LeaseInfo(2, 10, 0, ())])
    t.reset([LeaseInfo(2, 10, 0, ()), LeaseInfo(3, 20, 0, ())])  # 1 revoked, 3 granted meanwhile
    assert [r.id for r in t.expired(15.0)] == [2]  # 3 is timed from now: due at 35
    t.lease_revoked(2)
    assert t.expired(34.0) == []
    assert [r.id for r in t.expired(35.0)] == [3]
    with pytest.raises(KVError):
        t.remaining(1, 40.0)


def test_a_follower_refuses_keep_alives_with_not_leader() -> None:
    t = LeaseTracker()
    t.lease_granted(1, 10)
    with pytest.raises(KVError) as info:
        t.renew(1, 0.0)
    assert info.value.kind is ErrorKind.NOT_LEADER
    assert info.value.to_wire() == {
        "code": "FailedPrecondition",
        "message": "etcdserver: not leader",
    }
