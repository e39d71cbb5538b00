"""Issue 10's system test: three nodes on one bridge fabric, each running tabby-confd,
tabby-bgpd and tabby-felixd in its own namespace against one store, two pods per node wired and
recorded as Calico's CNI plugin and calico-ipam would (`lab.py`), in no-encap mode (remote block
routes from bgpd's best paths) and in VXLAN Always mode (from the store; calico.md §4.2).

Checked in both modes: every pod pings every other pod (30 pairs); each node's kernel holds its
workload routes, its blackhole and one route per remote block; `tabbyctl node status` on a live
node shows the BGP peers, and route counts equal to what the kernel holds, the pod MTU and the
tunnel; felixd's status key is in the store under a lease; stopping felixd and starting it
again (kill -9 in no-encap mode, SIGTERM in VXLAN mode) changes no route and does not rewrite
the natOutgoing table (`ip monitor route`, `nft monitor`); a pod deleted as the CNI plugin
does (veth, then WorkloadEndpoint) loses its route and only that one; a block released
by one node and claimed by another moves its routes on every node
(withdrawn, then routed to the new owner) and a pod in it is reachable. No-encap: a kill -9
of a node's bgpd and its restart is a graceful restart end to end (peers keep its block, its
felixd keeps its routes as stale, bgpd defers its first snapshot until End-of-RIB): every pair
pings throughout and no node's kernel sees a route deleted or added; a clean stop of that bgpd
then withdraws its block elsewhere while its felixd keeps its own routes as stale. VXLAN:
stopping bgpd changes no route and the pods still answer. Nothing outside the lab's namespaces
changes.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from ctl.cluster.procs import kill9
from ipc import RPCClient
from store.client import StoreClient
from tests.felixd.netns.lab import Lab, LabNode, Pod, until
from tests.felixd.netns.nsutil import ns_name, root_snapshot, sh
from tests.store_process import ROOT

pytestmark = [pytest.mark.root, pytest.mark.netns, pytest.mark.slow]

SPARE = "10.244.103.0/26"  # a block with no pods yet: released by n3, claimed by n1


@pytest.fixture(params=["Never", "Always"], ids=["no-encap", "vxlan"])
async def mesh(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Lab]:
    before = root_snapshot()
    lab = Lab(tmp_path, subnets=[10, 10, 10], pods_per_node=2)
    lab.vxlan_mode = str(request.param)
    try:
        lab.build()
        await lab.start(lab.cluster_docs(lab.vxlan_mode, nat_outgoing=True))
        yield lab
    finally:
        lab.close()
        assert root_snapshot() == before


async def felixd_status(node: LabNode) -> dict[str, object]:
    async with RPCClient(f"unix:{node.socket('felixd')}") as client:
        status = await client.call("status")
    assert isinstance(status, dict)
    return status


async def status_when(
    node: LabNode, ready: Callable[[dict[str, object]], bool], timeout: float = 20.0
) -> dict[str, object]:
    """felixd's status once `ready` holds for it (polled; the daemons react asynchronously)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not ready(status := await felixd_status(node)):
        assert loop.time() < deadline, status
        await asyncio.sleep(0.1)
    return status


def via(lab: Lab, owner: LabNode) -> str:
    """How a block of `owner` is routed elsewhere (calico.md §4.2)."""
    if lab.vxlan_mode == "Always":
        return f"via {owner.vtep} dev vxlan.calico onlink"
    return f"via {owner.address} dev eth0 onlink"


