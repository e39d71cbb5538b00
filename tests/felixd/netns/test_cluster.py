"""System test: nodes on a bridge fabric, each running tabby-confd, tabby-bgpd and tabby-felixd
in its own network namespace, a shared store on a Unix socket, one pod per node (issue 10).

Checks: pods on different nodes ping each other in no-encap mode (routes from bgpd's best paths,
programmed by felixd); felixd's status counts them; killing felixd and starting it again changes
no route (watched with `ip monitor route`); nothing outside the test's namespaces changes.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ctl.cluster.procs import NotifyListener, ProcessRecord, spawn, stop
from ctl.resources import run_write
from ipc import RPCClient
from store.client import StoreClient
from tests.felixd.netns.nsutil import cleanup, ns_name, root_snapshot, sh
from tests.store_process import ROOT, start_store, stop_all

pytestmark = pytest.mark.netns

FABRIC = "192.168.77"
OUTSIDE = f"{FABRIC}.254"
START_TIMEOUT = 60.0
ICMP = "tests.felixd.netns.icmp"  # no `ping` binary on these machines


@dataclass
class Node:
    index: int
    ns: str
    pod_ns: str
    directory: Path

    @property
    def name(self) -> str:
        return f"n{self.index}"

    @property
    def address(self) -> str:
        return f"{FABRIC}.{self.index}"

    @property
    def pod_ip(self) -> str:
        return f"10.244.{self.index}.5"

    @property
    def vtep(self) -> str:
        return f"10.244.{self.index}.1"

    @property
    def block(self) -> str:
        return f"10.244.{self.index}.0/26"


def _q(text: object) -> str:
    return json.dumps(str(text))


def make_fabric(fabric: str, nodes: list[Node]) -> None:
    sh("ip", "netns", "add", fabric)
    sh("ip", "-n", fabric, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", fabric, "link", "set", "br0", "up")
    # An address on the fabric that no pool covers, with no route back to the pods: only a
    # masqueraded packet (natOutgoing) can get an answer from it.
    sh("ip", "-n", fabric, "addr", "add", f"{OUTSIDE}/24", "dev", "br0")
    for node in nodes:
        sh("ip", "netns", "add", node.ns)
        sh("ip", "-n", node.ns, "link", "set", "lo", "up")
        port = f"port{node.index}"
        sh(
            "ip",
            "-n",
            fabric,
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            node.ns,
        )
        sh("ip", "-n", fabric, "link", "set", port, "master", "br0", "up")
        sh("ip", "-n", node.ns, "addr", "add", f"{node.address}/24", "dev", "eth0")
        sh("ip", "-n", node.ns, "link", "set", "eth0", "up")
        sh("ip", "netns", "exec", node.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        # The pod: a namespace behind a veth `cali<N>`, the way Calico's CNI plugin wires it.
        sh("ip", "netns", "add", node.pod_ns)
        cali = f"cali{node.index}"
        sh(
            "ip",
            "-n",
            node.ns,
            "link",
            "add",
            cali,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            node.pod_ns,
        )
        sh("ip", "-n", node.ns, "link", "set", cali, "up")
        sh("ip", "-n", node.pod_ns, "link", "set", "lo", "up")
        sh("ip", "-n", node.pod_ns, "link", "set", "eth0", "up")
        sh("ip", "-n", node.pod_ns, "addr", "add", f"{node.pod_ip}/32", "dev", "eth0")
        sh("ip", "-n", node.pod_ns, "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link")
        sh("ip", "-n", node.pod_ns, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
        cali_mac = _mac(node.ns, cali)
        sh(
            "ip",
            "-n",
            node.pod_ns,
            "neigh",
            "add",
            "169.254.1.1",
            "lladdr",
            cali_mac,
            "dev",
            "eth0",
            "nud",
            "permanent",
        )


def _mac(ns: str, dev: str) -> str:
    return str(json.loads(sh("ip", "-n", ns, "-j", "link", "show", dev))[0]["address"])


def manifest(nodes: list[Node], vxlan: str) -> str:
    docs = [
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n"
        "spec: {nodeToNodeMeshEnabled: true, asNumber: 64512, listenPort: 179, bindMode: NodeIP}",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pods}\n"
        f"spec: {{cidr: 10.244.0.0/16, vxlanMode: {vxlan}, natOutgoing: true}}",
    ]
    for node in nodes:
        docs.append(
            f"apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{name: {node.name}}}\n"
            f"spec: {{bgp: {{ipv4Address: {node.address}/24}}, ipv4VXLANTunnelAddr: {node.vtep}}}"
        )
        docs.append(
            "apiVersion: projectcalico.org/v3\nkind: BlockAffinity\n"
            f"metadata: {{name: {node.name}-{node.block.replace('.', '-').replace('/', '-')}}}\n"
            f"spec: {{state: confirmed, node: {node.name}, cidr: {node.block}}}"
        )
        docs.append(endpoint(node))
    return "\n---\n".join(docs) + "\n"


def endpoint(node: Node) -> str:
    return (
        "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\n"
        f"metadata: {{name: {node.name}-cni-pod{node.index}-eth0, namespace: default}}\n"
        f"spec: {{node: {node.name}, orchestrator: cni, workload: pod{node.index}, endpoint: eth0, "
        f"interfaceName: cali{node.index}, ipNetworks: [{node.pod_ip}/32], "
        f'mac: "{_mac(node.pod_ns, "eth0")}"}}'
    )


def write_configs(node: Node, store: str) -> None:
    d = node.directory
    d.mkdir(parents=True, exist_ok=True)
    common = f"run_dir = {_q(d)}\nstate_dir = {_q(d)}\n"
    (d / "confd.toml").write_text(
        f"node_name = {_q(node.name)}\nstore_endpoints = [{_q(store)}]\n"
        f"output = {_q(d / 'bgpd.toml')}\ncontrol_socket = {_q(d / 'confd.sock')}\n"
        f"bgpd_socket = {_q(d / 'bgpd.sock')}\n{common}debounce = 0.1\n\n[bgpd_base]\n"
        f"control_socket = {_q(d / 'bgpd.sock')}\n{common}"
    )
    (d / "felixd.toml").write_text(
        f"node_name = {_q(node.name)}\nstore_endpoints = [{_q(store)}]\n"
        f"control_socket = {_q(d / 'felixd.sock')}\nbgpd_socket = {_q(d / 'bgpd.sock')}\n"
        f"pod_mtu_file = {_q(d / 'mtu')}\n{common}"
    )


def record(node: Node, daemon: str, module: str) -> ProcessRecord:
    config = node.directory / ("bgpd.toml" if daemon == "bgpd" else f"{daemon}.toml")
    argv = ["ip", "netns", "exec", node.ns, sys.executable, "-m", module, "--config", str(config)]
    return ProcessRecord(node.name, daemon, argv, str(node.directory / f"{daemon}.log"))


async def start(rec: ProcessRecord, directory: Path, started: list[ProcessRecord]) -> None:
    listener = NotifyListener(directory / f".notify-{rec.node}-{rec.daemon}.sock")
    try:
        proc = spawn(rec, {"PYTHONPATH": str(ROOT)}, listener.path)
        started.append(rec)
        await listener.wait_ready(proc, rec, START_TIMEOUT)
    finally:
        listener.close()


def ping(src: Node, dst: Node | str) -> bool:
    address = dst if isinstance(dst, str) else dst.pod_ip
    done = subprocess.run(
        ["ip", "netns", "exec", src.pod_ns, sys.executable, "-m", ICMP, address],
        capture_output=True,
        check=False,
        timeout=20,
        cwd=ROOT,
    )
    return done.returncode == 0


async def until_pings(nodes: list[Node], timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pairs = [(a, b) for a in nodes for b in nodes if a is not b]
    while pairs:
        pairs = [(a, b) for a, b in pairs if not await asyncio.to_thread(ping, a, b)]
        if pairs and loop.time() > deadline:
            a, b = pairs[0]
            raise AssertionError(f"no ping from {a.name} to {b.name}\n{diagnose(nodes)}")
        if pairs:
            await asyncio.sleep(0.5)


def diagnose(nodes: list[Node]) -> str:
    """Each node's routes and the end of its daemons' logs, for a failure message."""
    out = []
    for node in nodes:
        out.append(
            f"== {node.name} routes\n" + sh("ip", "-n", node.ns, "route", "show", check=False)
        )
        for daemon in ("felixd", "bgpd"):
            log = node.directory / f"{daemon}.log"
            lines = log.read_text(errors="replace").splitlines()[-12:] if log.exists() else []
            out.append(f"== {node.name} {daemon}.log\n" + "\n".join(lines))
    return "\n".join(out)


Cluster = tuple[list[Node], list[ProcessRecord], Path, str]


@pytest.fixture(params=["Never", "Always"], ids=["no-encap", "vxlan"])
async def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    vxlan = str(request.param)
    before = root_snapshot()
    fabric = ns_name("fab")
    nodes = [Node(i, ns_name(f"n{i}"), ns_name(f"p{i}"), tmp_path / f"n{i}") for i in (1, 2)]
    store: list[ProcessRecord] = []
    daemons: list[ProcessRecord] = []
    try:
        make_fabric(fabric, nodes)
        store = await start_store(tmp_path)
        endpoint = f"unix:{tmp_path}/store-1.sock"
        (tmp_path / "cluster.yaml").write_text(manifest(nodes, vxlan))
        await run_write([endpoint], [str(tmp_path / "cluster.yaml")], "apply", "/calico")
        for node in nodes:
            write_configs(node, endpoint)
            await start(record(node, "confd", "confd.main"), tmp_path, daemons)  # writes bgpd.toml
            await start(record(node, "bgpd", "bgpd.main"), tmp_path, daemons)
            await start(record(node, "felixd", "felixd.main"), tmp_path, daemons)
        yield nodes, daemons, tmp_path, vxlan
    finally:
        for rec in reversed(daemons):
            stop(rec, timeout=10)
        stop_all(store)
        cleanup(*(n.pod_ns for n in nodes), *(n.ns for n in nodes), fabric)
        assert root_snapshot() == before


async def test_pods_ping_across_nodes_and_restart_changes_nothing(cluster: Cluster) -> None:
    """calico.md §4.2: no-encap routes via the peer (from bgpd), VXLAN routes via the remote
    VTEP on vxlan.calico (from the store); §4.3: a restart of felixd rewrites nothing."""
    nodes, daemons, tmp, vxlan = cluster
    n1, n2 = nodes
    await until_pings(nodes)
    routes = sh("ip", "-n", n1.ns, "route", "show", "proto", "80")
    if vxlan == "Always":
        assert f"{n2.block} via {n2.vtep} dev vxlan.calico onlink" in routes
        fdb = sh("ip", "netns", "exec", n1.ns, "bridge", "fdb", "show", "dev", "vxlan.calico")
        assert f"dst {n2.address} self permanent" in fdb
    else:
        assert f"{n2.block} via {n2.address} dev eth0 onlink" in routes
    assert f"{n1.pod_ip} dev cali1 scope link" in routes
    assert f"blackhole {n1.block}" in routes
    # calico.md §5.7 natOutgoing: the pod reaches an address outside every pool, seen from the
    # node's address (the fabric has no route to the pods).
    assert await asyncio.to_thread(ping, n1, OUTSIDE)
    assert "masquerade" in sh(
        "ip", "netns", "exec", n1.ns, "nft", "list", "table", "inet", "tabby-nat"
    )
    kind = "remote-vxlan" if vxlan == "Always" else "remote-direct"
    async with RPCClient(f"unix:{n1.directory / 'felixd.sock'}") as client:
        status = await client.call("status")
    assert isinstance(status, dict)
    assert status["routes"][kind] == 1 and status["routes"]["workload"] == 1
    tunnels = status["tunnels"]
    assert (list(tunnels) == ["vxlan.calico"]) if vxlan == "Always" else tunnels == {}
    assert status["bgpd_connected"] and status["converged"]
    async with StoreClient([f"unix:{tmp}/store-1.sock"]) as store:
        key = f"/calico/felix/v2/no-region/host/{n1.name}/status".encode()
        found = (await store.get(key)).kvs
    assert found and found[0].lease != 0 and json.loads(found[0].value)["ready"]

    # Restart felixd on n1 with netlink and nftables monitors running: no route is deleted or
    # re-added, the NAT table is not rewritten.
    monitor = subprocess.Popen(  # noqa: ASYNC220 - a background reader, never waited on here
        ["ip", "-n", n1.ns, "monitor", "route"], stdout=subprocess.PIPE, text=True
    )
    nft_monitor = subprocess.Popen(  # noqa: ASYNC220
        ["ip", "netns", "exec", n1.ns, "nft", "monitor"], stdout=subprocess.PIPE, text=True
    )
    try:
        felixd = next(r for r in daemons if r.node == n1.name and r.daemon == "felixd")
        stop(felixd, timeout=10)
        restarted = record(n1, "felixd", "felixd.main")
        await start(restarted, tmp, daemons)
        await until_pings(nodes, timeout=20)
    finally:
        monitor.terminate()
        nft_monitor.terminate()
        out, _ = monitor.communicate(timeout=10)
        nft_out, _ = nft_monitor.communicate(timeout=10)
    assert "proto 80" not in out, out
    assert "tabby-nat" not in nft_out, nft_out

    # Deleting a pod's WorkloadEndpoint removes its route (and only that).
    gone = tmp / "pod1.yaml"
    gone.write_text(endpoint(n1))
    await run_write([f"unix:{tmp}/store-1.sock"], [str(gone)], "delete", "/calico")
    for _ in range(100):
        routes = sh("ip", "-n", n1.ns, "route", "show", "proto", "80")
        if f"{n1.pod_ip} dev cali1" not in routes:
            break
        await asyncio.sleep(0.1)
    assert f"{n1.pod_ip} dev cali1" not in routes and f"blackhole {n1.block}" in routes
    if vxlan == "Always":
        return  # VXLAN routes come from the store, not from bgpd

    # Stopping n2's bgpd (SIGTERM: a Cease to its peers): n1's bgpd withdraws n2's block and
    # felixd on n1 removes the route; felixd on n2 notices its bgpd is gone.
    bgpd = next(r for r in daemons if r.node == n2.name and r.daemon == "bgpd")
    stop(bgpd, timeout=10)
    for _ in range(150):
        routes = sh("ip", "-n", n1.ns, "route", "show", "proto", "80")
        if n2.block not in routes:
            break
        await asyncio.sleep(0.1)
    assert n2.block not in routes, routes
    async with RPCClient(f"unix:{n2.directory / 'felixd.sock'}") as client:
        for _ in range(100):
            status = await client.call("status")
            assert isinstance(status, dict)
            if not status["bgpd_connected"]:
                break
            await asyncio.sleep(0.1)
    assert not status["bgpd_connected"]
