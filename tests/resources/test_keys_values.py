"""Store keys mirror Calico's etcd layout (calico.md §2.1); store values round-trip."""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resources.duration import Duration, format_duration, parse_duration
from resources.errors import ResourceError
from resources.keys import (
    KeyRef,
    affinity_key,
    block_key,
    handle_key,
    ipam_config_key,
    key_for,
    key_of,
    list_prefix,
    parse_key,
    resource_key,
)
from resources.resource import KINDS, parse_resource
from resources.values import decode_value, encode_value, value_document
from tests.resources.fixtures import CANONICAL, by_kind, minimal

V4 = ipaddress.ip_network("10.0.0.0/26")
V6 = ipaddress.ip_network("fd00:1::/122")


@pytest.mark.parametrize(
    ("key", "ref"),
    [
        (
            "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool",
            KeyRef("IPPool", "default-ipv4-ippool"),
        ),
        (
            "/calico/resources/v3/projectcalico.org/bgpconfigurations/default",
            KeyRef("BGPConfiguration", "default"),
        ),
        (
            "/calico/resources/v3/projectcalico.org/felixconfigurations/node.n1",
            KeyRef("FelixConfiguration", "node.n1"),
        ),
        (
            "/calico/resources/v3/projectcalico.org/networkpolicies/shop/allow-web",
            KeyRef("NetworkPolicy", "allow-web", "shop"),
        ),
        (
            "/calico/resources/v3/projectcalico.org/workloadendpoints/default/n1-cni-abc-eth0",
            KeyRef("WorkloadEndpoint", "n1-cni-abc-eth0", "default"),
        ),
        ("/calico/resources/v3/projectcalico.org/nodes/n1", KeyRef("Node", "n1")),
        (
            "/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26",
            KeyRef("IPAMBlock", "10-0-0-0-26", cidr=V4),
        ),
        (
            "/calico/ipam/v2/assignment/ipv6/block/fd00:1::-122",
            KeyRef("IPAMBlock", "fd00-1---122", cidr=V6),
        ),
        (
            "/calico/ipam/v2/host/n1/ipv4/block/10.0.0.0-26",
            KeyRef("BlockAffinity", "n1-10-0-0-0-26", cidr=V4, node="n1"),
        ),
        ("/calico/ipam/v2/handle/k8s-pod-network.abc", KeyRef("IPAMHandle", "k8s-pod-network.abc")),
        ("/calico/ipam/v2/config", KeyRef("IPAMConfig", "default")),
    ],
)
def test_calico_etcd_keys_both_ways(key: str, ref: KeyRef) -> None:
    """calico.md §2.1 key table: key → (kind, namespace, name) and back, byte for byte."""
    assert parse_key(key) == ref
    assert key_for(ref) == key


def test_ipam_key_helpers_match_calico_layout() -> None:
    assert block_key(V4) == "/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-26"
    assert affinity_key("n1", V6) == "/calico/ipam/v2/host/n1/ipv6/block/fd00:1::-122"
    assert handle_key("h") == "/calico/ipam/v2/handle/h"
    assert ipam_config_key() == "/calico/ipam/v2/config"


def test_configurable_prefix() -> None:
    key = resource_key("IPPool", "p", prefix="/tabby/test-1")
    assert key == "/tabby/test-1/resources/v3/projectcalico.org/ippools/p"
    assert parse_key(key, "/tabby/test-1") == KeyRef("IPPool", "p")
    with pytest.raises(ResourceError):
        parse_key(key)  # not under /calico
    assert block_key(V4, "/x") == "/x/ipam/v2/assignment/ipv4/block/10.0.0.0-26"
    with pytest.raises(ValueError, match="prefix"):
        resource_key("IPPool", "p", prefix="no-slash")


@pytest.mark.parametrize("doc", CANONICAL, ids=lambda d: str(d["kind"]))
def test_every_kind_key_and_value_round_trip(doc: dict[str, object]) -> None:
    """Value = JSON without resourceVersion; on read resourceVersion = mod_revision."""
    resource = parse_resource(doc)
    key = key_of(resource)
    assert parse_key(key).kind == resource.kind
    assert parse_key(key).name == resource.name
    value = encode_value(resource.with_resource_version(99))
    assert b"resourceVersion" not in value
    back = decode_value(key, value, 1234)
    assert back.metadata.resource_version == "1234"
    expected = resource.with_resource_version(1234)
    if resource.kind in ("IPAMBlock", "BlockAffinity", "IPAMHandle", "IPAMConfig"):
        # Calico's IPAM values carry no metadata; only the spec survives.
        assert back.spec == expected.spec
    else:
        assert back == expected


def test_ipam_values_are_calicos_etcd_json() -> None:
    """calico.md §2.1: affinity `{"state","deleted"}`, handle `{"block","deleted"}`, config names."""
    affinity = parse_resource(by_kind("BlockAffinity"))
    assert json.loads(encode_value(affinity)) == {"state": "confirmed", "deleted": False}
    handle = parse_resource(by_kind("IPAMHandle"))
    assert json.loads(encode_value(handle)) == {"block": {"10.244.1.0/30": 1}, "deleted": False}
    config = parse_resource(by_kind("IPAMConfig"))
    assert value_document(config) == {
        "strict_affinity": True,
        "auto_allocate_blocks": True,
        "maxBlocksPerHost": 4,
    }
    block = json.loads(encode_value(parse_resource(by_kind("IPAMBlock"))))
    assert block["allocations"] == [0, None, 1, None]
    assert block["attributes"][0]["handle_id"] == "net1.abc123"


