"""BGPConfiguration and BGPPeer (calico.md §1.2, §1.3) and the effective BGP settings of a node.

Calico stores BGPConfiguration fields as Go pointers, so "unset" differs from the default:
the `default` object and a `node.<name>` object are merged by `resolve_bgp_settings`, which
applies the defaults confd seeds (mesh on, AS 64512, listen port 179, log severity Info,
bind mode None). Only listenPort, logSeverityScreen and prefixAdvertisements of a per-node
object override the global one (confd `updateBGPConfigCache`).

Invariants after `finish_*`: selectors parse, communities are `aa:nn` or `aa:nn:mm`, a BGPPeer
has at most one remote side (peerIP, peerSelector or localWorkloadSelector) and at most one
local side (node or nodeSelector), as Calico's validator and CRD rules demand. Like Calico,
`peerIP` without `asNumber` is accepted (confd decides what it means).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from resources.duration import DURATION, Duration
from resources.errors import ResourceError
from resources.schema import (
    AS_NUMBER,
    BOOL,
    CIDR,
    IP,
    NONEMPTY,
    PORT,
    SELECTOR,
    Int,
    IPAddress,
    IPNetwork,
    ListOf,
    OneOf,
    Struct,
    checked,
    field,
    opt,
)

DEFAULT_AS_NUMBER = 64512
DEFAULT_LISTEN_PORT = 179
LOG_SEVERITIES = ("Trace", "Debug", "Info", "Warning", "Error", "Fatal")


@dataclass(frozen=True, slots=True)
class SecretKeyRef:
    name: str = field("name", NONEMPTY, required=True)
    key: str = field("key", NONEMPTY, required=True)


@dataclass(frozen=True, slots=True)
class BGPPassword:
    """Calico reads passwords only from Kubernetes Secrets; Tabby's confd resolves the same
    `secretKeyRef` from its own secrets source (see docs/resources.md)."""

    secret_key_ref: SecretKeyRef | None = opt("secretKeyRef", Struct(SecretKeyRef))


@dataclass(frozen=True, slots=True)
class ServiceIPBlock:
    cidr: IPNetwork = field("cidr", CIDR, required=True)


def _community_value(text: str) -> str | None:
    parts = text.split(":")
    limits = {2: 0xFFFF, 3: 0xFFFFFFFF}
    if (
        len(parts) in limits
        and all(re.fullmatch(r"[0-9]{1,10}", p) for p in parts)
        and all(int(p) <= limits[len(parts)] for p in parts)
    ):
        return None
    return f"must be a standard community aa:nn or a large community aa:nn:mm, not {text!r}"


@dataclass(frozen=True, slots=True)
class Community:
    name: str = field("name", NONEMPTY, required=True)
    value: str = field("value", checked(_community_value), required=True)


@dataclass(frozen=True, slots=True)
class PrefixAdvertisement:
    cidr: IPNetwork = field("cidr", CIDR, required=True)
    communities: tuple[str, ...] = field("communities", ListOf(NONEMPTY), ())


@dataclass(frozen=True, slots=True)
class BGPConfigurationSpec:
    log_severity_screen: str | None = opt("logSeverityScreen", OneOf(*LOG_SEVERITIES))
    node_to_node_mesh_enabled: bool | None = opt("nodeToNodeMeshEnabled", BOOL)
    as_number: int | None = opt("asNumber", AS_NUMBER)
    listen_port: int | None = opt("listenPort", PORT)
    bind_mode: str | None = opt("bindMode", OneOf("None", "NodeIP"))
    service_cluster_ips: tuple[ServiceIPBlock, ...] = field(
        "serviceClusterIPs", ListOf(Struct(ServiceIPBlock)), ()
    )
    service_external_ips: tuple[ServiceIPBlock, ...] = field(
        "serviceExternalIPs", ListOf(Struct(ServiceIPBlock)), ()
    )
    service_load_balancer_ips: tuple[ServiceIPBlock, ...] = field(
        "serviceLoadBalancerIPs", ListOf(Struct(ServiceIPBlock)), ()
    )
    service_load_balancer_aggregation: str | None = opt(
        "serviceLoadBalancerAggregation", OneOf("Enabled", "Disabled")
    )
    communities: tuple[Community, ...] = field("communities", ListOf(Struct(Community)), ())
    prefix_advertisements: tuple[PrefixAdvertisement, ...] = field(
        "prefixAdvertisements", ListOf(Struct(PrefixAdvertisement)), ()
    )
    node_mesh_password: BGPPassword | None = opt("nodeMeshPassword", Struct(BGPPassword))
    node_mesh_max_restart_time: Duration | None = opt("nodeMeshMaxRestartTime", DURATION)
    ignored_interfaces: tuple[str, ...] = field(
        "ignoredInterfaces", ListOf(checked(lambda s: None if len(s) <= 15 else "too long")), ()
    )
    local_workload_peering_ipv4: IPAddress | None = opt("localWorkloadPeeringIPV4", IP)
    local_workload_peering_ipv6: IPAddress | None = opt("localWorkloadPeeringIPV6", IP)
    program_cluster_routes: str | None = opt(
        "programClusterRoutes",
        OneOf("Enabled", "Disabled", "EnabledIPIPOnly", "EnabledNoEncapOnly"),
    )
    ipv4_normal_route_priority: int | None = opt("ipv4NormalRoutePriority", Int(1, 2**31 - 1))
    ipv6_normal_route_priority: int | None = opt("ipv6NormalRoutePriority", Int(1, 2**31 - 1))


# Fields only the cluster-wide `default` object may set (Calico's validator refuses them on
# per-node objects because confd would ignore them there).
_GLOBAL_ONLY = {
    "nodeToNodeMeshEnabled": "node_to_node_mesh_enabled",
    "asNumber": "as_number",
    "serviceClusterIPs": "service_cluster_ips",
    "serviceExternalIPs": "service_external_ips",
    "serviceLoadBalancerIPs": "service_load_balancer_ips",
    "nodeMeshPassword": "node_mesh_password",
    "nodeMeshMaxRestartTime": "node_mesh_max_restart_time",
}


def finish_bgp_configuration(spec: BGPConfigurationSpec, name: str) -> BGPConfigurationSpec:
    if name != "default":
        for json_name, attr in _GLOBAL_ONLY.items():
            if getattr(spec, attr) not in (None, ()):
                raise ResourceError(
                    f"spec.{json_name}", "may only be set in the BGPConfiguration named 'default'"
                )
    names = {c.name for c in spec.communities}
    for i, adv in enumerate(spec.prefix_advertisements):
        for j, community in enumerate(adv.communities):
            if community not in names and _community_value(community) is not None:
                raise ResourceError(
                    f"spec.prefixAdvertisements[{i}].communities[{j}]",
                    f"{community!r} is neither a defined community name nor aa:nn / aa:nn:mm",
                )
    return spec


@dataclass(frozen=True, slots=True)
class BGPSettings:
    """The effective BGP configuration of one node, every default applied."""

    node_to_node_mesh_enabled: bool = True
    as_number: int = DEFAULT_AS_NUMBER
    listen_port: int = DEFAULT_LISTEN_PORT
    log_severity_screen: str = "Info"
    bind_mode: str = "None"
    communities: tuple[Community, ...] = ()
    prefix_advertisements: tuple[PrefixAdvertisement, ...] = ()
    node_mesh_password: BGPPassword | None = None
    node_mesh_max_restart_time: Duration | None = None
    ignored_interfaces: tuple[str, ...] = ()
    service_cluster_ips: tuple[ServiceIPBlock, ...] = ()
    service_external_ips: tuple[ServiceIPBlock, ...] = ()
    service_load_balancer_ips: tuple[ServiceIPBlock, ...] = ()


def resolve_bgp_settings(
    default: BGPConfigurationSpec | None, node: BGPConfigurationSpec | None = None
) -> BGPSettings:
    """Merge `default` and `node.<name>` the way confd does; absent objects mean defaults."""
    g = default or BGPConfigurationSpec()
    n = node or BGPConfigurationSpec()
    base = BGPSettings()
    return BGPSettings(
        node_to_node_mesh_enabled=(
            base.node_to_node_mesh_enabled
            if g.node_to_node_mesh_enabled is None
            else g.node_to_node_mesh_enabled
        ),
        as_number=base.as_number if g.as_number is None else g.as_number,
        listen_port=n.listen_port or g.listen_port or base.listen_port,
        log_severity_screen=n.log_severity_screen or g.log_severity_screen or "Info",
        bind_mode=n.bind_mode or g.bind_mode or "None",
        communities=g.communities + n.communities,
        prefix_advertisements=n.prefix_advertisements or g.prefix_advertisements,
        node_mesh_password=g.node_mesh_password,
        node_mesh_max_restart_time=g.node_mesh_max_restart_time,
        ignored_interfaces=n.ignored_interfaces or g.ignored_interfaces,
        service_cluster_ips=g.service_cluster_ips,
        service_external_ips=g.service_external_ips,
        service_load_balancer_ips=g.service_load_balancer_ips,
    )


# --- BGPPeer -------------------------------------------------------------------------------------


def parse_peer_ip(text: str) -> tuple[IPAddress, int | None]:
    """`a.b.c.d`, `a.b.c.d:port`, `v6` or `[v6]:port` → (address, port or None)."""
    if m := re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:([0-9]{1,5})", text):
        address: IPAddress = ipaddress.IPv6Address(m.group(1))
        port = int(m.group(2))
    elif m := re.fullmatch(r"([0-9.]+):([0-9]{1,5})", text):
        address = ipaddress.IPv4Address(m.group(1))
        port = int(m.group(2))
    else:
        return ipaddress.ip_address(text), None
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} out of range")
    return address, port


def _peer_ip_problem(text: str) -> str | None:
    try:
        parse_peer_ip(text)
    except ValueError:
        return f"must be an IP, IP:port or [IPv6]:port, not {text!r}"
    return None


@dataclass(frozen=True, slots=True)
class BGPPeerSpec:
    node: str | None = opt("node", NONEMPTY)
    peer_ip: str | None = opt("peerIP", checked(_peer_ip_problem))
    as_number: int | None = opt("asNumber", AS_NUMBER)
    node_selector: str | None = opt("nodeSelector", SELECTOR)
    peer_selector: str | None = opt("peerSelector", SELECTOR)
    local_workload_selector: str | None = opt("localWorkloadSelector", SELECTOR)
    local_as_number: int | None = opt("localASNumber", AS_NUMBER)
    keep_original_next_hop: bool = field("keepOriginalNextHop", BOOL, False)
    next_hop_mode: str | None = opt("nextHopMode", OneOf("Auto", "Self", "Keep"))
    password: BGPPassword | None = opt("password", Struct(BGPPassword))
    source_address: str = field("sourceAddress", OneOf("UseNodeIP", "None"), "UseNodeIP")
    max_restart_time: Duration | None = opt("maxRestartTime", DURATION)
    keepalive_time: Duration | None = opt("keepaliveTime", DURATION)
    num_allowed_local_as_numbers: int | None = opt("numAllowedLocalASNumbers", Int(0, 10))
    ttl_security: int | None = opt("ttlSecurity", Int(0, 255))
    reachable_by: IPAddress | None = opt("reachableBy", IP)
    filters: tuple[str, ...] = field("filters", ListOf(NONEMPTY), ())
    reverse_peering: str | None = opt("reversePeering", OneOf("Auto", "Manual"))

    def peer_address(self) -> tuple[IPAddress, int | None] | None:
        return None if self.peer_ip is None else parse_peer_ip(self.peer_ip)

    def is_global(self) -> bool:
        """Neither `node` nor `nodeSelector`: the peering applies on every node."""
        return self.node is None and not self.node_selector


def finish_bgp_peer(spec: BGPPeerSpec) -> BGPPeerSpec:
    if spec.node is not None and spec.node_selector:
        raise ResourceError("spec.nodeSelector", "node and nodeSelector cannot both be set")
    if spec.peer_selector:
        if spec.peer_ip is not None:
            raise ResourceError("spec.peerIP", "peerIP and peerSelector cannot both be set")
        if spec.as_number is not None:
            raise ResourceError("spec.asNumber", "asNumber cannot be set with peerSelector")
    if spec.local_workload_selector and (spec.peer_ip is not None or spec.peer_selector):
        # Inference: a local-workload peering names its remote side by selector alone.
        raise ResourceError(
            "spec.localWorkloadSelector", "cannot be combined with peerIP or peerSelector"
        )
    if spec.reachable_by is not None and spec.peer_ip is None:
        raise ResourceError("spec.reachableBy", "requires peerIP")
    if spec.keep_original_next_hop and spec.next_hop_mode is not None:
        raise ResourceError(
            "spec.nextHopMode", "cannot be set together with the deprecated keepOriginalNextHop"
        )
    peer = spec.peer_address()
    if (
        peer is not None
        and spec.reachable_by is not None
        and spec.reachable_by.version != peer[0].version
    ):
        raise ResourceError("spec.reachableBy", "must be in the same IP family as peerIP")
    return spec