def kernel_counts(node: LabNode) -> dict[str, int]:
    """felixd's route kinds counted from the kernel itself."""
    counts: dict[str, int] = {}
    for line in node.routes().splitlines():
        if line.startswith("blackhole "):
            kind = "blackhole"
        elif " dev cali" in line:
            kind = "workload"
        elif " dev vxlan.calico " in line:
            kind = "remote-vxlan"
        elif " via " in line and " dev eth0 " in line:
            kind = "remote-direct"
        else:
            continue
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def node_status(node: LabNode) -> str:
    sockets = ["--socket", str(node.socket("bgpd")), "--felixd-socket", str(node.socket("felixd"))]
    done = subprocess.run(
        [sys.executable, "-m", "ctl.main", "node", "status", *sockets],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def assert_status_text(text: str, node: LabNode, lab: Lab) -> None:
    """`tabbyctl node status`: both mesh peers up, and a dataplane section whose route counts
    are the kernel's (issue 10: routes per kind, pod MTU, tunnels, time since the resync)."""
    for other in lab.nodes:
        if other is not node:
            assert re.search(rf"\| {re.escape(other.address)} +\| node-to-node mesh \| up ", text)
    routes = re.search(r"^  routes: (.*); stale (\d+)$", text, re.M)
    assert routes is not None, text
    shown = {k: int(n) for k, _, n in (item.rpartition(" ") for item in routes[1].split(", "))}
    kernel = kernel_counts(node)
    assert {k: v for k, v in shown.items() if v} == kernel, (shown, node.routes())
    remote = "remote-vxlan" if lab.vxlan_mode == "Always" else "remote-direct"
    assert kernel == {"blackhole": 1, remote: 2, "workload": 2}
    assert routes[2] == "0"
    if lab.vxlan_mode == "Always":
        assert "  pod MTU: 1450" in text
        assert "  tunnel vxlan.calico: VNI 4096, port 4789, MTU 1450" in text
    else:
        assert "  pod MTU: 1500" in text and "  tunnels: none" in text
    assert re.search(r"^  last resync: \d+ s ago \(converged\); errors 0;", text, re.M), text


async def test_three_nodes_two_pods_blocks_follow_bgp(mesh: Lab) -> None:
    lab = mesh
    n1, n2, n3 = lab.nodes
    await lab.until_pings(timeout=40)
    for node in lab.nodes:
        routes = node.routes()
        assert f"blackhole {node.block}" in routes
        for pod in node.pods:
            assert f"{pod.ip} dev {pod.iface} scope link" in routes
        for other in lab.nodes:
            if other is not node:
                assert f"{other.block} {via(lab, other)}" in routes
        if lab.vxlan_mode == "Always":
            fdb = sh("ip", "netns", "exec", node.ns, "bridge", "fdb", "show", "dev", "vxlan.calico")
            for other in lab.nodes:
                if other is not node:
                    assert f"dst {other.address} self permanent" in fdb, fdb
    for peer in (n2, n3):  # VXLAN pings do not wait for BGP: the sessions may still be opening
        await until(lambda peer=peer: established(n1, peer), f"n1's session to {peer.name}", 30)  # type: ignore[misc]
    assert_status_text(await asyncio.to_thread(node_status, n1), n1, lab)
    # felixd's status key in the store, under a lease (Calico's reportingInterval/TTL).
    async with StoreClient([lab.endpoint]) as store:
        found = (await store.get(f"/calico/felix/v2/no-region/host/{n1.name}/status".encode())).kvs
    assert found and found[0].lease != 0 and json.loads(found[0].value)["ready"]

    # calico.md §4.3: a restart of felixd rewrites nothing (watched with the netlink and
    # nftables monitors; the natOutgoing table exists, so the nft check means something).
    assert "masquerade" in sh(
        "ip", "netns", "exec", n1.ns, "nft", "list", "table", "inet", "tabby-nat"
    )
    route_monitor = subprocess.Popen(  # noqa: ASYNC220 - background readers, collected below
        ["ip", "-n", n1.ns, "monitor", "route"], stdout=subprocess.PIPE, text=True
    )
    nft_monitor = subprocess.Popen(  # noqa: ASYNC220
        ["ip", "netns", "exec", n1.ns, "nft", "monitor"], stdout=subprocess.PIPE, text=True
    )
    try:
        await asyncio.sleep(0.3)  # let both monitors subscribe
        if lab.vxlan_mode == "Always":
            lab.stop_daemon(n1, "felixd")  # SIGTERM: a clean stop leaves the dataplane alone
        else:
            kill9(n1.procs.pop("felixd"))  # a crash: the kernel state is all there is
        await lab.start_daemon(n1, "felixd")
        await lab.until_pings(n1.pods, timeout=20)
    finally:
        route_monitor.terminate()
        nft_monitor.terminate()
        routes_seen = route_monitor.communicate(timeout=10)[0]
        nft_seen = nft_monitor.communicate(timeout=10)[0]
    assert "proto 80" not in routes_seen, routes_seen
    assert "tabby-nat" not in nft_seen, nft_seen

    # A pod deleted as the CNI plugin does it (DEL: the veth goes, then the WorkloadEndpoint):
    # its route is gone, the other pod's stays, and felixd ends converged with no problem.
    gone, kept_pod = n1.pods[1], n1.pods[0]
    endpoint = lab.endpoint_doc(n1.name, gone)
    sh("ip", "-n", n1.ns, "link", "del", gone.iface)
    await lab.write([endpoint], mode="delete")
    n1.pods.remove(gone)
    await until(lambda: f"{gone.ip} dev {gone.iface}" not in n1.routes(), "the pod's route gone")
    assert f"{kept_pod.ip} dev {kept_pod.iface} scope link" in n1.routes()
    await status_when(n1, lambda s: s["problems"] == [] and bool(s["converged"]))

    # A spare block claimed by n3: routed via n3 on n1 and n2 (no-encap: announced by n3's
    # bgpd; VXLAN: from the block and n3's Node in the store).
    await lab.write(lab.ipam_docs("n3", SPARE, [], tunnel=False))
    await until(
        lambda: (
            all(f"{SPARE} {via(lab, n3)}" in n.routes() for n in (n1, n2))
            and f"blackhole {SPARE}" in n3.routes()
        ),
        "the spare block via n3",
    )
    # calico-ipam releases it (empty block: affinity and block deleted): withdrawn everywhere.
    await lab.write(lab.ipam_docs("n3", SPARE, [], tunnel=False), mode="delete")
    await until(lambda: SPARE not in n2.routes() and SPARE not in n1.routes(), "withdrawal")
    await until(lambda: SPARE not in n3.routes(), "n3's blackhole removed")
    # n1 claims it and starts a pod in it: the routes now lead to n1, and the pod answers.
    pod = Pod("n1", SPARE, 5, ns_name("p1x"), "cali1x")
    lab.wire_pod(n1, pod)
    lab.extra_pods.append(pod)
    await lab.write(lab.ipam_docs("n1", SPARE, [pod], tunnel=False))
    for node in (n2, n3):
        await until(lambda node=node: f"{SPARE} {via(lab, n1)}" in node.routes(), "the move")  # type: ignore[misc]
    await until(lambda: f"blackhole {SPARE}" in n1.routes(), "n1's blackhole for its new block")
    await lab.until_pings([*n2.pods, *n3.pods], [pod])

    if lab.vxlan_mode == "Always":
        # VXLAN routes come from the store (Calico's VXLAN mode needs no BGP): nothing moves.
        lab.stop_daemon(n3, "bgpd")
        before = [node.routes() for node in lab.nodes]
        await lab.until_pings([*n1.pods, *n2.pods], n3.pods)
        assert [node.routes() for node in lab.nodes] == before
        return

    # Graceful restart (RFC 4724) across the whole stack: kill -9 n3's bgpd (no Cease; the
    # restart marker stays) and start it again. n1 and n2, as helpers, keep n3's block while it
    # is away; felixd on n3 keeps its routes (stale); every pair still pings meanwhile. bgpd comes
    # back with the Restart State bit and defers its first snapshot to felixd until End-of-RIB
    # from its peers, so no node's kernel sees a route deleted or added (`ip monitor route`).
    monitors = [
        subprocess.Popen(  # noqa: ASYNC220 - background readers, collected below
            ["ip", "-n", node.ns, "monitor", "route"], stdout=subprocess.PIPE, text=True
        )
        for node in lab.nodes
    ]
    try:
        kill9(n3.procs.pop("bgpd"))
        # The status reports the last plan, made within `debounce` of the disconnect: wait for
        # it (a poll right after `bgpd_connected` flips may still see the previous plan).
        status = await status_when(n3, lambda s: not s["bgpd_connected"] and s["stale_routes"] == 3)
        assert status["stale_routes"] == 3, status
        await lab.until_pings(timeout=10)
        await lab.start_daemon(n3, "bgpd")
        status = await status_when(
            n3, lambda s: bool(s["bgpd_connected"]) and s["stale_routes"] == 0, timeout=40
        )
        assert status["stale_routes"] == 0, status
        for node in (n1, n2):
            await until(lambda node=node: established(node, n3), "n3's session again", 30)  # type: ignore[misc]
        await lab.until_pings(timeout=10)
    finally:
        outputs = []
        for monitor in monitors:
            monitor.terminate()
            outputs.append(monitor.communicate(timeout=10)[0])
    for node, out in zip(lab.nodes, outputs, strict=True):
        assert "proto 80" not in out, f"{node.name}: {out}"

    # A clean stop (SIGTERM: a Cease to its peers) is not a restart: n1 and n2 withdraw n3's
    # block at once; felixd on n3 still keeps the routes bgpd had given it, marked stale.
    lab.stop_daemon(n3, "bgpd")
    for node in (n1, n2):
        await until(lambda node=node: n3.block not in node.routes(), "n3's block withdrawn")  # type: ignore[misc]
    status = await status_when(n3, lambda s: not s["bgpd_connected"] and s["stale_routes"] == 3)
    assert status["stale_routes"] == 3, status
    kept = n3.routes()
    for block, owner in ((n1.block, n1), (n2.block, n2), (SPARE, n1)):
        assert f"{block} {via(lab, owner)}" in kept


def established(node: LabNode, peer: LabNode) -> bool:
    text = node_status(node)
    return bool(re.search(rf"\| {re.escape(peer.address)} +\| node-to-node mesh \| up ", text))
