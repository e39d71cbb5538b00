"""Differential test: the same seeded random operations against tabby-store and etcd 3.4, every
answer compared (STYLE.md "differential oracles"; etcd is the oracle).

Each schedule works under its own prefix on a small keyspace (puts, deletes of keys and ranges,
ranges with limits / keys-only / count-only / past revisions, txns with random compares and
branches, including the invalid ones etcd refuses; lease grants, puts on leases, revokes,
time-to-live with keys). Revisions are compared relative to a marker
write at the start of the schedule, so the two stores may have different histories before it.
`TABBY_STORE_SCHEDULES=N` runs more schedules.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import cast

import pytest

from store.backend import connect
from store.client import KVClient, LeaseTimeToLive, prefix_end
from store.kv import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    KeyValue,
    KVError,
    LeaseGrantResponse,
    LeaseRevokeResponse,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    TxnResponse,
)
from store.kv.messages import RequestOp
from tests.store.contract.conftest import ETCD, EtcdProcess
from tests.store.server.cluster import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.debian(ETCD)]

SCHEDULES = int(os.environ.get("TABBY_STORE_SCHEDULES", "3"))
OPS = 80
NAMES = [b"a", b"b", b"c", b"d"]


@dataclass
class Pair:
    tabby: KVClient
    etcd: KVClient


@pytest.fixture(scope="module")
def endpoints() -> Iterator[tuple[list[str], list[str]]]:
    root = Path(tempfile.mkdtemp(prefix="tabby-diff-", dir="/tmp"))
    etcd = EtcdProcess(root)
    cluster = Cluster(root / "c", 1)
    cluster.root.mkdir()
    try:
        etcd.start()
        cluster.start_all()
        etcd.wait_ready()
        asyncio.run(cluster.wait_leader())
        yield [cluster.client_endpoint(1)], [etcd.url]
    finally:
        etcd.kill()
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def pair(endpoints: tuple[list[str], list[str]]) -> AsyncIterator[Pair]:
    tabby, etcd = connect(endpoints[0], timeout=10), connect(endpoints[1], timeout=10)
    try:
        yield Pair(tabby, etcd)
    finally:
        await tabby.close()
        await etcd.close()


@dataclass
class Side:
    """One backend's frame of reference: the revision of the schedule's marker write, and the
    lease ids it granted, in order (etcd picks random ids, tabby-store counts: the schedule
    names a lease by its position, 1-based, 0 for none)."""

    base: int
    leases: list[int]

    def rel(self, revision: int) -> int:
        return revision - self.base if revision else 0

    def lease(self, real: int) -> int:
        return self.leases.index(real) + 1 if real in self.leases else (-1 if real else 0)

    def real_lease(self, rel: int) -> int:
        return self.leases[rel - 1] if rel else 0


def _kv(kv: KeyValue, side: Side) -> tuple[object, ...]:
    return (
        kv.key,
        kv.value,
        side.rel(kv.create_revision),
        side.rel(kv.mod_revision),
        kv.version,
        side.lease(kv.lease),
    )


def _norm(resp: object, side: Side) -> object:
    """A response with revisions and lease ids made relative and nothing backend-specific."""
    if isinstance(resp, KVError):
        return ("error", resp.kind)
    if isinstance(resp, RangeResponse):
        return ("range", [_kv(x, side) for x in resp.kvs], resp.more, resp.count)
    if isinstance(resp, LeaseTimeToLive):
        return ("ttl", resp.ttl == -1, resp.granted_ttl, sorted(resp.keys))
    rev = side.rel(_revision_of(resp))
    if isinstance(resp, PutResponse):
        return ("put", rev, resp.prev_kv and _kv(resp.prev_kv, side))
    if isinstance(resp, DeleteRangeResponse):
        return ("delete", rev, resp.deleted, [_kv(x, side) for x in resp.prev_kvs])
    if isinstance(resp, TxnResponse):
        return ("txn", rev, resp.succeeded, [_norm(r, side) for r in resp.responses])
    if isinstance(resp, LeaseGrantResponse):
        return ("grant", rev, resp.ttl)
    if isinstance(resp, LeaseRevokeResponse):
        return ("revoke", rev)
    raise AssertionError(f"unexpected {resp!r}")


class Schedule:
    """Random operations over `prefix` + NAMES; revisions and leases it picks are relative."""

    def __init__(self, rng: random.Random, prefix: bytes) -> None:
        self.rng = rng
        self.prefix = prefix
        self.max_rel = 0  # the newest relative revision the schedule has made
        self.granted = 0  # leases granted so far (relative ids 1..granted)

    def key(self) -> bytes:
        return self.prefix + self.rng.choice(NAMES)

    def lease(self) -> int:
        return self.rng.randint(0, self.granted) if self.rng.random() < 0.3 else 0

    def span(self) -> tuple[bytes, bytes]:
        """A key, or a range: [x, y), the prefix, or open-ended."""
        rng = self.rng
        roll = rng.random()
        if roll < 0.5:
            return self.key(), b""
        if roll < 0.7:
            return self.prefix, prefix_end(self.prefix)
        lo, hi = sorted(rng.sample(NAMES, 2))
        return self.prefix + lo, self.prefix + hi

    def op(self) -> RequestOp:
        rng = self.rng
        roll = rng.random()
        if roll < 0.4:
            value = b"v%d" % rng.randrange(3)
            ignore_value = rng.random() < 0.1  # with or without a value (refused with one)
            return PutRequest(
                self.key(),
                b"" if ignore_value and rng.random() < 0.7 else value,
                self.lease(),
                prev_kv=rng.random() < 0.5,
                ignore_value=ignore_value,
                ignore_lease=rng.random() < 0.1,
            )
        if roll < 0.55:
            key, end = self.span()
            return DeleteRangeRequest(key, end, prev_kv=rng.random() < 0.5)
        key, end = self.span()
        return RangeRequest(
            key,
            end,
            limit=rng.choice([0, 0, 1, 2]),
            revision=rng.choice([0, 0, rng.randint(1, self.max_rel + 1)]),  # relative
            keys_only=rng.random() < 0.2,
            count_only=rng.random() < 0.1,
        )

    def compare(self) -> Compare:
        rng = self.rng
        target = rng.choice(list(CompareTarget))
        result = rng.choice(list(CompareResult))
        key, end = self.span() if rng.random() < 0.2 else (self.key(), b"")
        operand: int | bytes
        if target is CompareTarget.VALUE:
            operand = b"v%d" % rng.randrange(3)
        elif target is CompareTarget.VERSION:
            operand = rng.randrange(4)
        elif target is CompareTarget.LEASE:
            operand = rng.randint(0, self.granted)  # relative lease
        else:
            operand = rng.randint(0, self.max_rel + 1)  # relative revision
        return Compare(key, target, result, operand, end)

    def step(self) -> tuple[str, tuple[object, ...]]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.25:
            compares = tuple(self.compare() for _ in range(rng.randint(0, 2)))
            success = tuple(self.op() for _ in range(rng.randint(0, 3)))
            failure = tuple(self.op() for _ in range(rng.randint(0, 2)))
            return "txn", (compares, success, failure)
        if roll < 0.3:
            self.granted += 1
            return "grant", (rng.choice([30, 60]),)
        if roll < 0.33 and self.granted:
            return "revoke", (rng.randint(1, self.granted),)
        if roll < 0.37 and self.granted:
            return "ttl", (rng.randint(1, self.granted),)
        return "op", (self.op(),)


def _absolute(op: RequestOp, side: Side) -> RequestOp:
    if isinstance(op, RangeRequest) and op.revision:
        return replace(op, revision=op.revision + side.base)
    if isinstance(op, PutRequest) and op.lease:
        return replace(op, lease=side.real_lease(op.lease))
    return op


def _absolute_compare(c: Compare, side: Side) -> Compare:
    if c.target in (CompareTarget.MOD, CompareTarget.CREATE) and isinstance(c.operand, int):
        return replace(c, operand=c.operand + side.base if c.operand else 0)
    if c.target is CompareTarget.LEASE and isinstance(c.operand, int):
        return replace(c, operand=side.real_lease(c.operand))
    return c


async def _do(kv: KVClient, kind: str, args: tuple[object, ...], side: Side) -> object:
    try:
        if kind == "grant":
            (ttl,) = args
            granted = await kv.lease_grant(cast(int, ttl))
            side.leases.append(granted.id)
            return granted
        if kind == "revoke":
            (rel,) = args
            return await kv.lease_revoke(side.real_lease(cast(int, rel)))
        if kind == "ttl":
            (rel,) = args
            return await kv.lease_time_to_live(side.real_lease(cast(int, rel)), keys=True)
        if kind == "op":
            real = _absolute(cast(RequestOp, args[0]), side)
            if isinstance(real, PutRequest):
                return await kv.put(
                    real.key,
                    real.value,
                    lease=real.lease,
                    prev_kv=real.prev_kv,
                    ignore_value=real.ignore_value,
                    ignore_lease=real.ignore_lease,
                )
            if isinstance(real, DeleteRangeRequest):
                return await kv.delete(real.key, real.range_end, prev_kv=real.prev_kv)
            if isinstance(real, RangeRequest):
                return await kv.range(
                    real.key,
                    real.range_end,
                    revision=real.revision,
                    limit=real.limit,
                    keys_only=real.keys_only,
                    count_only=real.count_only,
                )
            raise AssertionError(real)
        compares, success, failure = cast(
            tuple[tuple[Compare, ...], tuple[RequestOp, ...], tuple[RequestOp, ...]], args
        )
        return await kv.txn(
            [_absolute_compare(c, side) for c in compares],
            [_absolute(o, side) for o in success],
            [_absolute(o, side) for o in failure],
        )
    except KVError as exc:
        return exc


def _revision_of(resp: object) -> int:
    if isinstance(
        resp,
        (
            PutResponse,
            DeleteRangeResponse,
            TxnResponse,
            RangeResponse,
            LeaseGrantResponse,
            LeaseRevokeResponse,
        ),
    ):
        return resp.revision
    return 0


@pytest.mark.parametrize("seed", range(SCHEDULES))
async def test_same_operations_same_answers(pair: Pair, seed: int) -> None:
    rng = random.Random(seed)
    prefix = b"/diff/%d/" % seed
    sched = Schedule(rng, prefix)
    sides = {}
    for name, kv in (("tabby", pair.tabby), ("etcd", pair.etcd)):
        sides[name] = Side((await kv.put(b"/diff-marker/%d" % seed, b"")).revision, [])
    for step in range(OPS):
        kind, args = sched.step()
        answers: dict[str, tuple[object, int]] = {}
        for name, kv in (("tabby", pair.tabby), ("etcd", pair.etcd)):
            resp = await _do(kv, kind, args, sides[name])
            answers[name] = (_norm(resp, sides[name]), sides[name].rel(_revision_of(resp)))
        assert answers["tabby"][0] == answers["etcd"][0], (
            f"seed {seed} step {step}: {kind} {args}\n"
            f"  tabby-store: {answers['tabby'][0]}\n  etcd:        {answers['etcd'][0]}"
        )
        sched.max_rel = max(sched.max_rel, answers["etcd"][1])
    # The history both produced, as a watcher from the marker on sees it.
    histories = {}
    for name, kv in (("tabby", pair.tabby), ("etcd", pair.etcd)):
        histories[name] = await _history(kv, prefix, sides[name])
    assert histories["tabby"] == histories["etcd"], f"seed {seed}: watch histories differ"
    for name, kv in (("tabby", pair.tabby), ("etcd", pair.etcd)):
        for lease in sides[name].leases:  # leave no lease behind for the next schedule
            with contextlib.suppress(KVError):
                await kv.lease_revoke(lease)


async def _history(kv: KVClient, prefix: bytes, side: Side) -> list[object]:
    last = (await kv.range(prefix, prefix_end(prefix), count_only=True)).revision
    out: list[object] = []
    if last == side.base:
        return out
    it = kv.watch(prefix, prefix_end(prefix), start_revision=side.base + 1, prev_kv=True)

    async def collect() -> None:
        async for resp in it:
            for ev in resp.events:
                prev = ev.prev_kv and _kv(ev.prev_kv, side)
                out.append((ev.type, _kv(ev.kv, side), prev))
                if ev.kv.mod_revision >= last:
                    return

    try:
        await asyncio.wait_for(collect(), 20)
    finally:
        await it.aclose()  # type: ignore[attr-defined]
    return out
