"""Manifests (issue 7, tabbyctl): multi-document YAML/JSON, all validated before any is used."""

from __future__ import annotations

import json

import pytest
import yaml

from resources.endpoints import WorkloadEndpointSpec, workload_endpoint_name, workload_labels
from resources.manifest import ManifestError, dump_yaml, load_documents, parse_manifest
from resources.policy import policy_selector
from resources.resource import parse_resource, typed
from tests.resources.fixtures import CANONICAL, by_kind

# The route-reflector setup of Calico's golden fixture (calico.md §3.3).
RR_MANIFEST = """
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata:
  name: default
spec:
  nodeToNodeMeshEnabled: false
  asNumber: 64512
---
apiVersion: projectcalico.org/v3
kind: Node
metadata:
  name: kube-master
  labels:
    routeReflector: "true"
  creationTimestamp: 2026-11-30T12:00:00Z
spec:
  bgp:
    ipv4Address: 10.192.0.2/16
    routeReflectorClusterID: 10.0.0.1
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: peer-with-route-reflectors
spec:
  nodeSelector: '!has(routeReflector)'
  peerSelector: has(routeReflector)
"""


def test_calicoctl_route_reflector_manifest_applies_unchanged() -> None:
    """A user's calicoctl manifest parses as-is (multi-document YAML, unquoted timestamp)."""
    resources = parse_manifest(RR_MANIFEST)
    assert [r.kind for r in resources] == ["BGPConfiguration", "Node", "BGPPeer"]
    assert resources[1].metadata.creation_timestamp == "2026-11-30T12:00:00Z"


def test_every_canonical_document_survives_yaml_and_json_text() -> None:
    as_yaml = "---\n".join(yaml.safe_dump(doc, sort_keys=False) for doc in CANONICAL)
    as_json = json.dumps(CANONICAL)
    expected = [parse_resource(doc) for doc in CANONICAL]
    assert parse_manifest(as_yaml) == expected
    assert parse_manifest(as_json) == expected
    dumped = dump_yaml([r.to_dict() for r in expected])
    assert parse_manifest(dumped) == expected  # `kind: List` with items
    assert parse_manifest(dump_yaml([expected[0].to_dict()])) == expected[:1]


def test_one_bad_document_fails_the_whole_manifest_naming_document_and_field() -> None:
    bad = (
        RR_MANIFEST
        + """---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: broken}
spec: {cidr: 10.0.0.0/16, ipipMode: Sometimes}
"""
    )
    with pytest.raises(ManifestError) as info:
        parse_manifest(bad)
    err = info.value
    assert err.document == 3
    assert err.path == "spec.ipipMode"
    assert str(err) == (
        "document 3 (IPPool broken): spec.ipipMode: must be one of Always, CrossSubnet, Never"
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: [1", "not valid YAML or JSON at line 1"),
        ("base: &b {x: 1}\nother: *b\n", "aliases"),
        ("- 1\n- 2\n", "must be a mapping"),
        ("kind: List\nitems: 3\n", "items: must be a list"),
    ],
)
def test_malformed_manifests(text: str, fragment: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text)
    assert fragment in str(info.value)


def test_manifest_size_limit() -> None:
    with pytest.raises(ManifestError, match="larger than"):
        load_documents("#" * (4 * 1024 * 1024 + 1))


def test_namespace_flag_fills_namespaced_documents_only() -> None:
    text = """
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: a}
---
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: b, namespace: kept}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: c}
"""
    namespaces = [r.namespace for r in parse_manifest(text, namespace="shop")]
    assert namespaces == ["shop", "kept", None]


def test_workload_endpoint_name_doubles_dashes() -> None:
    """calico.md §1.6: `<node>-cni-<containerID>-<endpoint>`, dashes in a segment doubled."""
    assert workload_endpoint_name("node-1", "cni", "abc123", "eth0") == "node--1-cni-abc123-eth0"
    assert workload_endpoint_name("n", "k8s", "web-0", "eth0") == "n-k8s-web--0-eth0"


def test_namespaced_policy_selects_only_its_namespace() -> None:
    """calico.md §5.1: `(<selector>) && projectcalico.org/namespace == '<ns>'`."""
    wep = typed(parse_resource(by_kind("WorkloadEndpoint")), WorkloadEndpointSpec)
    labels = workload_labels({"app": "web"}, "shop", wep.spec)
    assert labels["projectcalico.org/orchestrator"] == "cni"
    assert policy_selector("app == 'web'", "shop").evaluate(labels)
    assert not policy_selector("app == 'web'", "other").evaluate(labels)
    assert policy_selector("", "shop").evaluate(labels)
    assert policy_selector("app == 'web'", None).evaluate({"app": "web"})
