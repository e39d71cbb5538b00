"""Adapters from the outside world to the planner's inputs: store resources and bgpd's stream.

Store side: `store_snapshots` lists and watches, and `StoreAdapter(node).adapt(resources)`
(or `inputs_from_resources(node, resources)` once) turns the decoded resources felixd watches
(Node, IPPool, IPAMBlock and confirmed BlockAffinities, this host's WorkloadEndpoints,
FelixConfiguration) into one snapshot per input kind plus the `FelixConfig`; the daemon hands
each kind to `PlannerState.snapshot`, which is a no-op when nothing of that kind changed. The
adapter remembers each resource object, so an update adapts only what changed. bgpd side:
`best_paths(routes)` turns the `subscribe` stream's route dicts (`prefix`, `next_hops`, `stale`,
`local`) into `BestPath`s; locally originated prefixes (this node's own blocks) are skipped,
since they are the blackholes and workload routes the store already gives.

Invariants: nothing here raises on a resource's content; a value that cannot be adapted is
skipped and returned as a `Problem` line (the planner validates what it gets).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from felixd.plan import BestPath, Block, EncapMode, FelixConfig, NodeInfo, Pool, WorkloadEndpoint
from felixd.plan.model import Problem
from resources.felix import FelixConfigurationSpec, resolve_felix_settings
from resources.keys import list_prefix
from resources.resource import Resource
from store.resourcewatch import watch_resources

WATCHED_KINDS = (
    "Node",
    "IPPool",
    "IPAMBlock",
    "BlockAffinity",
    "WorkloadEndpoint",
    "FelixConfiguration",
)

# felixd's protocol when FelixConfiguration does not set deviceRouteProtocol: Calico's default
# there is 3 (boot), which would make every boot route felixd's; docs/felixd.md uses 80.
DEFAULT_PROTOCOL = 80


@dataclass(slots=True)
class StoreInputs:
    nodes: list[NodeInfo] = field(default_factory=list)
    pools: list[Pool] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    endpoints: list[WorkloadEndpoint] = field(default_factory=list)
    config: FelixConfig = field(default_factory=FelixConfig)
    problems: list[Problem] = field(default_factory=list)


def _encap(text: str) -> EncapMode:
    return {m.value: m for m in EncapMode}.get(text, EncapMode.NEVER)


def node_info(res: Resource[object]) -> NodeInfo:
    spec = res.spec
    bgp = getattr(spec, "bgp", None)
    addresses = tuple(
        str(a)
        for a in (getattr(bgp, "ipv4_address", None), getattr(bgp, "ipv6_address", None))
        if a is not None
    )
    tunnel = getattr(spec, "ipv4_vxlan_tunnel_addr", None)
    mac = getattr(spec, "vxlan_tunnel_mac_addr", None)
    ipip = getattr(bgp, "ipv4_ipip_tunnel_addr", None)
    return NodeInfo(
        res.metadata.name,
        addresses,
        str(tunnel) if tunnel is not None else None,
        mac or None,
        str(ipip) if ipip is not None else None,
    )


def pool(res: Resource[object]) -> Pool:
    spec = res.spec
    return Pool(
        res.metadata.name,
        str(getattr(spec, "cidr", "")),
        ipip_mode=_encap(str(getattr(spec, "ipip_mode", "Never"))),
        vxlan_mode=_encap(str(getattr(spec, "vxlan_mode", "Never"))),
        nat_outgoing=bool(getattr(spec, "nat_outgoing", False)),
        disabled=bool(getattr(spec, "disabled", False)),
    )


def block(res: Resource[object]) -> Block | None:
    spec = res.spec
    if getattr(spec, "deleted", False):
        return None
    affinity = getattr(spec, "affinity", None)
    node = None
    if isinstance(affinity, str) and affinity.startswith("host:"):
        node = affinity.partition(":")[2]
    return Block(str(getattr(spec, "cidr", "")), node)


def endpoint(res: Resource[object]) -> WorkloadEndpoint:
    spec = res.spec
    name = (
        f"{res.metadata.namespace}/{res.metadata.name}"
        if res.metadata.namespace
        else res.metadata.name
    )
    return WorkloadEndpoint(
        name,
        str(getattr(spec, "interface_name", "")),
        tuple(str(n) for n in getattr(spec, "ip_networks", ())),
        getattr(spec, "mac", "") or None,
    )


def felix_config(
    default: FelixConfigurationSpec | None, node: FelixConfigurationSpec | None
) -> FelixConfig:
    """FelixConfiguration `default` and `node.<name>` merged (per-host wins), in planner terms."""
    s = resolve_felix_settings(default, node)
    explicit = [spec.device_route_protocol for spec in (node, default) if spec is not None]
    protocol = next((p for p in explicit if p is not None), DEFAULT_PROTOCOL)
    return FelixConfig(
        route_protocol=protocol,
        interface_prefix=s.interface_prefix.split(",")[0],
        remove_external_routes=s.remove_external_routes,
        vxlan_vni=s.vxlan_vni,
        vxlan_port=s.vxlan_port,
        vxlan_mtu=s.vxlan_mtu,
        ipip_mtu=s.ipip_mtu,
        wireguard_enabled=s.wireguard_enabled,
        wireguard_mtu=s.wireguard_mtu,
        route_refresh_interval=s.route_refresh_interval.seconds,
    )


Adapted = NodeInfo | Pool | Block | WorkloadEndpoint | FelixConfigurationSpec | tuple[str, str]


def _adapt(node: str, res: Resource[object]) -> Adapted | None:
    """One resource in planner terms (a BlockAffinity as (cidr, node)); None to skip it."""
    match res.kind:
        case "Node":
            return node_info(res)
        case "IPPool":
            return pool(res)
        case "IPAMBlock":
            return block(res)
        case "BlockAffinity":
            spec = res.spec
            if getattr(spec, "state", "") == "confirmed" and not getattr(spec, "deleted", False):
                return (str(getattr(spec, "cidr", "")), str(getattr(spec, "node", "")))
        case "WorkloadEndpoint":
            if getattr(res.spec, "node", "") == node:
                return endpoint(res)
        case "FelixConfiguration":
            if isinstance(res.spec, FelixConfigurationSpec):
                return res.spec
    return None


class StoreAdapter:
    """`inputs_from_resources` with a memo per resource object. The store watch yields the same
    object for a value that did not change (it decodes once per key and revision), so an update
    adapts only the objects it has not seen (found by C-level set operations on object ids) and
    hands the planner the very same input objects, whose snapshot comparison is then an
    identity check: one WorkloadEndpoint or block changed among 10,000 costs a few set and dict
    operations, not 10,000 re-adaptations (about 200 ms of CIDR formatting)."""

    def __init__(self, node: str) -> None:
        self.node = node
        # id -> (resource, adapted value, slot); holding the resource keeps its id unique.
        self._seen: dict[int, tuple[Resource[object], Adapted | None, int]] = {}
        self._slots: list[dict[int, Any]] = [{} for _ in range(FELIX_SLOT + 1)]

    def adapt(self, resources: Iterable[Resource[object]]) -> StoreInputs:
        out = StoreInputs()
        seen, slots = self._seen, self._slots
        now = dict(zip(map(id, resources), resources, strict=True))
        for gone in seen.keys() - now.keys():
            _res, _value, slot = seen.pop(gone)
            del slots[slot][gone]
        for new in now.keys() - seen.keys():
            res = now[new]
            try:
                value = _adapt(self.node, res)
            except (TypeError, ValueError) as exc:
                out.problems.append(Problem(res.kind, res.metadata.name, str(exc)))
                continue  # not remembered: tried (and reported) again next time
            slot = _slot(value)
            seen[new] = (res, value, slot)
            slots[slot][new] = (res.metadata.name, value) if slot == FELIX_SLOT else value
        out.nodes = list(slots[1].values())
        out.pools = list(slots[2].values())
        out.blocks = list(slots[3].values())
        out.endpoints = list(slots[4].values())
        pairs: dict[str, str] = dict(slots[5].values())
        specs: dict[str, FelixConfigurationSpec] = dict(slots[FELIX_SLOT].values())
        # A confirmed affinity stands for its block until the block itself is written (confd
        # announces a block from its affinity, so felixd must blackhole it from the same moment).
        if pairs:
            have = {b.cidr for b in out.blocks}
            out.blocks += [Block(c, n) for c, n in sorted(pairs.items()) if c not in have]
        out.config = felix_config(specs.get("default"), specs.get(f"node.{self.node}"))
        return out


FELIX_SLOT = 6


def _slot(value: Adapted | None) -> int:
    match value:
        case NodeInfo():
            return 1
        case Pool():
            return 2
        case Block():
            return 3
        case WorkloadEndpoint():
            return 4
        case tuple():
            return 5
        case FelixConfigurationSpec():
            return FELIX_SLOT
    return 0  # skipped


def inputs_from_resources(node: str, resources: Iterable[Resource[object]]) -> StoreInputs:
    return StoreAdapter(node).adapt(resources)


def best_paths(routes: Sequence[Mapping[str, object]]) -> list[BestPath]:
    """bgpd's route dicts → BestPaths (learned ones only: local prefixes are this node's)."""
    found = []
    for route in routes:
        hops = route.get("next_hops")
        if route.get("local") or not isinstance(hops, list) or not hops:
            continue
        found.append(
            BestPath(
                str(route.get("prefix", "")), tuple(str(h) for h in hops), bool(route.get("stale"))
            )
        )
    return found


async def store_snapshots(
    endpoints: Sequence[str], store_prefix: str
) -> AsyncIterator[Sequence[Resource[object]]]:
    """Every kind felixd needs, through `store.resourcewatch` (all listed before the first)."""
    prefixes = [list_prefix(kind, prefix=store_prefix) for kind in WATCHED_KINDS]
    async for resources in watch_resources(endpoints, prefixes, store_prefix):
        yield resources
