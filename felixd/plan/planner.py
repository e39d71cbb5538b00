"""The planner: PlannerState → DesiredDataplane, as Calico's felix programs a node.

calico.md §4.2 route kinds, §4.4 remote routes and CrossSubnet, §4.5 the VXLAN device, §4.6 MTU,
§4.7 `cali*` sysctls, §5.7 natOutgoing. In short:
- a local workload address: `<ip>/32 dev caliX scope link` plus a permanent neighbour entry
  (IPv4) and the interface's sysctls;
- a block affine to this node: `blackhole <block>`;
- a VXLAN pool's remote block, from the store (blocks + nodes, no BGP needed, §4.1):
  `via <VTEP> dev vxlan.calico onlink` + neighbour + FDB, or, for CrossSubnet with the remote
  node inside this node's subnet, `via <node IP> dev <parent> onlink`;
- a no-encap or IPIP pool's prefix, from bgpd's best paths (so a withdrawn block disappears):
  `via <next hop> dev <connected NIC> onlink`, or `via <next hop> dev tunl0 onlink` for IPIP
  (CrossSubnet: direct inside the local subnet); several next hops make an ECMP route;
- a best path no pool covers (an external peer's prefix): via its next hop, if enabled.

Invariants: the output depends only on the state (same state, equal output); every route carries
felixd's protocol number; at most one route per kernel key, the first planned wins in the order
workloads, blackholes, VXLAN, best paths; a resource that fails validation is skipped whole and
named in `problems`, and everything else is still planned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from felixd.plan.addresses import (
    HostIP,
    IPAddress,
    IPInterface,
    IPNetwork,
    Prefix,
    canonical_prefix,
    ip_within,
    network_sort_key,
    normalise_mac,
    parse_address,
    parse_host_prefix,
    parse_interface,
    parse_ip,
    parse_network,
    prefix_of,
    prefix_within,
    valid_interface_name,
    vtep_mac_for,
)
from felixd.plan.inputs import BestPath, Block, FelixConfig, NodeInfo, WorkloadEndpoint
from felixd.plan.model import (
    DesiredDataplane,
    FdbEntry,
    FdbKey,
    IpipDevice,
    Neighbour,
    NeighbourKey,
    NextHop,
    NftTable,
    Ownership,
    Problem,
    Route,
    RouteKey,
    RouteKind,
    RouteScope,
    RouteType,
    VxlanDevice,
)
from felixd.plan.nat import nat_table
from felixd.plan.pools import ValidPool, validate_pools
from felixd.plan.state import BlockPlan, PlannerState

# Encapsulation overheads (calico.md §4.6): outer IPv4 20; VXLAN 20+8+8+14; WireGuard 60.
OVERHEAD = {"ipip": 20, "vxlan": 50, "wireguard": 60}
DEFAULT_MTU = 1500

# Per-interface sysctls felix sets on workload interfaces (calico.md §4.7).
SYSCTLS_V4 = {
    "net/ipv4/conf/{}/proxy_arp": "1",
    "net/ipv4/conf/{}/forwarding": "1",
    "net/ipv4/conf/{}/route_localnet": "1",
    "net/ipv4/neigh/{}/proxy_delay": "0",
}
SYSCTLS_V6 = {
    "net/ipv6/conf/{}/proxy_ndp": "1",
    "net/ipv6/conf/{}/forwarding": "1",
    "net/ipv6/conf/{}/accept_ra": "0",
}


def ownership(config: FelixConfig) -> Ownership:
    return Ownership(
        protocol=config.route_protocol,
        tables=frozenset({config.route_table}),
        interface_prefix=config.interface_prefix,
        devices=frozenset({config.vxlan_device}),
        remove_external_routes=config.remove_external_routes,
        nft_prefix=config.nft_table_prefix,
    )


def _host_ip(addr: IPAddress) -> HostIP:
    return (addr.version, int(addr), str(addr))


def _node_address(node: NodeInfo, version: int) -> IPInterface | None:
    """The node's first well-formed address of `version` (its node IP with its subnet)."""
    for text in node.addresses:
        parsed = parse_interface(text)
        if parsed is not None and parsed.version == version:
            return parsed
    return None


