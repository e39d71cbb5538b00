"""VXLAN CrossSubnet (calico.md §4.4) with three felixd instances, each driving its own node
namespace from one process: two nodes share a subnet, the third sits behind a router. Pods on
all three ping each other; same-subnet traffic goes unencapsulated (the VXLAN device's counters
do not move), cross-subnet traffic goes through `vxlan.calico` (they do). VXLAN routes come from
the store alone (blocks + nodes), so no bgpd runs here (issue 10)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from felixd.daemon import Felixd, FelixdConfig
from resources.resource import Resource, parse_resource
from tests.felixd.netns.nsutil import cleanup, ns_name, root_snapshot, sh
from tests.store_process import ROOT

pytestmark = pytest.mark.netns

ICMP = "tests.felixd.netns.icmp"


@dataclass
class Host:
    index: int
    subnet: int  # 10 or 20: 192.168.<subnet>.0/24
    ns: str
    pod_ns: str

    @property
    def name(self) -> str:
        return f"n{self.index}"

    @property
    def address(self) -> str:
        return f"192.168.{self.subnet}.{self.index}"

    @property
    def pod_ip(self) -> str:
        return f"10.244.{self.index}.5"

    @property
    def vtep(self) -> str:
        return f"10.244.{self.index}.1"


def _mac(ns: str, dev: str) -> str:
    return str(json.loads(sh("ip", "-n", ns, "-j", "link", "show", dev))[0]["address"])


def build(router: str, hosts: list[Host]) -> None:
    sh("ip", "netns", "add", router)
    sh("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    for subnet in (10, 20):
        sh("ip", "-n", router, "link", "add", f"br{subnet}", "type", "bridge")
        sh("ip", "-n", router, "addr", "add", f"192.168.{subnet}.254/24", "dev", f"br{subnet}")
        sh("ip", "-n", router, "link", "set", f"br{subnet}", "up")
    for h in hosts:
        sh("ip", "netns", "add", h.ns)
        sh("ip", "-n", h.ns, "link", "set", "lo", "up")
        port = f"port{h.index}"
        sh(
            "ip",
            "-n",
            router,
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            h.ns,
        )
        sh("ip", "-n", router, "link", "set", port, "master", f"br{h.subnet}", "up")
        sh("ip", "-n", h.ns, "addr", "add", f"{h.address}/24", "dev", "eth0")
        sh("ip", "-n", h.ns, "link", "set", "eth0", "up")
        sh("ip", "-n", h.ns, "route", "add", "default", "via", f"192.168.{h.subnet}.254")
        sh("ip", "netns", "exec", h.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "netns", "add", h.pod_ns)
        cali = f"cali{h.index}"
        sh(
            "ip",
            "-n",
            h.ns,
            "link",
            "add",
            cali,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            h.pod_ns,
        )
        sh("ip", "-n", h.ns, "link", "set", cali, "up")
        sh("ip", "-n", h.pod_ns, "link", "set", "lo", "up")
        sh("ip", "-n", h.pod_ns, "link", "set", "eth0", "up")
        sh("ip", "-n", h.pod_ns, "addr", "add", f"{h.pod_ip}/32", "dev", "eth0")
        sh("ip", "-n", h.pod_ns, "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link")
        sh("ip", "-n", h.pod_ns, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
        sh(
            "ip",
            "-n",
            h.pod_ns,
            "neigh",
            "add",
            "169.254.1.1",
            "lladdr",
            _mac(h.ns, cali),
            "dev",
            "eth0",
            "nud",
            "permanent",
        )


def resources(hosts: list[Host]) -> list[Resource[object]]:
    docs: list[dict[str, object]] = [
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "IPPool",
            "metadata": {"name": "pods"},
            "spec": {"cidr": "10.244.0.0/16", "vxlanMode": "CrossSubnet"},
        }
    ]
    for h in hosts:
        docs.append(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "Node",
                "metadata": {"name": h.name},
                "spec": {"bgp": {"ipv4Address": f"{h.address}/24"}, "ipv4VXLANTunnelAddr": h.vtep},
            }
        )
        docs.append(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "BlockAffinity",
                "metadata": {"name": f"{h.name}-10-244-{h.index}-0-26"},
                "spec": {"state": "confirmed", "node": h.name, "cidr": f"10.244.{h.index}.0/26"},
            }
        )
        docs.append(
            yaml.safe_load(
                f"""
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata: {{name: {h.name}-cni-pod{h.index}-eth0, namespace: default}}
spec: {{node: {h.name}, orchestrator: cni, workload: pod{h.index}, endpoint: eth0,
       interfaceName: cali{h.index}, ipNetworks: [{h.pod_ip}/32], mac: "{_mac(h.pod_ns, "eth0")}"}}
