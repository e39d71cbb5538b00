"""issue 10, graceful restart of bgpd: while bgpd is away felixd keeps the BGP-derived routes
(stale) until `graceful_restart_time` runs out, then sweeps them, and only them; a snapshot
in time cancels the sweep. felixd's monotonic clock is replaced by one the test moves, so
"before" and "after" the restart time are states, not sleeps."""

from __future__ import annotations

from pathlib import Path

from felixd.backends.recording import RecordingKernel
from felixd.daemon import Felixd
from tests.felixd.daemon.conftest import FakeTime
from tests.felixd.daemon.test_daemon import (
    Harness,
    dsts,
    kernel,
    resources,
    until,
)

REMOTE = "10.244.1.0/26"
LOCAL = {"10.244.0.0/26", "10.244.0.5/32"}  # our block's blackhole and the workload route
ROUTE = {"prefix": REMOTE, "next_hops": ["192.168.50.11"], "local": False, "stale": False}


async def started_with_the_remote_route(tmp_path: Path) -> tuple[RecordingKernel, Felixd, Harness]:
    """felixd with the workload's store resources and bgpd's snapshot holding REMOTE."""
    k = kernel()
    h = Harness(tmp_path, k, graceful_restart_time=100.0, link_events=False)
    await h.store.queue.put(resources())
    await h.bgpd.queue.put({"type": "snapshot", "routes": [ROUTE]})
    await h.daemon.start()
    return k, h.daemon, h


async def test_bgpd_not_back_routes_kept_until_restart_time_then_only_they_are_swept(
    tmp_path: Path, clock: FakeTime
) -> None:
    k, d, h = await started_with_the_remote_route(tmp_path)
    try:
        await until(lambda: {REMOTE, *LOCAL} <= dsts(k), "the first routes")
        # bgpd's stream ends; the pump reconnects (the feed opens again) but no snapshot comes,
        # as with a bgpd that is back but still holding its first snapshot.
        await h.bgpd.queue.put(None)
        await until(lambda: not d.bgpd_connected, "bgpd marked gone")
        assert d.state.best_paths[REMOTE].stale
        # Just before the restart time: a full resync (which re-plans and re-reads everything)
        # keeps the stale route in the kernel.
        clock.now += 99.0
        syncs = d.full_syncs
        d.force_resync = True
        d.wake.set()
        await until(lambda: d.full_syncs > syncs, "a full resync")
        assert REMOTE in dsts(k) and d.state.best_paths[REMOTE].stale
        status = await d.status_rpc()
        assert status["stale_routes"] == 1 and not status["bgpd_connected"]
        # The restart time runs out: the stale route goes, the node's own routes stay.
        clock.now += 1.5
        d.wake.set()
        await until(lambda: REMOTE not in dsts(k), "the stale route to be swept")
        assert dsts(k) >= LOCAL and REMOTE not in d.state.best_paths
        assert d.stale_deadline is None
    finally:
        await d.stop()


async def test_bgpd_back_in_time_cancels_the_sweep(tmp_path: Path, clock: FakeTime) -> None:
    k, d, h = await started_with_the_remote_route(tmp_path)
    try:
        await until(lambda: REMOTE in dsts(k), "the remote route")
        await h.bgpd.queue.put(None)
        await until(lambda: not d.bgpd_connected, "bgpd marked gone")
        clock.now += 50.0
        await h.bgpd.queue.put({"type": "snapshot", "routes": [ROUTE]})
        await until(lambda: d.bgpd_connected, "bgpd back")
        assert not d.state.best_paths[REMOTE].stale and d.stale_deadline is None
        # Long after the old deadline, nothing is swept.
        clock.now += 500.0
        syncs = d.full_syncs
        d.force_resync = True
        d.wake.set()
        await until(lambda: d.full_syncs > syncs, "a full resync")
        assert REMOTE in dsts(k) and REMOTE in d.state.best_paths
    finally:
        await d.stop()
