"""A Calico-shaped lab in network namespaces for felixd's end-to-end tests (issue 10).

- A router namespace with one bridge per subnet (192.168.<subnet>.0/24, the router at .254),
  forwarding between them; optionally an "outside" namespace behind it (198.51.100.0/24, outside
  every pool) that routes back to the nodes but has no route to the pods, so only a
  masqueraded packet (natOutgoing) can get an answer from it.
- Nodes: a namespace each, `eth0` on its subnet with a default route via the router, running
  the real tabby-confd, tabby-bgpd and tabby-felixd processes (`ip netns exec`), started by
  READY=1 like systemd would. The store runs in the root namespace on a Unix socket: a socket
  path crosses namespaces, so every daemon reaches it.
- Pods wired as Calico's CNI plugin wires them: a namespace, a veth whose host end is `cali…`
  with MAC ee:ee:ee:ee:ee:ee, the pod address /32 on `eth0`, 169.254.1.1 as a link-scope
  gateway with a permanent neighbour entry; and in the store what calico-ipam and the plugin
  write: a confirmed BlockAffinity, the IPAMBlock with the tunnel address and the pods
  allocated, an IPAMHandle per pod, the WorkloadEndpoint.

Everything is bounded: each wait has a deadline; `close` stops every process by the PID it
started and deletes every namespace it made (their veths and routes go with them).
"""

from __future__ import annotations

import asyncio
import json
import select
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ctl.cluster.procs import NotifyListener, ProcessRecord, spawn, stop
from ctl.resources import Mode, run_write
from tests.felixd.netns.nsutil import cleanup, ns_name, sh
from tests.store_process import ROOT, start_store, stop_all

POOL = "10.244.0.0/16"
HOST_VETH_MAC = "ee:ee:ee:ee:ee:ee"  # Calico's CNI plugin gives every host-side veth this MAC
GATEWAY = "169.254.1.1"
OUTSIDE = "198.51.100.2"  # TEST-NET-2: outside every pool and every node subnet
OUTSIDE_GW = "198.51.100.1"
START_TIMEOUT = 60.0
ICMP = "tests.felixd.netns.icmp"  # no `ping` binary on these machines
UDPWHO = "tests.felixd.netns.udpwho"
API = "projectcalico.org/v3"
ROUTER_AS = 65000  # the router's BGP speaker: an external peer of every node
EDGE = "192.168.10.253"  # a second external speaker on the first subnet (ECMP with the router)
EDGE_AS = 65001

Doc = dict[str, object]
Peers = list[tuple["LabNode", str]]  # a peering node and the speaker's address facing it


def _q(text: object) -> str:
    return json.dumps(str(text))


def block_name(cidr: str) -> str:
    return cidr.replace(".", "-").replace("/", "-")


@dataclass
class Pod:
    node: str
    block: str  # the node's block the address comes from
    ordinal: int  # the address's ordinal in the block
    ns: str
    iface: str

    @property
    def name(self) -> str:
        return f"pod-{self.iface}"

    @property
    def ip(self) -> str:
        base, _, _ = self.block.partition("/")
        a, b, c, d = (int(x) for x in base.split("."))
        return f"{a}.{b}.{c}.{d + self.ordinal}"

    @property
    def handle(self) -> str:
        return f"k8s-pod-network.{self.iface}"


@dataclass
class LabNode:
    index: int
    subnet: int
    ns: str
    directory: Path
    pods: list[Pod] = field(default_factory=list)
    procs: dict[str, ProcessRecord] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"n{self.index}"

    @property
    def address(self) -> str:
        return f"192.168.{self.subnet}.{self.index}"

    @property
    def block(self) -> str:
        return f"10.244.{self.index}.0/26"

    @property
    def vtep(self) -> str:
        return f"10.244.{self.index}.1"  # ordinal 1 of the block, as calico-node allocates it

    def socket(self, daemon: str) -> Path:
        return self.directory / f"{daemon}.sock"

    def routes(self) -> str:
        return sh("ip", "-n", self.ns, "route", "show", "proto", "80")


