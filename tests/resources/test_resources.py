"""Calico v3 resources (calico.md §1): round trips, defaults, validation, unknown fields, updates."""

from __future__ import annotations

import copy
import datetime
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resources.bgp import BGPConfigurationSpec, BGPPeerSpec, parse_peer_ip, resolve_bgp_settings
from resources.duration import Duration
from resources.endpoints import WorkloadEndpointSpec
from resources.errors import ResourceError
from resources.felix import FelixConfigurationSpec, FelixSettings, resolve_felix_settings
from resources.ipam import IPAMBlockSpec, IPAMConfigSpec, empty_block
from resources.ippool import IPPoolSpec, check_pool_overlaps
from resources.node import NodeSpec
from resources.policy import GlobalNetworkPolicySpec, NetworkPolicySpec
from resources.resource import KINDS, Resource, parse_resource, typed, validate_update
from tests.resources.fixtures import CANONICAL, by_kind, minimal


def _pool(spec: dict[str, object], name: str = "p") -> Resource[IPPoolSpec]:
    return typed(parse_resource(minimal("IPPool", spec, name)), IPPoolSpec)


# --- round trips -----------------------------------------------------------------------------


def test_fixtures_cover_every_kind() -> None:
    assert {doc["kind"] for doc in CANONICAL} == set(KINDS)


def _doc_id(doc: dict[str, object]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"  # type: ignore[index]


@pytest.mark.parametrize("doc", CANONICAL, ids=_doc_id)
def test_round_trip_document_to_resource_to_document(doc: dict[str, object]) -> None:
    """YAML-shaped dict → resource → dict is the identity on canonical documents."""
    resource = parse_resource(copy.deepcopy(doc))
    assert resource.to_dict() == doc
    assert parse_resource(resource.to_dict()) == resource


def test_minimal_documents_round_trip_through_their_defaults() -> None:
    """A minimal manifest parses, and its canonical form (defaults spelled out) is a fixed point."""
    docs = [
        minimal("IPPool", {"cidr": "fd00:10::/48"}),
        minimal("BGPConfiguration", {}, "default"),
        minimal("BGPPeer", {"peerIP": "10.0.0.9", "asNumber": 64999}),
        minimal("Node", {}),
        minimal("FelixConfiguration", {}, "node.node-1"),
        minimal("NetworkPolicy", {}),
        minimal("GlobalNetworkPolicy", {"egress": [{"action": "Allow"}]}),
        minimal("NetworkSet", {}),
        minimal("GlobalNetworkSet", {}),
        minimal("HostEndpoint", {"node": "n", "interfaceName": "*"}),
        minimal("WorkloadEndpoint", {}),
        minimal("Profile", {}),
        minimal("IPAMConfig", {}, "default"),
    ]
    for doc in docs:
        resource = parse_resource(doc)
        assert parse_resource(resource.to_dict()) == resource, doc
        assert parse_resource(resource.to_dict()).to_dict() == resource.to_dict()


def test_yaml_timestamps_loaded_as_datetime_are_accepted() -> None:
    """PyYAML turns an unquoted creationTimestamp into a datetime; it reads back as RFC 3339."""
    stamp = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.UTC)
    resource = parse_resource(minimal("Profile", {}, creationTimestamp=stamp))
    assert resource.metadata.creation_timestamp == "2026-11-30T12:00:00Z"


# --- defaults --------------------------------------------------------------------------------


def test_ippool_defaults_ipv4() -> None:
    """calico.md §1.1: blockSize 26, ipip/vxlan Never, nodeSelector all(), uses [Workload, Tunnel]."""
    spec = _pool({"cidr": "10.0.0.0/16"}).spec
    assert spec.block_size == 26
    assert (spec.ipip_mode, spec.vxlan_mode) == ("Never", "Never")
    assert (
        spec.nat_outgoing is False and spec.disabled is False and spec.disable_bgp_export is False
    )
    assert spec.node_selector == "all()"
    assert spec.allowed_uses == ("Workload", "Tunnel")
    assert spec.assignment_mode == "Automatic"
    assert spec.encapsulation() == "None"


def test_ippool_defaults_ipv6_block_size_122() -> None:
    assert _pool({"cidr": "fd00::/48"}).spec.block_size == 122


def test_bgp_defaults_when_no_configuration_exists() -> None:
    """confd seeds mesh on and AS 64512; listen port 179; log severity Info; bind mode None."""
    settings = resolve_bgp_settings(None)
    assert settings.node_to_node_mesh_enabled is True
    assert settings.as_number == 64512
    assert settings.listen_port == 179
    assert settings.log_severity_screen == "Info"
    assert settings.bind_mode == "None"


