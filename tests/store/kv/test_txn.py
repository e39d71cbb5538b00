"""Txn semantics as etcd v3 defines them (api.md "Transaction"; server/etcdserver/txn)."""

from __future__ import annotations

import pytest

from store.kv.errors import ErrorKind
from store.kv.messages import (
    CompactRequest,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    LeaseGrantRequest,
    LeaseGrantResponse,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    RequestOp,
    TxnRequest,
    TxnResponse,
)
from tests.store.kv.helpers import Applier

V, C, M, VAL, L = (
    CompareTarget.VERSION,
    CompareTarget.CREATE,
    CompareTarget.MOD,
    CompareTarget.VALUE,
    CompareTarget.LEASE,
)
EQ, NE, GT, LT = (
    CompareResult.EQUAL,
    CompareResult.NOT_EQUAL,
    CompareResult.GREATER,
    CompareResult.LESS,
)


def txn(
    a: Applier,
    *compare: Compare,
    then: tuple[RequestOp, ...] = (),
    orelse: tuple[RequestOp, ...] = (),
) -> TxnResponse:
    resp = a.ok(TxnRequest(tuple(compare), then, orelse))
    assert isinstance(resp, TxnResponse)
    return resp


def test_calico_create_succeeds_once_then_else_branch_reads_the_winner() -> None:
    """Calico etcdv3.go Create: If(Version(key)=0).Then(Put).Else(Get)."""
    a = Applier()
    first = txn(
        a,
        Compare(b"/k", V, EQ, 0),
        then=(PutRequest(b"/k", b"one"),),
        orelse=(RangeRequest(b"/k"),),
    )
    assert first.succeeded and first.revision == 2
    second = txn(
        a,
        Compare(b"/k", V, EQ, 0),
        then=(PutRequest(b"/k", b"two"),),
        orelse=(RangeRequest(b"/k"),),
    )
    assert not second.succeeded
    assert second.revision == 2  # a read-only txn does not create a revision
    got = second.responses[0]
    assert isinstance(got, RangeResponse) and got.kvs[0].value == b"one"


def test_calico_update_is_compare_and_swap_on_mod_revision() -> None:
    a = Applier()
    put = a.ok(PutRequest(b"/k", b"v1"))
    assert isinstance(put, PutResponse)
    ok = txn(a, Compare(b"/k", M, EQ, put.revision), then=(PutRequest(b"/k", b"v2"),))
    stale = txn(a, Compare(b"/k", M, EQ, put.revision), then=(PutRequest(b"/k", b"v3"),))
    assert ok.succeeded and not stale.succeeded
    assert a.machine.range(RangeRequest(b"/k")).kvs[0].value == b"v2"


@pytest.mark.parametrize(
    ("target", "result", "operand", "holds"),
    [
        (V, EQ, 0, True),
        (C, EQ, 0, True),
        (M, EQ, 0, True),
        (L, EQ, 0, True),
        (V, GT, 0, False),
        (VAL, EQ, b"", False),  # applyCompare: a VALUE compare on a missing key always fails
        (VAL, NE, b"x", False),
    ],
)
def test_compare_on_a_missing_key_uses_zero_values_except_value(
    target: CompareTarget, result: CompareResult, operand: int | bytes, holds: bool
) -> None:
    a = Applier()
    assert txn(a, Compare(b"nope", target, result, operand)).succeeded is holds


@pytest.mark.parametrize(
    ("compare", "holds"),
    [
        (Compare(b"k", VAL, EQ, b"m"), True),
        (Compare(b"k", VAL, GT, b"a"), True),
        (Compare(b"k", VAL, LT, b"a"), False),
        (Compare(b"k", VAL, LT, b"z"), True),
        (Compare(b"k", V, EQ, 2), True),
        (Compare(b"k", V, GT, 1), True),
        (Compare(b"k", V, LT, 2), False),
        (Compare(b"k", V, NE, 2), False),
        (Compare(b"k", C, EQ, 2), True),
        (Compare(b"k", M, EQ, 3), True),
        (Compare(b"k", M, GT, 2), True),
        (Compare(b"k", L, EQ, 0), True),
    ],
)
def test_compare_targets_and_results(compare: Compare, holds: bool) -> None:
    a = Applier()
    a.ok(PutRequest(b"k", b"first"))  # rev 2
    a.ok(PutRequest(b"k", b"m"))  # rev 3, version 2
    assert txn(a, compare).succeeded is holds


