"""From store resources to one node's BGP plan, the way Calico's confd decides it.

Follows Calico's `bgp_processor.go` and `client.go` (see shared/reference/calico.md §3):
- The node-to-node mesh runs when enabled and this node is not a route reflector; it peers
  with every other node that has an address in the family and is not a reflector. Of each
  pair, the node whose address string compares greater connects: a node is passive toward
  every peer whose address string is greater than its own.
- BGPPeers: global ones (no `node`, no `nodeSelector`) first, then node-scoped ones; first
  writer wins per peer address and port. `peerSelector` peers the local side with every
  matching node; unless `reversePeering: Manual`, the selected nodes get the reverse session,
  and so does a Calico node named by `peerIP`.
- A route reflector (a node with `routeReflectorClusterID` C) treats an iBGP peer whose cluster
  id is empty or differs from C as its client; two reflectors with the same id are plain iBGP
  peers.
- Originated prefixes: this node's confirmed affine blocks inside pools that allow BGP export,
  with the communities of the matching `prefixAdvertisements`.
- Export (`calico_export_to_bgp_peers`): every pool goes into the plan with its block size and
  whether it may be exported; the renderers turn that into each peer's export filter, the same
  for mesh, reflector and external peers.
Peers are sorted by name, so equal inputs render byte-identical files.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from confd.render.model import (
    IPAddress,
    IPNetwork,
    NodeBGPPlan,
    Origination,
    PeerPlan,
    PeerType,
    PoolExport,
    Problem,
)
from resources.bgp import (
    BGPConfigurationSpec,
    BGPPassword,
    BGPPeerSpec,
    BGPSettings,
    parse_peer_ip,
    resolve_bgp_settings,
)
from resources.ipam import BlockAffinitySpec
from resources.ippool import DEFAULT_BLOCK_SIZE, IPPoolSpec
from resources.node import NodeSpec
from resources.selector import matches

Secrets = Mapping[tuple[str, str], str]  # (secret name, key) -> value


@dataclass(frozen=True, slots=True)
class NodeView:
    name: str
    spec: NodeSpec
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClusterView:
    """Everything confd watches, as plain values (built from the store by the shell)."""

    nodes: Mapping[str, NodeView]
    bgp_configurations: Mapping[str, BGPConfigurationSpec] = field(default_factory=dict)
    bgp_peers: Mapping[str, BGPPeerSpec] = field(default_factory=dict)
    pools: Mapping[str, IPPoolSpec] = field(default_factory=dict)
    affinities: Sequence[BlockAffinitySpec] = ()
    secrets: Secrets = field(default_factory=dict)


def _node_address(node: NodeView, version: int) -> IPAddress | None:
    bgp = node.spec.bgp
    if bgp is None:
        return None
    iface = bgp.ipv4_address if version == 4 else bgp.ipv6_address
    return None if iface is None else iface.ip


def _node_as(node: NodeView, settings: BGPSettings) -> int:
    bgp = node.spec.bgp
    return bgp.as_number if bgp is not None and bgp.as_number is not None else settings.as_number


def _cluster_id(node: NodeView) -> str:
    bgp = node.spec.bgp
    return (bgp.route_reflector_cluster_id or "") if bgp is not None else ""


def _hash_router_id(name: str) -> ipaddress.IPv4Address:
    """Calico's `hash` router id: four bytes of a digest of the node name."""
    return ipaddress.IPv4Address(hashlib.sha256(name.encode()).digest()[:4])


def _protocol_name(prefix: str, address: IPAddress, port: int | None) -> str:
    text = str(address).replace(".", "_").replace(":", "_")
    return f"{prefix}_{text}" + (f"_port_{port}" if port else "")


def _password(
    secret: BGPPassword | None, where: str, secrets: Secrets, problems: list[Problem]
) -> str | None:
    """The MD5 password, "" for none, or None when a named secret is missing (skip the peer)."""
    if secret is None or secret.secret_key_ref is None:
        return ""
    ref = secret.secret_key_ref
    value = secrets.get((ref.name, ref.key))
    if value is None:
        problems.append(Problem(where, f"secret {ref.name}/{ref.key} not found; peering skipped"))
        return None
    return value


