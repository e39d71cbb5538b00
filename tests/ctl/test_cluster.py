"""`tabbyctl cluster` end to end: real store, confd and bgpd processes on 127.0.10.x.

Each test brings a cluster up in its own directory on its own BGP port, checks it, and tears
it down by PID; the last assertion of each is that nothing it started is still running.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ctl.cluster.commands import ClusterState, layout_from_state, node_view, wait_converged
from ctl.cluster.layout import ClusterLayout
from ctl.cluster.procs import is_alive
from ctl.main import main as tabbyctl
from ipc import RPCClient


@pytest.fixture
def cluster_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "cluster"
    yield directory
    # Whatever happened, stop what the test started.
    if (directory / "cluster.json").exists():
        tabbyctl(["cluster", "down", "--dir", str(directory)])


def route_on(layout: ClusterLayout, index: int, prefix: str) -> dict[str, object]:
    async def fetch() -> dict[str, object]:
        async with RPCClient(f"unix:{layout.nodes[index].bgpd_socket}") as client:
            rib = await client.call("rib", prefix)
        assert isinstance(rib, dict)
        routes = rib["routes"]
        return routes[0] if routes else {}

    return asyncio.run(fetch())


def wait_until(check: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def state_of(directory: Path) -> ClusterState:
    return ClusterState.load(directory / "cluster.json")


@pytest.mark.slow
def test_three_node_mesh_up_kill_restart_down(
    cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = tabbyctl(
        [
            "cluster",
            "up",
            "--dir",
            str(cluster_dir),
            "--nodes",
            "3",
            "--bgp-port",
            "12179",
            "--timeout",
            "60",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "cluster converged" in out
    state = state_of(cluster_dir)
    layout = layout_from_state(cluster_dir, state)
    assert len([p for p in state.processes if p.daemon == "bgpd"]) == 3
    assert all(is_alive(p) for p in state.processes)

    # Running `up` again does not start a second cluster on top of the first.
    assert tabbyctl(["cluster", "up", "--dir", str(cluster_dir), "--bgp-port", "12179"]) == 1
    assert "already running" in capsys.readouterr().err

    # kill -9 one bgpd: its sessions drop elsewhere; restart it and everything converges again.
    assert (
        tabbyctl(["cluster", "restart", "--dir", str(cluster_dir), "node-2", "bgpd", "--kill"]) == 0
    )
    asyncio.run(wait_converged(layout, 60, progress=False))
    neighbors, _ = asyncio.run(node_view(layout.nodes[0]))
    assert {n["address"]: n["state"] for n in neighbors} == {
        "127.0.10.2": "Established",
        "127.0.10.3": "Established",
    }

    assert tabbyctl(["cluster", "status", "--dir", str(cluster_dir)]) == 0
    status = capsys.readouterr().out
    assert status.count("Established") == 6

    pids = list(state_of(cluster_dir).processes)
    assert tabbyctl(["cluster", "down", "--dir", str(cluster_dir)]) == 0
    assert not any(is_alive(p) for p in pids)
    assert not cluster_dir.exists()


@pytest.mark.slow
def test_five_nodes_with_two_route_reflectors(
    cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["cluster", "up", "--dir", str(cluster_dir), "--nodes", "5", "--route-reflectors", "2"]
    assert tabbyctl([*args, "--bgp-port", "12479", "--timeout", "90"]) == 0, capsys.readouterr().out
    layout = layout_from_state(cluster_dir, state_of(cluster_dir))
    # A client peers with the two reflectors only, and learns every block through them.
    neighbors, learned = asyncio.run(node_view(layout.nodes[3]))
    assert sorted(n["address"] for n in neighbors) == ["127.0.10.1", "127.0.10.2"]
    assert learned == {f"10.244.{i}.0/26" for i in range(1, 6)}
    route = route_on(layout, 3, "10.244.5.0/26")
    assert route["originator_id"] == "127.0.10.5"
    assert route["cluster_list"] == ["224.0.0.1"]
    assert route["next_hops"] == ["127.0.10.5"]


@pytest.mark.slow
def test_dead_process_is_reported_and_restarted(
    cluster_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        tabbyctl(
            ["cluster", "up", "--dir", str(cluster_dir), "--nodes", "2", "--bgp-port", "12279"]
        )
        == 0
    )
    confd = next(
        p for p in state_of(cluster_dir).processes if p.node == "node-1" and p.daemon == "confd"
    )
    os.kill(confd.pid, 9)
    capsys.readouterr()
    assert tabbyctl(["cluster", "status", "--dir", str(cluster_dir)]) == 1
    assert "not running: node-1/confd" in capsys.readouterr().out
    assert tabbyctl(["cluster", "restart", "--dir", str(cluster_dir), "node-1", "confd"]) == 0
    assert tabbyctl(["cluster", "status", "--dir", str(cluster_dir)]) == 0


@pytest.mark.slow
def test_three_store_members_survive_the_leader_being_killed(cluster_dir: Path) -> None:
    assert (
        tabbyctl(
            [
                "cluster",
                "up",
                "--dir",
                str(cluster_dir),
                "--nodes",
                "2",
                "--store-members",
                "3",
                "--bgp-port",
                "12379",
            ]
        )
        == 0
    )
    state = state_of(cluster_dir)
    layout = layout_from_state(cluster_dir, state)

    async def leader_id() -> int:
        from store.client import StoreClient

        async with StoreClient(layout.store_endpoints) as client:
            status = await client.status()
            return int(status.leader)

    leader = asyncio.run(leader_id())
    victim = next(p for p in state.processes if p.node == f"store-{leader}")
    os.kill(victim.pid, 9)
    # The cluster keeps serving: a resource write through the remaining members succeeds.
    manifest = cluster_dir / "extra.yaml"
    manifest.write_text(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: extra}\nspec: {cidr: 10.250.0.0/16}\n"
    )
    endpoints = [a for e in layout.store_endpoints for a in ("--store", e)]
    assert tabbyctl(["apply", "-f", str(manifest), *endpoints]) == 0
    assert asyncio.run(leader_id()) != leader
