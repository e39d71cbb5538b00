"""The dataplane data model: what felixd wants in the kernel and what the kernel holds.

One model serves both sides. The planner produces a `DesiredDataplane`; the netlink/nftables
shell reads an `ObservedState` of the same shapes; the differ compares them field by field. So
every field here is one the kernel reports back (iproute2 names: proto, scope, onlink, metric,
nexthop), normalised by the shell the same way the planner writes it.

Ownership (calico.md §4.3) lives here too, in one place, because both the differ and the tests
that prove "foreign state untouched" must agree on it: felixd owns routes in its table that carry
its protocol number, and (with `remove_external_routes`, Calico's default) every route on a
`cali*` or `vxlan.calico` interface; permanent neighbour entries and all FDB entries on those
interfaces; the `vxlan.calico` device; sysctls of `cali*` interfaces; nftables tables whose name
starts with its prefix. Nothing else is ever deleted or replaced.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

# Kernel constants (linux/rtnetlink.h): rtm_type and rtm_scope values as the kernel reports them.


class RouteType(enum.IntEnum):
    UNICAST = 1  # RTN_UNICAST
    BLACKHOLE = 6  # RTN_BLACKHOLE


class RouteScope(enum.IntEnum):
    UNIVERSE = 0  # RT_SCOPE_UNIVERSE
    LINK = 253  # RT_SCOPE_LINK
    HOST = 254  # RT_SCOPE_HOST


class RouteKind(enum.Enum):
    """Why felixd wants a route (calico.md §4.2). Not a kernel field: never compared."""

    WORKLOAD = "workload"
    BLACKHOLE = "blackhole"
    REMOTE_DIRECT = "remote-direct"
    REMOTE_VXLAN = "remote-vxlan"
    REMOTE_IPIP = "remote-ipip"
    EXTERNAL = "external"


@dataclass(frozen=True, slots=True, order=True)
class NextHop:
    """One path of a multipath route (RTA_MULTIPATH / struct rtnexthop)."""

    gateway: str
    dev: str
    onlink: bool = False
    weight: int = 1


RouteKey = tuple[int, str, int]
"""(table, dst, metric): what makes two IPv4/IPv6 routes collide in the kernel (an exclusive add
of a second route with the same key fails with EEXIST, whatever its type or device)."""


@dataclass(frozen=True, slots=True)
class Route:
    dst: str
    protocol: int
    type: RouteType = RouteType.UNICAST
    scope: RouteScope = RouteScope.UNIVERSE
    dev: str | None = None
    gateway: str | None = None
    onlink: bool = False
    metric: int = 0
    table: int = 254
    mtu: int | None = None
    nexthops: tuple[NextHop, ...] = ()
    kind: RouteKind | None = field(default=None, compare=False)

    @property
    def key(self) -> RouteKey:
        return (self.table, self.dst, self.metric)

    @property
    def devices(self) -> frozenset[str]:
        """Every interface the route uses: its own and its next hops'."""
        devs = {nh.dev for nh in self.nexthops}
        if self.dev is not None:
            devs.add(self.dev)
        return frozenset(devs)


NeighbourKey = tuple[str, str]
"""(dev, address)."""


@dataclass(frozen=True, slots=True)
class Neighbour:
    """An ARP/NDP entry; felixd's are `nud permanent` (calico.md §4.2, §4.5)."""

    dev: str
    address: str
    lladdr: str
    permanent: bool = True

    @property
    def key(self) -> NeighbourKey:
        return (self.dev, self.address)


FdbKey = tuple[str, str]
"""(dev, mac)."""


@dataclass(frozen=True, slots=True)
class FdbEntry:
    """A bridge FDB entry on the VXLAN device: `<mac> dst <node IP> self permanent` (§4.5)."""

    dev: str
    mac: str
    dst: str

    @property
    def key(self) -> FdbKey:
        return (self.dev, self.mac)


@dataclass(frozen=True, slots=True)
class VxlanDevice:
    """The `vxlan.calico` link (calico.md §4.5). `vni`, `port`, `local` and `parent` can only be
    set when the link is created; `mac`, `mtu` and `address` can change in place."""

    name: str
    vni: int
    port: int
    local: str
    parent: str
    mac: str
    mtu: int
    address: str

    def same_identity(self, other: VxlanDevice) -> bool:
        return (self.vni, self.port, self.local, self.parent) == (
            other.vni,
            other.port,
            other.local,
            other.parent,
        )


@dataclass(frozen=True, slots=True)
class IpipDevice:
    """The IPIP device `tunl0` as felix configures it (calico.md §4.2, ipip_mgr.go): up, with
    this MTU and exactly this IPv4 address (`/32`, "" for none). The kernel makes `tunl0` when
    the ipip module loads, in every namespace; felixd never creates or deletes it."""

    name: str
    mtu: int
    address: str


@dataclass(frozen=True, slots=True)
class NftSet:
    name: str
    type: str  # "ipv4_addr" | "ipv6_addr"
    elements: tuple[str, ...]
    interval: bool = True


@dataclass(frozen=True, slots=True)
class NftMatch:
    """One match expression of a rule: `<left> <op> <right>`, e.g. `ip saddr` `==` `@pools`."""

    left: str
    op: str
    right: str


@dataclass(frozen=True, slots=True)
class NftRule:
    matches: tuple[NftMatch, ...]
    statement: str  # "masquerade", "return", "snat to 192.0.2.1"
    comment: str = ""

    def render(self) -> str:
        """The rule in `nft` syntax (`==` is implicit there)."""
        parts = [m.left if m.op == "==" else f"{m.left} {m.op}" for m in self.matches]
        words = [f"{p} {m.right}" for p, m in zip(parts, self.matches, strict=True)]
        text = " ".join([*words, self.statement])
        return f'{text} comment "{self.comment}"' if self.comment else text


