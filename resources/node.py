"""Node (calico.md §1.4): BGP addresses, AS, route-reflector cluster id, tunnel addresses.

`spec.bgp.ipv4Address` is "address and network" (`10.192.0.2/16`): the address is the node's
BGP/router IP and the network decides CrossSubnet. Invariants after `finish_node`: addresses are
of the family their field names, the cluster id is an IPv4 dotted quad, and
`status.wireguardPublicKey` (written by felixd) is base64 of 32 bytes.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from resources.errors import ResourceError
from resources.schema import (
    AS_NUMBER,
    CIDR,
    IP,
    IP_WITH_NET,
    IPV4_TEXT,
    MAC,
    NONEMPTY,
    STR,
    IPAddress,
    IPInterface,
    IPNetwork,
    ListOf,
    Struct,
    checked,
    field,
    opt,
)


@dataclass(frozen=True, slots=True)
class NodeBGPSpec:
    ipv4_address: IPInterface | None = opt("ipv4Address", IP_WITH_NET)
    ipv6_address: IPInterface | None = opt("ipv6Address", IP_WITH_NET)
    as_number: int | None = opt("asNumber", AS_NUMBER)
    route_reflector_cluster_id: str | None = opt("routeReflectorClusterID", IPV4_TEXT)
    ipv4_ipip_tunnel_addr: IPAddress | None = opt("ipv4IPIPTunnelAddr", IP)


@dataclass(frozen=True, slots=True)
class NodeWireguardSpec:
    interface_ipv4_address: IPAddress | None = opt("interfaceIPv4Address", IP)
    interface_ipv6_address: IPAddress | None = opt("interfaceIPv6Address", IP)


@dataclass(frozen=True, slots=True)
class NodeAddress:
    address: str = field("address", NONEMPTY, required=True)
    type: str = field("type", STR, "")


@dataclass(frozen=True, slots=True)
class OrchRef:
    orchestrator: str = field("orchestrator", NONEMPTY, required=True)
    node_name: str = field("nodeName", STR, "")


@dataclass(frozen=True, slots=True)
class NodeSpec:
    bgp: NodeBGPSpec | None = opt("bgp", Struct(NodeBGPSpec))
    ipv4_vxlan_tunnel_addr: IPAddress | None = opt("ipv4VXLANTunnelAddr", IP)
    vxlan_tunnel_mac_addr: str | None = opt("vxlanTunnelMACAddr", MAC)
    ipv6_vxlan_tunnel_addr: IPAddress | None = opt("ipv6VXLANTunnelAddr", IP)
    vxlan_tunnel_mac_addr_v6: str | None = opt("vxlanTunnelMACAddrV6", MAC)
    wireguard: NodeWireguardSpec | None = opt("wireguard", Struct(NodeWireguardSpec))
    addresses: tuple[NodeAddress, ...] = field("addresses", ListOf(Struct(NodeAddress)), ())
    orch_refs: tuple[OrchRef, ...] = field("orchRefs", ListOf(Struct(OrchRef)), ())

    @property
    def ipv4(self) -> IPAddress | None:
        """The node's IPv4 BGP address (router IP), without its network."""
        return (
            None if self.bgp is None or self.bgp.ipv4_address is None else self.bgp.ipv4_address.ip
        )

    @property
    def ipv6(self) -> IPAddress | None:
        return (
            None if self.bgp is None or self.bgp.ipv6_address is None else self.bgp.ipv6_address.ip
        )

    @property
    def ipv4_network(self) -> IPNetwork | None:
        """The subnet of `bgp.ipv4Address` (CrossSubnet: a peer inside it is on-link)."""
        if self.bgp is None or self.bgp.ipv4_address is None:
            return None
        return self.bgp.ipv4_address.network

    @property
    def route_reflector_cluster_id(self) -> str | None:
        return None if self.bgp is None else self.bgp.route_reflector_cluster_id

    @property
    def as_number(self) -> int | None:
        return None if self.bgp is None else self.bgp.as_number


def _wireguard_key(text: str) -> str | None:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    return None if len(raw) == 32 else "must be a base64 WireGuard public key (32 bytes)"


@dataclass(frozen=True, slots=True)
class NodeStatus:
    wireguard_public_key: str | None = opt("wireguardPublicKey", checked(_wireguard_key))
    wireguard_public_key_v6: str | None = opt("wireguardPublicKeyV6", checked(_wireguard_key))
    pod_cidrs: tuple[IPNetwork, ...] = field("podCIDRs", ListOf(CIDR), ())


_FAMILY_FIELDS: tuple[tuple[str, str, int], ...] = (
    ("spec.bgp.ipv4Address", "ipv4_address", 4),
    ("spec.bgp.ipv6Address", "ipv6_address", 6),
    ("spec.bgp.ipv4IPIPTunnelAddr", "ipv4_ipip_tunnel_addr", 4),
)


def finish_node(spec: NodeSpec) -> NodeSpec:
    if spec.bgp == NodeBGPSpec():
        raise ResourceError("spec.bgp", "should not be empty (leave it out instead)")
    if spec.bgp is not None:
        for path, attr, version in _FAMILY_FIELDS:
            value = getattr(spec.bgp, attr)
            if value is not None and value.version != version:
                raise ResourceError(path, f"must be an IPv{version} address")
    for path, value, version in (
        ("spec.ipv4VXLANTunnelAddr", spec.ipv4_vxlan_tunnel_addr, 4),
        ("spec.ipv6VXLANTunnelAddr", spec.ipv6_vxlan_tunnel_addr, 6),
        (
            "spec.wireguard.interfaceIPv4Address",
            spec.wireguard.interface_ipv4_address if spec.wireguard else None,
            4,
        ),
        (
            "spec.wireguard.interfaceIPv6Address",
            spec.wireguard.interface_ipv6_address if spec.wireguard else None,
            6,
        ),
    ):
        if value is not None and value.version != version:
            raise ResourceError(path, f"must be an IPv{version} address")
    return spec
