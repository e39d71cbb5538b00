"""felixd's shell with a recording kernel: store and bgpd inputs become kernel state, status on
the control socket, graceful restart of bgpd (RFC 4724 §4.2), resync after faults (issue 10)."""

from __future__ import annotations

import asyncio
import errno
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import yaml

from felixd.backends.faulty import Fault, FaultyBackend
from felixd.backends.recording import RecordingKernel
from felixd.daemon import Felixd, FelixdConfig
from felixd.inputs import best_paths, inputs_from_resources
from felixd.plan import EncapMode, HostInterface, ObservedState, Ownership, Route
from felixd.plan.ops import AddRoute
from ipc import RPCClient
from resources.resource import Resource, parse_resource
from store.kv.messages import LeaseGrantResponse

STORE = """
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: n1}
spec: {bgp: {ipv4Address: 192.168.50.10/24}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: n2}
spec: {bgp: {ipv4Address: 192.168.50.11/24}, ipv4VXLANTunnelAddr: 10.244.1.1}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pods}
spec: {cidr: 10.244.0.0/16, natOutgoing: true}
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: n1-cni-abc-eth0, namespace: default}
spec: {node: n1, orchestrator: cni, workload: abc, endpoint: eth0, interfaceName: cali1,
       ipNetworks: [10.244.0.5/32], mac: "ee:ee:ee:ee:ee:01"}
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {name: n2-cni-def-eth0, namespace: default}
spec: {node: n2, orchestrator: cni, workload: def, endpoint: eth0, interfaceName: cali2,
       ipNetworks: [10.244.1.5/32]}
---
apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: default}
spec: {routeRefreshInterval: 30s}
"""


def block(cidr: str, node: str) -> dict[str, object]:
    """An empty IPAM block of 64 addresses affine to `node`."""
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "IPAMBlock",
        "metadata": {"name": cidr.replace(".", "-").replace("/", "-")},
        "spec": {
            "cidr": cidr,
            "affinity": f"host:{node}",
            "allocations": [None] * 64,
            "unallocated": list(range(64)),
        },
    }


def resources(text: str = STORE) -> list[Resource[object]]:
    docs = [d for d in yaml.safe_load_all(text) if d]
    docs += [block("10.244.0.0/26", "n1"), block("10.244.1.0/26", "n2")]
    return [parse_resource(d) for d in docs]


class Feed:
    """A scripted source: yields what the test puts in; `end()` closes one stream."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[object] = asyncio.Queue()

    async def __call__(self) -> AsyncIterator[object]:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            yield item


async def until(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(250):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class Harness:
    def __init__(
        self, tmp: Path, kernel: RecordingKernel | FaultyBackend, **config: object
    ) -> None:
        self.store, self.bgpd = Feed(), Feed()
        self.kernel = kernel
        config.setdefault("bgpd_startup_wait", 0.0)
        cfg = FelixdConfig(
            node_name="n1",
            control_socket=tmp / "felixd.sock",
            pod_mtu_file=tmp / "mtu",
            debounce=0.0,
            **config,  # type: ignore[arg-type]
        )
        self.daemon = Felixd(
            cfg,
            store=self.store,  # type: ignore[arg-type]
            bgpd=self.bgpd,  # type: ignore[arg-type]
            backend=self._backend,
        )

    def _backend(self, owner: Ownership) -> RecordingKernel | FaultyBackend:
        assert owner.protocol == 80
        return self.kernel


class HostKernel(RecordingKernel):
    """A recording kernel that also reports the host's interfaces, as NetlinkBackend does."""

    def host_interfaces(self) -> list[HostInterface]:
        return [HostInterface("eth0", ("192.168.50.10/24",), 1500)]


def kernel() -> RecordingKernel:
    return HostKernel(("lo", "eth0", "cali1"))


def dsts(k: RecordingKernel) -> set[str]:
    return {r.dst for r in k.routes.values()}


def test_store_inputs_adapt_calico_resources() -> None:
    """calico.md §1: Node, IPPool, IPAMBlock, this host's WorkloadEndpoints, FelixConfiguration."""
    found = inputs_from_resources("n1", resources())
    assert {n.name for n in found.nodes} == {"n1", "n2"}
    assert found.pools[0].cidr == "10.244.0.0/16" and found.pools[0].nat_outgoing
    assert found.pools[0].vxlan_mode is EncapMode.NEVER
    assert {(b.cidr, b.affinity) for b in found.blocks} == {
        ("10.244.0.0/26", "n1"),
        ("10.244.1.0/26", "n2"),
    }
    assert [e.interface for e in found.endpoints] == ["cali1"]  # n2's endpoint is not ours
    assert found.config.route_refresh_interval == 30.0
    assert found.config.route_protocol == 80