@dataclass(frozen=True, slots=True)
class _Remote:
    """What a remote node contributes to each of its blocks' routes, derived once per plan."""

    ip: HostIP | None  # its node IPv4 address
    direct: NextHop | None  # via its node IP on the connected NIC, if there is one
    tunnel: NextHop | None  # via its VTEP on vxlan.calico, if both ends have one
    neighbour: Neighbour | None
    fdb: FdbEntry | None


Source = tuple[str, str]
"""Who placed a planned entry: (input kind as problems name it, its key), e.g.
("BestPath", "10.244.1.0/26"). A source's problems carry the same kind and name."""


@dataclass(slots=True)
class Placed:
    """What one valid workload endpoint placed, so it can be taken back alone."""

    interface: str
    addresses: list[str] = field(default_factory=list)
    routes: list[RouteKey] = field(default_factory=list)
    neighbours: list[NeighbourKey] = field(default_factory=list)
    sysctls: list[str] = field(default_factory=list)


def plan(state: PlannerState) -> DesiredDataplane:
    """The whole desired dataplane for `state`."""
    return Planner(state).run()


class Planner:
    """One planning pass. Besides the result it keeps an index of who placed what (`route_src`,
    reference counts of shared VTEP entries, each endpoint's `Placed`), which is what lets
    `felixd.plan.incremental` redo one input without planning the rest again. `clashed` names
    the sources that lost a first-come-first-served clash: while it is empty, the result does
    not depend on the order sources were placed in, so redoing one source alone is exact."""

    def __init__(self, state: PlannerState) -> None:
        self.state = state
        self.cfg = state.config
        self.me = state.node_name
        self.problems: list[Problem] = []
        self.routes: dict[RouteKey, Route] = {}
        self.neighbours: dict[tuple[str, str], Neighbour] = {}
        self.fdb: dict[tuple[str, str], FdbEntry] = {}
        self.sysctls: dict[str, str] = {}
        self.stale: set[str] = set()
        self.local_blocks: set[str] = set()
        self.pools: list[ValidPool] = []
        self.connected: list[tuple[Prefix, str]] = []
        self.local_v4: IPInterface | None = None
        self.local_v4_net: Prefix | None = None
        self.vxlan: VxlanDevice | None = None
        self.ipip_mtu = DEFAULT_MTU - OVERHEAD["ipip"]
        self.remotes: dict[str, _Remote] = {}
        self.nft: NftTable | None = None
        self.ipip: IpipDevice | None = None
        self.hops: dict[tuple[str, int, str | None, bool], NextHop | str] = {}
        self.pod_mtu = DEFAULT_MTU
        self.route_src: dict[RouteKey, Source] = {}
        self.clashed: set[Source] = set()
        self.neigh_refs: dict[NeighbourKey, int] = {}
        self.fdb_refs: dict[FdbKey, int] = {}
        self.placed: dict[str, Placed] = {}  # valid endpoints by name
        self.address_owner: dict[str, str] = {}
        self.interface_owner: dict[str, str] = {}
        self.suppressed: dict[str, list[str]] = {}  # dst -> best paths a local blackhole hides
        self.block_plans: dict[str, BlockPlan] = {}  # blocks with a route, placed or not
        self.path_routes: dict[str, Route] = {}  # best paths with a route, placed or not

    def problem(self, kind: str, name: str, reason: str) -> None:
        self.problems.append(Problem(kind, name, reason))

    # -- inputs ---------------------------------------------------------------------------

    def run(self) -> DesiredDataplane:
        self.pools, pool_problems = validate_pools(self.state.pools.values())
        self.problems.extend(pool_problems)
        self._host_interfaces()
        self._local_node()
        host_mtu = self._host_mtu()
        vxlan_on = any(p.encap == "vxlan" for p in self.pools)
        ipip_on = any(p.encap == "ipip" for p in self.pools)
        vxlan_mtu = self.cfg.vxlan_mtu or host_mtu - OVERHEAD["vxlan"]
        ipip_mtu = self.cfg.ipip_mtu or host_mtu - OVERHEAD["ipip"]
        self.ipip_mtu = ipip_mtu
        wg_mtu = self.cfg.wireguard_mtu or host_mtu - OVERHEAD["wireguard"]
        enabled = [
            *([vxlan_mtu] if vxlan_on else []),
            *([ipip_mtu] if ipip_on else []),
            *([wg_mtu] if self.cfg.wireguard_enabled else []),
        ]
        if vxlan_on:
            self.vxlan = self._vxlan_device(vxlan_mtu)
        if ipip_on:
            self.ipip = self._ipip_device(ipip_mtu)
        self._workloads()
        self._blocks()
        self._best_paths()
        self.nft = self._nat()
        self.pod_mtu = min(enabled) if enabled else host_mtu
        return self.result(tuple(sorted(set(self.problems))), copy=False)

    def result(self, problems: tuple[Problem, ...], *, copy: bool) -> DesiredDataplane:
        """The plan as it stands; `copy` detaches it from this planner's tables (which an
        incremental update goes on changing)."""
        nft, vxlan = self.nft, self.vxlan
        return DesiredDataplane(
            owner=ownership(self.cfg),
            routes=dict(self.routes) if copy else self.routes,
            neighbours=dict(self.neighbours) if copy else self.neighbours,
            fdb=dict(self.fdb) if copy else self.fdb,
            devices={vxlan.name: vxlan} if vxlan is not None else {},
            sysctls=dict(self.sysctls) if copy else self.sysctls,
            nft_tables={nft.key: nft} if nft is not None else {},
            tunnels={self.ipip.name: self.ipip} if self.ipip is not None else {},
            pod_mtu=self.pod_mtu,
            stale_prefixes=frozenset(self.stale),
            problems=problems,
        )

    def _host_interfaces(self) -> None:
        for iface in sorted(self.state.host_interfaces.values(), key=lambda i: i.name):
            if not iface.up:
                continue
            for text in iface.addresses:
                parsed = parse_interface(text)
                if parsed is None:
                    self.problem("HostInterface", iface.name, f"bad address {text!r}")
                    continue
                self.connected.append((prefix_of(parsed.network), iface.name))
        # Longest prefix first, so the first container found is the most specific (then by name).
        self.connected.sort(key=lambda c: (-c[0][2], c[1]))

    def _host_mtu(self) -> int:
        if self.cfg.host_mtu:
            return self.cfg.host_mtu
        own = {self.cfg.vxlan_device, self.cfg.ipip_device, "lo"}
        mtus = [
            i.mtu
            for i in self.state.host_interfaces.values()
            if i.up and i.name not in own and not i.name.startswith(self.cfg.interface_prefix)
        ]
        return min(mtus) if mtus else DEFAULT_MTU

    def _local_node(self) -> None:
        # Every node's malformed addresses are reported here, once per plan, so that what the
        # memoised block results depend on never carries a node's problems.
        for each in self.state.nodes.values():
            for text in each.addresses:
                if parse_interface(text) is None:
                    self.problem("Node", each.name, f"bad address {text!r}")
        node = self.state.nodes.get(self.me)
        if node is None:
            self.problem("Node", self.me, "this node's Node resource is missing")
            return
        self.local_v4 = _node_address(node, 4)
        if self.local_v4 is not None:
            self.local_v4_net = prefix_of(self.local_v4.network)

    def _connected_dev(self, ip: HostIP) -> str | None:
        for prefix, dev in self.connected:
            if ip_within(ip, prefix):
                return dev
        return None

    def _pool_of(self, prefix: Prefix) -> ValidPool | None:
        for pool in self.pools:
            if prefix_within(prefix, pool.prefix):
                return pool
        return None

    def _metric(self, version: int) -> int:
        # The kernel stores IPv6 routes given metric 0 as 1024 and reports them so; plan what
        # it will report, or the differ would never converge.
        return self.cfg.route_metric or (1024 if version == 6 else 0)

    # -- outputs --------------------------------------------------------------------------

    def _add_route(self, route: Route, kind: str, name: str) -> bool:
        existing = self.routes.get(route.key)
        if existing is not None:
            what = existing.kind.value if existing.kind else "another route"
            self.problem(kind, name, f"route {route.dst} is already planned as {what}")
            self.clashed.add((kind, name))
            return False
        self.routes[route.key] = route
        self.route_src[route.key] = (kind, name)
        return True

    def _via(self, dst: str, version: int, hops: list[NextHop], kind: RouteKind) -> Route:
        ordered = hops if len(hops) == 1 else sorted(set(hops))
        # felix sets the tunnel MTU on IPIP routes (§4.2); tunl0 is not felixd's device.
        mtu = self.ipip_mtu if kind is RouteKind.REMOTE_IPIP else None
        if len(ordered) == 1:
            hop = ordered[0]
            return Route(
                dst,
                self.cfg.route_protocol,
                dev=hop.dev,
                gateway=hop.gateway,
                onlink=hop.onlink,
                metric=self._metric(version),
                table=self.cfg.route_table,
                mtu=mtu,
                kind=kind,
            )
        return Route(
            dst,
            self.cfg.route_protocol,
            metric=self._metric(version),
            table=self.cfg.route_table,
            mtu=mtu,
            nexthops=tuple(ordered),
            kind=kind,
        )

    def _add_neighbour(self, neigh: Neighbour, kind: str, name: str) -> bool:
        existing = self.neighbours.get(neigh.key)
        if existing is not None and existing is not neigh and existing != neigh:
            self.problem(kind, name, f"neighbour {neigh.address} on {neigh.dev} conflicts")
            self.clashed.add((kind, name))
            return False
        self.neighbours[neigh.key] = neigh
        self.neigh_refs[neigh.key] = self.neigh_refs.get(neigh.key, 0) + 1
        return True

    # -- workloads (calico.md §4.2 "Local workload", §4.7) ---------------------------------

    def _workload_problem(self, ep: WorkloadEndpoint) -> str | None:
        prefix = self.cfg.interface_prefix
        if not valid_interface_name(ep.interface):
            return f"bad interface name {ep.interface!r}"
        if not ep.interface.startswith(prefix):
            return f"interface {ep.interface!r} lacks the {prefix!r} prefix"
        if ep.mac is not None and normalise_mac(ep.mac) is None:
            return f"bad MAC {ep.mac!r}"
        for text in ep.addresses:
            net = parse_host_prefix(text)
            if net is None:
                return f"bad address {text!r} (a /32 or /128 is required)"
            if self._pool_of(prefix_of(net)) is None:
                return f"address {text} lies in no IP pool"
        return None

    def _workloads(self) -> None:
        for ep in sorted(self.state.endpoints.values(), key=lambda e: e.name):
            self.place_endpoint(ep)

    def place_endpoint(self, ep: WorkloadEndpoint) -> None:
        """Endpoints are placed in name order: of two claiming one address or interface, the
        first keeps it and the other is a (clash) problem."""
        owner, interfaces = self.address_owner, self.interface_owner
        reason = self._workload_problem(ep)
        nets = [n for n in (parse_host_prefix(a) for a in ep.addresses) if n is not None]
        if reason is None:
            taken = [f"{n} is {owner[str(n)]!r}'s" for n in nets if str(n) in owner]
            if taken:
                reason = f"address {taken[0]}"
            elif ep.interface in interfaces:
                reason = f"interface {ep.interface} is {interfaces[ep.interface]!r}'s"
            if reason is not None:
                self.clashed.add(("WorkloadEndpoint", ep.name))
        if reason is not None:
            self.problem("WorkloadEndpoint", ep.name, reason)
            return
        placed = Placed(ep.interface)
        self.placed[ep.name] = placed
        interfaces[ep.interface] = ep.name
        mac = normalise_mac(ep.mac) if ep.mac is not None else None
        for net in nets:
            owner[str(net)] = ep.name
            placed.addresses.append(str(net))
            route = Route(
                str(net),
                self.cfg.route_protocol,
                # IPv6 has no route scopes: the kernel reports every IPv6 route as
                # universe (rt6_fill_node), so that is what to plan for /128s.
                scope=RouteScope.LINK if net.version == 4 else RouteScope.UNIVERSE,
                dev=ep.interface,
                metric=self._metric(net.version),
                table=self.cfg.route_table,
                kind=RouteKind.WORKLOAD,
            )
            if self._add_route(route, "WorkloadEndpoint", ep.name):
                placed.routes.append(route.key)
            # Static ARP entries are IPv4 only in felix (calico.md §4.2).
            if mac is not None and net.version == 4:
                neigh = Neighbour(ep.interface, str(net.network_address), mac)
                if self._add_neighbour(neigh, "WorkloadEndpoint", ep.name):
                    placed.neighbours.append(neigh.key)
        sysctls = dict(SYSCTLS_V4)
        if any(n.version == 6 for n in nets):
            sysctls.update(SYSCTLS_V6)
        for path, value in sysctls.items():
            self.sysctls[path.format(ep.interface)] = value
            placed.sysctls.append(path.format(ep.interface))

    # -- blocks: blackholes and VXLAN (calico.md §4.2, §4.4, §4.5) -------------------------

    def _blocks(self) -> None:
        # Memoised like best paths: a block's result depends on the block, its node and the
        # context below. Blocks are walked in address order because neighbour and FDB clashes
        # (two nodes claiming one VTEP MAC) are settled first come, first served.
        context = (
            tuple(self.pools),
            tuple(self.connected),
            self.local_v4_net,
            self.vxlan,
            self.cfg,
            self.me,
        )
        memo = self.state.block_memo
        if memo.context != context:
            memo.context = context
            memo.results.clear()
        results, blocks = memo.results, self.state.blocks
        for cidr in memo.ordered(blocks, network_sort_key):
            self.place_block(cidr, self.block_outcome(cidr, blocks[cidr]))
        if len(results) > len(blocks):
            for gone in results.keys() - blocks.keys():
                del results[gone]

    def block_outcome(self, cidr: str, block: Block) -> BlockPlan:
        """The block's route and VTEP entries, from the memo while nothing they depend on
        changed (its problems are reported either way)."""
        node = self.state.nodes.get(block.affinity) if block.affinity is not None else None
        results = self.state.block_memo.results
        cached = results.get(cidr)
        if cached is None or cached[0] is not block or cached[1] is not node:
            mark = len(self.problems)
            outcome = self._block_plan(cidr, block.affinity, node)
            cached = (block, node, outcome, tuple(self.problems[mark:]))
            results[cidr] = cached
        elif cached[3]:
            self.problems.extend(cached[3])
        return cached[2]

    def place_block(self, cidr: str, outcome: BlockPlan) -> None:
        route, neigh, fdb = outcome
        if route is None:
            return
        self.block_plans[cidr] = outcome
        if route.type is RouteType.BLACKHOLE:
            self.local_blocks.add(route.dst)
        key = route.key
        # Fast path: nothing to clash with (the VTEP entries, shared by a node's blocks,
        # are the very objects already placed).
        if key not in self.routes and (
            fdb is None
            or (
                neigh is not None
                and self.fdb.get(fdb.key) is fdb
                and self.neighbours.get(neigh.key) is neigh
            )
        ):
            self.routes[key] = route
            self.route_src[key] = ("Block", cidr)
            if fdb is not None and neigh is not None:
                self.neigh_refs[neigh.key] += 1
                self.fdb_refs[fdb.key] += 1
            return
        self._place_block(cidr, route, neigh, fdb)

    def _place_block(
        self, cidr: str, route: Route, neigh: Neighbour | None, fdb: FdbEntry | None
    ) -> None:
        if fdb is not None:
            clash = self.fdb.get(fdb.key)
            if clash is not None and clash is not fdb and clash != fdb:
                self.problem("Block", cidr, f"another node already uses VTEP MAC {fdb.mac}")
                self.clashed.add(("Block", cidr))
                return
        if neigh is not None and not self._add_neighbour(neigh, "Block", cidr):
            return
        if self._add_route(route, "Block", cidr) and fdb is not None:
            self.fdb[fdb.key] = fdb
            self.fdb_refs[fdb.key] = self.fdb_refs.get(fdb.key, 0) + 1

    def _block_plan(self, cidr: str, affinity: str | None, node: NodeInfo | None) -> BlockPlan:
        nothing: BlockPlan = (None, None, None)
        parsed = canonical_prefix(cidr)
        if parsed is None:
            self.problem("Block", cidr, "bad CIDR")
            return nothing
        dst, prefix = parsed
        pool = self._pool_of(prefix)
        # A block outside every pool (its pool was deleted) gets no route at all.
        if pool is None or affinity is None:
            return nothing
        if affinity == self.me:
            route = Route(
                dst,
                self.cfg.route_protocol,
                type=RouteType.BLACKHOLE,
                metric=self._metric(prefix[0]),
                table=self.cfg.route_table,
                kind=RouteKind.BLACKHOLE,
            )
            return (route, None, None)
        if pool.encap != "vxlan":
            return nothing  # no-encap and IPIP remote blocks follow bgpd's best paths
        if node is None:
            self.problem("Block", cidr, f"affine node {affinity!r} is unknown")
            return nothing
        return self._vxlan_block(cidr, dst, pool, node)

    def _vxlan_device(self, mtu: int) -> VxlanDevice | None:
        node = self.state.nodes.get(self.me)
        if node is None or self.local_v4 is None:
            self.problem("Node", self.me, "VXLAN needs this node's IPv4 address")
            return None
        tunnel = parse_address(node.ipv4_vxlan_tunnel_address or "")
        if tunnel is None or tunnel.version != 4:
            self.problem("Node", self.me, "VXLAN needs this node's ipv4VXLANTunnelAddr")
            return None
        parent = self._parent_nic(self.local_v4.ip)
        if parent is None:
            self.problem("Node", self.me, f"no host interface carries {self.local_v4.ip}")
            return None
        mac = normalise_mac(node.vxlan_tunnel_mac or "") or vtep_mac_for(self.me)
        return VxlanDevice(
            name=self.cfg.vxlan_device,
            vni=self.cfg.vxlan_vni,
            port=self.cfg.vxlan_port,
            local=str(self.local_v4.ip),
            parent=parent,
            mac=mac,
            mtu=mtu,
            address=f"{tunnel}/32",
        )

    def _ipip_device(self, mtu: int) -> IpipDevice:
        """tunl0 up with the IPIP MTU and the node's IPIP tunnel address (calico.md §4.2, §4.6;
        felix's configureIPIPDevice). Without an address it is still configured, with none:
        remote blocks route through it either way, and the missing address is reported."""
        node = self.state.nodes.get(self.me)
        text = node.ipv4_ipip_tunnel_address if node is not None else None
        tunnel = parse_address(text or "")
        if node is not None and (tunnel is None or tunnel.version != 4):
            self.problem("Node", self.me, "IPIP needs this node's ipv4IPIPTunnelAddr")
            tunnel = None
        address = f"{tunnel}/32" if tunnel is not None else ""
        return IpipDevice(self.cfg.ipip_device, mtu, address)

    def _parent_nic(self, ip: IPAddress) -> str | None:
        for iface in sorted(self.state.host_interfaces.values(), key=lambda i: i.name):
            for text in iface.addresses:
                parsed = parse_interface(text)
                if parsed is not None and parsed.ip == ip:
                    return iface.name
        return self._connected_dev(_host_ip(ip))

    def _same_subnet(self, ip: HostIP) -> bool:
        # calico.md §4.4: the subnet is the prefix length of the local bgp.ipv4Address.
        return self.local_v4_net is not None and ip_within(ip, self.local_v4_net)

    def _remote(self, node: NodeInfo) -> _Remote:
        known = self.remotes.get(node.name)
        if known is not None:
            return known
        node_ip = _node_address(node, 4)
        ip = _host_ip(node_ip.ip) if node_ip is not None else None
        direct = tunnel = neighbour = fdb = None
        if ip is not None:
            dev = self._connected_dev(ip)
            direct = NextHop(ip[2], dev, onlink=True) if dev is not None else None
        vtep = parse_ip(node.ipv4_vxlan_tunnel_address or "")
        if ip is not None and vtep is not None and vtep[0] == 4 and self.vxlan is not None:
            mac = normalise_mac(node.vxlan_tunnel_mac or "") or vtep_mac_for(node.name)
            tunnel = NextHop(vtep[2], self.vxlan.name, onlink=True)
            neighbour = Neighbour(self.vxlan.name, vtep[2], mac)
            fdb = FdbEntry(self.vxlan.name, mac, ip[2])
        remote = _Remote(ip, direct, tunnel, neighbour, fdb)
        self.remotes[node.name] = remote
        return remote

    def _vxlan_block(self, cidr: str, dst: str, pool: ValidPool, node: NodeInfo) -> BlockPlan:
        """`cidr` names the block in problems; `dst` is its canonical form for the route."""
        nothing: BlockPlan = (None, None, None)
        remote = self._remote(node)
        if remote.ip is None:
            self.problem("Block", cidr, f"node {node.name!r} has no IPv4 address")
            return nothing
        if pool.cross_subnet and self._same_subnet(remote.ip):
            if remote.direct is None:
                reason = f"next hop {remote.ip[2]} is not on a connected subnet"
                self.problem("Block", cidr, reason)
                return nothing
            return (self._via(dst, 4, [remote.direct], RouteKind.REMOTE_DIRECT), None, None)
        if self.vxlan is None:
            self.problem("Block", cidr, "this node has no VXLAN device")
            return nothing
        if remote.tunnel is None:
            self.problem("Block", cidr, f"node {node.name!r} has no ipv4VXLANTunnelAddr")
            return nothing
        route = self._via(dst, 4, [remote.tunnel], RouteKind.REMOTE_VXLAN)
        return (route, remote.neighbour, remote.fdb)

    # -- best paths: no-encap, IPIP, external (calico.md §4.2, §4.4) -----------------------

    def _best_paths(self) -> None:
        # Best paths are most of the routes on a big cluster and mostly unchanged between two
        # plans: reuse each one's result while its path and everything it depends on (pools,
        # connected subnets, the local subnet, the configuration) are unchanged. Distinct
        # prefixes give distinct route keys, so the order of this loop does not matter.
        context = (
            tuple(self.pools),
            tuple(self.connected),
            self.local_v4_net,
            self.ipip_mtu,
            self.cfg,
        )
        memo = self.state.best_path_memo
        if memo.context != context:
            memo.context = context
            memo.results.clear()
        results, best = memo.results, self.state.best_paths
        for text, path in best.items():
            self.place_path(text, path, self.path_outcome(text, path))
        if len(results) > len(best):
            for gone in results.keys() - best.keys():
                del results[gone]

    def path_outcome(self, text: str, path: BestPath) -> Route | None:
        results = self.state.best_path_memo.results
        cached = results.get(text)
        if cached is None or cached[0] is not path:
            mark = len(self.problems)
            route = self._best_path_route(text, path)
            cached = (path, route, tuple(self.problems[mark:]))
            results[text] = cached
        elif cached[2]:
            self.problems.extend(cached[2])
        return cached[1]

    def place_path(self, text: str, path: BestPath, route: Route | None) -> None:
        if route is None:
            return
        self.path_routes[text] = route
        if route.dst in self.local_blocks:
            # Our own block: the blackhole stays; remembered in case the block goes.
            self.suppressed.setdefault(route.dst, []).append(text)
            return
        key = route.key
        if key in self.routes:
            self._add_route(route, "BestPath", text)  # reports the clash
            return
        self.routes[key] = route
        self.route_src[key] = ("BestPath", text)
        if path.stale:
            self.stale.add(route.dst)

    def _best_path_route(self, text: str, path: BestPath) -> Route | None:
        parsed = canonical_prefix(text)
        if parsed is None:
            self.problem("BestPath", text, "bad prefix")
            return None
        dst, prefix = parsed
        pool = self._pool_of(prefix)
        if pool is not None and pool.encap == "vxlan":
            return None  # VXLAN routes come from the store (calico.md §4.1)
        if pool is None and not self.cfg.install_external_routes:
            return None
        hops: list[NextHop] = []
        for hop_text in path.next_hops:
            hop = self._resolve(text, prefix[0], pool, hop_text)
            if hop is not None:
                hops.append(hop)
        if not hops:
            return None
        if pool is None:
            kind = RouteKind.EXTERNAL
        elif any(h.dev == self.cfg.ipip_device for h in hops):
            kind = RouteKind.REMOTE_IPIP
        else:
            kind = RouteKind.REMOTE_DIRECT
        return self._via(dst, prefix[0], hops, kind)

    def _resolve(
        self, prefix: str, version: int, pool: ValidPool | None, text: str
    ) -> NextHop | None:
        # Thousands of prefixes share a few hundred next hops (a node's blocks): resolve each
        # (next hop, family, kind of pool) once per plan; a reason is reported per prefix.
        key = (text, version, pool.encap if pool else None, pool.cross_subnet if pool else False)
        known = self.hops.get(key)
        if known is None:
            known = self.hops[key] = self._resolve_hop(version, pool, text)
        if isinstance(known, str):
            self.problem("BestPath", prefix, known)
            return None
        return known

    def _resolve_hop(self, version: int, pool: ValidPool | None, text: str) -> NextHop | str:
        ip = parse_ip(text)
        if ip is None:
            return f"bad next hop {text!r}"
        if ip[0] != version:
            return f"next hop {ip[2]} is of the wrong family"
        direct = (
            pool is None or pool.encap == "none" or (pool.cross_subnet and self._same_subnet(ip))
        )
        if not direct:
            return NextHop(ip[2], self.cfg.ipip_device, onlink=True)
        dev = self._connected_dev(ip)
        if dev is None:
            return f"next hop {ip[2]} is not on a connected subnet"
        # Cluster routes are onlink like felix's (§4.2); external ones are plain gateway routes.
        return NextHop(ip[2], dev, onlink=pool is not None)

    # -- natOutgoing (calico.md §5.7) ------------------------------------------------------

    def _nat(self) -> NftTable | None:
        exclusions: list[IPNetwork] = []
        for text in self.cfg.nat_exclusions:
            net = parse_network(text)
            if net is None:
                self.problem("FelixConfiguration", "natExclusions", f"bad CIDR {text!r}")
            else:
                exclusions.append(net)
        table = nat_table(
            self.cfg.nft_table,
            [p.net for p in self.pools],
            [p.net for p in self.pools if p.nat_outgoing],
            exclusions,
        )
        if table is not None and not ownership(self.cfg).owns_nft_table("inet", table.name):
            self.problem(
                "FelixConfiguration",
                "nftTable",
                f"{table.name!r} lacks the {self.cfg.nft_table_prefix!r} prefix felixd owns",
            )
            return None
        return table
