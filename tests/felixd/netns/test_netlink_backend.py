"""The netlink backend against a real kernel, in a namespace the test creates (issue 10:
"a restart of felixd changes nothing that is already right", foreign routes untouched, nothing
outside the test's namespaces changes)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from felixd.backends.sync import sync
from felixd.netlink import NetlinkBackend
from felixd.nft import NftBackend
from felixd.plan import (
    BestPath,
    Block,
    EncapMode,
    HostInterface,
    NodeInfo,
    PlannerState,
    Pool,
    WorkloadEndpoint,
    compare,
    ownership,
    plan,
)
from felixd.plan.model import ObservedState
from tests.felixd.netns.nsutil import cleanup, in_ns, ns_name, root_snapshot, sh

pytestmark = pytest.mark.netns


@pytest.fixture
def node_ns() -> Iterator[str]:
    before = root_snapshot()
    ns = ns_name("nl")
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "fabric0")
        sh("ip", "-n", ns, "link", "add", "cali1", "type", "veth", "peer", "name", "pod1")
        for dev in ("lo", "eth0", "fabric0", "cali1", "pod1"):
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", ns, "addr", "add", "192.168.50.10/24", "dev", "eth0")
        # Foreign routes: BIRD's (proto 12) on a prefix felixd also wants, and an unrelated one.
        sh("ip", "-n", ns, "route", "add", "10.99.0.0/24", "via", "192.168.50.1", "proto", "12")
        sh("ip", "-n", ns, "route", "add", "10.245.2.0/26", "via", "192.168.50.1", "proto", "12")
        # A route type felixd never writes, on the key of the external route it wants.
        sh("ip", "-n", ns, "route", "add", "prohibit", "203.0.113.0/24", "proto", "12")
        yield ns
    finally:
        cleanup(ns)
        assert root_snapshot() == before


def _state() -> PlannerState:
    state = PlannerState("n1")
    state.set(HostInterface("eth0", ("192.168.50.10/24",), 1500))
    state.set(NodeInfo("n1", ("192.168.50.10/24",), "10.244.0.1"))
    state.set(NodeInfo("n2", ("192.168.50.11/24",), "10.244.1.1", "66:00:00:00:00:02"))
    state.set(NodeInfo("n3", ("192.168.50.12/24",), "10.245.3.1"))
    state.set(Pool("vx", "10.244.0.0/16", vxlan_mode=EncapMode.ALWAYS, nat_outgoing=True))
    state.set(Pool("flat", "10.245.0.0/16"))
    state.set(Block("10.244.0.0/26", "n1"))
    state.set(Block("10.244.1.0/26", "n2"))
    state.set(Block("10.245.3.0/26", "n3"))
    state.set(Block("10.245.2.0/26", "n3"))
    state.set(BestPath("10.245.3.0/26", ("192.168.50.12",)))
    state.set(BestPath("10.245.2.0/26", ("192.168.50.12",)))
    state.set(BestPath("10.245.4.0/26", ("192.168.50.12", "192.168.50.13")))  # ECMP
    state.set(BestPath("203.0.113.0/24", ("192.168.50.1",)))  # external
    state.set(Pool("v6", "fd00:244::/64"))
    state.set(
        WorkloadEndpoint("pod1", "cali1", ("10.244.0.5/32", "fd00:244::5/128"), "ee:ee:ee:ee:ee:01")
    )
    return state


def _backend(state: PlannerState, nft_state: Path | None = None) -> NetlinkBackend:
    return NetlinkBackend(ownership(state.config), NftBackend(state_file=nft_state))


def test_program_read_back_is_empty_diff_and_restart_is_noop(node_ns: str, tmp_path: Path) -> None:
    """calico.md §4.2 route kinds programmed; §4.3: a new backend re-reads and writes nothing."""
    state = _state()
    desired = plan(state)
    nft_state = tmp_path / "nft-tables.json"

    def first() -> tuple[int, list[str]]:
        backend = _backend(state, nft_state)
        report = sync(desired, backend)
        assert report.converged, report
        left = compare(desired, backend.read())
        backend.close()
        return report.applied, [str(p) for p in left.blocked]

    applied, blocked = in_ns(node_ns, first)
    assert applied > 10
    assert any("10.245.2.0/26" in b and "proto 12" in b for b in blocked)
    assert any("203.0.113.0/24" in b and "proto 12" in b for b in blocked)

    def restart() -> list[str]:
        backend = _backend(state, nft_state)  # a fresh instance; the nft state file survives
        found = compare(desired, backend.read())
        backend.close()
        return [type(op).__name__ for op in found.ops]

    # Without the state file, only the nft table would be rewritten (its contents are not
    # parsed back); no route, neighbour or FDB entry is touched.
    def restart_without_nft_memory() -> list[str]:
        backend = _backend(state)
        found = compare(desired, backend.read())
        backend.close()
        return [type(op).__name__ for op in found.ops]

    assert in_ns(node_ns, restart_without_nft_memory) == ["ReplaceNftTable"]
    routes = sh("ip", "-n", node_ns, "route", "show", "proto", "80")
    assert "10.244.1.0/26 via 10.244.1.1 dev vxlan.calico onlink" in routes
    assert "10.245.3.0/26 via 192.168.50.12 dev eth0 onlink" in routes
    assert "10.244.0.5 dev cali1 scope link" in routes
    assert "fd00:244::5 dev cali1 metric 1024" in sh(
        "ip", "-n", node_ns, "-6", "route", "show", "proto", "80"
    )
    assert "blackhole 10.244.0.0/26" in routes
    assert "nexthop via 192.168.50.12 dev eth0 weight 1 onlink" in routes
    # The foreign routes are still BIRD's.
    foreign = sh("ip", "-n", node_ns, "route", "show", "proto", "12")
    assert "10.99.0.0/24 via 192.168.50.1" in foreign and "10.245.2.0/26" in foreign
    neigh = sh("ip", "-n", node_ns, "neigh", "show", "dev", "vxlan.calico")
    assert "10.244.1.1 lladdr 66:00:00:00:00:02 PERMANENT" in neigh
    fdb = sh("ip", "netns", "exec", node_ns, "bridge", "fdb", "show", "dev", "vxlan.calico")
    assert "66:00:00:00:00:02 dst 192.168.50.11 self permanent" in fdb
    assert "masquerade" in sh(
        "ip", "netns", "exec", node_ns, "nft", "list", "table", "inet", "tabby-nat"
    )
    assert in_ns(node_ns, restart) == []
    # Someone edits felixd's table: the listing no longer matches, the next resync rewrites it.
    sh(
        "ip",
        "netns",
        "exec",
        node_ns,
        "nft",
        "add",
        "element",
        "inet",
        "tabby-nat",
        "masq-pools-v4",
        "{ 172.16.0.0/12 }",
    )
    assert in_ns(node_ns, restart) == ["ReplaceNftTable"]


def test_withdraw_and_endpoint_removal_delete_only_felixd_state(node_ns: str) -> None:
    """A withdrawn best path and a removed endpoint disappear; foreign routes stay (§4.3)."""
    state = _state()

    def run() -> tuple[bool, ObservedState]:
        backend = _backend(state)
        assert sync(plan(state), backend).converged
        state.delete(BestPath, "10.245.3.0/26")
        state.delete(WorkloadEndpoint, "pod1")
        state.delete(Pool, "vx")
        report = sync(plan(state), backend)
        observed = backend.read()
        backend.close()
        return report.converged, observed

    converged, observed = in_ns(node_ns, run)
    assert converged
    dsts = {r.dst: r for r in observed.routes.values()}
    assert "10.245.3.0/26" not in dsts and "10.244.0.5/32" not in dsts
    assert "vxlan.calico" not in observed.links
    assert dsts["10.99.0.0/24"].protocol == 12 and dsts["10.245.2.0/26"].protocol == 12
    assert dsts["203.0.113.0/24"].protocol == 12 and int(dsts["203.0.113.0/24"].type) == 8
    assert "10.245.4.0/26" in dsts and len(dsts["10.245.4.0/26"].nexthops) == 2
    assert sh("ip", "netns", "exec", node_ns, "nft", "list", "tables").strip() == ""


def test_ipip_without_the_kernel_module_is_blocked_not_failed(node_ns: str) -> None:
    """calico.md §4.2 IPIP routes go via tunl0. This kernel has no ipip module: the route is
    reported as blocked (interface missing), the rest converges. Where the module exists,
    the route is programmed on tunl0."""
    state = PlannerState("n1")
    state.set(HostInterface("eth0", ("192.168.50.10/24",), 1500))
    state.set(NodeInfo("n1", ("192.168.50.10/24",)))
    state.set(NodeInfo("n3", ("192.168.50.12/24",)))
    state.set(Pool("ipip", "10.246.0.0/16", ipip_mode=EncapMode.ALWAYS))
    state.set(Block("10.246.0.0/26", "n1"))
    state.set(Block("10.246.3.0/26", "n3"))
    state.set(BestPath("10.246.3.0/26", ("192.168.50.12",)))
    has_ipip = subprocess.run(
        ["ip", "-n", node_ns, "link", "add", "tunl0", "type", "ipip"],
        capture_output=True,
        check=False,
    ).returncode == 0 or "tunl0" in sh("ip", "-n", node_ns, "link", "show")
    if has_ipip:
        sh("ip", "-n", node_ns, "link", "set", "tunl0", "up")

    def run() -> tuple[bool, list[str]]:
        backend = _backend(state)
        report = sync(plan(state), backend)
        backend.close()
        return report.converged, [str(p) for p in report.blocked]

    converged, blocked = in_ns(node_ns, run)
    assert converged
    routes = sh("ip", "-n", node_ns, "route", "show", "proto", "80")
    assert "blackhole 10.246.0.0/26" in routes
    if not has_ipip:
        assert any("10.246.3.0/26" in b and "tunl0" in b for b in blocked), blocked
        pytest.skip("no ipip module in this kernel: the tunl0 route itself is not testable here")
    assert "10.246.3.0/26 via 192.168.50.12 dev tunl0 onlink" in routes