def test_bgp_node_configuration_overrides_listen_port_and_log_level_only() -> None:
    """calico.md §1.2: `node.<name>` may override listenPort, logSeverityScreen, prefixAdvertisements."""
    default = typed(parse_resource(by_kind("BGPConfiguration")), BGPConfigurationSpec).spec
    per_node = typed(
        parse_resource(
            minimal(
                "BGPConfiguration", {"listenPort": 2179, "logSeverityScreen": "Debug"}, "node.n1"
            )
        ),
        BGPConfigurationSpec,
    ).spec
    settings = resolve_bgp_settings(default, per_node)
    assert settings.listen_port == 2179
    assert settings.log_severity_screen == "Debug"
    assert settings.as_number == 64513
    assert settings.node_to_node_mesh_enabled is False
    assert resolve_bgp_settings(default).listen_port == 1179


def test_unset_bgp_configuration_fields_stay_unset_in_the_document() -> None:
    """Calico's BGPConfiguration fields are pointers: defaults are applied on use, not stored."""
    assert parse_resource(minimal("BGPConfiguration", {}, "default")).to_dict()["spec"] == {}


def test_felix_defaults_and_precedence() -> None:
    """calico.md §1.5 defaults; per-host object wins over `default`."""
    base = resolve_felix_settings(None)
    assert base.route_refresh_interval == Duration(90 * 10**9)
    assert (base.vxlan_port, base.vxlan_vni) == (4789, 4096)
    assert (base.wireguard_listening_port, base.wireguard_routing_rule_priority) == (51820, 99)
    assert base.wireguard_interface_name == "wireguard.cali"
    assert base.device_route_protocol == 3
    assert base.default_endpoint_to_host_action == "Drop"
    assert base.ipv4_normal_route_priority == 1024
    assert [(p.protocol, p.port) for p in base.failsafe_inbound_host_ports][:3] == [
        ("TCP", 22),
        ("UDP", 68),
        ("TCP", 179),
    ]
    default = typed(parse_resource(by_kind("FelixConfiguration")), FelixConfigurationSpec).spec
    node = typed(
        parse_resource(minimal("FelixConfiguration", {"vxlanVNI": 5000}, "node.n1")),
        FelixConfigurationSpec,
    ).spec
    merged = resolve_felix_settings(default, node)
    assert merged.vxlan_vni == 5000
    assert merged.device_route_protocol == 80
    assert merged.route_refresh_interval == Duration(60 * 10**9)
    assert merged.ipip_enabled is False


def test_every_felix_field_has_a_default() -> None:
    import dataclasses

    spec_fields = {f.name for f in dataclasses.fields(FelixConfigurationSpec)}
    assert spec_fields == {f.name for f in dataclasses.fields(FelixSettings)}


@pytest.mark.parametrize(
    ("spec", "types"),
    [
        ({}, ("Ingress",)),
        ({"ingress": [{"action": "Allow"}]}, ("Ingress",)),
        ({"egress": [{"action": "Allow"}]}, ("Egress",)),
        ({"ingress": [{"action": "Allow"}], "egress": [{"action": "Deny"}]}, ("Ingress", "Egress")),
        ({"types": ["Egress"]}, ("Egress",)),
    ],
)
def test_policy_types_defaulted_like_calico(
    spec: dict[str, object], types: tuple[str, ...]
) -> None:
    """calico.md §1.8: no egress rules → [Ingress]; egress only → [Egress]; both → both."""
    resource = typed(parse_resource(minimal("NetworkPolicy", spec)), NetworkPolicySpec)
    assert resource.spec.types == types
    assert resource.spec.tier == "default"
    assert resource.spec.order is None


def test_namespaced_kind_defaults_to_namespace_default() -> None:
    assert parse_resource(minimal("NetworkSet", {})).namespace == "default"


# --- validation ------------------------------------------------------------------------------

