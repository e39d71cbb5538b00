"""Snapshots for Raft log compaction: deterministic bytes, restore equivalent to the original,
idempotent replay after restore, and a clear error for foreign bytes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.kv.machine import KVStateMachine, SnapshotError
from store.kv.messages import (
    CompactRequest,
    DefragmentRequest,
    LeaseGrantRequest,
    PutRequest,
    RangeRequest,
    Request,
)
from tests.store.kv import strategies as s
from tests.store.kv.helpers import Applier

writes = st.lists(
    st.one_of(
        s.puts,
        s.deletes,
        s.txns(1),
        st.builds(CompactRequest, st.integers(1, 20)),
        st.just(DefragmentRequest()),
    ),
    max_size=20,
)


def everything_at(machine: KVStateMachine, rev: int) -> object:
    try:
        return machine.range(RangeRequest(b"\0", b"\0", revision=rev))
    except Exception as err:
        return type(err).__name__, str(err)


@given(writes, writes)
def test_restored_machine_is_equivalent(before: list[Request], after: list[Request]) -> None:
    a = Applier()
    for req in before:
        a(req)
    data = a.machine.to_snapshot()
    b = Applier()
    b.machine = KVStateMachine.from_snapshot(data)
    b.index = a.index
    assert b.machine.to_snapshot() == data
    for rev in range(a.machine.revision + 2):
        assert everything_at(b.machine, rev) == everything_at(a.machine, rev)
    for req in after:
        assert b(req) == a(req)
    assert b.machine.to_snapshot() == a.machine.to_snapshot()


def test_apply_of_an_index_at_or_below_the_snapshot_is_a_no_op() -> None:
    a = Applier()
    a.ok(PutRequest(b"k", b"1"))
    a.ok(PutRequest(b"k", b"2"))
    restored = KVStateMachine.from_snapshot(a.machine.to_snapshot())
    assert restored.applied_index == 2
    assert restored.apply(1, PutRequest(b"k", b"again")) is None
    assert restored.apply(2, PutRequest(b"k", b"again")) is None
    assert restored.revision == 3
    assert restored.apply(3, PutRequest(b"k", b"3")) is not None
    assert restored.revision == 4


@pytest.mark.parametrize(
    "data", [b"", b"\x93\x01\x02\x03", b"garbage", b"\x96\x09\x00\x90\x90\x90\x01"]
)
def test_foreign_bytes_are_refused_with_snapshot_error(data: bytes) -> None:
    with pytest.raises(SnapshotError):
        KVStateMachine.from_snapshot(data)


def test_snapshot_bytes_do_not_depend_on_the_hash_seed() -> None:
    """Members run with different PYTHONHASHSEEDs; set iteration must never reach the bytes."""
    script = textwrap.dedent(
        """
        import sys, hashlib
        from store.kv.machine import KVStateMachine
        from store.kv.messages import LeaseGrantRequest, LeaseRevokeRequest, PutRequest, DeleteRangeRequest
        m = KVStateMachine()
        i = 0
        def ap(r):
            global i
            i += 1
            m.apply(i, r)
        ap(LeaseGrantRequest(60, 5))
        for n in range(200):
            ap(PutRequest(b"key/%d" % (n * 7919 % 200), b"v", lease=5 if n % 3 else 0))
        ap(DeleteRangeRequest(b"key/1", b"key/5"))
        ap(LeaseRevokeRequest(5))
        sys.stdout.write(hashlib.sha256(m.to_snapshot()).hexdigest())
        """
    )
    root = Path(__file__).resolve().parents[3]
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=root,
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(root)},
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1


def test_leases_and_their_keys_survive_a_round_trip() -> None:
    a = Applier()
    a.ok(LeaseGrantRequest(60, 3))
    a.ok(PutRequest(b"b", lease=3))
    a.ok(PutRequest(b"a", lease=3))
    restored = KVStateMachine.from_snapshot(a.machine.to_snapshot())
    assert restored.lease(3).keys == (b"a", b"b")


def test_hash_kv_agrees_between_members_and_after_restore() -> None:
    """etcd HashKV: members that applied the same entries agree; a divergent one does not."""
    a, b, c = Applier(), Applier(), Applier()
    for x in (a, b, c):
        x.ok(PutRequest(b"k1", b"v"))
        x.ok(PutRequest(b"k2", b"v"))
    c.ok(PutRequest(b"k3", b"divergent"))
    a.ok(PutRequest(b"k3", b"v"))
    b.ok(PutRequest(b"k3", b"v"))
    assert a.machine.hash_kv() == b.machine.hash_kv()
    assert a.machine.hash_kv()[0] != c.machine.hash_kv()[0]
    assert a.machine.hash_kv(3) == c.machine.hash_kv(3)  # they agreed up to revision 3
    restored = KVStateMachine.from_snapshot(a.machine.to_snapshot())
    assert restored.hash_kv() == a.machine.hash_kv()


def test_entries_without_a_kv_request_still_advance_the_applied_index() -> None:
    a = Applier()
    a.ok(PutRequest(b"k"))
    a.machine.advance(5)  # e.g. a leader's empty entry, a membership change
    assert a.machine.apply(4, PutRequest(b"k", b"stale")) is None
    assert KVStateMachine.from_snapshot(a.machine.to_snapshot()).applied_index == 5
    status = a.machine.status()
    assert (status.revision, status.applied_index, status.keys) == (2, 5, 1)
