"""The planner's inputs: small frozen values the daemon builds from store resources and bgpd.

These mirror the fields of Calico's resources that felix reads when it programs routes
(calico.md §1.1 IPPool, §1.4 Node, §1.5 FelixConfiguration, §1.6 WorkloadEndpoint, §1.12 IPAM
blocks), plus two inputs that come from elsewhere: bgpd's best paths and the host's own
interfaces (read from the kernel, needed to pick the parent NIC and to tell whether a next hop
is reachable). The planner does not depend on the resource model package; the daemon adapts.

Invariants: every value is immutable and hashable; addresses and CIDRs stay strings here so a
malformed resource can still be represented, and the planner validates them (a bad one becomes a
status problem, never an exception).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class EncapMode(enum.Enum):
    """IPPool `ipipMode` / `vxlanMode` (calico.md §1.1)."""

    NEVER = "Never"
    ALWAYS = "Always"
    CROSS_SUBNET = "CrossSubnet"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A Node resource (calico.md §1.4).

    `addresses` hold `Node.spec.bgp.ipv4Address` / `ipv6Address`: the node IP *with* the prefix
    length of its subnet ("10.0.0.2/24"); the subnet is what CrossSubnet compares against (§4.4).
    """

    name: str
    addresses: tuple[str, ...] = ()
    ipv4_vxlan_tunnel_address: str | None = None
    vxlan_tunnel_mac: str | None = None
    ipv4_ipip_tunnel_address: str | None = None  # Node.spec.bgp.ipv4IPIPTunnelAddr

    @property
    def key(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Pool:
    """An IPPool (calico.md §1.1). `disabled` only stops IPAM; routes are still programmed."""

    name: str
    cidr: str
    ipip_mode: EncapMode = EncapMode.NEVER
    vxlan_mode: EncapMode = EncapMode.NEVER
    nat_outgoing: bool = False
    disabled: bool = False

    @property
    def key(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Block:
    """An IPAM block and its affinity: `affinity` is the node name of `host:<node>`, or None."""

    cidr: str
    affinity: str | None = None

    @property
    def key(self) -> str:
        return self.cidr


@dataclass(frozen=True, slots=True)
class WorkloadEndpoint:
    """A WorkloadEndpoint on this host (calico.md §1.6): host-side veth, pod addresses, pod MAC."""

    name: str
    interface: str
    addresses: tuple[str, ...] = ()
    mac: str | None = None

    @property
    def key(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class BestPath:
    """bgpd's best path(s) for one prefix: ECMP next hops, and whether they are graceful-restart
    stale (RFC 4724 §4.2: kept while the peer restarts; the daemon withdraws them when the
    restart time runs out, the planner keeps them installed until then)."""

    prefix: str
    next_hops: tuple[str, ...]
    stale: bool = False

    @property
    def key(self) -> str:
        return self.prefix


@dataclass(frozen=True, slots=True)
class HostInterface:
    """A non-workload interface of this host as the kernel shows it: name, addresses with prefix
    length, MTU and whether it is up. Used for the parent NIC, reachability and host MTU."""

    name: str
    addresses: tuple[str, ...] = ()
    mtu: int = 1500
    up: bool = True

    @property
    def key(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class FelixConfig:
    """The FelixConfiguration fields the planner reads (calico.md §1.5), Calico's defaults.

    `route_protocol` is 80: felix's proto for everything it programs when `deviceRouteProtocol`
    is left at boot (§4.2). MTUs of 0 mean "derive from the host MTU" (§4.6); a `host_mtu` of 0
    means "the smallest MTU of the up host interfaces".
    """

    route_protocol: int = 80
    route_table: int = 254
    route_metric: int = 0
    interface_prefix: str = "cali"
    remove_external_routes: bool = True
    vxlan_device: str = "vxlan.calico"
    vxlan_vni: int = 4096
    vxlan_port: int = 4789
    vxlan_mtu: int = 0
    ipip_device: str = "tunl0"
    ipip_mtu: int = 0
    wireguard_enabled: bool = False
    wireguard_mtu: int = 0
    host_mtu: int = 0
    nat_exclusions: tuple[str, ...] = ()
    nft_table: str = "tabby-nat"
    nft_table_prefix: str = "tabby"
    install_external_routes: bool = True
    route_refresh_interval: float = 90.0


Input = NodeInfo | Pool | Block | WorkloadEndpoint | BestPath | HostInterface