VALIDATION_CASES: list[tuple[str, dict[str, object], str, str, str]] = [
    # (kind, spec, name, path, reason fragment)
    (
        "IPPool",
        {"cidr": "10.0.0.0/16", "ipipMode": "Sometimes"},
        "p",
        "spec.ipipMode",
        "must be one of Always, CrossSubnet, Never",
    ),
    ("IPPool", {"cidr": "10.0.0.0/33"}, "p", "spec.cidr", "invalid CIDR"),
    ("IPPool", {"cidr": "10.0.0.1/16"}, "p", "spec.cidr", "host bits set"),
    ("IPPool", {"cidr": "169.254.0.0/24"}, "p", "spec.cidr", "link-local"),
    ("IPPool", {"cidr": "fe80::/64"}, "p", "spec.cidr", "link-local"),
    (
        "IPPool",
        {"cidr": "10.0.0.0/16", "blockSize": 19},
        "p",
        "spec.blockSize",
        "between 20 and 32",
    ),
    (
        "IPPool",
        {"cidr": "10.0.0.0/16", "blockSize": 33},
        "p",
        "spec.blockSize",
        "between 20 and 32",
    ),
    (
        "IPPool",
        {"cidr": "fd00::/48", "blockSize": 115},
        "p",
        "spec.blockSize",
        "between 116 and 128",
    ),
    (
        "IPPool",
        {"cidr": "10.0.0.0/28", "blockSize": 26},
        "p",
        "spec.blockSize",
        "larger than the pool",
    ),
    (
        "IPPool",
        {"cidr": "fd00::/48", "ipipMode": "Always"},
        "p",
        "spec.ipipMode",
        "IPIP is not supported on IPv6 pools",
    ),
    (
        "IPPool",
        {"cidr": "10.0.0.0/16", "ipipMode": "Always", "vxlanMode": "CrossSubnet"},
        "p",
        "spec.vxlanMode",
        "cannot both be enabled",
    ),
    (
        "IPPool",
        {"cidr": "10.0.0.0/16", "nodeSelector": "has(x"},
        "p",
        "spec.nodeSelector",
        "invalid selector",
    ),
    (
        "IPPool",
        {"cidr": "10.0.0.0/16", "nodeSelector": "global()"},
        "p",
        "spec.nodeSelector",
        "global()",
    ),
    (
        "IPPool",
        {"cidr": "10.0.0.0/16", "allowedUses": ["Workload", "LoadBalancer"]},
        "p",
        "spec.allowedUses",
        "LoadBalancer",
    ),
    (
        "IPPool",
        {"cidr": "10.0.0.0/16", "natOutgoing": "yes"},
        "p",
        "spec.natOutgoing",
        "true or false",
    ),
    ("IPPool", {"cidr": "10.0.0.0/16", "blockSize": "26"}, "p", "spec.blockSize", "integer"),
    ("IPPool", {}, "p", "spec.cidr", "is required"),
    ("IPPool", {"cidr": "10.0.0.0/16"}, "Pool_1", "metadata.name", "DNS-1123"),
    ("BGPConfiguration", {"asNumber": 4294967296}, "default", "spec.asNumber", "AS number"),
    ("BGPConfiguration", {"asNumber": "64512.1.1"}, "default", "spec.asNumber", "AS number"),
    ("BGPConfiguration", {"listenPort": 0}, "default", "spec.listenPort", "between 1 and 65535"),
    (
        "BGPConfiguration",
        {"listenPort": 70000},
        "default",
        "spec.listenPort",
        "between 1 and 65535",
    ),
    (
        "BGPConfiguration",
        {"logSeverityScreen": "Loud"},
        "default",
        "spec.logSeverityScreen",
        "must be one of",
    ),
    (
        "BGPConfiguration",
        {"nodeToNodeMeshEnabled": False},
        "node.n1",
        "spec.nodeToNodeMeshEnabled",
        "only be set in the BGPConfiguration named 'default'",
    ),
    (
        "BGPConfiguration",
        {"communities": [{"name": "c", "value": "70000:1"}]},
        "default",
        "spec.communities[0].value",
        "standard community",
    ),
    (
        "BGPConfiguration",
        {"prefixAdvertisements": [{"cidr": "10.0.0.0/8", "communities": ["nope"]}]},
        "default",
        "spec.prefixAdvertisements[0].communities[0]",
        "neither a defined community",
    ),
    (
        "BGPConfiguration",
        {"nodeMeshMaxRestartTime": "soon"},
        "default",
        "spec.nodeMeshMaxRestartTime",
        "duration",
    ),
    ("BGPPeer", {"peerIP": "10.0.0.300", "asNumber": 1}, "p", "spec.peerIP", "IP, IP:port"),
    ("BGPPeer", {"peerIP": "10.0.0.3:0", "asNumber": 1}, "p", "spec.peerIP", "IP, IP:port"),
    (
        "BGPPeer",
        {"node": "a", "nodeSelector": "all()", "peerIP": "10.0.0.3", "asNumber": 1},
        "p",
        "spec.nodeSelector",
        "cannot both be set",
    ),
    (
        "BGPPeer",
        {"peerSelector": "all()", "peerIP": "10.0.0.3"},
        "p",
        "spec.peerIP",
        "cannot both be set",
    ),
    ("BGPPeer", {"peerSelector": "all()", "asNumber": 5}, "p", "spec.asNumber", "peerSelector"),
    (
        "BGPPeer",
        {"peerSelector": "all()", "localWorkloadSelector": "all()"},
        "p",
        "spec.localWorkloadSelector",
        "cannot be combined",
    ),
    (
        "BGPPeer",
        {"peerSelector": "all()", "reachableBy": "10.0.0.1"},
        "p",
        "spec.reachableBy",
        "requires peerIP",
    ),
    (
        "BGPPeer",
        {"peerIP": "10.0.0.3", "keepOriginalNextHop": True, "nextHopMode": "Self"},
        "p",
        "spec.nextHopMode",
        "keepOriginalNextHop",
    ),
    (
        "NetworkPolicy",
        {"ingress": [{"action": "Deny", "http": {"methods": ["GET"]}}]},
        "np",
        "spec.ingress[0].http",
        "only valid for Allow rules",
    ),
    (
        "NetworkPolicy",
        {
            "ingress": [
                {
                    "action": "Allow",
                    "source": {"nets": ["10.0.0.0/8"]},
                    "destination": {"notNets": ["fd00::/8"]},
                }
            ]
        },
        "np",
        "spec.ingress[0]",
        "both IPv4 and IPv6",
    ),
    ("Node", {"bgp": {}}, "n", "spec.bgp", "should not be empty"),
    ("BGPPeer", {"peerSelector": "a =="}, "p", "spec.peerSelector", "invalid selector"),
    (
        "BGPPeer",
        {"peerIP": "10.0.0.3", "asNumber": 1, "reachableBy": "fd00::1"},
        "p",
        "spec.reachableBy",
        "same IP family",
    ),
    (
        "BGPPeer",
        {"peerIP": "10.0.0.3", "asNumber": 1, "ttlSecurity": 256},
        "p",
        "spec.ttlSecurity",
        "between 0 and 255",
    ),
    ("Node", {"bgp": {"ipv4Address": "fd00::1/64"}}, "n", "spec.bgp.ipv4Address", "IPv4"),
    ("Node", {"bgp": {"ipv4Address": "10.0.0.300/24"}}, "n", "spec.bgp.ipv4Address", "IP address"),
    (
        "Node",
        {"bgp": {"routeReflectorClusterID": "not-an-ip"}},
        "n",
        "spec.bgp.routeReflectorClusterID",
        "IPv4 address",
    ),
    ("Node", {"vxlanTunnelMACAddr": "zz:00"}, "n", "spec.vxlanTunnelMACAddr", "MAC address"),
    (
        "FelixConfiguration",
        {"wireguardRoutingRulePriority": 32766},
        "default",
        "spec.wireguardRoutingRulePriority",
        "between 1 and 32765",
    ),
    (
        "FelixConfiguration",
        {"routeTableRanges": [{"min": 5, "max": 2}]},
        "default",
        "spec.routeTableRanges[0]",
        "min must not exceed max",
    ),
    ("FelixConfiguration", {"vxlanPort": 0}, "default", "spec.vxlanPort", "between 1 and 65535"),
    (
        "FelixConfiguration",
        {"mtuIfacePattern": "("},
        "default",
        "spec.mtuIfacePattern",
        "regular expression",
    ),
    (
        "NetworkPolicy",
        {"ingress": [{"action": "Accept"}]},
        "np",
        "spec.ingress[0].action",
        "must be one of Allow, Deny, Log, Pass",
    ),
    (
        "NetworkPolicy",
        {"ingress": [{"action": "Allow", "destination": {"ports": [80]}}]},
        "np",
        "spec.ingress[0].destination.ports",
        "only allowed with protocol TCP, UDP or SCTP",
    ),
    (
        "NetworkPolicy",
        {"ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": [70000]}}]},
        "np",
        "spec.ingress[0].destination.ports[0]",
        "between 0 and 65535",
    ),
    (
        "NetworkPolicy",
        {"ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": ["90:80"]}}]},
        "np",
        "spec.ingress[0].destination.ports[0]",
        "invalid port range",
    ),
    (
        "NetworkPolicy",
        {"egress": [{"action": "Allow", "protocol": "ICMP", "icmp": {"code": 1}}]},
        "np",
        "spec.egress[0].icmp.code",
        "requires a type",
    ),
    (
        "NetworkPolicy",
        {"egress": [{"action": "Allow", "protocol": 256}]},
        "np",
        "spec.egress[0].protocol",
        "1-255",
    ),
    (
        "NetworkPolicy",
        {"egress": [{"action": "Allow", "ipVersion": 5}]},
        "np",
        "spec.egress[0].ipVersion",
        "4 or 6",
    ),
    (
        "NetworkPolicy",
        {"egress": [{"action": "Allow", "ipVersion": 4, "destination": {"nets": ["fd00::/8"]}}]},
        "np",
        "spec.egress[0].destination.nets[0]",
        "IPv4",
    ),
    ("NetworkPolicy", {"selector": "app = 'x'"}, "np", "spec.selector", "invalid selector"),
    (
        "NetworkPolicy",
        {"ingress": [{"action": "Allow", "source": {"notSelector": "!"}}]},
        "np",
        "spec.ingress[0].source.notSelector",
        "invalid selector",
    ),
    ("NetworkPolicy", {"types": ["Ingress", "Ingress"]}, "np", "spec.types", "repeat"),
    (
        "NetworkPolicy",
        {"ingress": [{"action": "Allow"}] * 1025},
        "np",
        "spec.ingress",
        "at most 1024",
    ),
    ("GlobalNetworkPolicy", {"preDNAT": True}, "g", "spec.applyOnForward", "preDNAT"),
    ("GlobalNetworkPolicy", {"tier": "security"}, "g", "spec.tier", "only the 'default' tier"),
    ("NetworkPolicy", {"tier": "security"}, "np", "spec.tier", "only the 'default' tier"),
    ("GlobalNetworkPolicy", {"doNotTrack": True}, "g", "spec.applyOnForward", "doNotTrack"),
    (
        "GlobalNetworkPolicy",
        {"doNotTrack": True, "preDNAT": True, "applyOnForward": True},
        "g",
        "spec.preDNAT",
        "cannot both be true",
    ),
    (
        "GlobalNetworkPolicy",
        {"preDNAT": True, "applyOnForward": True, "egress": [{"action": "Allow"}]},
        "g",
        "spec.egress",
        "preDNAT policies cannot have egress",
    ),
    ("NetworkSet", {"nets": ["10.0.0.0/40"]}, "ns", "spec.nets[0]", "invalid CIDR"),
    ("NetworkPolicy", {}, "a.b", "metadata.name", "lowercase letters, digits and '-'"),
    ("NetworkPolicy", {"selector": "global()"}, "np", "spec.selector", "global()"),
    (
        "NetworkPolicy",
        {"ingress": [{"action": "Allow", "source": {"selector": "global()"}}]},
        "np",
        "spec.ingress[0].source.selector",
        "only valid in namespaceSelector",
    ),
    (
        "NetworkPolicy",
        {"ingress": [{"action": "Allow", "source": {"namespaceSelector": "global() && has(a)"}}]},
        "np",
        "spec.ingress[0].source.namespaceSelector",
        "whole namespaceSelector",
    ),
    (
        "NetworkPolicy",
        {"egress": [{"action": "Allow", "http": {"methods": ["GET"]}}]},
        "np",
        "spec.egress[0].http",
        "not allowed in egress",
    ),
    (
        "NetworkPolicy",
        {"ingress": [{"action": "Allow", "protocol": "UDP", "http": {"methods": ["GET"]}}]},
        "np",
        "spec.ingress[0].protocol",
        "must be TCP",
    ),
    (
        "NetworkPolicy",
        {"ingress": [{"action": "Allow", "protocol": "ICMPv6", "ipVersion": 4}]},
        "np",
        "spec.ingress[0].ipVersion",
        "must be 6",
    ),
    (
        "NetworkPolicy",
        {"egress": [{"action": "Allow", "source": {"services": {"name": "s"}}}]},
        "np",
        "spec.egress[0].source.services",
        "not allowed in egress rule source",
    ),
    (
        "NetworkPolicy",
        {
            "egress": [
                {
                    "action": "Allow",
                    "protocol": "TCP",
                    "destination": {"services": {"name": "s"}, "ports": [80]},
                }
            ]
        },
        "np",
        "spec.egress[0].destination.ports",
        "service selector",
    ),
    (
        "WorkloadEndpoint",
        {"ports": [{"protocol": "TCP", "port": 80}]},
        "w",
        "spec.ports[0].name",
        "hostPort",
    ),
    ("HostEndpoint", {"node": "n"}, "h", "spec.interfaceName", "interfaceName or expectedIPs"),
    (
        "HostEndpoint",
        {"node": "n", "interfaceName": "a-very-long-interface-name"},
        "h",
        "spec.interfaceName",
        "at most 15",
    ),
    ("WorkloadEndpoint", {"ipNetworks": ["10.0.0.0/24"]}, "w", "spec.ipNetworks[0]", "/32 or /128"),
    (
        "WorkloadEndpoint",
        {
            "ipNetworks": ["10.0.0.1/32"],
            "ipNATs": [{"internalIP": "10.0.0.2", "externalIP": "1.2.3.4"}],
        },
        "w",
        "spec.ipNATs[0].internalIP",
        "not one of ipNetworks",
    ),
    ("WorkloadEndpoint", {"ipv4Gateway": "fd00::1"}, "w", "spec.ipv4Gateway", "IPv4"),
    (
        "WorkloadEndpoint",
        {"ports": [{"name": "p", "protocol": "ICMP", "port": 1}]},
        "w",
        "spec.ports[0].protocol",
        "must be one of TCP, UDP, SCTP",
    ),
    (
        "IPAMBlock",
        {"cidr": "10.0.0.0/30", "allocations": [None]},
        "10-0-0-0-30",
        "spec.allocations",
        "must have 4 entries",
    ),
    (
        "IPAMBlock",
        {"cidr": "10.0.0.0/30", "allocations": [0, None, None, None]},
        "10-0-0-0-30",
        "spec.allocations[0]",
        "attribute index 0 does not exist",
    ),
    (
        "IPAMBlock",
        {"cidr": "10.0.0.0/30", "allocations": [None] * 4, "unallocated": [0, 0]},
        "10-0-0-0-30",
        "spec.unallocated[1]",
        "repeated",
    ),
    (
        "IPAMBlock",
        {"cidr": "10.0.0.0/30", "allocations": [None] * 4, "affinity": "node-1"},
        "10-0-0-0-30",
        "spec.affinity",
        "host:<node>",
    ),
    (
        "IPAMBlock",
        {"cidr": "10.0.0.0/30", "allocations": [None] * 4},
        "wrong",
        "metadata.name",
        "10-0-0-0-30",
    ),
    (
        "BlockAffinity",
        {"state": "claimed", "node": "n", "cidr": "10.0.0.0/30"},
        "n-10-0-0-0-30",
        "spec.state",
        "pending, confirmed, pendingDeletion",
    ),
    (
        "IPAMHandle",
        {"handleID": "h1", "block": {"10.0.0.0/30": 1}},
        "h2",
        "metadata.name",
        "handleID",
    ),
    ("IPAMHandle", {"handleID": "h1", "block": {"bad": 1}}, "h1", "spec.block.bad", "block CIDRs"),
    (
        "IPAMConfig",
        {"maxBlocksPerHost": 3},
        "default",
        "spec.maxBlocksPerHost",
        "requires strictAffinity",
    ),
    (
        "IPAMConfig",
        {"autoAllocateBlocks": False},
        "default",
        "spec.autoAllocateBlocks",
        "strictAffinity is false",
    ),
    ("IPAMConfig", {}, "other", "metadata.name", "'default'"),
]