@dataclass(frozen=True, slots=True)
class NftChain:
    name: str
    rules: tuple[NftRule, ...]
    type: str | None = None  # base chains only: "nat", "filter"
    hook: str | None = None
    priority: int | None = None
    policy: str | None = None


@dataclass(frozen=True, slots=True)
class NftTable:
    """One nftables table, replaced as one transaction when anything in it changes."""

    family: str
    name: str
    sets: tuple[NftSet, ...] = ()
    chains: tuple[NftChain, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        return (self.family, self.name)

    def render(self) -> str:
        """The table as an `nft -f` script body."""
        lines = [f"table {self.family} {self.name} {{"]
        for s in self.sets:
            flags = "; flags interval" if s.interval else ""
            elems = ", ".join(s.elements)
            body = f" elements = {{ {elems} }};" if s.elements else ""
            lines.append(f"  set {s.name} {{ type {s.type}{flags};{body} }}")
        for c in self.chains:
            lines.append(f"  chain {c.name} {{")
            if c.hook is not None:
                policy = f" policy {c.policy};" if c.policy else ""
                lines.append(f"    type {c.type} hook {c.hook} priority {c.priority};{policy}")
            lines.extend(f"    {r.render()}" for r in c.rules)
            lines.append("  }")
        lines.append("}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """A status entry: the resource that was skipped and why (issue 10, "bad input")."""

    kind: str
    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r}: {self.reason}"


def sysctl_interface(path: str) -> str:
    """The interface a per-interface sysctl path names: net/ipv4/conf/<if>/..., net/ipv4/neigh/<if>/..."""
    return path.split("/")[3]


@dataclass(frozen=True, slots=True)
class Ownership:
    """What felixd may delete or replace (calico.md §4.3)."""

    protocol: int = 80
    tables: frozenset[int] = frozenset({254})
    interface_prefix: str = "cali"
    devices: frozenset[str] = frozenset({"vxlan.calico"})
    remove_external_routes: bool = True
    nft_prefix: str = "tabby"

    def owns_interface(self, dev: str) -> bool:
        return dev in self.devices or dev.startswith(self.interface_prefix)

    def owns_route(self, route: Route) -> bool:
        if route.table not in self.tables:
            return False
        if route.protocol == self.protocol:
            return True
        # A route with no device (blackhole) is ours only by protocol (§4.3).
        return self.remove_external_routes and any(self.owns_interface(d) for d in route.devices)

    def owns_neighbour(self, neigh: Neighbour) -> bool:
        # Dynamic entries are the kernel's ARP cache: replaced when they sit where we want a
        # permanent one, never deleted.
        return neigh.permanent and self.owns_interface(neigh.dev)

    def owns_fdb(self, entry: FdbEntry) -> bool:
        return entry.dev in self.devices

    def owns_nft_table(self, family: str, name: str) -> bool:
        del family
        return name == self.nft_prefix or name.startswith(self.nft_prefix + "-")


@dataclass(frozen=True, slots=True)
class ObservedState:
    """What the kernel holds, read by the shell (or the recording backend).

    `links` names every interface that exists; `devices` describes the ones felixd creates.
    `sysctls` holds the values of the per-interface sysctls of owned interfaces.
    """

    routes: Mapping[RouteKey, Route] = field(default_factory=dict)
    neighbours: Mapping[NeighbourKey, Neighbour] = field(default_factory=dict)
    fdb: Mapping[FdbKey, FdbEntry] = field(default_factory=dict)
    links: frozenset[str] = frozenset()
    devices: Mapping[str, VxlanDevice] = field(default_factory=dict)
    sysctls: Mapping[str, str] = field(default_factory=dict)
    nft_tables: Mapping[tuple[str, str], NftTable] = field(default_factory=dict)
    tunnels: Mapping[str, IpipDevice] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Touched:
    """The keys an incremental update may have changed; everything else is as before."""

    routes: frozenset[RouteKey] = frozenset()
    neighbours: frozenset[NeighbourKey] = frozenset()
    fdb: frozenset[FdbKey] = frozenset()
    sysctls: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(self.routes) + len(self.neighbours) + len(self.fdb) + len(self.sysctls)


@dataclass(frozen=True, slots=True)
class DesiredDataplane:
    """The planner's output: the whole owned dataplane, plus what it could not plan and why."""

    owner: Ownership = field(default_factory=Ownership)
    routes: Mapping[RouteKey, Route] = field(default_factory=dict)
    neighbours: Mapping[NeighbourKey, Neighbour] = field(default_factory=dict)
    fdb: Mapping[FdbKey, FdbEntry] = field(default_factory=dict)
    devices: Mapping[str, VxlanDevice] = field(default_factory=dict)
    sysctls: Mapping[str, str] = field(default_factory=dict)
    nft_tables: Mapping[tuple[str, str], NftTable] = field(default_factory=dict)
    tunnels: Mapping[str, IpipDevice] = field(default_factory=dict)
    pod_mtu: int = 1500
    stale_prefixes: frozenset[str] = frozenset()
    problems: tuple[Problem, ...] = ()

    def route_counts(self) -> dict[str, int]:
        """Routes per kind, for status (`tabbyctl node status`)."""
        counts = {k.value: 0 for k in RouteKind}
        for r in self.routes.values():
            if r.kind is not None:
                counts[r.kind.value] += 1
        return counts