class _Builder:
    def __init__(self, me: NodeView, view: ClusterView) -> None:
        self.me = me
        self.view = view
        self.problems: list[Problem] = []
        self.settings = resolve_bgp_settings(
            view.bgp_configurations.get("default"),
            view.bgp_configurations.get(f"node.{me.name}"),
        )
        self.my_as = _node_as(me, self.settings)
        self.my_cluster = _cluster_id(me)
        self.peers: dict[tuple[IPAddress, int], PeerPlan] = {}

    def listen_port_of(self, node: NodeView) -> int:
        per_node = self.view.bgp_configurations.get(f"node.{node.name}")
        if per_node is not None and per_node.listen_port:
            return per_node.listen_port
        return self.settings.listen_port

    def node_by_address(self, address: IPAddress) -> NodeView | None:
        for node in self.view.nodes.values():
            if _node_address(node, address.version) == address:
                return node
        return None

    def add(self, plan: PeerPlan, remote_cluster: str = "") -> None:
        key = (plan.address, plan.port)
        if key in self.peers:
            return  # first writer wins (mesh, then global, then node-scoped)
        mine = _node_address(self.me, plan.address.version)
        if plan.address == mine:
            return
        if self.my_cluster and plan.remote_as == self.my_as and remote_cluster != self.my_cluster:
            plan = _replace(plan, rr_client=True, cluster_id=self.my_cluster)
        else:
            plan = _replace(plan, rr_client=False, cluster_id="")
        self.peers[key] = plan

    # -- the mesh -------------------------------------------------------------------
    def mesh(self) -> None:
        if not self.settings.node_to_node_mesh_enabled or self.my_cluster:
            return
        password = _password(
            self.settings.node_mesh_password,
            "BGPConfiguration default",
            self.view.secrets,
            self.problems,
        )
        if password is None:
            return
        gr = self.settings.node_mesh_max_restart_time
        for version in (4, 6):
            mine = _node_address(self.me, version)
            if mine is None:
                continue
            for node in sorted(self.view.nodes.values(), key=lambda n: n.name):
                if node.name == self.me.name or _cluster_id(node):
                    continue
                address = _node_address(node, version)
                if address is None:
                    continue
                self.add(
                    PeerPlan(
                        name=_protocol_name("Mesh", address, None),
                        address=address,
                        remote_as=_node_as(node, self.settings),
                        peer_type="node-to-node mesh",
                        port=self.listen_port_of(node),
                        source_address=mine,
                        passive=str(address) > str(mine),
                        password=password,
                        graceful_restart_time=int(gr.seconds) if gr else 0,
                        source="mesh",
                    ),
                    _cluster_id(node),
                )

    # -- BGPPeer resources --------------------------------------------------------------
    def _local_side(self, spec: BGPPeerSpec) -> list[NodeView]:
        if spec.node:
            node = self.view.nodes.get(spec.node)
            return [node] if node is not None else []
        if spec.node_selector:
            return [n for n in self.view.nodes.values() if matches(spec.node_selector, n.labels)]
        return list(self.view.nodes.values())

    def _applies_to_me(self, spec: BGPPeerSpec) -> bool:
        return any(n.name == self.me.name for n in self._local_side(spec))

    def explicit(self) -> None:
        items = sorted(self.view.bgp_peers.items())
        is_global = [(n, s) for n, s in items if not s.node and not s.node_selector]
        scoped = [(n, s) for n, s in items if s.node or s.node_selector]
        for name, spec in is_global:
            self.one(name, spec, "global")
        for name, spec in scoped:
            self.one(name, spec, "node specific")
        for name, spec in items:
            self.reverse(name, spec)

    def _plan_for(
        self,
        name: str,
        spec: BGPPeerSpec,
        peer_type: PeerType,
        address: IPAddress,
        port: int,
        named_port: int | None,
        remote_as: int,
        calico_node: bool,
    ) -> PeerPlan | None:
        mine = _node_address(self.me, address.version)
        if mine is None:
            return None  # this node has no address in that family
        password = _password(spec.password, f"BGPPeer {name}", self.view.secrets, self.problems)
        if password is None:
            return None
        prefix = "Global" if peer_type == "global" else "Node"
        next_hop = {"Self": "self", "Keep": "keep"}.get(spec.next_hop_mode or "", "auto")
        if spec.keep_original_next_hop and remote_as != self.my_as:
            next_hop = "keep"  # the legacy flag applies to eBGP only
        return PeerPlan(
            name=_protocol_name(prefix, address, named_port),
            address=address,
            remote_as=remote_as,
            peer_type=peer_type,
            port=port,
            local_as=spec.local_as_number,
            source_address=mine if spec.source_address == "UseNodeIP" else None,
            passive=calico_node and peer_type == "global" and str(address) > str(mine),
            password=password,
            ttl_security=spec.ttl_security or 0,
            keepalive_time=int(spec.keepalive_time.seconds) if spec.keepalive_time else 0,
            graceful_restart_time=int(spec.max_restart_time.seconds)
            if spec.max_restart_time
            else 0,
            next_hop=next_hop,  # type: ignore[arg-type]
            allow_local_as=spec.num_allowed_local_as_numbers or 0,
            source=f"BGPPeer {name}",
        )

    def _add_node_peer(
        self, name: str, spec: BGPPeerSpec, peer_type: PeerType, node: NodeView
    ) -> None:
        if node.name == self.me.name:
            return
        for version in (4, 6):
            address = _node_address(node, version)
            if address is None:
                continue
            plan = self._plan_for(
                name,
                spec,
                peer_type,
                address,
                self.listen_port_of(node),
                None,
                _node_as(node, self.settings),
                calico_node=True,
            )
            if plan is not None:
                self.add(plan, _cluster_id(node))

    def one(self, name: str, spec: BGPPeerSpec, peer_type: PeerType) -> None:
        if spec.local_workload_selector:
            self.problems.append(
                Problem(f"BGPPeer {name}", "localWorkloadSelector peerings are not supported yet")
            )
            return
        if not self._applies_to_me(spec):
            return
        if spec.peer_selector:
            for node in sorted(self.view.nodes.values(), key=lambda n: n.name):
                if matches(spec.peer_selector, node.labels):
                    self._add_node_peer(name, spec, peer_type, node)
            return
        if spec.peer_ip is None:
            return
        address, port = parse_peer_ip(spec.peer_ip)
        peer_node = self.node_by_address(address)
        remote_as = spec.as_number if spec.as_number is not None else self.my_as
        calico_node = peer_node is not None and _node_as(peer_node, self.settings) == remote_as
        if port is None and calico_node and peer_node is not None:
            port = self.listen_port_of(peer_node)
        plan = self._plan_for(
            name,
            spec,
            peer_type,
            address,
            port or self.settings.listen_port,
            port if spec.peer_ip and parse_peer_ip(spec.peer_ip)[1] else None,
            remote_as,
            calico_node,
        )
        if plan is not None:
            self.add(plan, _cluster_id(peer_node) if peer_node is not None and calico_node else "")

    def reverse(self, name: str, spec: BGPPeerSpec) -> None:
        """Reverse peerings: the remote side of a peering between Calico nodes gets one too."""
        if spec.reverse_peering == "Manual" or spec.local_workload_selector:
            return
        local_side = self._local_side(spec)
        if spec.peer_selector:
            if not matches(spec.peer_selector, self.me.labels):
                return
        elif spec.peer_ip is not None:
            address, port = parse_peer_ip(spec.peer_ip)
            if _node_address(self.me, address.version) != address:
                return
            if spec.as_number is not None and spec.as_number != self.my_as:
                return
            if port is not None and port != self.listen_port_of(self.me):
                return
        else:
            return
        for node in sorted(local_side, key=lambda n: n.name):
            self._add_node_peer(name, spec, "node specific", node)

    # -- originated prefixes ----------------------------------------------------------
    def originate(self) -> tuple[tuple[Origination, ...], tuple[PoolExport, ...]]:
        exportable = [p for p in self.view.pools.values() if not p.disable_bgp_export]
        names = {c.name: c.value for c in self.settings.communities}
        out: list[Origination] = []
        for aff in self.view.affinities:
            if aff.node != self.me.name or aff.state != "confirmed" or aff.deleted:
                continue
            block = aff.cidr
            if not any(_within(block, p.cidr) for p in exportable):
                continue
            standard: list[str] = []
            large: list[str] = []
            for adv in self.settings.prefix_advertisements:
                if _within(block, adv.cidr):
                    for community in adv.communities:
                        value = names.get(community, community)
                        (large if value.count(":") == 2 else standard).append(value)
            out.append(Origination(block, tuple(standard), tuple(large)))
        out.sort(key=lambda o: (o.prefix.version, o.prefix))
        pools = tuple(
            PoolExport(
                p.cidr, p.block_size or DEFAULT_BLOCK_SIZE[p.cidr.version], not p.disable_bgp_export
            )
            for p in sorted(self.view.pools.values(), key=lambda p: (p.cidr.version, p.cidr))
        )
        return tuple(out), pools


