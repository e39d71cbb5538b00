"""Planner scenario tables: resources in → routes, neighbours, FDB entries, nft rules out.

Each case names the Calico behaviour it checks (calico.md §4.2 route kinds, §4.4 CrossSubnet,
§4.5 VXLAN device, §4.6 MTU, §4.7 sysctls, §5.7 natOutgoing). Expected output is written in
iproute2 notation (`felixd.plan.text`), the way an operator would read `ip route`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from felixd.plan import (
    BestPath,
    Block,
    EncapMode,
    FelixConfig,
    NodeInfo,
    PlannerState,
    Pool,
    Problem,
    RouteKind,
    RouteScope,
    WorkloadEndpoint,
    plan,
)
from felixd.plan.text import dataplane_lines
from tests.felixd.plan.world import POD_MAC, bgp_paths, world

A, B, C = "66:00:00:00:00:0a", "66:00:00:00:00:0b", "66:00:00:00:00:0c"
VXLAN_DEV = f"vxlan.calico: vxlan id 4096 local 192.168.1.10 dev eth0 dstport 4789 mtu 1450 address {A} inet 10.244.0.1/32"
POD_NEIGH = f"10.244.0.5 dev cali1111 lladdr {POD_MAC} PERMANENT"
LOCAL = ["blackhole 10.244.0.0/26 proto 80", "10.244.0.5 dev cali1111 proto 80 scope link"]
UNREACHABLE_C = Problem(
    "BestPath", "10.244.2.0/26", "next hop 192.168.2.12 is not on a connected subnet"
)


def _no_encap(s: PlannerState) -> None:
    bgp_paths(s)


def _ecmp(s: PlannerState) -> None:
    s.set(BestPath("10.244.1.0/26", ("192.168.1.12", "192.168.1.11")))


def _withdrawn(s: PlannerState) -> None:
    bgp_paths(s)
    s.delete(BestPath, "10.244.1.0/26")


def _block_moved_away(s: PlannerState) -> None:
    s.set(Block("10.244.1.0/26", "node-c"))


def _block_moved_here(s: PlannerState) -> None:
    s.set(Block("10.244.1.0/26", "node-a"))
    s.set(Block("10.244.0.0/26", "node-b"))


def _pool_deleted(s: PlannerState) -> None:
    s.delete(Pool, "default-pool")


def _endpoint_removed(s: PlannerState) -> None:
    s.delete(WorkloadEndpoint, "node-a-k8s-pod1-eth0")


def _external(s: PlannerState) -> None:
    s.set(BestPath("203.0.113.0/24", ("192.168.1.1",)))
    s.set(BestPath("198.51.100.0/24", ("192.168.9.9",)))


def _stale(s: PlannerState) -> None:
    s.set(BestPath("10.244.1.0/26", ("192.168.1.11",), stale=True))


def _nothing(s: PlannerState) -> None:
    del s


Case = tuple[str, EncapMode, EncapMode, Callable[[PlannerState], None], list[str], list[Problem]]

CASES: list[Case] = [
    (
        "no-encap: remote blocks via bgpd's next hop on the parent NIC, onlink (§4.2)",
        EncapMode.NEVER,
        EncapMode.NEVER,
        _no_encap,
        [POD_NEIGH, *LOCAL, "10.244.1.0/26 via 192.168.1.11 dev eth0 proto 80 onlink"],
        [UNREACHABLE_C],
    ),
    (
        "no-encap ECMP: one multipath route, next hops in address order",
        EncapMode.NEVER,
        EncapMode.NEVER,
        _ecmp,
        [
            POD_NEIGH,
            *LOCAL,
            "10.244.1.0/26 proto 80 nexthop via 192.168.1.11 dev eth0 weight 1 onlink"
            " nexthop via 192.168.1.12 dev eth0 weight 1 onlink",
        ],
        [],
    ),
    (
        "no-encap: a withdrawn block disappears",
        EncapMode.NEVER,
        EncapMode.NEVER,
        _withdrawn,
        [POD_NEIGH, *LOCAL],
        [UNREACHABLE_C],
    ),
    (
        "VXLAN Always: every remote block via its VTEP, with neighbour and FDB (§4.5)",
        EncapMode.ALWAYS,
        EncapMode.NEVER,
        _no_encap,  # best paths are present and must be ignored: VXLAN comes from the store
        [
            VXLAN_DEV,
            f"{B} dev vxlan.calico dst 192.168.1.11 self permanent",
            f"{C} dev vxlan.calico dst 192.168.2.12 self permanent",
            POD_NEIGH,
            f"10.244.1.1 dev vxlan.calico lladdr {B} PERMANENT",
            f"10.244.2.1 dev vxlan.calico lladdr {C} PERMANENT",
            *LOCAL,
            "10.244.1.0/26 via 10.244.1.1 dev vxlan.calico proto 80 onlink",
            "10.244.2.0/26 via 10.244.2.1 dev vxlan.calico proto 80 onlink",
        ],
        [],
    ),
    (
        "VXLAN CrossSubnet: same subnet unencapsulated, other subnet via VXLAN (§4.4)",
        EncapMode.CROSS_SUBNET,
        EncapMode.NEVER,
        _nothing,
        [
            VXLAN_DEV,
            f"{C} dev vxlan.calico dst 192.168.2.12 self permanent",
            POD_NEIGH,
            f"10.244.2.1 dev vxlan.calico lladdr {C} PERMANENT",
            *LOCAL,
            "10.244.1.0/26 via 192.168.1.11 dev eth0 proto 80 onlink",
            "10.244.2.0/26 via 10.244.2.1 dev vxlan.calico proto 80 onlink",
        ],
        [],
    ),
    (
        "VXLAN: a block moved to another node follows its new affinity",
        EncapMode.ALWAYS,
        EncapMode.NEVER,
        _block_moved_away,
        [
            VXLAN_DEV,
            f"{C} dev vxlan.calico dst 192.168.2.12 self permanent",
            POD_NEIGH,
            f"10.244.2.1 dev vxlan.calico lladdr {C} PERMANENT",
            *LOCAL,
            "10.244.1.0/26 via 10.244.2.1 dev vxlan.calico proto 80 onlink",
            "10.244.2.0/26 via 10.244.2.1 dev vxlan.calico proto 80 onlink",
        ],
        [],
    ),
    (
        "VXLAN: a block moved here becomes a blackhole; ours moved away becomes a remote route",
        EncapMode.ALWAYS,
        EncapMode.NEVER,
        _block_moved_here,
        [
            VXLAN_DEV,
            f"{B} dev vxlan.calico dst 192.168.1.11 self permanent",
            f"{C} dev vxlan.calico dst 192.168.2.12 self permanent",
            POD_NEIGH,
            f"10.244.1.1 dev vxlan.calico lladdr {B} PERMANENT",
            f"10.244.2.1 dev vxlan.calico lladdr {C} PERMANENT",
            "10.244.0.0/26 via 10.244.1.1 dev vxlan.calico proto 80 onlink",
            "10.244.0.5 dev cali1111 proto 80 scope link",
            "blackhole 10.244.1.0/26 proto 80",
            "10.244.2.0/26 via 10.244.2.1 dev vxlan.calico proto 80 onlink",
        ],
        [],
    ),
    (
        "pool deleted: no blackhole, no tunnel, the pod's address lies in no pool",
        EncapMode.ALWAYS,
        EncapMode.NEVER,
        _pool_deleted,
        [],
        [
            Problem(
                "WorkloadEndpoint",
                "node-a-k8s-pod1-eth0",
                "address 10.244.0.5/32 lies in no IP pool",
            )
        ],
    ),
    (
        "endpoint removed: its route and neighbour go",
        EncapMode.ALWAYS,
        EncapMode.NEVER,
        _endpoint_removed,
        [
            VXLAN_DEV,
            f"{B} dev vxlan.calico dst 192.168.1.11 self permanent",
            f"{C} dev vxlan.calico dst 192.168.2.12 self permanent",
            f"10.244.1.1 dev vxlan.calico lladdr {B} PERMANENT",
            f"10.244.2.1 dev vxlan.calico lladdr {C} PERMANENT",
            "blackhole 10.244.0.0/26 proto 80",
            "10.244.1.0/26 via 10.244.1.1 dev vxlan.calico proto 80 onlink",
            "10.244.2.0/26 via 10.244.2.1 dev vxlan.calico proto 80 onlink",
        ],
        [],
    ),
    (
        "IPIP Always: remote blocks via tunl0 onlink with the IPIP MTU (§4.2)",
        EncapMode.NEVER,
        EncapMode.ALWAYS,
        _no_encap,
        [
            "tunl0: ipip mtu 1480 inet 10.244.0.1/32 up",
            POD_NEIGH,
            *LOCAL,
            "10.244.1.0/26 via 192.168.1.11 dev tunl0 proto 80 onlink mtu 1480",
            "10.244.2.0/26 via 192.168.2.12 dev tunl0 proto 80 onlink mtu 1480",
        ],
        [],
    ),
    (
        "IPIP CrossSubnet: same subnet direct, other subnet via tunl0 (§4.4)",
        EncapMode.NEVER,
        EncapMode.CROSS_SUBNET,
        _no_encap,
        [
            "tunl0: ipip mtu 1480 inet 10.244.0.1/32 up",
            POD_NEIGH,
            *LOCAL,
            "10.244.1.0/26 via 192.168.1.11 dev eth0 proto 80 onlink",
            "10.244.2.0/26 via 192.168.2.12 dev tunl0 proto 80 onlink mtu 1480",
        ],
        [],
    ),
    (
        "external BGP route (no pool covers it) via its next hop; unreachable one reported",
        EncapMode.NEVER,
        EncapMode.NEVER,
        _external,
        [POD_NEIGH, *LOCAL, "203.0.113.0/24 via 192.168.1.1 dev eth0 proto 80"],
        [
            Problem(
                "BestPath", "198.51.100.0/24", "next hop 192.168.9.9 is not on a connected subnet"
            )
        ],
    ),
    (
        "RFC 4724 §4.2: graceful-restart stale paths stay installed",
        EncapMode.NEVER,
        EncapMode.NEVER,
        _stale,
        [POD_NEIGH, *LOCAL, "10.244.1.0/26 via 192.168.1.11 dev eth0 proto 80 onlink"],
        [],
    ),
]


@pytest.mark.parametrize(
    "case", CASES, ids=[c[0].split(":")[0] + f"-{i}" for i, c in enumerate(CASES)]
)
def test_scenario_calico_route_kinds(case: Case) -> None:
    _, vxlan, ipip, change, lines, problems = case
    state = world(vxlan=vxlan, ipip=ipip)
    change(state)
    desired = plan(state)
    assert dataplane_lines(desired) == lines
    assert list(desired.problems) == problems


def test_route_kinds_are_labelled_for_status() -> None:
    state = world(vxlan=EncapMode.CROSS_SUBNET)
    state.set(BestPath("203.0.113.0/24", ("192.168.1.1",)))
    counts = plan(state).route_counts()
    assert counts == {
        "workload": 1,
        "blackhole": 1,
        "remote-direct": 1,
        "remote-vxlan": 1,
        "remote-ipip": 0,
        "external": 1,
    }


def test_stale_paths_are_reported_for_status() -> None:
    state = world()
    _stale(state)
    desired = plan(state)
    assert desired.stale_prefixes == {"10.244.1.0/26"}
    assert desired.routes[(254, "10.244.1.0/26", 0)].kind is RouteKind.REMOTE_DIRECT


def test_external_routes_switch_off() -> None:
    state = world(config=FelixConfig(install_external_routes=False))
    _external(state)
    assert not any(k[1] == "203.0.113.0/24" for k in plan(state).routes)


def test_best_path_for_own_block_keeps_the_blackhole() -> None:
    state = world()
    state.set(BestPath("10.244.0.0/26", ("192.168.1.11",)))
    route = plan(state).routes[(254, "10.244.0.0/26", 0)]
    assert route.kind is RouteKind.BLACKHOLE


# -- bad input: skipped, named, the rest still planned (issue 10) ----------------------------


def test_bad_inputs_are_skipped_and_named_rest_still_planned() -> None:
    state = world(vxlan=EncapMode.ALWAYS)
    state.set(Pool("bad-cidr", "10.300.0.0/16"))
    state.set(Pool("host-bits", "10.9.0.1/16"))
    state.set(Pool("zz-overlap", "10.244.128.0/17"))
    state.set(Pool("both", "10.50.0.0/16", EncapMode.ALWAYS, EncapMode.ALWAYS))
    state.set(Pool("v6-ipip", "fd00::/48", ipip_mode=EncapMode.ALWAYS))
    state.set(Pool("link-local", "169.254.0.0/20"))
    state.set(WorkloadEndpoint("no-prefix", "eth7", ("10.244.0.9",)))
    state.set(WorkloadEndpoint("no-pool", "cali9", ("172.16.0.9",)))
    state.set(WorkloadEndpoint("bad-mac", "cali8", ("10.244.0.8",), "zz:zz"))
    state.set(WorkloadEndpoint("wide", "cali7", ("10.244.0.0/30",)))
    state.set(WorkloadEndpoint("slash", "cali/6", ("10.244.0.6",)))
    state.set(WorkloadEndpoint("zz-dup", "cali5", ("10.244.0.5",)))
    state.set(Block("10.244.3.0/26", "node-unknown"))
    state.set(Block("not-a-cidr", "node-b"))
    state.set(BestPath("172.20.0.0/16", ("fd00::1",)))
    state.set(BestPath("172.21.0.0/16", ("nonsense",)))
    desired = plan(state)
    assert set(desired.problems) == {
        Problem("IPPool", "bad-cidr", "bad CIDR '10.300.0.0/16'"),
        Problem("IPPool", "host-bits", "bad CIDR '10.9.0.1/16'"),
        Problem(
            "IPPool",
            "zz-overlap",
            "10.244.128.0/17 overlaps IP pool 'default-pool' (10.244.0.0/16)",
        ),
        Problem("IPPool", "both", "ipipMode and vxlanMode cannot both be enabled"),
        Problem("IPPool", "v6-ipip", "IPIP is not supported on IPv6 pools"),
        Problem("IPPool", "link-local", "169.254.0.0/20 overlaps link-local 169.254.0.0/16"),
        Problem("WorkloadEndpoint", "no-prefix", "interface 'eth7' lacks the 'cali' prefix"),
        Problem("WorkloadEndpoint", "no-pool", "address 172.16.0.9 lies in no IP pool"),
        Problem("WorkloadEndpoint", "bad-mac", "bad MAC 'zz:zz'"),
        Problem(
            "WorkloadEndpoint", "wide", "bad address '10.244.0.0/30' (a /32 or /128 is required)"
        ),
        Problem("WorkloadEndpoint", "slash", "bad interface name 'cali/6'"),
        Problem("WorkloadEndpoint", "zz-dup", "address 10.244.0.5/32 is 'node-a-k8s-pod1-eth0''s"),
        Problem("Block", "10.244.3.0/26", "affine node 'node-unknown' is unknown"),
        Problem("Block", "not-a-cidr", "bad CIDR"),
        Problem("BestPath", "172.20.0.0/16", "next hop fd00::1 is of the wrong family"),
        Problem("BestPath", "172.21.0.0/16", "bad next hop 'nonsense'"),
    }
    # Everything valid is still there: the pod, the blackhole, both VXLAN routes.
    kinds = sorted(r.kind.value for r in desired.routes.values() if r.kind)
    assert kinds == ["blackhole", "remote-vxlan", "remote-vxlan", "workload"]
    assert not any("sysctl" in p and "cali9" in p for p in desired.sysctls)


def test_problem_reads_as_one_log_line() -> None:
    assert str(UNREACHABLE_C) == (
        "BestPath '10.244.2.0/26': next hop 192.168.2.12 is not on a connected subnet"
    )


def test_missing_local_node_still_programs_workloads() -> None:
    state = world(vxlan=EncapMode.ALWAYS)
    state.delete(NodeInfo, "node-a")
    desired = plan(state)
    assert Problem("Node", "node-a", "this node's Node resource is missing") in desired.problems
    assert not desired.devices
    kinds = sorted(r.kind.value for r in desired.routes.values() if r.kind)
    assert kinds == ["blackhole", "workload"]


def test_derived_vtep_mac_when_node_has_none() -> None:
    """calico.md §1.4: 0x66 then SHA-1(node name)[0:5]."""
    state = world(vxlan=EncapMode.ALWAYS)
    state.set(NodeInfo("node-b", ("192.168.1.11/24",), "10.244.1.1"))
    desired = plan(state)
    neigh = desired.neighbours[("vxlan.calico", "10.244.1.1")]
    digest = hashlib.sha1(b"node-b").hexdigest()[:10]
    assert neigh.lladdr == "66:" + ":".join(digest[i : i + 2] for i in range(0, 10, 2))
    assert desired.fdb[("vxlan.calico", neigh.lladdr)].dst == "192.168.1.11"


# -- MTU (calico.md §4.6) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vxlan", "ipip", "config", "mtu"),
    [
        (EncapMode.NEVER, EncapMode.NEVER, FelixConfig(), 1500),
        (EncapMode.ALWAYS, EncapMode.NEVER, FelixConfig(), 1450),
        (EncapMode.NEVER, EncapMode.ALWAYS, FelixConfig(), 1480),
        (EncapMode.NEVER, EncapMode.NEVER, FelixConfig(wireguard_enabled=True), 1440),
        (EncapMode.ALWAYS, EncapMode.NEVER, FelixConfig(host_mtu=9000), 8950),
        (EncapMode.ALWAYS, EncapMode.NEVER, FelixConfig(vxlan_mtu=1400), 1400),
    ],
)
def test_pod_mtu_is_host_mtu_minus_enabled_encap_overhead(
    vxlan: EncapMode, ipip: EncapMode, config: FelixConfig, mtu: int
) -> None:
    assert plan(world(vxlan=vxlan, ipip=ipip, config=config)).pod_mtu == mtu


def test_host_mtu_is_the_smallest_up_host_interface() -> None:
    from felixd.plan import HostInterface

    state = world(vxlan=EncapMode.ALWAYS)
    state.set(HostInterface("eth1", ("10.0.0.1/24",), 1400))
    state.set(HostInterface("eth2", ("10.0.1.1/24",), 1000, up=False))
    desired = plan(state)
    assert desired.pod_mtu == 1350
    assert desired.devices["vxlan.calico"].mtu == 1350


# -- sysctls (calico.md §4.7) --------------------------------------------------------------


def test_workload_interface_sysctls_v4_and_v6() -> None:
    state = world()
    state.set(Pool("v6", "fd00:10::/64"))
    state.set(WorkloadEndpoint("pod6", "cali6666", ("10.244.0.6", "fd00:10::6"), POD_MAC))
    desired = plan(state)
    six = {p: v for p, v in desired.sysctls.items() if "cali6666" in p}
    assert six == {
        "net/ipv4/conf/cali6666/proxy_arp": "1",
        "net/ipv4/conf/cali6666/forwarding": "1",
        "net/ipv4/conf/cali6666/route_localnet": "1",
        "net/ipv4/neigh/cali6666/proxy_delay": "0",
        "net/ipv6/conf/cali6666/proxy_ndp": "1",
        "net/ipv6/conf/cali6666/forwarding": "1",
        "net/ipv6/conf/cali6666/accept_ra": "0",
    }
    assert not any("ipv6" in p for p in desired.sysctls if "cali1111" in p)
    # IPv6 workload route: metric 1024 as the kernel reports it; no static NDP entry (felix
    # programs static ARP for IPv4 only, §4.2).
    six_route = desired.routes[(254, "fd00:10::6/128", 1024)]
    assert six_route.scope is RouteScope.UNIVERSE  # IPv6 routes have no scope (rt6_fill_node)
    assert ("cali6666", "fd00:10::6") not in desired.neighbours


# -- natOutgoing (calico.md §5.7) ----------------------------------------------------------


def test_nat_outgoing_table_masquerades_pool_to_outside_every_pool() -> None:
    state = world(nat=True, config=FelixConfig(nat_exclusions=("10.0.0.0/8", "192.0.2.0/24")))
    state.set(Pool("other", "172.16.0.0/16"))
    state.set(Pool("v6", "fd00:10::/64", nat_outgoing=True))
    table = plan(state).nft_tables[("inet", "tabby-nat")]
    assert table.render() == "\n".join(
        [
            "table inet tabby-nat {",
            "  set masq-pools-v4 { type ipv4_addr; flags interval; elements = { 10.244.0.0/16 }; }",
            "  set no-nat-dst-v4 { type ipv4_addr; flags interval;"
            " elements = { 10.0.0.0/8, 172.16.0.0/16, 192.0.2.0/24 }; }",
            "  set masq-pools-v6 { type ipv6_addr; flags interval; elements = { fd00:10::/64 }; }",
            "  set no-nat-dst-v6 { type ipv6_addr; flags interval; elements = { fd00:10::/64 }; }",
            "  chain postrouting {",
            "    type nat hook postrouting priority 100; policy accept;",
            '    ip saddr @masq-pools-v4 ip daddr != @no-nat-dst-v4 masquerade comment "natOutgoing"',
            '    ip6 saddr @masq-pools-v6 ip6 daddr != @no-nat-dst-v6 masquerade comment "natOutgoing"',
            "  }",
            "}",
        ]
    )


def test_no_nat_table_without_a_nat_outgoing_pool() -> None:
    assert plan(world(nat=False)).nft_tables == {}


def test_nat_table_outside_owned_prefix_is_refused() -> None:
    state = world(nat=True, config=FelixConfig(nft_table="filter"))
    desired = plan(state)
    assert desired.nft_tables == {}
    assert any(p.kind == "FelixConfiguration" for p in desired.problems)


def test_two_nodes_claiming_one_vtep_mac_first_block_wins() -> None:
    state = world(vxlan=EncapMode.ALWAYS)
    state.set(NodeInfo("node-c", ("192.168.2.12/24",), "10.244.2.1", "66:00:00:00:00:0b"))
    desired = plan(state)
    assert desired.problems == (
        Problem("Block", "10.244.2.0/26", "another node already uses VTEP MAC 66:00:00:00:00:0b"),
    )
    assert desired.fdb[("vxlan.calico", "66:00:00:00:00:0b")].dst == "192.168.1.11"
    assert (254, "10.244.2.0/26", 0) not in desired.routes


def test_graceful_restart_marks_keeps_then_sweeps_only_what_was_not_relearned() -> None:
    """RFC 4724 §4.2: while bgpd restarts its routes stay (stale); paths sent again are fresh;
    when the restart time runs out the rest are swept."""
    state = world()
    state.set(BestPath("10.244.1.0/26", ("192.168.1.11",)))
    state.set(BestPath("203.0.113.0/24", ("192.168.1.1",)))
    before = plan(state).routes
    assert state.mark_stale() == 2 and state.mark_stale() == 0
    during = plan(state)
    assert during.routes == before
    assert during.stale_prefixes == {"10.244.1.0/26", "203.0.113.0/24"}
    state.set(BestPath("10.244.1.0/26", ("192.168.1.11",)))  # bgpd is back and re-announces
    assert plan(state).stale_prefixes == {"203.0.113.0/24"}
    assert state.sweep_stale() == ["203.0.113.0/24"]
    after = plan(state)
    assert (254, "203.0.113.0/24", 0) not in after.routes
    assert (254, "10.244.1.0/26", 0) in after.routes and not after.stale_prefixes


def test_mark_stale_for_one_peers_prefixes() -> None:
    state = world()
    bgp_paths(state)
    assert state.mark_stale(["10.244.2.0/26", "10.9.9.0/24"]) == 1
    assert state.best_paths["10.244.2.0/26"].stale
    assert not state.best_paths["10.244.1.0/26"].stale


def test_disabled_pool_still_routes() -> None:
    """calico.md §1.1: `disabled` only stops IPAM; its routes are still programmed."""
    state = world(vxlan=EncapMode.ALWAYS)
    state.set(Pool("default-pool", "10.244.0.0/16", vxlan_mode=EncapMode.ALWAYS, disabled=True))
    assert plan(state) == plan(world(vxlan=EncapMode.ALWAYS))


def test_ipv6_no_encap_and_ecmp_via_connected_ipv6_next_hops() -> None:
    from felixd.plan import HostInterface

    state = world()
    state.set(HostInterface("eth0", ("192.168.1.10/24", "fd00:1::10/64"), 1500))
    state.set(Pool("v6", "fd00:10::/48"))
    state.set(Block("fd00:10::/122", "node-a"))
    state.set(BestPath("fd00:10::40/122", ("fd00:1::12", "fd00:1::11")))
    lines = dataplane_lines(plan(state))
    assert "blackhole fd00:10::/122 proto 80 metric 1024" in lines
    assert (
        "fd00:10::40/122 proto 80 metric 1024"
        " nexthop via fd00:1::11 dev eth0 weight 1 onlink"
        " nexthop via fd00:1::12 dev eth0 weight 1 onlink"
    ) in lines