@pytest.mark.parametrize(
    ("kind", "spec", "name", "path", "reason"),
    VALIDATION_CASES,
    ids=[f"{c[0]}:{c[3]}:{i}" for i, c in enumerate(VALIDATION_CASES)],
)
def test_validation_rule_names_the_field(
    kind: str, spec: dict[str, object], name: str, path: str, reason: str
) -> None:
    """Each Calico validation rule refuses the document with `<path>: <reason>`."""
    with pytest.raises(ResourceError) as info:
        parse_resource(minimal(kind, spec, name))
    assert info.value.path == path, str(info.value)
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("doc_patch", "path"),
    [
        ({"spec": {"cidr": "10.0.0.0/16", "ipip": {"enabled": True}}}, "spec.ipip"),
        ({"spec": {"cidr": "10.0.0.0/16", "nat-outgoing": True}}, "spec.nat-outgoing"),
        ({"metadata": {"name": "p", "generateName": "x"}}, "metadata.generateName"),
        ({"extra": 1}, "extra"),
    ],
)
def test_unknown_fields_are_refused_by_path(doc_patch: dict[str, object], path: str) -> None:
    """DESIGN.md: a field Tabby does not support is refused, never silently dropped."""
    doc = {**minimal("IPPool", {"cidr": "10.0.0.0/16"}, "p"), **doc_patch}
    with pytest.raises(ResourceError) as info:
        parse_resource(doc)
    assert info.value.path == path
    assert "unknown field" in info.value.reason


