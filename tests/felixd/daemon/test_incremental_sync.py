"""The daemon between resyncs (issue 10: one input delta produces its operations without
re-planning and re-diffing everything): bgpd deltas and store updates are planned
incrementally and diffed on their keys only, and what status reports as blocked stays what a
full diff would report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

from felixd.plan import Route, compare
from felixd.plan.ops import AddRoute, DeleteRoute
from resources.resource import parse_resource
from tests.felixd.daemon.test_daemon import Harness, HostKernel, dsts, resources, until

IPIP_POOL = """
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: tunnelled}
spec: {cidr: 10.250.0.0/16, ipipMode: Always}
"""


def _path(prefix: str, hop: str) -> dict[str, object]:
    return {"prefix": prefix, "next_hops": [hop], "local": False, "stale": False}


async def test_deltas_are_incremental_and_blocked_entries_stay_exact(tmp_path: Path) -> None:
    k = HostKernel(("lo", "eth0", "cali1"))  # no tunl0: this kernel has no ipip module
    h = Harness(tmp_path, k, link_events=False)
    d = h.daemon
    listed = [*resources(), parse_resource(yaml.safe_load(IPIP_POOL))]
    await h.store.queue.put(listed)
    await h.bgpd.queue.put({"type": "snapshot", "routes": []})
    await d.start()

    def full_blocked() -> list[str]:
        assert d.desired is not None and d._kernel is not None
        return sorted(str(p) for p in compare(d.desired, d._kernel.read()).blocked)

    def reported() -> list[str]:
        assert d.last_report is not None
        return sorted(str(p) for p in d.last_report.blocked)

    try:
        await until(lambda: "10.244.0.5/32" in dsts(k), "the first sync")
        start_full = d.full_syncs
        steps: list[dict[str, object]] = [
            {"type": "delta", "routes": [_path("10.244.1.0/26", "192.168.50.11")]},
            {"type": "delta", "routes": [_path("10.250.1.0/26", "192.168.50.12")]},  # via tunl0
            {"type": "delta", "routes": [_path("10.250.2.0/26", "192.168.50.12")]},
            {"type": "delta", "routes": [], "withdrawn": ["10.250.1.0/26"]},
            {"type": "delta", "routes": [_path("10.244.1.0/26", "192.168.50.13")]},
            {"type": "delta", "routes": [], "withdrawn": ["10.250.2.0/26", "10.244.1.0/26"]},
        ]
        for step in steps:
            syncs = d.syncs
            await h.bgpd.queue.put({"withdrawn": [], **step})
            await until(lambda s=syncs: d.syncs > s, "a sync")  # type: ignore[misc]
            assert reported() == full_blocked()
        assert "10.244.1.0/26" not in dsts(k)
        status = await d.status_rpc()
        assert status["tunnels"] == {"tunl0": {"mtu": 1480, "address": ""}}  # no tunnel address
        assert d.full_syncs == start_full and d.incremental_syncs >= len(steps)

        # A store update: the endpoint moves to an interface that is not there yet.
        moved = [r for r in listed if r.name != "n1-cni-abc-eth0"]
        await h.store.queue.put(moved)
        await until(lambda: "10.244.0.5/32" not in dsts(k), "the endpoint's route to go")
        assert reported() == full_blocked() and d.full_syncs == start_full
    finally:
        await d.stop()


async def test_a_restart_waits_for_bgpd_before_touching_its_routes(tmp_path: Path) -> None:
    """A felixd restart changes nothing that is right (issue 10): the kernel holds a route
    from bgpd's best path; the store is listed before bgpd's snapshot arrives, and the first
    sync waits for it instead of deleting the route and adding it again."""
    k = HostKernel(("lo", "eth0", "cali1"))
    route = Route("10.244.1.0/26", 80, dev="eth0", gateway="192.168.50.11", onlink=True, table=254)
    k.preload(route)
    h = Harness(tmp_path, k, bgpd_startup_wait=5.0)
    await h.store.queue.put(resources())
    start = asyncio.get_running_loop().create_task(h.daemon.start())
    try:
        await asyncio.sleep(0.3)
        assert not start.done() and not k.applied  # listed, but no sync before bgpd
        await h.bgpd.queue.put(
            {"type": "snapshot", "routes": [_path("10.244.1.0/26", "192.168.50.11")]}
        )
        await start
        await until(lambda: "10.244.0.5/32" in dsts(k), "the first sync")
        assert k.routes[route.key] == route
        assert not [
            op
            for op in k.applied
            if isinstance(op, AddRoute | DeleteRoute) and op.route.dst == route.dst
        ]
    finally:
        await h.daemon.stop()