class Lab:
    def __init__(
        self,
        tmp: Path,
        subnets: list[int],
        pods_per_node: int,
        outside: bool = False,
        felixd_extra: str = "",
        edge: bool = False,
    ) -> None:
        self.tmp = tmp
        self.router = ns_name("rt")
        self.outside = ns_name("out") if outside else ""
        self.edge = ns_name("edge") if edge else ""
        self.felixd_extra = felixd_extra
        self.vxlan_mode = "Never"  # what the test's pool uses, for its own checks
        self.nodes = [
            LabNode(i, subnet, ns_name(f"n{i}"), tmp / f"n{i}")
            for i, subnet in enumerate(subnets, 1)
        ]
        for node in self.nodes:
            for j in range(pods_per_node):
                node.pods.append(
                    Pod(node.name, node.block, 5 + j, ns_name(f"p{node.index}{j}"), "")
                )
                node.pods[-1].iface = f"cali{node.index}{j}"
        self.store: list[ProcessRecord] = []
        self.speakers: list[ProcessRecord] = []  # external BGP speakers (router, edge)
        self.namespaces: list[str] = []
        self.extra_pods: list[Pod] = []

    @property
    def endpoint(self) -> str:
        return f"unix:{self.tmp}/store-1.sock"

    @property
    def pods(self) -> list[Pod]:
        return [p for n in self.nodes for p in n.pods] + self.extra_pods

    def node(self, name: str) -> LabNode:
        return next(n for n in self.nodes if n.name == name)

    # -- the network -------------------------------------------------------------------

    def _ns(self, name: str) -> None:
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def build(self) -> None:
        r = self.router
        self._ns(r)
        sh("ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for subnet in sorted({n.subnet for n in self.nodes}):
            sh("ip", "-n", r, "link", "add", f"br{subnet}", "type", "bridge")
            sh("ip", "-n", r, "addr", "add", f"192.168.{subnet}.254/24", "dev", f"br{subnet}")
            sh("ip", "-n", r, "link", "set", f"br{subnet}", "up")
        if self.outside:
            o = self.outside
            self._ns(o)
            sh(
                "ip",
                "-n",
                r,
                "link",
                "add",
                "out0",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                o,
            )
            sh("ip", "-n", r, "addr", "add", f"{OUTSIDE_GW}/24", "dev", "out0")
            sh("ip", "-n", r, "link", "set", "out0", "up")
            sh("ip", "-n", o, "addr", "add", f"{OUTSIDE}/24", "dev", "eth0")
            sh("ip", "-n", o, "link", "set", "eth0", "up")
            # Back to the nodes, never to the pods: an unmasqueraded pod address gets no answer.
            sh("ip", "-n", o, "route", "add", "192.168.0.0/16", "via", OUTSIDE_GW)
        if self.edge:
            # A second speaker beside the router on the first subnet; it forwards nothing, so it
            # only announces prefixes no traffic of the tests is sent to.
            e, first = self.edge, self.nodes[0].subnet
            assert EDGE.startswith(f"192.168.{first}."), "the edge sits on the first subnet"
            self._ns(e)
            sh("ip", "-n", r, "link", "add", "edge0", "type", "veth", "peer", "name", "eth0", "netns", e)  # fmt: skip
            sh("ip", "-n", r, "link", "set", "edge0", "master", f"br{first}", "up")
            sh("ip", "-n", e, "addr", "add", f"{EDGE}/24", "dev", "eth0")
            sh("ip", "-n", e, "link", "set", "eth0", "up")
        for node in self.nodes:
            self._ns(node.ns)
            port = f"port{node.index}"
            sh(
                "ip",
                "-n",
                r,
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
            sh("ip", "-n", r, "link", "set", port, "master", f"br{node.subnet}", "up")
            sh("ip", "-n", node.ns, "addr", "add", f"{node.address}/24", "dev", "eth0")
            sh("ip", "-n", node.ns, "link", "set", "eth0", "up")
            sh("ip", "-n", node.ns, "route", "add", "default", "via", f"192.168.{node.subnet}.254")
            sh("ip", "netns", "exec", node.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            for pod in node.pods:
                self.wire_pod(node, pod)

    def wire_pod(self, node: LabNode, pod: Pod) -> None:
        """What Calico's CNI plugin does to the kernel for one pod (ADD)."""
        self._ns(pod.ns)
        sh("ip", "-n", node.ns, "link", "add", pod.iface, "type", "veth", "peer", "name", "eth0", "netns", pod.ns)  # fmt: skip
        sh("ip", "-n", node.ns, "link", "set", pod.iface, "address", HOST_VETH_MAC, "up")
        sh("ip", "-n", pod.ns, "link", "set", "eth0", "up")
        sh("ip", "-n", pod.ns, "addr", "add", f"{pod.ip}/32", "dev", "eth0")
        sh("ip", "-n", pod.ns, "route", "add", GATEWAY, "dev", "eth0", "scope", "link")
        sh("ip", "-n", pod.ns, "route", "add", "default", "via", GATEWAY, "dev", "eth0")
        sh("ip", "-n", pod.ns, "neigh", "add", GATEWAY, "lladdr", HOST_VETH_MAC, "dev", "eth0", "nud", "permanent")  # fmt: skip

    def pod_mac(self, pod: Pod) -> str:
        return str(json.loads(sh("ip", "-n", pod.ns, "-j", "link", "show", "eth0"))[0]["address"])

    # -- the store ---------------------------------------------------------------------

    def cluster_docs(self, vxlan_mode: str, nat_outgoing: bool) -> list[Doc]:
        docs: list[Doc] = [
            {
                "apiVersion": API,
                "kind": "BGPConfiguration",
                "metadata": {"name": "default"},
                "spec": {"nodeToNodeMeshEnabled": True, "asNumber": 64512, "bindMode": "NodeIP"},
            },
            {
                "apiVersion": API,
                "kind": "IPPool",
                "metadata": {"name": "pods"},
                "spec": {"cidr": POOL, "vxlanMode": vxlan_mode, "natOutgoing": nat_outgoing},
            },
        ]
        for node in self.nodes:
            docs.append(
                {
                    "apiVersion": API,
                    "kind": "Node",
                    "metadata": {"name": node.name},
                    "spec": {
                        "bgp": {"ipv4Address": f"{node.address}/24"},
                        "ipv4VXLANTunnelAddr": node.vtep,
                    },
                }
            )
            docs.extend(self.ipam_docs(node.name, node.block, node.pods, tunnel=True))
        return docs

    def ipam_docs(self, owner: str, block: str, pods: list[Pod], tunnel: bool) -> list[Doc]:
        """calico-ipam's records for a block claimed by `owner` and the plugin's endpoints."""
        size = 64
        attributes: list[Doc] = []
        allocations: list[int | None] = [None] * size
        if tunnel:
            allocations[1] = len(attributes)
            attributes.append(
                {
                    "handle_id": f"vxlan-tunnel-addr-{owner}",
                    "secondary": {"node": owner, "type": "vxlanTunnelAddress"},
                }
            )
        for pod in pods:
            allocations[pod.ordinal] = len(attributes)
            attributes.append(
                {
                    "handle_id": pod.handle,
                    "secondary": {"namespace": "default", "node": owner, "pod": pod.name},
                }
            )
        docs: list[Doc] = [
            {
                "apiVersion": API,
                "kind": "BlockAffinity",
                "metadata": {"name": f"{owner}-{block_name(block)}"},
                "spec": {"state": "confirmed", "node": owner, "cidr": block},
            },
            {
                "apiVersion": API,
                "kind": "IPAMBlock",
                "metadata": {"name": block_name(block)},
                "spec": {
                    "cidr": block,
                    "affinity": f"host:{owner}",
                    "allocations": allocations,
                    "unallocated": [i for i in range(size) if allocations[i] is None],
                    "attributes": attributes,
                },
            },
        ]
        for pod in pods:
            docs.append(
                {
                    "apiVersion": API,
                    "kind": "IPAMHandle",
                    "metadata": {"name": pod.handle},
                    "spec": {"handleID": pod.handle, "block": {block: 1}},
                }
            )
            docs.append(self.endpoint_doc(owner, pod))
        return docs

    def endpoint_doc(self, owner: str, pod: Pod) -> Doc:
        return {
            "apiVersion": API,
            "kind": "WorkloadEndpoint",
            "metadata": {"name": f"{owner}-cni-{pod.iface}-eth0", "namespace": "default"},
            "spec": {
                "node": owner,
                "orchestrator": "cni",
                "workload": pod.name,
                "endpoint": "eth0",
                "interfaceName": pod.iface,
                "ipNetworks": [f"{pod.ip}/32"],
                "mac": self.pod_mac(pod),
            },
        }

    async def write(self, docs: list[Doc], mode: Mode = "apply") -> None:
        path = self.tmp / "write.yaml"
        path.write_text("\n---\n".join(json.dumps(d) for d in docs) + "\n")
        await run_write([self.endpoint], [str(path)], mode, "/calico")

    # -- the daemons -------------------------------------------------------------------

    def write_configs(self, node: LabNode) -> None:
        d = node.directory
        d.mkdir(parents=True, exist_ok=True)
        common = f"run_dir = {_q(d)}\nstate_dir = {_q(d)}\n"
        store = f"store_endpoints = [{_q(self.endpoint)}]\n"
        (d / "confd.toml").write_text(
            f"node_name = {_q(node.name)}\n{store}"
            f"output = {_q(d / 'bgpd.toml')}\ncontrol_socket = {_q(node.socket('confd'))}\n"
            f"bgpd_socket = {_q(node.socket('bgpd'))}\n{common}debounce = 0.1\n\n[bgpd_base]\n"
            f"control_socket = {_q(node.socket('bgpd'))}\n{common}"
        )
        (d / "felixd.toml").write_text(
            f"node_name = {_q(node.name)}\n{store}"
            f"control_socket = {_q(node.socket('felixd'))}\n"
            f"bgpd_socket = {_q(node.socket('bgpd'))}\n"
            f"pod_mtu_file = {_q(d / 'mtu')}\n{common}{self.felixd_extra}"
        )

    def record(self, node: LabNode, daemon: str) -> ProcessRecord:
        config = node.directory / f"{daemon}.toml"
        module = f"{daemon}.main"
        argv = ["ip", "netns", "exec", node.ns, sys.executable, "-m", module, "-c", str(config)]
        return ProcessRecord(node.name, daemon, argv, str(node.directory / f"{daemon}.log"))

    async def start_daemon(self, node: LabNode, daemon: str) -> None:
        rec = self.record(node, daemon)
        listener = NotifyListener(self.tmp / f".notify-{node.name}-{daemon}.sock")
        try:
            proc = spawn(rec, {"PYTHONPATH": str(ROOT)}, listener.path)
            node.procs[daemon] = rec
            await listener.wait_ready(proc, rec, START_TIMEOUT)
        finally:
            listener.close()

    def stop_daemon(self, node: LabNode, daemon: str) -> None:
        rec = node.procs.pop(daemon, None)
        if rec is not None:
            stop(rec, timeout=10)

    async def start(
        self,
        docs: list[Doc],
        router_prefixes: list[str] | None = None,
        edge_prefixes: list[str] | None = None,
    ) -> None:
        """The store, the resources, then each node's daemons (nodes in parallel; confd first
        on each, since it writes bgpd's configuration). With `router_prefixes` (and
        `edge_prefixes`), external BGP speakers on the router (and the edge) announce them,
        with the BGPPeer resources that make the nodes peer with them."""
        speakers = []
        if router_prefixes:
            peers = [(n, self.gateway(n)) for n in self.nodes]
            speakers.append(("router", self.router, ROUTER_AS, OUTSIDE_GW, router_prefixes, peers))
        if edge_prefixes:
            assert self.edge, "Lab(edge=True) makes the edge namespace"
            peers = [(n, EDGE) for n in self.nodes if n.subnet == self.nodes[0].subnet]
            speakers.append(("edge", self.edge, EDGE_AS, EDGE, edge_prefixes, peers))
        self.store = await start_store(self.tmp)
        await self.write(docs + [d for sp in speakers for d in self.peer_docs(*sp)])

        async def up(node: LabNode) -> None:
            self.write_configs(node)
            for daemon in ("confd", "bgpd", "felixd"):
                await self.start_daemon(node, daemon)

        await asyncio.gather(*(up(n) for n in self.nodes), *(self.speaker(*sp) for sp in speakers))

    def gateway(self, node: LabNode) -> str:
        return f"192.168.{node.subnet}.254"

    def peer_docs(
        self, tag: str, ns: str, asn: int, rid: str, prefixes: list[str], peers: Peers
    ) -> list[Doc]:
        """One BGPPeer per peering node toward the speaker's address on the node's subnet
        (calico.md §1.3: `node` + `peerIP` + `asNumber`)."""
        del ns, rid, prefixes
        return [
            {
                "apiVersion": API,
                "kind": "BGPPeer",
                "metadata": {"name": f"{tag}-{node.name}"},
                "spec": {"node": node.name, "peerIP": address, "asNumber": asn},
            }
            for node, address in peers
        ]

    async def speaker(
        self, tag: str, ns: str, asn: int, rid: str, prefixes: list[str], peers: Peers
    ) -> None:
        """An external BGP speaker: a tabby-bgpd in namespace `ns`, AS `asn`, announcing
        `prefixes` to each node from the given local address (so that is the next hop)."""
        d = self.tmp / tag
        d.mkdir(parents=True, exist_ok=True)
        lines = [
            f"control_socket = {_q(d / 'bgpd.sock')}",
            f"run_dir = {_q(d)}",
            f"state_dir = {_q(d)}",
            f"router_id = {_q(rid)}",
            f"local_as = {asn}",
            f"originate = {json.dumps(prefixes)}",
            "",
            "[[listen]]",
            'address = "0.0.0.0"',
            "port = 179",
        ]
        for node, address in peers:
            lines += ["", "[[peers]]", f"address = {_q(node.address)}", "remote_as = 64512"]
            lines.append(f"local_address = {_q(address)}")
        (d / "bgpd.toml").write_text("\n".join(lines) + "\n")
        argv = ["ip", "netns", "exec", ns, sys.executable, "-m", "bgpd.main"]
        rec = ProcessRecord(tag, "bgpd", [*argv, "-c", str(d / "bgpd.toml")], str(d / "bgpd.log"))
        listener = NotifyListener(self.tmp / f".notify-{tag}-bgpd.sock")
        try:
            proc = spawn(rec, {"PYTHONPATH": str(ROOT)}, listener.path)
            self.speakers.append(rec)
            await listener.wait_ready(proc, rec, START_TIMEOUT)
        finally:
            listener.close()

    def close(self) -> None:
        """Stop the daemons (nodes and speakers in parallel; on a node felixd first, while its
        bgpd still answers, then bgpd and confd), then the store, then delete every namespace."""

        def down(node: LabNode) -> None:
            for daemon in ("felixd", "bgpd", "confd"):
                self.stop_daemon(node, daemon)

        def down_one(rec: ProcessRecord) -> None:
            stop(rec, timeout=10)

        speakers, self.speakers = self.speakers, []
        with ThreadPoolExecutor(len(self.nodes) + len(speakers) or 1) as pool:
            done = [pool.submit(down, n) for n in self.nodes]
            done += [pool.submit(down_one, rec) for rec in speakers]
            for future in done:
                future.result()
        stop_all(self.store)
        cleanup(*reversed(self.namespaces))

    # -- probes ------------------------------------------------------------------------

    def in_pod(self, pod: Pod, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", pod.ns, sys.executable, "-m", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            cwd=ROOT,
        )

    def silent(self, src: Pod, targets: list[str]) -> list[str]:
        """The targets that did not answer one echo from `src`."""
        done = self.in_pod(src, ICMP, *targets)
        return done.stdout.split() if done.returncode else []

    async def until_pings(
        self, pods: list[Pod] | None = None, targets: list[Pod] | None = None, timeout: float = 30
    ) -> None:
        """Every pod in `pods` pings every other pod in `targets` (defaults: all pods), one
        process per source, all sources at once; retried until the deadline."""
        sources = pods if pods is not None else self.pods
        dests = targets if targets is not None else self.pods
        todo = {s.iface: [d.ip for d in dests if d is not s] for s in sources}
        by_iface = {p.iface: p for p in sources}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            names = list(todo)
            results = await asyncio.gather(
                *(asyncio.to_thread(self.silent, by_iface[n], todo[n]) for n in names)
            )
            todo = {n: left for n, left in zip(names, results, strict=True) if left}
            if not todo:
                return
            if loop.time() > deadline:
                raise AssertionError(f"pods without an answer: {todo}\n{self.diagnose()}")
            await asyncio.sleep(0.3)

    def who(self, src: Pod, dst: str, port: int) -> str:
        """The source address `dst`'s listener saw for a datagram from `src`."""
        done = self.in_pod(src, UDPWHO, "ask", dst, str(port))
        assert done.returncode == 0, f"no answer from {dst}:{port} to {src.name}"
        return done.stdout.strip()

    def listen(self, ns: str, port: int) -> subprocess.Popen[str]:
        """A udpwho listener in `ns`; the caller terminates it (by this Popen)."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", UDPWHO, "serve", str(port), "60"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 20)  # bounded: never wait forever
        if not ready or proc.stdout.readline().strip() != "ready":
            proc.kill()
            proc.communicate(timeout=10)
            raise AssertionError(f"the udpwho listener in {ns} did not start")
        return proc

    def diagnose(self) -> str:
        """Each node's routes and the end of its daemons' logs, for a failure message."""
        out = []
        for node in self.nodes:
            out.append(f"== {node.name} routes\n" + sh("ip", "-n", node.ns, "route", check=False))
            for daemon in ("felixd", "bgpd"):
                log = node.directory / f"{daemon}.log"
                lines = log.read_text(errors="replace").splitlines()[-10:] if log.exists() else []
                out.append(f"== {node.name} {daemon}.log\n" + "\n".join(lines))
        return "\n".join(out)


async def until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll `check()` every 0.1 s until it is true or the deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)