@pytest.mark.parametrize("doc", CANONICAL, ids=lambda d: str(d["kind"]))
def test_unknown_field_refused_at_every_level_of_every_kind(doc: dict[str, object]) -> None:
    spec = dict(doc["spec"])  # type: ignore[call-overload]
    spec["notACalicoField"] = True
    with pytest.raises(ResourceError) as info:
        parse_resource({**doc, "spec": spec})
    assert info.value.path == "spec.notACalicoField"


def test_unknown_nested_rule_field_is_named_with_list_index() -> None:
    doc = minimal(
        "GlobalNetworkPolicy",
        {"ingress": [{"action": "Allow"}, {"action": "Allow", "source": {"nett": []}}]},
    )
    with pytest.raises(ResourceError) as info:
        parse_resource(doc)
    assert info.value.path == "spec.ingress[1].source.nett"


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"apiVersion": "projectcalico.org/v2", "kind": "IPPool"}, "apiVersion"),
        ({"apiVersion": "projectcalico.org/v3", "kind": "Tier"}, "kind"),
        ({**minimal("IPPool", {"cidr": "10.0.0.0/16"}), "metadata": {}}, "metadata.name"),
        ({**minimal("IPPool", {"cidr": "10.0.0.0/16"}, namespace="x")}, "metadata.namespace"),
        ({**minimal("IPPool", {"cidr": "10.0.0.0/16"}), "status": {}}, "status"),
        (
            minimal("IPPool", {"cidr": "10.0.0.0/16"}, labels={"bad key!": "x"}),
            "metadata.labels.bad key!",
        ),
        (
            minimal("IPPool", {"cidr": "10.0.0.0/16"}, labels={"app": "not ok!"}),
            "metadata.labels.app",
        ),
        (
            minimal("IPPool", {"cidr": "10.0.0.0/16"}, labels={"app": "x" * 64}),
            "metadata.labels.app",
        ),
        (
            minimal("NetworkSet", {}, labels={"projectcalico.org/namespace": "x"}),
            "metadata.labels.projectcalico.org/namespace",
        ),
    ],
)
def test_envelope_errors(doc: dict[str, object], path: str) -> None:
    with pytest.raises(ResourceError) as info:
        parse_resource(doc)
    assert info.value.path == path


