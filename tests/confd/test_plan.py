"""Golden tests: Calico resources in YAML → the peer set and originated prefixes of one node.

Cluster shape as in Calico's confd corpus: nodes on 10.192.0.2/3/4 in a /16; the node under
test varies. Expected peerings follow shared/reference/calico.md §3.3.
"""

from __future__ import annotations

import textwrap

import pytest
import yaml

from confd.render.compute import compute_plan
from confd.render.model import NodeBGPPlan
from confd.render.view import build_view
from resources.resource import parse_resource

BASE = """
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: kube-master, labels: {role: master}}
spec: {bgp: {ipv4Address: 10.192.0.2/16, ipv6Address: "fd00::2/64"}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: kube-node-1, labels: {role: worker}}
spec: {bgp: {ipv4Address: 10.192.0.3/16, ipv6Address: "fd00::3/64"}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: kube-node-2, labels: {role: worker}}
spec: {bgp: {ipv4Address: 10.192.0.4/16}}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: default-ipv4}
spec: {cidr: 192.168.0.0/16}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: kube-master-192-168-10-0-26}
spec: {state: confirmed, node: kube-master, cidr: 192.168.10.0/26}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: kube-node-1-192-168-20-0-26}
spec: {state: confirmed, node: kube-node-1, cidr: 192.168.20.0/26}
"""


def plan_for(
    node: str, extra: str = "", secrets: dict[tuple[str, str], str] | None = None
) -> NodeBGPPlan:
    docs = [d for d in yaml.safe_load_all(BASE + textwrap.dedent(extra)) if d]
    return compute_plan(node, build_view((parse_resource(d) for d in docs), secrets))


def peers(plan: NodeBGPPlan) -> list[tuple[str, str, int, bool, bool]]:
    """(name, peer type, remote AS, passive, rr client) per peering."""
    return [(p.name, p.peer_type, p.remote_as, p.passive, p.rr_client) for p in plan.peers]


def test_default_full_mesh_greater_address_connects() -> None:
    plan = plan_for("kube-master")
    assert plan.router_id.exploded == "10.192.0.2"
    assert plan.local_as == 64512
    assert peers(plan) == [
        ("Mesh_10_192_0_3", "node-to-node mesh", 64512, True, False),
        ("Mesh_10_192_0_4", "node-to-node mesh", 64512, True, False),
        ("Mesh_fd00__3", "node-to-node mesh", 64512, True, False),
    ]
    assert all(str(p.source_address) in ("10.192.0.2", "fd00::2") for p in plan.peers)
    assert [str(o.prefix) for o in plan.originate] == ["192.168.10.0/26"]
    # The node with the greatest address connects to both others.
    assert [p.passive for p in plan_for("kube-node-2").peers] == [False, False]


def test_mesh_disabled_with_global_peers() -> None:
    plan = plan_for(
        "kube-node-1",
        """
        ---
        apiVersion: projectcalico.org/v3
        kind: BGPConfiguration
        metadata: {name: default}
        spec: {nodeToNodeMeshEnabled: false, asNumber: 64511}
        ---
        apiVersion: projectcalico.org/v3
        kind: BGPPeer
        metadata: {name: tor}
        spec: {peerIP: 10.192.0.1, asNumber: 65001}
        ---
        apiVersion: projectcalico.org/v3
        kind: BGPPeer
        metadata: {name: tor-v6}
        spec: {peerIP: "[fd00::1]:1179", asNumber: 65001}
        """,
    )
    assert plan.local_as == 64511
    assert peers(plan) == [
        ("Global_10_192_0_1", "global", 65001, False, False),
        ("Global_fd00__1_port_1179", "global", 65001, False, False),
    ]
    assert plan.peers[1].port == 1179


RR_TWO = """
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {nodeToNodeMeshEnabled: false}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: rr-a, labels: {routeReflector: "true"}}
spec: {bgp: {ipv4Address: 10.192.0.10/16, routeReflectorClusterID: 224.0.0.1}}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: rr-b, labels: {routeReflector: "true"}}
spec: {bgp: {ipv4Address: 10.192.0.11/16, routeReflectorClusterID: CLUSTER_B}}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: peer-with-rrs}
spec: {nodeSelector: "!has(routeReflector)", peerSelector: has(routeReflector)}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: rr-mesh}
spec: {nodeSelector: has(routeReflector), peerSelector: has(routeReflector)}
"""


@pytest.mark.parametrize(
    ("cluster_b", "rrs_are_clients"), [("224.0.0.1", False), ("224.0.0.2", True)]
)
def test_two_route_reflectors(cluster_b: str, rrs_are_clients: bool) -> None:
    extra = RR_TWO.replace("CLUSTER_B", cluster_b)
    rr = plan_for("rr-a", extra)
    assert rr.cluster_id == "224.0.0.1"
    assert peers(rr) == [
        ("Node_10_192_0_11", "node specific", 64512, False, rrs_are_clients),
        ("Node_10_192_0_2", "node specific", 64512, False, True),
        ("Node_10_192_0_3", "node specific", 64512, False, True),
        ("Node_10_192_0_4", "node specific", 64512, False, True),
    ]
    assert all(p.cluster_id == "224.0.0.1" for p in rr.peers if p.rr_client)
    client = plan_for("kube-node-1", extra)
    assert peers(client) == [
        ("Node_10_192_0_10", "node specific", 64512, False, False),
        ("Node_10_192_0_11", "node specific", 64512, False, False),
    ]