def test_confirmed_affinity_stands_for_a_missing_block() -> None:
    """confd announces a block from its affinity; felixd blackholes it from the same moment."""
    extra = """
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: n1-10-244-9-0-26}
spec: {state: confirmed, node: n1, cidr: 10.244.9.0/26}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: n1-10-244-8-0-26}
spec: {state: pending, node: n1, cidr: 10.244.8.0/26}
"""
    found = inputs_from_resources("n1", resources(STORE + "---" + extra))
    blocks = {b.cidr: b.affinity for b in found.blocks}
    assert blocks["10.244.9.0/26"] == "n1" and "10.244.8.0/26" not in blocks


def test_bgpd_routes_skip_local_prefixes() -> None:
    paths = best_paths(
        [
            {"prefix": "10.244.0.0/26", "next_hops": [], "local": True, "stale": False},
            {"prefix": "10.244.1.0/26", "next_hops": ["192.168.50.11"], "stale": True},
        ]
    )
    assert [(p.prefix, p.next_hops, p.stale) for p in paths] == [
        ("10.244.1.0/26", ("192.168.50.11",), True)
    ]


async def test_store_and_bgpd_become_routes_and_status(tmp_path: Path) -> None:
    k = kernel()
    h = Harness(tmp_path, k)
    await h.store.queue.put(resources())
    await h.bgpd.queue.put(
        {
            "type": "snapshot",
            "routes": [
                {
                    "prefix": "10.244.1.0/26",
                    "next_hops": ["192.168.50.11"],
                    "stale": False,
                    "local": False,
                }
            ],
        }
    )
    await h.daemon.start()  # returns after the first sync: READY comes after it
    try:
        await until(lambda: "10.244.1.0/26" in dsts(k), "the remote block route")
        assert {"10.244.0.0/26", "10.244.0.5/32"} <= dsts(k)
        assert k.nft_tables  # natOutgoing
        assert (tmp_path / "mtu").read_text().strip() == "1500"
        async with RPCClient(f"unix:{tmp_path / 'felixd.sock'}") as client:
            status = await client.call("status")
        assert isinstance(status, dict)
        assert status["ready"] and status["store_synced"] and status["bgpd_connected"]
        assert status["routes"]["remote-direct"] == 1
        assert status["routes"]["workload"] == 1 and status["routes"]["blackhole"] == 1
        assert status["last_resync"] > 0 and status["converged"]

        # A withdrawal removes the route; an endpoint deletion removes its route.
        await h.bgpd.queue.put({"type": "delta", "routes": [], "withdrawn": ["10.244.1.0/26"]})
        await until(lambda: "10.244.1.0/26" not in dsts(k), "the withdrawal")
        await h.store.queue.put([r for r in resources() if r.name != "n1-cni-abc-eth0"])
        await until(lambda: "10.244.0.5/32" not in dsts(k), "the endpoint's route to go")
    finally:
        await h.daemon.stop()


async def test_bgpd_gone_keeps_routes_stale_then_sweeps(tmp_path: Path) -> None:
    """RFC 4724 §4.2: routes are kept while bgpd restarts, swept when the time runs out."""
    k = kernel()
    h = Harness(tmp_path, k, graceful_restart_time=0.3)
    route = {"prefix": "10.244.1.0/26", "next_hops": ["192.168.50.11"], "local": False}
    await h.store.queue.put(resources())
    await h.bgpd.queue.put({"type": "snapshot", "routes": [route]})
    await h.daemon.start()
    try:
        await until(lambda: "10.244.1.0/26" in dsts(k), "the remote route")
        await h.bgpd.queue.put(None)  # bgpd's stream ends
        await until(lambda: not h.daemon.bgpd_connected, "bgpd marked gone")
        assert h.daemon.state.best_paths["10.244.1.0/26"].stale
        assert "10.244.1.0/26" in dsts(k)
        await until(lambda: "10.244.1.0/26" not in dsts(k), "the stale route to be swept")
        # bgpd back: a snapshot brings the route back, fresh.
        await h.bgpd.queue.put({"type": "snapshot", "routes": [route]})
        await until(lambda: "10.244.1.0/26" in dsts(k), "the route after bgpd returned")
        assert not h.daemon.state.best_paths["10.244.1.0/26"].stale
    finally:
        await h.daemon.stop()


@pytest.mark.parametrize("code", [errno.EEXIST, errno.ENETUNREACH, errno.ENOBUFS])
async def test_faults_are_retried_and_resynced(tmp_path: Path, code: int) -> None:
    """issue 10: an operation failing with EEXIST, ENETUNREACH or a lost ack (ENOBUFS) is
    survived: the daemon records the error, re-reads the kernel and converges."""
    inner = kernel()
    faulty = FaultyBackend(inner, [Fault(code, lambda op: isinstance(op, AddRoute), times=3)])
    h = Harness(tmp_path, faulty)
    await h.store.queue.put(resources())
    await h.daemon.start()
    try:
        await until(lambda: {"10.244.0.0/26", "10.244.0.5/32"} <= dsts(inner), "convergence")
        assert h.daemon.errors >= 1 and h.daemon.last_error
    finally:
        await h.daemon.stop()