# --- pools and updates -------------------------------------------------------------------------


def test_pool_overlap_is_refused_naming_both_pools() -> None:
    """calico.md §1.1: "IPPool(%s) CIDR overlaps with IPPool(%s)"."""
    a = _pool({"cidr": "10.0.0.0/16"}, "a")
    b = _pool({"cidr": "10.0.128.0/17"}, "b")
    c = _pool({"cidr": "10.1.0.0/16"}, "c")
    v6 = _pool({"cidr": "fd00::/48"}, "v6")
    check_pool_overlaps([(p.name, p.spec) for p in (a, c, v6)])
    with pytest.raises(ResourceError) as info:
        check_pool_overlaps([(p.name, p.spec) for p in (a, c, v6, b)])
    assert info.value.path == "spec.cidr"
    assert "IPPool(b)" in info.value.reason and "IPPool(a)" in info.value.reason
    # Re-applying the same pool is not an overlap with itself.
    check_pool_overlaps([(a.name, a.spec), (a.name, a.spec)])


@given(
    st.lists(
        st.tuples(st.integers(0, 255), st.integers(8, 24)).map(
            lambda t: ipaddress.ip_network(f"10.{t[0]}.0.0/{t[1]}", strict=False)
        ),
        min_size=1,
        max_size=6,
    )
)
def test_pool_overlap_agrees_with_pairwise_check(cidrs: list[ipaddress.IPv4Network]) -> None:
    specs = [(f"p{i}", IPPoolSpec(cidr=c, block_size=26)) for i, c in enumerate(cidrs)]
    overlapping = any(a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1 :])
    try:
        check_pool_overlaps(specs)
    except ResourceError:
        assert overlapping
    else:
        assert not overlapping