def test_compare_on_lease() -> None:
    a = Applier()
    grant = a.ok(LeaseGrantRequest(60, 7))
    assert isinstance(grant, LeaseGrantResponse)
    a.ok(PutRequest(b"k", b"v", lease=7))
    assert txn(a, Compare(b"k", L, EQ, 7)).succeeded
    assert not txn(a, Compare(b"k", L, EQ, 0)).succeeded


def test_range_compare_must_hold_for_every_key_in_the_range() -> None:
    a = Applier()
    a.ok(PutRequest(b"p/a", b"1"))
    a.ok(PutRequest(b"p/b", b"2"))
    assert txn(a, Compare(b"p/", V, EQ, 1, range_end=b"p0")).succeeded
    a.ok(PutRequest(b"p/b", b"3"))
    assert not txn(a, Compare(b"p/", V, EQ, 1, range_end=b"p0")).succeeded


def test_a_txn_is_one_revision_and_sees_its_own_writes() -> None:
    a = Applier()
    a.ok(PutRequest(b"gone", b"x"))
    resp = txn(
        a,
        then=(
            PutRequest(b"a", b"1"),
            PutRequest(b"b", b"2"),
            DeleteRangeRequest(b"gone"),
            RangeRequest(b"a", b"c"),
        ),
    )
    assert resp.revision == 3
    kvs = resp.responses[3]
    assert isinstance(kvs, RangeResponse)
    assert [(kv.key, kv.mod_revision) for kv in kvs.kvs] == [(b"a", 3), (b"b", 3)]
    assert a.machine.range(RangeRequest(b"gone")).count == 0


def test_range_at_the_pre_txn_revision_does_not_see_the_txns_writes() -> None:
    a = Applier()
    a.ok(PutRequest(b"k", b"old"))  # rev 2
    resp = txn(
        a, then=(PutRequest(b"k", b"new"), RangeRequest(b"k", revision=2), RangeRequest(b"k"))
    )
    at_2, at_head = resp.responses[1], resp.responses[2]
    assert isinstance(at_2, RangeResponse) and isinstance(at_head, RangeResponse)
    assert at_2.kvs[0].value == b"old" and at_head.kvs[0].value == b"new"


def test_each_answer_in_a_txn_carries_the_revision_as_of_its_op() -> None:
    """etcd storeTxnWrite: Range and DeleteRange answer at the revision before the txn until
    it has written, at the txn's revision after; Put always at the txn's revision (the
    contract suite's finding against etcd 3.4)."""
    a = Applier()
    a.ok(PutRequest(b"other", b"0"))  # rev 2
    resp = txn(
        a,
        then=(
            RangeRequest(b"k"),
            DeleteRangeRequest(b"absent"),
            PutRequest(b"k", b"1"),
            RangeRequest(b"k"),
            DeleteRangeRequest(b"absent"),
        ),
    )
    assert resp.revision == 3
    assert [r.revision for r in resp.responses] == [2, 2, 3, 3, 3]
    idle = txn(a, then=(DeleteRangeRequest(b"absent"), RangeRequest(b"k")))
    assert idle.revision == 3 and [r.revision for r in idle.responses] == [3, 3]


def test_of_two_faults_the_puts_is_reported_whatever_the_op_order() -> None:
    """etcd applyTxn checks every put of the taken path (lease, ignore_value) before any range
    (revision): a txn that reads a future revision, then puts on an unknown lease, fails with
    ErrLeaseNotFound, also when the put sits in a nested txn."""
    a = Applier()
    a.ok(PutRequest(b"k", b"1"))
    future = RangeRequest(b"k", revision=100)
    bad_put = PutRequest(b"k", b"2", lease=77)
    cases: list[tuple[RequestOp, ...]] = [(future, bad_put), (future, TxnRequest((), (bad_put,)))]
    for ops in cases:
        assert a.err(TxnRequest((), ops)).kind == ErrorKind.LEASE_NOT_FOUND
    assert a.err(TxnRequest((), (future,))).kind == ErrorKind.FUTURE_REV


def test_a_put_with_two_faults_names_the_lease_alone_and_the_key_in_a_txn() -> None:
    """etcd's plain Put looks its lease up before the key ignore_value needs (applierV3backend
    .Put with txn == nil); inside a txn checkRequestPut looks for the key first."""
    a = Applier()
    both = PutRequest(b"absent", b"", lease=77, ignore_value=True)
    assert a.err(both).kind == ErrorKind.LEASE_NOT_FOUND
    assert a.err(TxnRequest((), (both,))).kind == ErrorKind.KEY_NOT_FOUND
    lease = a.ok(LeaseGrantRequest(10))
    assert isinstance(lease, LeaseGrantResponse)
    on_lease = PutRequest(b"absent", b"", lease=lease.id, ignore_value=True)
    assert a.err(on_lease).kind == ErrorKind.KEY_NOT_FOUND
    assert a.err(PutRequest(b"k", b"", lease=77, ignore_value=False)).kind == (
        ErrorKind.LEASE_NOT_FOUND
    )