class CountingKernel(HostKernel):
    def __init__(self, links: tuple[str, ...]) -> None:
        super().__init__(links)
        self.reads = 0

    def read(self) -> ObservedState:
        self.reads += 1
        return super().read()


async def test_changes_between_resyncs_do_not_dump_the_kernel(tmp_path: Path) -> None:
    """A change costs plan + diff + apply: the kernel is read at a full resync only (calico.md
    §4.3 routeRefreshInterval), and again after any error."""
    k = CountingKernel(("lo", "eth0", "cali1"))
    h = Harness(tmp_path, k, link_events=False)
    await h.store.queue.put(resources())
    await h.bgpd.queue.put({"type": "snapshot", "routes": []})
    await h.daemon.start()
    try:
        await until(lambda: "10.244.0.5/32" in dsts(k), "the first sync")
        reads = k.reads
        for third in range(3):
            prefix = f"10.244.{1 + third}.0/26"
            route = {"prefix": prefix, "next_hops": ["192.168.50.11"], "local": False}
            await h.bgpd.queue.put({"type": "delta", "routes": [route], "withdrawn": []})
            await until(lambda p=prefix: p in dsts(k), "the new route")  # type: ignore[misc]
        assert k.reads == reads
        # A foreign route appears on a key felixd wants: its add fails with EEXIST, the
        # cached view is dropped and the kernel is read again.
        k.preload(Route("10.244.9.0/26", protocol=12, gateway="192.168.50.1", dev="eth0"))
        route = {"prefix": "10.244.9.0/26", "next_hops": ["192.168.50.11"], "local": False}
        await h.bgpd.queue.put({"type": "delta", "routes": [route], "withdrawn": []})
        await until(lambda: k.reads > reads, "a re-read after the error")
        assert k.routes[(254, "10.244.9.0/26", 0)].protocol == 12  # never forced over
    finally:
        await h.daemon.stop()


class FakeKV:
    """The store's lease and put calls, in memory; `expire()` lets the lease run out."""

    def __init__(self) -> None:
        self.values: dict[bytes, tuple[bytes, int]] = {}
        self.leases: set[int] = set()
        self.next_id = 100

    async def lease_grant(self, ttl: int, lease_id: int = 0) -> LeaseGrantResponse:
        self.next_id += 1
        self.leases.add(self.next_id)
        return LeaseGrantResponse(revision=1, id=self.next_id, ttl=ttl)

    async def lease_keep_alive(self, lease_id: int) -> int:
        return 90 if lease_id in self.leases else 0

    async def put(self, key: bytes, value: bytes, *, lease: int = 0) -> object:
        assert lease in self.leases
        self.values[key] = (value, lease)
        return None

    def expire(self) -> None:
        self.leases.clear()
        self.values.clear()


async def test_status_key_lives_under_a_lease(tmp_path: Path) -> None:
    """Calico's felix status key (reportingInterval / reportingTTL): written under a lease,
    refreshed, and re-created under a new lease when the old one expired."""
    kv = FakeKV()
    h = Harness(tmp_path, kernel(), status_interval=0.05, status_ttl=90)
    h.daemon._status_kv = kv
    await h.store.queue.put(resources())
    await h.daemon.start()
    key = b"/calico/felix/v2/no-region/host/n1/status"
    try:
        await until(lambda: key in kv.values, "the status key")
        value, lease = kv.values[key]
        report = json.loads(value)
        assert report["ready"] and report["routes"]["workload"] == 1
        kv.expire()
        await until(lambda: key in kv.values, "the key under a new lease")
        assert kv.values[key][1] != lease
    finally:
        await h.daemon.stop()


class BrokenOnce(HostKernel):
    """A kernel whose first read fails as a dead netlink socket would."""

    broken = True

    def read(self) -> ObservedState:
        if BrokenOnce.broken:
            BrokenOnce.broken = False
            raise OSError(errno.EBADF, "netlink socket closed")
        return super().read()


async def test_backend_exception_is_survived_with_a_new_backend(tmp_path: Path) -> None:
    """issue 10: errors never stop the dataplane; after one the backend is opened afresh."""
    k = BrokenOnce(("lo", "eth0", "cali1"))
    made: list[Ownership] = []

    def factory(owner: Ownership) -> RecordingKernel:
        made.append(owner)
        return k

    h = Harness(tmp_path, k)
    h.daemon._backend_factory = factory
    await h.store.queue.put(resources())
    start = asyncio.get_running_loop().create_task(h.daemon.start())
    try:
        await until(lambda: "10.244.0.5/32" in dsts(k), "convergence after the error")
        await start
        assert len(made) == 2 and "netlink socket closed" in h.daemon.last_error
    finally:
        await h.daemon.stop()
