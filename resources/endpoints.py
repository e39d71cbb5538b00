"""WorkloadEndpoint, HostEndpoint, NetworkSet and GlobalNetworkSet (calico.md §1.6, §1.7, §1.10).

Invariants after `finish_*`: a workload's `ipNetworks` are single addresses (/32 or /128), its
NAT internal IPs are among them, gateways are of the right family; a host endpoint names an
interface or lists expected IPs; named ports carry a protocol that has ports.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from resources.errors import ResourceError
from resources.schema import (
    CIDR,
    IP,
    MAC,
    NONEMPTY,
    STR,
    Codec,
    Int,
    IPAddress,
    IPNetwork,
    Json,
    ListOf,
    OneOf,
    Struct,
    checked,
    field,
    interface_name,
    opt,
)


def _host_interface(text: str) -> str | None:
    return None if text == "*" else interface_name(text)


@dataclass(frozen=True, slots=True)
class EndpointPort:
    name: str = field("name", NONEMPTY, required=True)
    protocol: str = field("protocol", OneOf("TCP", "UDP", "SCTP"), required=True)
    port: int = field("port", Int(1, 65535), required=True)


@dataclass(frozen=True, slots=True)
class WorkloadEndpointPort:
    """A workload's port; Calico lets the name be empty when a hostPort is given."""

    name: str = field("name", STR, "")
    protocol: str = field("protocol", OneOf("TCP", "UDP", "SCTP"), required=True)
    port: int = field("port", Int(1, 65535), required=True)
    host_port: int | None = opt("hostPort", Int(1, 65535))
    host_ip: IPAddress | None = opt("hostIP", IP)


@dataclass(frozen=True, slots=True)
class IPNAT:
    internal_ip: IPAddress = field("internalIP", IP, required=True)
    external_ip: IPAddress = field("externalIP", IP, required=True)


class _SingleAddressNetwork(Codec[IPNetwork]):
    """`10.0.0.5/32` or `fd00::5/128`; a bare address is read as its /32 or /128."""

    def decode(self, value: object, path: str) -> IPNetwork:
        network = CIDR.decode(value, path)
        if network.num_addresses != 1:
            raise ResourceError(path, f"must be a /32 or /128, not {network}")
        return network

    def encode(self, value: IPNetwork) -> Json:
        return str(value)

    def is_empty(self, value: IPNetwork) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class WorkloadEndpointSpec:
    orchestrator: str = field("orchestrator", STR, "")
    workload: str = field("workload", STR, "")
    node: str = field("node", STR, "")
    container_id: str = field("containerID", STR, "")
    pod: str = field("pod", STR, "")
    endpoint: str = field("endpoint", STR, "")
    service_account_name: str = field("serviceAccountName", STR, "")
    ip_networks: tuple[IPNetwork, ...] = field("ipNetworks", ListOf(_SingleAddressNetwork()), ())
    ip_nats: tuple[IPNAT, ...] = field("ipNATs", ListOf(Struct(IPNAT)), ())
    ipv4_gateway: IPAddress | None = opt("ipv4Gateway", IP)
    ipv6_gateway: IPAddress | None = opt("ipv6Gateway", IP)
    profiles: tuple[str, ...] = field("profiles", ListOf(NONEMPTY), ())
    interface_name: str = field("interfaceName", checked(interface_name), "")
    mac: str = field("mac", MAC, "")
    ports: tuple[WorkloadEndpointPort, ...] = field(
        "ports", ListOf(Struct(WorkloadEndpointPort)), ()
    )
    allow_spoofed_source_prefixes: tuple[IPNetwork, ...] = field(
        "allowSpoofedSourcePrefixes", ListOf(CIDR), ()
    )

    def addresses(self) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
        return tuple(net.network_address for net in self.ip_networks)


def finish_workload_endpoint(spec: WorkloadEndpointSpec) -> WorkloadEndpointSpec:
    addresses = set(spec.addresses())
    for i, nat in enumerate(spec.ip_nats):
        if nat.internal_ip not in addresses:
            raise ResourceError(
                f"spec.ipNATs[{i}].internalIP", f"{nat.internal_ip} is not one of ipNetworks"
            )
    for i, port in enumerate(spec.ports):
        if not port.name and port.host_port is None:
            raise ResourceError(f"spec.ports[{i}].name", "must be set when hostPort is not")
    if spec.ipv4_gateway is not None and spec.ipv4_gateway.version != 4:
        raise ResourceError("spec.ipv4Gateway", "must be an IPv4 address")
    if spec.ipv6_gateway is not None and spec.ipv6_gateway.version != 6:
        raise ResourceError("spec.ipv6Gateway", "must be an IPv6 address")
    return spec


@dataclass(frozen=True, slots=True)
class HostEndpointSpec:
    node: str = field("node", NONEMPTY, required=True)
    interface_name: str = field("interfaceName", checked(_host_interface), "")
    expected_ips: tuple[IPAddress, ...] = field("expectedIPs", ListOf(IP), ())
    profiles: tuple[str, ...] = field("profiles", ListOf(NONEMPTY), ())
    ports: tuple[EndpointPort, ...] = field("ports", ListOf(Struct(EndpointPort)), ())


def finish_host_endpoint(spec: HostEndpointSpec) -> HostEndpointSpec:
    if not spec.interface_name and not spec.expected_ips:
        raise ResourceError("spec.interfaceName", "interfaceName or expectedIPs must be set")
    return spec


@dataclass(frozen=True, slots=True)
class NetworkSetSpec:
    nets: tuple[IPNetwork, ...] = field("nets", ListOf(CIDR), ())


@dataclass(frozen=True, slots=True)
class GlobalNetworkSetSpec:
    nets: tuple[IPNetwork, ...] = field("nets", ListOf(CIDR), ())


# Implicit labels Calico adds to workload endpoints (api/.../v3/constants.go).
LABEL_NAMESPACE = "projectcalico.org/namespace"
LABEL_ORCHESTRATOR = "projectcalico.org/orchestrator"
LABEL_SERVICE_ACCOUNT = "projectcalico.org/serviceaccount"


def _escape_segment(segment: str) -> str:
    # Calico doubles dashes inside each segment so that '-' can separate segments.
    return segment.replace("-", "--")


def workload_endpoint_name(node: str, orchestrator: str, workload: str, endpoint: str) -> str:
    """Calico's derived WEP name (`libcalico-go/lib/names/workloadendpoint.go`):
    `<node>-k8s-<pod>-<endpoint>`, `<node>-cni-<containerID>-<endpoint>` or
    `<node>-<orchestrator>-<workload>-<endpoint>`, dashes inside a segment doubled."""
    return "-".join(_escape_segment(p) for p in (node, orchestrator, workload, endpoint))


def workload_labels(
    labels: dict[str, str], namespace: str, spec: WorkloadEndpointSpec
) -> dict[str, str]:
    """The labels selectors see on a workload endpoint: its own plus Calico's implicit ones."""
    out = dict(labels)
    out[LABEL_NAMESPACE] = namespace
    if spec.orchestrator:
        out[LABEL_ORCHESTRATOR] = spec.orchestrator
    if spec.service_account_name:
        out[LABEL_SERVICE_ACCOUNT] = spec.service_account_name
    return out