def test_nested_compares_are_decided_before_any_write() -> None:
    """etcd compareToPath: the whole branch path is evaluated on the pre-txn state."""
    a = Applier()
    resp = txn(
        a,
        then=(
            PutRequest(b"a", b"1"),
            TxnRequest((Compare(b"a", V, EQ, 0),), (PutRequest(b"b", b"nested"),), ()),
        ),
    )
    nested = resp.responses[1]
    assert isinstance(nested, TxnResponse) and nested.succeeded
    assert a.machine.range(RangeRequest(b"b")).count == 1


@pytest.mark.parametrize(
    "ops",
    [
        (PutRequest(b"k", b"1"), PutRequest(b"k", b"2")),
        (DeleteRangeRequest(b"a", b"z"), PutRequest(b"k")),
        (PutRequest(b"k"), DeleteRangeRequest(b"k")),
        (PutRequest(b"k"), TxnRequest((), (PutRequest(b"k"),), ())),
        (DeleteRangeRequest(b"\0", b"\0"), TxnRequest((), (PutRequest(b"k"),), ())),
    ],
)
def test_a_key_cannot_be_put_twice_or_put_and_deleted_in_one_txn(
    ops: tuple[RequestOp, ...],
) -> None:
    """etcd checkIntervals: ErrGRPCDuplicateKey."""
    a = Applier()
    err = a.err(TxnRequest((), ops, ()))
    assert err.kind == ErrorKind.DUPLICATE_KEY
    assert err.message == "etcdserver: duplicate key given in txn request"
    assert a.machine.revision == 1


@pytest.mark.parametrize(
    "ops",
    [
        (TxnRequest((), (PutRequest(b"k"),), (PutRequest(b"k"),)),),  # exclusive branches
        (DeleteRangeRequest(b"a", b"m"), DeleteRangeRequest(b"b", b"z")),  # deletes may overlap
    ],
)
def test_allowed_overlaps_in_one_txn(ops: tuple[RequestOp, ...]) -> None:
    Applier().ok(TxnRequest((), ops, ()))


def test_then_and_else_are_checked_separately() -> None:
    Applier().ok(TxnRequest((), (PutRequest(b"k"),), (PutRequest(b"k"),)))


def test_at_most_128_ops_per_txn_branch() -> None:
    """etcd --max-txn-ops default 128: ErrGRPCTooManyOps; nested txns share the budget."""
    a = Applier()
    puts = tuple(PutRequest(b"k%d" % i) for i in range(129))
    err = a.err(TxnRequest((), puts, ()))
    assert err.kind == ErrorKind.TOO_MANY_OPS and err.code == "InvalidArgument"
    a.ok(TxnRequest((), puts[:128], ()))
    nested = TxnRequest((), (*puts[:100], TxnRequest((), puts[100:129], ())), ())
    assert a.err(nested).kind == ErrorKind.TOO_MANY_OPS


def test_a_txn_reading_a_compacted_revision_fails_as_a_whole() -> None:
    """etcd #18667: checks on the chosen path run before any write of the txn."""
    a = Applier()
    for i in range(4):
        a.ok(PutRequest(b"k", b"%d" % i))
    a.ok(CompactRequest(4))
    err = a.err(TxnRequest((), (PutRequest(b"x"), RangeRequest(b"k", revision=3)), ()))
    assert err.kind == ErrorKind.COMPACTED
    assert a.machine.range(RangeRequest(b"x")).count == 0
    assert (
        a.err(TxnRequest((), (RangeRequest(b"k", revision=99),), ())).kind == ErrorKind.FUTURE_REV
    )


def test_a_txn_put_with_an_unknown_lease_writes_nothing() -> None:
    a = Applier()
    err = a.err(TxnRequest((), (PutRequest(b"a"), PutRequest(b"b", lease=5)), ()))
    assert err.kind == ErrorKind.LEASE_NOT_FOUND
    assert a.machine.revision == 1


def test_empty_keys_are_refused() -> None:
    a = Applier()
    for req in (
        PutRequest(b""),
        RangeRequest(b""),
        DeleteRangeRequest(b""),
        TxnRequest((Compare(b"", V, EQ, 0),)),
        TxnRequest((), (PutRequest(b""),)),
    ):
        err = a.err(req)
        assert err.kind == ErrorKind.EMPTY_KEY
        assert err.message == "etcdserver: key is not provided"