"""
            )
        )
    return [parse_resource(d) for d in docs]


def ping(src: Host, dst: Host) -> bool:
    done = subprocess.run(
        ["ip", "netns", "exec", src.pod_ns, sys.executable, "-m", ICMP, dst.pod_ip],
        capture_output=True,
        check=False,
        timeout=20,
        cwd=ROOT,
    )
    return done.returncode == 0


def vxlan_tx(h: Host) -> int:
    stats = json.loads(sh("ip", "-n", h.ns, "-s", "-j", "link", "show", "vxlan.calico"))
    return int(stats[0]["stats64"]["tx"]["packets"])


@pytest.fixture
def world() -> Iterator[list[Host]]:
    before = root_snapshot()
    router = ns_name("rt")
    hosts = [
        Host(1, 10, ns_name("x1"), ns_name("q1")),
        Host(2, 10, ns_name("x2"), ns_name("q2")),
        Host(3, 20, ns_name("x3"), ns_name("q3")),
    ]
    try:
        build(router, hosts)
        yield hosts
    finally:
        cleanup(*(h.pod_ns for h in hosts), *(h.ns for h in hosts), router)
        assert root_snapshot() == before


async def test_crosssubnet_same_subnet_direct_other_subnet_vxlan(
    world: list[Host], tmp_path: Path
) -> None:
    hosts = world
    snapshot = resources(hosts)

    def source() -> AsyncIterator[list[Resource[object]]]:
        async def gen() -> AsyncIterator[list[Resource[object]]]:
            yield snapshot
            await asyncio.Event().wait()  # a store that never changes again

        return gen()

    daemons = [
        Felixd(
            FelixdConfig(
                node_name=h.name,
                control_socket=tmp_path / f"{h.name}.sock",
                pod_mtu_file=tmp_path / f"{h.name}.mtu",
                state_dir=tmp_path / h.name,
                netns=h.ns,
                bgpd=False,
                debounce=0.0,
            ),
            store=source,
        )
        for h in hosts
    ]
    started: list[Felixd] = []
    try:
        for d in daemons:
            await d.start()
            started.append(d)
        n1, n2, n3 = hosts
        routes = sh("ip", "-n", n1.ns, "route", "show", "proto", "80")
        assert f"10.244.2.0/26 via {n2.address} dev eth0 onlink" in routes
        assert f"10.244.3.0/26 via {n3.vtep} dev vxlan.calico onlink" in routes
        assert (tmp_path / "n1.mtu").read_text().strip() == "1450"
        for a in hosts:
            for b in hosts:
                if a is not b:
                    ok = False
                    for _ in range(20):
                        if await asyncio.to_thread(ping, a, b):
                            ok = True
                            break
                        await asyncio.sleep(0.2)
                    assert ok, f"no ping from {a.name} to {b.name}"
        before = vxlan_tx(n1)
        assert await asyncio.to_thread(ping, n1, n2)
        assert vxlan_tx(n1) == before  # same subnet: not encapsulated
        assert await asyncio.to_thread(ping, n1, n3)
        assert vxlan_tx(n1) > before  # across the router: through vxlan.calico
    finally:
        for d in started:
            await d.stop()