@pytest.mark.parametrize(
    ("kind", "old", "new", "path"),
    [
        ("IPPool", {"cidr": "10.0.0.0/16"}, {"cidr": "10.1.0.0/16"}, "spec.cidr"),
        (
            "IPPool",
            {"cidr": "10.0.0.0/16"},
            {"cidr": "10.0.0.0/16", "blockSize": 28},
            "spec.blockSize",
        ),
        ("WorkloadEndpoint", {"node": "a"}, {"node": "b"}, "spec.node"),
        (
            "HostEndpoint",
            {"node": "a", "interfaceName": "eth0"},
            {"node": "b", "interfaceName": "eth0"},
            "spec.node",
        ),
    ],
)
def test_immutable_fields_on_update(
    kind: str, old: dict[str, object], new: dict[str, object], path: str
) -> None:
    before = parse_resource(minimal(kind, old))
    after = parse_resource(minimal(kind, new))
    with pytest.raises(ResourceError) as info:
        validate_update(before, after)
    assert info.value.path == path


def test_mutable_fields_may_change_on_update() -> None:
    """ipipMode, natOutgoing, disabled and nodeSelector of a pool may change."""
    before = _pool({"cidr": "10.0.0.0/16"})
    after = _pool(
        {
            "cidr": "10.0.0.0/16",
            "ipipMode": "Always",
            "natOutgoing": True,
            "disabled": True,
            "nodeSelector": "zone == 'a'",
        }
    )
    validate_update(before, after)  # type: ignore[arg-type]


