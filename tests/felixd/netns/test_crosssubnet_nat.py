"""VXLAN CrossSubnet and natOutgoing with the real daemons (issue 10; calico.md §4.4, §5.7).

Two nodes share 192.168.10.0/24, the third sits on 192.168.20.0/24 behind a router namespace,
and an "outside" namespace beyond the router holds 198.51.100.2, outside every pool, with a
route back to the nodes but none to the pods. Each node runs tabby-confd, tabby-bgpd and
tabby-felixd (`lab.py`); one pool, vxlanMode CrossSubnet, natOutgoing on.

Checked: same-subnet blocks are routed directly via the peer (`dev eth0 onlink`) and
cross-subnet blocks via the remote VTEP on `vxlan.calico`; every pod pings every other;
same-subnet pings leave `vxlan.calico`'s counters alone and cross-subnet pings move them; a pod
reaching the outside address arrives with its node's address as the source (seen by a listener
in the outside namespace), while pod-to-pod traffic keeps the pod's address, also across the
tunnel; felixd reports no problem (bgpd's paths to the other subnet, whose next hop is not
connected, are not used for a VXLAN pool); a prefix an external BGP peer (a tabby-bgpd on the
router, one BGPPeer per node) announces, outside every pool, is installed on every node via the
router's address on that node's subnet, and a prefix announced by two external peers (the router
and a second speaker on the first subnet) becomes one ECMP route with both next hops on the
nodes that peer with both; `tabbyctl node status` shows the tunnel. Nothing
outside the lab's namespaces changes.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ipc import RPCClient
from tests.felixd.netns.lab import EDGE, OUTSIDE, Lab, LabNode, until
from tests.felixd.netns.nsutil import root_snapshot, sh
from tests.store_process import ROOT

pytestmark = [pytest.mark.root, pytest.mark.netns, pytest.mark.slow]

PORT = 40404
OUTSIDE_NET = "198.51.100.0/24"  # announced by the router's bgpd: an external route
ECMP_NET = "203.0.113.0/24"  # announced by the router and by the edge: two equal paths


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[Lab]:
    before = root_snapshot()
    lab = Lab(tmp_path, subnets=[10, 10, 20], pods_per_node=1, outside=True, edge=True)
    try:
        lab.build()
        docs = lab.cluster_docs("CrossSubnet", nat_outgoing=True)
        await lab.start(docs, router_prefixes=[OUTSIDE_NET, ECMP_NET], edge_prefixes=[ECMP_NET])
        yield lab
    finally:
        lab.close()
        assert root_snapshot() == before


def hops(node: LabNode, prefix: str) -> list[str]:
    """The gateways of felixd's route to `prefix` on `node`, multipath or not."""
    found = json.loads(sh("ip", "-n", node.ns, "-j", "route", "show", prefix, "proto", "80"))
    if not found:
        return []
    route = found[0]
    return sorted(h["gateway"] for h in route.get("nexthops", [route]) if "gateway" in h)


def vxlan_tx(node: LabNode) -> int:
    stats = json.loads(sh("ip", "-n", node.ns, "-s", "-j", "link", "show", "vxlan.calico"))
    return int(stats[0]["stats64"]["tx"]["packets"])


async def test_crosssubnet_direct_or_vxlan_and_nat_outgoing(lab: Lab) -> None:
    n1, n2, n3 = lab.nodes
    (p1,), (p2,), (p3,) = (n.pods for n in lab.nodes)
    await lab.until_pings(timeout=40)
    r1, r3 = n1.routes(), n3.routes()
    assert f"{n2.block} via {n2.address} dev eth0 onlink" in r1
    assert f"{n3.block} via {n3.vtep} dev vxlan.calico onlink" in r1
    assert f"{n1.block} via {n1.vtep} dev vxlan.calico onlink" in r3
    assert f"{n2.block} via {n2.vtep} dev vxlan.calico onlink" in r3
    fdb = sh("ip", "netns", "exec", n1.ns, "bridge", "fdb", "show", "dev", "vxlan.calico")
    assert f"dst {n3.address} self permanent" in fdb and n2.address not in fdb

    # Which traffic is encapsulated: the tunnel's counters move only across the router.
    before = vxlan_tx(n1)
    assert not await asyncio.to_thread(lab.silent, p1, [p2.ip])
    assert vxlan_tx(n1) == before
    assert not await asyncio.to_thread(lab.silent, p1, [p3.ip])
    assert vxlan_tx(n1) > before

    # natOutgoing: the outside sees each node's own address, never a pod's.
    outside = lab.listen(lab.outside, PORT)
    in_pod = lab.listen(p2.ns, PORT)
    try:
        assert await asyncio.to_thread(lab.who, p1, OUTSIDE, PORT) == n1.address
        assert await asyncio.to_thread(lab.who, p3, OUTSIDE, PORT) == n3.address
        # Between pods (same subnet, and across the tunnel) nothing is masqueraded.
        assert await asyncio.to_thread(lab.who, p1, p2.ip, PORT) == p1.ip
        assert await asyncio.to_thread(lab.who, p3, p2.ip, PORT) == p3.ip
    finally:
        for proc in (outside, in_pod):
            proc.terminate()
            proc.communicate(timeout=10)
    table = sh("ip", "netns", "exec", n1.ns, "nft", "list", "table", "inet", "tabby-nat")
    assert "masquerade" in table

    # A prefix learned from an external BGP peer (the router, through each node's BGPPeer) that
    # no pool covers is installed via its BGP next hop, the router on the node's own subnet.
    for node in lab.nodes:
        await until(
            lambda node=node: (
                f"{OUTSIDE_NET} via 192.168.{node.subnet}.254 dev eth0" in node.routes()
            ),  # type: ignore[misc]
            f"the external route on {node.name}",
        )
    # ECMP: where two external peers offer equal paths (the router and the edge on n1's and
    # n2's subnet), one multipath route with both next hops; n3 sees only the router.
    for node in (n1, n2):
        await until(lambda node=node: hops(node, ECMP_NET) == [EDGE, "192.168.10.254"], "ECMP")  # type: ignore[misc]
    await until(lambda: hops(n3, ECMP_NET) == ["192.168.20.254"], "n3's single path")
    async with RPCClient(f"unix:{n1.socket('felixd')}") as client:
        status = await client.call("status")
    assert isinstance(status, dict)
    assert status["problems"] == [] and status["converged"], status
    assert status["routes"]["remote-direct"] == 1 and status["routes"]["remote-vxlan"] == 1
    assert status["routes"]["external"] == 2
    assert status["pod_mtu"] == 1450 and (n1.directory / "mtu").read_text().strip() == "1450"
    sockets = ["--socket", str(n1.socket("bgpd")), "--felixd-socket", str(n1.socket("felixd"))]
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "ctl.main", "node", "status", *sockets],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        cwd=ROOT,
    )
    assert "  tunnel vxlan.calico: VNI 4096, port 4789, MTU 1450" in done.stdout, done.stdout
    assert "remote-direct 1" in done.stdout and "remote-vxlan 1" in done.stdout
