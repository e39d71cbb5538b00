"""felixd's first sync and bgpd's held snapshot: when bgpd answers (its stream is open) but
holds its first snapshot (it converges after a cold start, or defers after a restart), felixd
waits for it up to `bgpd_snapshot_wait` rather than `bgpd_startup_wait`, so that a restart of
both daemons does not delete the BGP routes still in the kernel only to add them back."""

from __future__ import annotations

import asyncio
from pathlib import Path

from felixd.daemon import Felixd
from felixd.plan import Route
from felixd.plan.ops import AddRoute, DeleteRoute
from tests.felixd.daemon.conftest import FakeTime
from tests.felixd.daemon.test_daemon import Harness, HostKernel, dsts, resources, until

REMOTE = "10.244.1.0/26"
PATH = {"prefix": REMOTE, "next_hops": ["192.168.50.11"], "local": False, "stale": False}
KEPT = Route(REMOTE, 80, dev="eth0", gateway="192.168.50.11", onlink=True, table=254)


def starting(tmp_path: Path, k: HostKernel, *, stream_open: bool) -> tuple[Felixd, Harness]:
    """felixd given the store's resources (and bgpd's open stream, without a snapshot), with
    `bgpd_startup_wait` 5 s and `bgpd_snapshot_wait` 30 s; `start()` is the test's to run."""
    h = Harness(tmp_path, k, bgpd_startup_wait=5.0, bgpd_snapshot_wait=30.0, link_events=False)
    h.store.queue.put_nowait(resources())
    if stream_open:
        h.bgpd.queue.put_nowait({"type": "open"})
    return h.daemon, h


def touched(k: HostKernel, dst: str) -> list[object]:
    return [
        op for op in k.applied if isinstance(op, AddRoute | DeleteRoute) and op.route.dst == dst
    ]


async def test_open_stream_first_sync_waits_for_the_held_snapshot(
    tmp_path: Path, clock: FakeTime
) -> None:
    k = HostKernel(("lo", "eth0", "cali1"))
    k.preload(KEPT)  # from before the restart
    d, h = starting(tmp_path, k, stream_open=True)
    start = asyncio.get_running_loop().create_task(d.start())
    try:
        await until(lambda: d.store_synced and d.bgpd_open, "the store and bgpd's stream")
        clock.now += 10.0  # past bgpd_startup_wait, within bgpd_snapshot_wait
        d.wake.set()
        for _ in range(10):
            await asyncio.sleep(0.01)
        assert not start.done() and not k.applied and d.syncs == 0
        await h.bgpd.queue.put({"type": "snapshot", "routes": [PATH]})
        await asyncio.wait_for(start, 10)
        await until(lambda: "10.244.0.5/32" in dsts(k), "the first sync")
        assert k.routes[KEPT.key] == KEPT and not touched(k, REMOTE)
    finally:
        if not start.done():
            start.cancel()
        await d.stop()


async def test_open_stream_without_a_snapshot_waits_no_longer_than_the_bound(
    tmp_path: Path, clock: FakeTime
) -> None:
    k = HostKernel(("lo", "eth0", "cali1"))
    d, _ = starting(tmp_path, k, stream_open=True)
    start = asyncio.get_running_loop().create_task(d.start())
    try:
        await until(lambda: d.store_synced and d.bgpd_open, "the store and bgpd's stream")
        clock.now += 30.5
        d.wake.set()
        await asyncio.wait_for(start, 10)
        assert "10.244.0.5/32" in dsts(k) and not d.bgpd_connected
    finally:
        if not start.done():
            start.cancel()
        await d.stop()


async def test_stream_not_open_waits_bgpd_startup_wait_only(
    tmp_path: Path, clock: FakeTime
) -> None:
    k = HostKernel(("lo", "eth0", "cali1"))
    d, _ = starting(tmp_path, k, stream_open=False)
    start = asyncio.get_running_loop().create_task(d.start())
    try:
        await until(lambda: d.store_synced, "the store")
        clock.now += 5.5
        d.wake.set()
        await asyncio.wait_for(start, 10)
        assert "10.244.0.5/32" in dsts(k) and not d.bgpd_open
    finally:
        if not start.done():
            start.cancel()
        await d.stop()