def test_identity_fields_are_immutable() -> None:
    a = parse_resource(minimal("Profile", {}, "a", uid="1"))
    with pytest.raises(ResourceError, match=r"metadata\.name"):
        validate_update(a, parse_resource(minimal("Profile", {}, "b", uid="1")))
    with pytest.raises(ResourceError, match=r"metadata\.uid"):
        validate_update(a, parse_resource(minimal("Profile", {}, "a", uid="2")))
    with pytest.raises(ResourceError, match=r"metadata\.namespace"):
        validate_update(
            parse_resource(minimal("NetworkSet", {}, namespace="a")),
            parse_resource(minimal("NetworkSet", {}, namespace="b")),
        )


# --- typed helpers -------------------------------------------------------------------------------


def test_typed_accessors_for_consumers() -> None:
    node = typed(parse_resource(by_kind("Node")), NodeSpec)
    assert str(node.spec.ipv4) == "10.192.0.2"
    assert str(node.spec.ipv4_network) == "10.192.0.0/16"
    assert str(node.spec.ipv6) == "fd00::2"
    assert node.spec.route_reflector_cluster_id == "224.0.0.1"
    assert node.status is not None and node.status.wireguard_public_key
    peer = typed(parse_resource(by_kind("BGPPeer")), BGPPeerSpec)
    assert peer.spec.peer_address() is None and not peer.spec.is_global()
    assert parse_peer_ip("[fd00::1]:1179") == (ipaddress.ip_address("fd00::1"), 1179)
    assert parse_peer_ip("10.0.0.1") == (ipaddress.ip_address("10.0.0.1"), None)
    gnp = typed(parse_resource(by_kind("GlobalNetworkPolicy")), GlobalNetworkPolicySpec)
    assert gnp.spec.order == 10.5
    wep = typed(parse_resource(by_kind("WorkloadEndpoint")), WorkloadEndpointSpec)
    assert [str(a) for a in wep.spec.addresses()] == ["10.244.1.5", "fd00:244::5"]
    with pytest.raises(TypeError):
        typed(parse_resource(by_kind("Node")), IPPoolSpec)


def test_empty_block_is_valid_and_fifo_ordered() -> None:
    """calico.md §1.12: a new block's `unallocated` FIFO is 0..n-1."""
    import ipaddress as ip

    block = empty_block(ip.ip_network("10.0.0.0/26"), "host:n1", 5)
    doc = minimal("IPAMBlock", {}, "10-0-0-0-26")
    doc["spec"] = Resource(
        "IPAMBlock", parse_resource(minimal("Profile", {})).metadata, block
    ).to_dict()["spec"]
    parsed = typed(parse_resource(doc), IPAMBlockSpec)
    assert parsed.spec.unallocated == tuple(range(64))
    assert parsed.spec.host() == "n1"
    assert IPAMConfigSpec().block_cap() == 20


def test_build_resource_validates_code_built_objects() -> None:
    """Objects made in code go through the same defaults and rules as documents."""
    import ipaddress as ip

    from resources.resource import build_resource

    pool = build_resource("IPPool", "p", IPPoolSpec(cidr=ip.ip_network("fd00::/48")))
    assert pool.spec.block_size == 122
    wep = build_resource(
        "WorkloadEndpoint",
        "n-cni-c1-eth0",
        WorkloadEndpointSpec(node="n", ip_networks=(ip.ip_network("10.0.0.5/32"),)),
        namespace="default",
        labels={"app": "web"},
    )
    assert wep.namespace == "default"
    with pytest.raises(ResourceError) as info:
        build_resource(
            "IPPool", "p", IPPoolSpec(cidr=ip.ip_network("fd00::/48"), ipip_mode="Always")
        )
    assert info.value.path == "spec.ipipMode"


def test_disabled_pool_may_be_smaller_than_a_block() -> None:
    """Calico checks pool ≥ block size only for enabled pools (validateIPPoolSpec)."""
    assert _pool({"cidr": "10.0.0.0/28", "disabled": True}).spec.block_size == 26


def test_legacy_host_affinity_of_old_calico_blocks() -> None:
    """Old Calico datastores carry `hostAffinity: <node>` instead of `affinity: host:<node>`."""
    doc = minimal(
        "IPAMBlock",
        {"cidr": "10.0.0.0/30", "allocations": [None] * 4, "hostAffinity": "old-node"},
        "10-0-0-0-30",
    )
    assert typed(parse_resource(doc), IPAMBlockSpec).spec.host() == "old-node"
