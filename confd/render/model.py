"""The BGP configuration of one node, as confd decides it, before any daemon's syntax.

confd's decisions (who peers with whom, who is passive, who is a route-reflector client,
what is originated with which communities) are made once into this model; renderers turn
it into tabby-bgpd's TOML or BIRD 2's configuration. Golden tests assert on the model, so
both renderers inherit the same peering decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Literal

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
PeerType = Literal["node-to-node mesh", "global", "node specific"]
NextHop = Literal["auto", "self", "keep"]


@dataclass(frozen=True, slots=True)
class PeerPlan:
    """One BGP session of this node (one address family)."""

    name: str  # Calico's protocol name: Mesh_10_0_0_2, Global_..., Node_...
    address: IPAddress
    remote_as: int
    peer_type: PeerType
    port: int = 179
    local_as: int | None = None  # localASNumber override
    source_address: IPAddress | None = None
    passive: bool = False
    rr_client: bool = False
    cluster_id: str = ""  # set with rr_client: this node's cluster id
    password: str = ""
    ttl_security: int = 0  # hops; 0 = off
    keepalive_time: int = 0  # seconds; 0 = the daemon's default
    graceful_restart_time: int = 0  # seconds; 0 = the daemon's default
    next_hop: NextHop = "auto"
    allow_local_as: int = 0
    source: str = ""  # what produced this peering: "mesh" or "BGPPeer <name>"

    @property
    def family(self) -> Literal["ipv4", "ipv6"]:
        return "ipv4" if self.address.version == 4 else "ipv6"


@dataclass(frozen=True, slots=True)
class Origination:
    """A prefix this node announces: one of its affine blocks, with its communities."""

    prefix: IPNetwork
    communities: tuple[str, ...] = ()  # aa:nn
    large_communities: tuple[str, ...] = ()  # aa:nn:mm


@dataclass(frozen=True, slots=True)
class PoolExport:
    """An IP pool as the export filter sees it (Calico's `calico_export_to_bgp_peers`): routes
    inside an exported pool go out down to its block size, never the addresses inside a
    block; nothing inside a `disableBGPExport` pool goes out."""

    cidr: IPNetwork
    block_size: int
    export: bool = True


@dataclass(frozen=True, slots=True)
class Problem:
    """Something confd skipped, with the resource and why (shown in confd's status)."""

    resource: str
    reason: str


@dataclass(frozen=True, slots=True)
class NodeBGPPlan:
    node: str
    router_id: IPv4Address
    local_as: int
    listen_port: int = 179
    listen_address: IPAddress | None = None  # bindMode NodeIP
    ipv4_address: IPAddress | None = None
    ipv6_address: IPAddress | None = None
    cluster_id: str = ""  # routeReflectorClusterID: this node reflects
    peers: tuple[PeerPlan, ...] = ()
    originate: tuple[Origination, ...] = ()
    pools: tuple[PoolExport, ...] = ()  # every pool, for the export filter
    log_severity: str = "Info"
    problems: tuple[Problem, ...] = field(default=(), compare=False)
