"""FelixConfiguration (calico.md §1.5): the subset Tabby's felixd implements, and its defaults.

Like Calico, every spec field is optional ("unset" is not the default): `default` is the global
object and `node.<hostname>` the per-host one, and `resolve_felix_settings` merges them
(per-host wins) onto the defaults of `felix/config/config_params.go`. Fields Tabby does not
implement are refused by name rather than ignored. One deliberate difference: felixd is the
only writer of kernel routes, so `programClusterRoutes` defaults to `Enabled` (calico.md §4.1).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from resources.duration import DURATION, Duration
from resources.errors import ResourceError
from resources.schema import (
    BOOL,
    CIDR,
    IP,
    NONEMPTY,
    PORT,
    STR,
    Int,
    IPAddress,
    IPNetwork,
    ListOf,
    OneOf,
    Struct,
    checked,
    field,
    interface_name,
    opt,
)

_SECOND = 10**9


@dataclass(frozen=True, slots=True)
class ProtoPort:
    protocol: str = field("protocol", OneOf("TCP", "UDP", "SCTP"), "TCP")
    port: int = field("port", Int(0, 65535), required=True)
    net: IPNetwork | None = opt("net", CIDR)


@dataclass(frozen=True, slots=True)
class RouteTableRange:
    min: int = field("min", Int(1, 2**32 - 1), required=True)
    max: int = field("max", Int(1, 2**32 - 1), required=True)


def _regex(text: str) -> str | None:
    try:
        re.compile(text)
    except re.error as exc:
        return f"invalid regular expression: {exc}"
    return None


LOG_LEVELS = ("Debug", "Info", "Warning", "Error", "Fatal")
_IFACE = checked(interface_name)


@dataclass(frozen=True, slots=True)
class FelixConfigurationSpec:
    log_severity_screen: str | None = opt("logSeverityScreen", OneOf(*LOG_LEVELS))
    route_refresh_interval: Duration | None = opt("routeRefreshInterval", DURATION)
    interface_refresh_interval: Duration | None = opt("interfaceRefreshInterval", DURATION)
    device_route_protocol: int | None = opt("deviceRouteProtocol", Int(1, 255))
    device_route_source_address: IPAddress | None = opt("deviceRouteSourceAddress", IP)
    device_route_source_address_ipv6: IPAddress | None = opt("deviceRouteSourceAddressIPv6", IP)
    remove_external_routes: bool | None = opt("removeExternalRoutes", BOOL)
    program_cluster_routes: str | None = opt(
        "programClusterRoutes",
        OneOf("Enabled", "Disabled", "EnabledIPIPOnly", "EnabledNoEncapOnly"),
    )
    route_source: str | None = opt("routeSource", OneOf("CalicoIPAM", "WorkloadIPs"))
    route_table_ranges: tuple[RouteTableRange, ...] | None = opt(
        "routeTableRanges", ListOf(Struct(RouteTableRange))
    )
    route_sync_disabled: bool | None = opt("routeSyncDisabled", BOOL)
    ipv4_normal_route_priority: int | None = opt("ipv4NormalRoutePriority", Int(1, 2**31 - 1))
    ipv6_normal_route_priority: int | None = opt("ipv6NormalRoutePriority", Int(1, 2**31 - 1))
    interface_prefix: str | None = opt("interfacePrefix", NONEMPTY)
    interface_exclude: str | None = opt("interfaceExclude", STR)
    ipip_enabled: bool | None = opt("ipipEnabled", BOOL)
    ipip_mtu: int | None = opt("ipipMTU", Int(0, 65535))
    vxlan_enabled: bool | None = opt("vxlanEnabled", BOOL)
    vxlan_port: int | None = opt("vxlanPort", PORT)
    vxlan_vni: int | None = opt("vxlanVNI", Int(1, 2**24 - 1))
    vxlan_mtu: int | None = opt("vxlanMTU", Int(0, 65535))
    vxlan_mtu_v6: int | None = opt("vxlanMTUV6", Int(0, 65535))
    wireguard_enabled: bool | None = opt("wireguardEnabled", BOOL)
    wireguard_enabled_v6: bool | None = opt("wireguardEnabledV6", BOOL)
    wireguard_listening_port: int | None = opt("wireguardListeningPort", PORT)
    wireguard_listening_port_v6: int | None = opt("wireguardListeningPortV6", PORT)
    # Must stay below the kernel's main-table rule (32766).
    wireguard_routing_rule_priority: int | None = opt("wireguardRoutingRulePriority", Int(1, 32765))
    wireguard_interface_name: str | None = opt("wireguardInterfaceName", _IFACE)
    wireguard_interface_name_v6: str | None = opt("wireguardInterfaceNameV6", _IFACE)
    wireguard_mtu: int | None = opt("wireguardMTU", Int(0, 65535))
    wireguard_mtu_v6: int | None = opt("wireguardMTUV6", Int(0, 65535))
    wireguard_host_encryption_enabled: bool | None = opt("wireguardHostEncryptionEnabled", BOOL)
    wireguard_keep_alive: Duration | None = opt("wireguardKeepAlive", DURATION)
    nftables_mode: str | None = opt("nftablesMode", OneOf("Enabled", "Disabled", "Auto"))
    chain_insert_mode: str | None = opt("chainInsertMode", OneOf("Insert", "Append"))
    default_endpoint_to_host_action: str | None = opt(
        "defaultEndpointToHostAction", OneOf("Drop", "Return", "Accept")
    )
    failsafe_inbound_host_ports: tuple[ProtoPort, ...] | None = opt(
        "failsafeInboundHostPorts", ListOf(Struct(ProtoPort))
    )
    failsafe_outbound_host_ports: tuple[ProtoPort, ...] | None = opt(
        "failsafeOutboundHostPorts", ListOf(Struct(ProtoPort))
    )
    log_prefix: str | None = opt("logPrefix", STR)
    mtu_iface_pattern: str | None = opt("mtuIfacePattern", checked(_regex))
    ipv6_support: bool | None = opt("ipv6Support", BOOL)
    nat_outgoing_address: IPAddress | None = opt("natOutgoingAddress", IP)
    service_loop_prevention: str | None = opt(
        "serviceLoopPrevention", OneOf("Drop", "Reject", "Disabled")
    )
    allow_vxlan_packets_from_workloads: bool | None = opt("allowVXLANPacketsFromWorkloads", BOOL)
    allow_ipip_packets_from_workloads: bool | None = opt("allowIPIPPacketsFromWorkloads", BOOL)
    reporting_interval: Duration | None = opt("reportingInterval", DURATION)
    reporting_ttl: Duration | None = opt("reportingTTL", DURATION)
    endpoint_reporting_enabled: bool | None = opt("endpointReportingEnabled", BOOL)
    health_enabled: bool | None = opt("healthEnabled", BOOL)
    health_host: str | None = opt("healthHost", NONEMPTY)
    health_port: int | None = opt("healthPort", PORT)
    prometheus_metrics_enabled: bool | None = opt("prometheusMetricsEnabled", BOOL)
    prometheus_metrics_port: int | None = opt("prometheusMetricsPort", PORT)


def _ports(*items: str) -> tuple[ProtoPort, ...]:
    out = []
    for item in items:
        protocol, port = item.split(":")
        out.append(ProtoPort(protocol=protocol.upper(), port=int(port)))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class FelixSettings:
    """Effective felix configuration; the defaults are Calico's (`config_params.go`)."""

    log_severity_screen: str = "Info"
    route_refresh_interval: Duration = Duration(90 * _SECOND)
    interface_refresh_interval: Duration = Duration(90 * _SECOND)
    device_route_protocol: int = 3
    device_route_source_address: IPAddress | None = None
    device_route_source_address_ipv6: IPAddress | None = None
    remove_external_routes: bool = True
    program_cluster_routes: str = "Enabled"
    route_source: str = "CalicoIPAM"
    route_table_ranges: tuple[RouteTableRange, ...] = (RouteTableRange(min=1, max=250),)
    route_sync_disabled: bool = False
    ipv4_normal_route_priority: int = 1024
    ipv6_normal_route_priority: int = 1024
    interface_prefix: str = "cali"
    interface_exclude: str = "kube-ipvs0"
    ipip_enabled: bool | None = None  # None: computed from the pools
    ipip_mtu: int = 0
    vxlan_enabled: bool | None = None
    vxlan_port: int = 4789
    vxlan_vni: int = 4096
    vxlan_mtu: int = 0
    vxlan_mtu_v6: int = 0
    wireguard_enabled: bool = False
    wireguard_enabled_v6: bool = False
    wireguard_listening_port: int = 51820
    wireguard_listening_port_v6: int = 51821
    wireguard_routing_rule_priority: int = 99
    wireguard_interface_name: str = "wireguard.cali"
    wireguard_interface_name_v6: str = "wg-v6.cali"
    wireguard_mtu: int = 0
    wireguard_mtu_v6: int = 0
    wireguard_host_encryption_enabled: bool = False
    wireguard_keep_alive: Duration = Duration(0)
    nftables_mode: str = "Auto"
    chain_insert_mode: str = "Insert"
    default_endpoint_to_host_action: str = "Drop"
    failsafe_inbound_host_ports: tuple[ProtoPort, ...] = _ports(
        "tcp:22",
        "udp:68",
        "tcp:179",
        "tcp:2379",
        "tcp:2380",
        "tcp:5473",
        "tcp:6443",
        "tcp:6666",
        "tcp:6667",
    )
    failsafe_outbound_host_ports: tuple[ProtoPort, ...] = _ports(
        "udp:53",
        "udp:67",
        "tcp:179",
        "tcp:2379",
        "tcp:2380",
        "tcp:5473",
        "tcp:6443",
        "tcp:6666",
        "tcp:6667",
    )
    log_prefix: str = "calico-packet"
    mtu_iface_pattern: str = r"^((en|wl|ww|sl|ib)[Pcopsvx].*|(eth|wlan|wwan).*)"
    ipv6_support: bool = True
    nat_outgoing_address: IPAddress | None = None
    service_loop_prevention: str = "Drop"
    allow_vxlan_packets_from_workloads: bool = False
    allow_ipip_packets_from_workloads: bool = False
    reporting_interval: Duration = Duration(30 * _SECOND)
    reporting_ttl: Duration = Duration(90 * _SECOND)
    endpoint_reporting_enabled: bool = False
    health_enabled: bool = False
    health_host: str = "localhost"
    health_port: int = 9099
    prometheus_metrics_enabled: bool = False
    prometheus_metrics_port: int = 9091


def finish_felix_configuration(spec: FelixConfigurationSpec) -> FelixConfigurationSpec:
    for i, table_range in enumerate(spec.route_table_ranges or ()):
        if table_range.min > table_range.max:
            raise ResourceError(f"spec.routeTableRanges[{i}]", "min must not exceed max")
    return spec


def resolve_felix_settings(
    default: FelixConfigurationSpec | None, node: FelixConfigurationSpec | None = None
) -> FelixSettings:
    """Per-host values win over global ones, which win over Calico's defaults."""
    changes: dict[str, object] = {}
    for f in dataclasses.fields(FelixSettings):
        for source in (node, default):
            value = None if source is None else getattr(source, f.name)
            if value is not None:
                changes[f.name] = value
                break
    build = cast(Callable[..., FelixSettings], FelixSettings)
    return build(**changes)