def test_list_prefixes() -> None:
    assert list_prefix("IPPool") == "/calico/resources/v3/projectcalico.org/ippools/"
    assert (
        list_prefix("NetworkPolicy", "shop")
        == "/calico/resources/v3/projectcalico.org/networkpolicies/shop/"
    )
    assert list_prefix("BlockAffinity", node="n1") == "/calico/ipam/v2/host/n1/"
    assert list_prefix("IPAMBlock") == "/calico/ipam/v2/assignment/"
    for kind in KINDS:
        if kind != "IPAMConfig":
            assert list_prefix(kind).endswith("/")


@pytest.mark.parametrize(
    "key",
    [
        "/calico/resources/v3/projectcalico.org/ippools",
        "/calico/resources/v3/projectcalico.org/ippools/a/b",
        "/calico/resources/v3/projectcalico.org/networkpolicies/onlyname",
        "/calico/resources/v3/projectcalico.org/tiers/default",
        "/calico/resources/v3/projectcalico.org/ippools/",
        "/calico/ipam/v2/assignment/ipv4/block/10.0.0.0-99",
        "/calico/ipam/v2/assignment/ipv6/block/10.0.0.0-26",
        "/calico/ipam/v2/host//ipv4/block/10.0.0.0-26",
        "/calico/felix/v2/no-region/host/n1/status",
        "/other/thing",
    ],
)
def test_keys_outside_the_layout_are_refused(key: str) -> None:
    with pytest.raises(ResourceError) as info:
        parse_key(key)
    assert info.value.path == "key"


_names = st.from_regex(r"[a-z0-9]([a-z0-9.-]{0,20}[a-z0-9])?", fullmatch=True).filter(
    lambda s: ".." not in s and ".-" not in s and "-." not in s
)


@given(
    kind=st.sampled_from(sorted(k for k in KINDS if not k.startswith(("IPAM", "Block")))),
    name=_names,
    namespace=_names,
)
def test_resource_keys_round_trip_for_generated_names(kind: str, name: str, namespace: str) -> None:
    ns = namespace if KINDS[kind].namespaced else None
    ref = KeyRef(kind, name, ns)
    assert parse_key(key_for(ref)) == ref


@given(
    node=_names,
    cidr=st.one_of(
        st.tuples(st.integers(0, 2**32 - 1), st.integers(20, 32)).map(
            lambda t: ipaddress.ip_network((t[0], t[1]), strict=False)
        ),
        st.tuples(st.integers(0, 2**128 - 1), st.integers(116, 128)).map(
            lambda t: ipaddress.ip_network((t[0], t[1]), strict=False)
        ),
    ),
)
def test_ipam_keys_round_trip_for_generated_blocks(
    node: str, cidr: ipaddress.IPv4Network | ipaddress.IPv6Network
) -> None:
    assert parse_key(block_key(cidr)).cidr == cidr
    ref = parse_key(affinity_key(node, cidr))
    assert (ref.node, ref.cidr) == (node, cidr)


def test_value_that_does_not_match_its_key_is_refused() -> None:
    resource = parse_resource(minimal("IPPool", {"cidr": "10.0.0.0/16"}, "a"))
    with pytest.raises(ResourceError, match="key"):
        decode_value(resource_key("IPPool", "b"), encode_value(resource), 3)
    with pytest.raises(ResourceError) as info:
        decode_value(resource_key("IPPool", "a"), b"{not json", 3)
    assert info.value.path == "value"
    with pytest.raises(ResourceError):
        decode_value(resource_key("IPPool", "a"), b"[]", 3)
    with pytest.raises(ResourceError):
        decode_value(resource_key("IPPool", "a"), b" " * 2_000_000, 3)


# --- durations ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "nanos", "canonical"),
    [
        ("0", 0, "0s"),
        ("90s", 90 * 10**9, "1m30s"),
        ("1m30s", 90 * 10**9, "1m30s"),
        ("1h", 3600 * 10**9, "1h0m0s"),
        ("1.5s", 1_500_000_000, "1.5s"),
        ("500ms", 500_000_000, "500ms"),
        ("2us", 2_000, "2µs"),
        ("-3s", -3 * 10**9, "-3s"),
    ],
)
def test_go_durations(text: str, nanos: int, canonical: str) -> None:
    """metav1.Duration uses Go's time.ParseDuration / Duration.String()."""
    assert parse_duration(text) == nanos
    assert format_duration(nanos) == canonical
    assert str(Duration(nanos)) == canonical


@given(st.integers(-(10**15), 10**15))
def test_duration_format_parse_round_trip(nanos: int) -> None:
    assert parse_duration(format_duration(nanos)) == nanos


@pytest.mark.parametrize("text", ["", "s", "5", "1x", "1.s.", "--1s", "1 s"])
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
