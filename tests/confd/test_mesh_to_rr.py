"""Issue 7's end-to-end test: store + confd + bgpd on three 127.0.10.x addresses form a mesh
from resources alone, then switch to a route-reflector topology when YAML is applied; routes
are present at the end and the sessions that survive the switch are never reset."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ctl.cluster.commands import ClusterState, layout_from_state, node_view, wait_converged
from ctl.main import main as tabbyctl

RR_SWITCH = """
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {nodeToNodeMeshEnabled: false, asNumber: 64512, listenPort: PORT, bindMode: NodeIP}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: node-1, labels: {routeReflector: "true"}}
spec: {bgp: {ipv4Address: 127.0.10.1/8, routeReflectorClusterID: 224.0.0.1}}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: peer-with-route-reflectors}
spec: {nodeSelector: all(), peerSelector: has(routeReflector)}
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "c"
    yield directory
    if (directory / "cluster.json").exists():
        tabbyctl(["cluster", "down", "--dir", str(directory)])


def sessions(
    views: dict[str, tuple[list[dict[str, Any]], set[str] | None]],
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(node, n["address"]): n for node, (neighbors, _) in views.items() for n in neighbors}


@pytest.mark.slow
def test_mesh_then_route_reflector_from_yaml(cluster: Path, tmp_path: Path) -> None:
    port = 12579
    assert (
        tabbyctl(["cluster", "up", "--dir", str(cluster), "--nodes", "3", "--bgp-port", str(port)])
        == 0
    )
    layout = layout_from_state(cluster, ClusterState.load(cluster / "cluster.json"))
    before = sessions({n.name: asyncio.run(node_view(n)) for n in layout.nodes})
    assert len(before) == 6 and all(s["state"] == "Established" for s in before.values())
    assert all(s["established_count"] == 1 for s in before.values())

    manifest = tmp_path / "rr.yaml"
    manifest.write_text(RR_SWITCH.replace("PORT", str(port)))
    assert tabbyctl(["apply", "-f", str(manifest), "--store", layout.store_endpoints[0]]) == 0

    # node-2 and node-3 stop peering with each other; both keep their session with node-1.
    deadline = time.monotonic() + 60
    after: dict[tuple[str, str], dict[str, Any]] = {}
    while time.monotonic() < deadline:
        after = sessions({n.name: asyncio.run(node_view(n)) for n in layout.nodes})
        if set(after) == {
            ("node-1", "127.0.10.2"),
            ("node-1", "127.0.10.3"),
            ("node-2", "127.0.10.1"),
            ("node-3", "127.0.10.1"),
        }:
            break
        time.sleep(0.3)
    assert set(after) == {
        ("node-1", "127.0.10.2"),
        ("node-1", "127.0.10.3"),
        ("node-2", "127.0.10.1"),
        ("node-3", "127.0.10.1"),
    }
    asyncio.run(wait_converged(layout, 60, progress=False))  # every node has every block again
    after = sessions({n.name: asyncio.run(node_view(n)) for n in layout.nodes})
    for key, s in after.items():
        assert s["state"] == "Established", key
        assert s["established_count"] == 1, f"{key} was reset by the switch"
    assert after[("node-2", "127.0.10.1")]["peer_type"] == "node specific"
    # node-3 learns node-2's block through the reflector.
    _, learned = asyncio.run(node_view(layout.nodes[2]))
    assert learned is not None and "10.244.2.0/26" in learned