def _within(inner: IPNetwork, outer: IPNetwork) -> bool:
    if isinstance(inner, ipaddress.IPv4Network) and isinstance(outer, ipaddress.IPv4Network):
        return inner.subnet_of(outer)
    if isinstance(inner, ipaddress.IPv6Network) and isinstance(outer, ipaddress.IPv6Network):
        return inner.subnet_of(outer)
    return False


def _replace(plan: PeerPlan, **changes: object) -> PeerPlan:
    return replace(plan, **changes)  # type: ignore[arg-type]


def compute_plan(node_name: str, view: ClusterView) -> NodeBGPPlan:
    """This node's BGP plan; an unknown node yields an empty plan with a problem."""
    me = view.nodes.get(node_name)
    if me is None:
        return NodeBGPPlan(
            node=node_name,
            router_id=_hash_router_id(node_name),
            local_as=resolve_bgp_settings(view.bgp_configurations.get("default")).as_number,
            problems=(Problem(f"Node {node_name}", "no Node resource for this node yet"),),
        )
    b = _Builder(me, view)
    b.mesh()
    b.explicit()
    originate, pools = b.originate()
    v4 = _node_address(me, 4)
    v6 = _node_address(me, 6)
    router_id = v4 if isinstance(v4, ipaddress.IPv4Address) else _hash_router_id(node_name)
    listen_address = None
    if b.settings.bind_mode == "NodeIP":
        listen_address = v4 or v6
    return NodeBGPPlan(
        node=node_name,
        router_id=router_id,
        local_as=b.my_as,
        listen_port=b.listen_port_of(me),
        listen_address=listen_address,
        ipv4_address=v4,
        ipv6_address=v6,
        cluster_id=b.my_cluster,
        peers=tuple(sorted(b.peers.values(), key=lambda p: p.name)),
        originate=originate,
        pools=pools,
        log_severity=b.settings.log_severity_screen,
        problems=tuple(b.problems),
    )