def test_selector_peers_and_reverse_peering() -> None:
    extra = """
    ---
    apiVersion: projectcalico.org/v3
    kind: BGPConfiguration
    metadata: {name: default}
    spec: {nodeToNodeMeshEnabled: false}
    ---
    apiVersion: projectcalico.org/v3
    kind: BGPPeer
    metadata: {name: master-to-workers}
    spec: {nodeSelector: role == 'master', peerSelector: role == 'worker'}
    """
    assert [p.name for p in plan_for("kube-master", extra).peers] == [
        "Node_10_192_0_3",
        "Node_10_192_0_4",
        "Node_fd00__3",
    ]
    # Workers get the reverse session automatically...
    assert [p.name for p in plan_for("kube-node-1", extra).peers] == [
        "Node_10_192_0_2",
        "Node_fd00__2",
    ]
    # ...unless reversePeering is Manual.
    manual = extra.replace(
        "peerSelector: role == 'worker'}", "peerSelector: role == 'worker', reversePeering: Manual}"
    )
    assert plan_for("kube-node-1", manual).peers == ()


def test_per_node_as_makes_ebgp_and_node_specific_peer_ip() -> None:
    extra = """
    ---
    apiVersion: projectcalico.org/v3
    kind: Node
    metadata: {name: edge, labels: {}}
    spec: {bgp: {ipv4Address: 10.192.0.20/16, asNumber: 65020}}
    """
    plan = plan_for("edge", extra)
    assert plan.local_as == 65020
    assert {(p.name, p.remote_as) for p in plan.peers} == {
        ("Mesh_10_192_0_2", 64512),
        ("Mesh_10_192_0_3", 64512),
        ("Mesh_10_192_0_4", 64512),
    }
    master = plan_for("kube-master", extra)
    assert ("Mesh_10_192_0_20", "node-to-node mesh", 65020, True, False) in peers(master)


def test_node_turning_into_a_reflector_leaves_the_mesh() -> None:
    # Re-declaring kube-node-2 with a cluster id (the later document wins) makes it a reflector.
    extra = """
    ---
    apiVersion: projectcalico.org/v3
    kind: Node
    metadata: {name: kube-node-2, labels: {role: worker}}
    spec: {bgp: {ipv4Address: 10.192.0.4/16, routeReflectorClusterID: 224.0.0.1}}
    """
    master = plan_for("kube-master", extra)
    assert [p.name for p in master.peers] == ["Mesh_10_192_0_3", "Mesh_fd00__3"]
    rr = plan_for("kube-node-2", extra)
    assert rr.cluster_id == "224.0.0.1"
    assert rr.peers == ()  # a reflector is not meshed; it needs BGPPeers


def test_ipv6_only_node_gets_hashed_router_id() -> None:
    extra = """
    ---
    apiVersion: projectcalico.org/v3
    kind: Node
    metadata: {name: v6-only}
    spec: {bgp: {ipv6Address: "fd00::9/64"}}
    """
    plan = plan_for("v6-only", extra)
    assert plan.router_id.version == 4
    assert plan.router_id == plan_for("v6-only", extra).router_id
    assert [p.name for p in plan.peers] == ["Mesh_fd00__2", "Mesh_fd00__3"]


def test_originated_blocks_and_communities() -> None:
    extra = """
    ---
    apiVersion: projectcalico.org/v3
    kind: BGPConfiguration
    metadata: {name: default}
    spec:
      communities: [{name: pods, value: "65001:100"}]
      prefixAdvertisements:
      - cidr: 192.168.0.0/16
        communities: [pods, "65001:1:2"]
    ---
    apiVersion: projectcalico.org/v3
    kind: IPPool
    metadata: {name: private}
    spec: {cidr: 172.16.0.0/16, disableBGPExport: true}
    ---
    apiVersion: projectcalico.org/v3
    kind: BlockAffinity
    metadata: {name: kube-master-172-16-0-0-26}
    spec: {state: confirmed, node: kube-master, cidr: 172.16.0.0/26}
    ---
    apiVersion: projectcalico.org/v3
    kind: BlockAffinity
    metadata: {name: kube-master-192-168-11-0-26}
    spec: {state: pending, node: kube-master, cidr: 192.168.11.0/26}
    """
    plan = plan_for("kube-master", extra)
    assert [(str(o.prefix), o.communities, o.large_communities) for o in plan.originate] == [
        ("192.168.10.0/26", ("65001:100",), ("65001:1:2",))
    ]


def test_missing_secret_skips_the_peering_and_says_why() -> None:
    extra = """
    ---
    apiVersion: projectcalico.org/v3
    kind: BGPPeer
    metadata: {name: tor}
    spec: {peerIP: 10.192.0.1, asNumber: 65001, password: {secretKeyRef: {name: bgp, key: tor}}}
    """
    plan = plan_for("kube-master", extra)
    assert "Global_10_192_0_1" not in [p.name for p in plan.peers]
    assert plan.problems and "bgp/tor" in plan.problems[0].reason
    with_secret = plan_for("kube-master", extra, {("bgp", "tor"): "s3cret"})
    tor = [p for p in with_secret.peers if p.name == "Global_10_192_0_1"]
    assert tor and tor[0].password == "s3cret"


def test_unknown_node_yields_an_empty_plan_with_a_problem() -> None:
    plan = plan_for("nobody")
    assert plan.peers == () and plan.problems
