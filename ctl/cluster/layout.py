"""The shape of a local cluster: addresses, ports, paths and every daemon's configuration.

Pure data from the `up` flags, so the same layout is computed again by `status`, `restart`
and `down` from the state file. Each node is a list of processes with their config files;
felixd, the CNI plugin and pods join later as more entries in that list.

Nodes live on 127.0.10.N (one address per node, so every bgpd listens on the same port on its
own address, as hosts do); store members listen on Unix sockets in the cluster directory.
"""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass, field
from pathlib import Path

BASE_ADDRESS = ipaddress.IPv4Address("127.0.10.1")
POOL = ipaddress.IPv4Network("10.244.0.0/16")
AS_NUMBER = 64512


@dataclass(frozen=True, slots=True)
class StoreMember:
    id: int
    directory: Path

    @property
    def client_socket(self) -> Path:
        return self.directory / f"store-{self.id}.sock"

    @property
    def peer_socket(self) -> Path:
        return self.directory / f"store-{self.id}-peer.sock"

    @property
    def data_dir(self) -> Path:
        return self.directory / f"store-{self.id}-data"

    @property
    def config(self) -> Path:
        return self.directory / f"store-{self.id}.toml"


@dataclass(frozen=True, slots=True)
class NodeLayout:
    index: int  # 1-based
    name: str
    address: ipaddress.IPv4Address
    directory: Path
    route_reflector: bool = False

    @property
    def block(self) -> ipaddress.IPv4Network:
        """This node's /26, affine to it from the start."""
        return ipaddress.IPv4Network(f"10.244.{self.index}.0/26")

    @property
    def bgpd_socket(self) -> Path:
        return self.directory / "bgpd.sock"

    @property
    def bgpd_config(self) -> Path:
        return self.directory / "bgpd.toml"

    @property
    def confd_socket(self) -> Path:
        return self.directory / "confd.sock"

    @property
    def confd_config(self) -> Path:
        return self.directory / "confd.toml"


@dataclass(frozen=True, slots=True)
class ClusterLayout:
    directory: Path
    nodes: tuple[NodeLayout, ...]
    store: tuple[StoreMember, ...]
    bgp_port: int
    python: str = field(default=sys.executable)

    @property
    def store_endpoints(self) -> list[str]:
        return [f"unix:{m.client_socket}" for m in self.store]

    @property
    def state_file(self) -> Path:
        return self.directory / "cluster.json"


def make_layout(
    directory: Path, nodes: int, store_members: int, route_reflectors: int, bgp_port: int
) -> ClusterLayout:
    if not 1 <= nodes <= 200:
        raise ValueError("--nodes: between 1 and 200")
    if store_members not in (1, 3, 5):
        raise ValueError("--store-members: 1, 3 or 5")
    if not 0 <= route_reflectors <= nodes:
        raise ValueError("--route-reflectors: between 0 and the number of nodes")
    node_list = tuple(
        NodeLayout(
            index=i,
            name=f"node-{i}",
            address=BASE_ADDRESS + (i - 1),
            directory=directory / f"node-{i}",
            route_reflector=i <= route_reflectors,
        )
        for i in range(1, nodes + 1)
    )
    members = tuple(StoreMember(i, directory / "store") for i in range(1, store_members + 1))
    return ClusterLayout(directory, node_list, members, bgp_port)


def _q(text: object) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def store_config(layout: ClusterLayout, member: StoreMember) -> str:
    peers = ", ".join(_q(f"{m.id}=unix:{m.peer_socket}") for m in layout.store)
    return "\n".join(
        [
            f"name = {_q(f'store-{member.id}')}",
            f"id = {member.id}",
            f"data_dir = {_q(member.data_dir)}",
            f"client_endpoints = [{_q(f'unix:{member.client_socket}')}]",
            f"peer_endpoint = {_q(f'unix:{member.peer_socket}')}",
            f"initial_cluster = [{peers}]",
            f"run_dir = {_q(member.directory)}",
            f"state_dir = {_q(member.directory)}",
            "",
        ]
    )


def confd_config(layout: ClusterLayout, node: NodeLayout) -> str:
    endpoints = ", ".join(_q(e) for e in layout.store_endpoints)
    return "\n".join(
        [
            f"node_name = {_q(node.name)}",
            f"store_endpoints = [{endpoints}]",
            f"output = {_q(node.bgpd_config)}",
            f"control_socket = {_q(node.confd_socket)}",
            f"bgpd_socket = {_q(node.bgpd_socket)}",
            f"run_dir = {_q(node.directory)}",
            f"state_dir = {_q(node.directory)}",
            "debounce = 0.1",
            "",
            "[bgpd_base]",
            f"control_socket = {_q(node.bgpd_socket)}",
            f"run_dir = {_q(node.directory)}",
            f"state_dir = {_q(node.directory)}",
            "",
        ]
    )


def resources_yaml(layout: ClusterLayout) -> str:
    """The default resources: mesh (or reflectors), one pool, one Node and one block per node."""
    reflectors = [n for n in layout.nodes if n.route_reflector]
    docs = [
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n"
        f"spec: {{nodeToNodeMeshEnabled: {'false' if reflectors else 'true'}, asNumber: {AS_NUMBER}, "
        f"listenPort: {layout.bgp_port}, bindMode: NodeIP}}",
        f"apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: default-ipv4-ippool}}\nspec: {{cidr: {POOL}}}",
    ]
    for node in layout.nodes:
        rr = ", routeReflectorClusterID: 224.0.0.1" if node.route_reflector else ""
        labels = "{routeReflector: 'true'}" if node.route_reflector else "{}"
        docs.append(
            f"apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{name: {node.name}, labels: {labels}}}\n"
            f"spec: {{bgp: {{ipv4Address: {node.address}/8{rr}}}}}"
        )
        block = node.block
        docs.append(
            "apiVersion: projectcalico.org/v3\nkind: BlockAffinity\n"
            f"metadata: {{name: {node.name}-{str(block).replace('.', '-').replace('/', '-')}}}\n"
            f"spec: {{state: confirmed, node: {node.name}, cidr: {block}}}"
        )
    if reflectors:
        docs.append(
            "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: peer-with-route-reflectors}\n"
            "spec: {nodeSelector: all(), peerSelector: has(routeReflector)}"
        )
    return "\n---\n".join(docs) + "\n"
