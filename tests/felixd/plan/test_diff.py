"""Differ examples: order, minimality, ownership (calico.md §4.3) and restart behaviour."""

from __future__ import annotations

from dataclasses import replace

from felixd.backends.recording import RecordingKernel
from felixd.backends.sync import sync
from felixd.plan import (
    Block,
    EncapMode,
    FelixConfig,
    Neighbour,
    NftTable,
    PlannerState,
    Problem,
    Route,
    RouteScope,
    WorkloadEndpoint,
    blocked,
    diff,
    plan,
)
from felixd.plan.ops import (
    AddFdb,
    AddNeighbour,
    AddNftTable,
    AddRoute,
    AddVxlanDevice,
    DeleteLink,
    DeleteNeighbour,
    DeleteNftTable,
    DeleteRoute,
    ReplaceNeighbour,
    ReplaceNftTable,
    ReplaceRoute,
    SetSysctl,
    SetVxlanDevice,
)
from tests.felixd.plan.world import LINKS, bgp_paths, world


def _programmed(state: PlannerState) -> RecordingKernel:
    kernel = RecordingKernel(LINKS)
    report = sync(plan(state), kernel)
    assert report.converged and not report.failures
    return kernel


def test_first_batch_orders_device_before_everything_on_it() -> None:
    ops = diff(plan(world(vxlan=EncapMode.ALWAYS, nat=True)), RecordingKernel(LINKS).read())
    kinds = [type(op) for op in ops]
    first = {k: kinds.index(k) for k in kinds}
    assert first[AddVxlanDevice] == 0
    assert first[AddVxlanDevice] < first[SetSysctl] < first[AddFdb] < first[AddNeighbour]
    assert first[AddNeighbour] < first[AddRoute] < first[AddNftTable]


def test_restart_changes_nothing_already_right() -> None:
    """Issue 10 start-up: a restart of felixd deletes and re-adds nothing."""
    state = world(vxlan=EncapMode.CROSS_SUBNET, nat=True)
    kernel = _programmed(state)
    fresh = RecordingKernel.from_state(kernel.read())  # a new felixd process, same kernel
    assert diff(plan(state), fresh.read()) == []
    report = sync(plan(state), fresh)
    assert report.batches == 0 and fresh.applied == []


def test_plan_is_deterministic_and_diff_too() -> None:
    one, two = plan(world(vxlan=EncapMode.ALWAYS)), plan(world(vxlan=EncapMode.ALWAYS))
    assert one == two
    empty = RecordingKernel(LINKS).read()
    assert diff(one, empty) == diff(two, empty)


def test_foreign_route_on_the_same_key_is_left_alone_and_reported() -> None:
    """calico.md §4.3: a BIRD route (proto 12) is not felixd's, even where it overlaps."""
    state = world()
    bgp_paths(state)
    kernel = RecordingKernel(LINKS)
    bird = Route("10.244.1.0/26", 12, gateway="192.168.1.99", dev="eth0")
    supernet = Route("10.244.0.0/16", 12, gateway="192.168.1.99", dev="eth0")
    kernel.preload(bird, supernet)
    desired = plan(state)
    ops = diff(desired, kernel.read())
    assert not any(getattr(op, "route", None) in (bird, supernet) for op in ops)
    assert blocked(desired, kernel.read()) == [
        Problem("Route", "10.244.1.0/26", "a foreign route (proto 12 dev eth0) holds its key")
    ]
    sync(desired, kernel)
    assert kernel.routes[bird.key] == bird and kernel.routes[supernet.key] == supernet


def test_route_on_a_workload_interface_is_felixds_whatever_its_proto() -> None:
    """calico.md §4.3 removeExternalRoutes: CNI's proto-boot host route is replaced."""
    state = world()
    kernel = RecordingKernel(LINKS)
    cni = Route("10.244.0.5/32", 3, scope=RouteScope.LINK, dev="cali1111")
    stray = Route("10.244.0.77/32", 3, scope=RouteScope.LINK, dev="cali2222")
    kernel.preload(cni, stray)
    ops = diff(plan(state), kernel.read())
    assert DeleteRoute(stray) in ops
    assert ReplaceRoute(replace(cni, protocol=80)) in ops


def test_switch_off_remove_external_routes_keeps_foreign_routes_on_cali() -> None:
    state = world(config=FelixConfig(remove_external_routes=False))
    kernel = RecordingKernel(LINKS)
    stray = Route("10.244.0.77/32", 3, scope=RouteScope.LINK, dev="cali2222")
    kernel.preload(stray)
    assert not any(isinstance(op, DeleteRoute) for op in diff(plan(state), kernel.read()))


def test_stale_owned_state_is_deleted_first() -> None:
    state = world(vxlan=EncapMode.ALWAYS)
    kernel = _programmed(state)
    state.delete(WorkloadEndpoint, "node-a-k8s-pod1-eth0")
    ops = diff(plan(state), kernel.read())
    assert ops == [
        DeleteRoute(kernel.routes[(254, "10.244.0.5/32", 0)]),
        DeleteNeighbour(kernel.neighbours[("cali1111", "10.244.0.5")]),
    ]


def test_dynamic_neighbour_is_overwritten_never_deleted() -> None:
    state = world()
    kernel = RecordingKernel(LINKS)
    learned = Neighbour("cali1111", "10.244.0.5", "ee:ee:ee:00:00:99", permanent=False)
    other = Neighbour("cali2222", "10.244.0.66", "ee:ee:ee:00:00:66", permanent=False)
    kernel.preload(learned, other)
    ops = diff(plan(state), kernel.read())
    assert ReplaceNeighbour(plan(state).neighbours[learned.key]) in ops
    assert not any(getattr(op, "neighbour", None) == other for op in ops)


def test_mtu_change_sets_the_device_in_place() -> None:
    kernel = _programmed(world(vxlan=EncapMode.ALWAYS))
    state = world(vxlan=EncapMode.ALWAYS, config=FelixConfig(vxlan_mtu=1400))
    ops = diff(plan(state), kernel.read())
    assert [type(op) for op in ops] == [SetVxlanDevice]


def test_vni_change_recreates_the_device_and_everything_on_it() -> None:
    kernel = _programmed(world(vxlan=EncapMode.ALWAYS))
    state = world(vxlan=EncapMode.ALWAYS, config=FelixConfig(vxlan_vni=5000))
    ops = diff(plan(state), kernel.read())
    assert ops[0] == DeleteLink("vxlan.calico")
    assert isinstance(ops[1], AddVxlanDevice) and ops[1].device.vni == 5000
    # The kernel flushes what was on the old link: FDB, neighbours and routes come back.
    assert sum(isinstance(op, AddFdb) for op in ops) == 2
    assert sum(isinstance(op, AddRoute) and op.route.dev == "vxlan.calico" for op in ops) == 2
    assert not any(isinstance(op, DeleteRoute) for op in ops)
    assert sync(plan(state), kernel).converged
    assert diff(plan(state), kernel.read()) == []


def test_vxlan_off_deletes_the_device_not_each_route_on_it() -> None:
    kernel = _programmed(world(vxlan=EncapMode.ALWAYS))
    ops = diff(plan(world()), kernel.read())
    assert DeleteLink("vxlan.calico") in ops
    assert not any(isinstance(op, DeleteRoute) and op.route.dev == "vxlan.calico" for op in ops)


def test_missing_interface_blocks_only_its_entries() -> None:
    state = world()
    kernel = RecordingKernel(("lo", "eth0"))  # the pod's veth is not there yet
    desired = plan(state)
    problems = blocked(desired, kernel.read())
    assert Problem("Route", "10.244.0.5/32", "interface cali1111 is missing") in problems
    report = sync(desired, kernel)
    assert report.converged and (254, "10.244.0.0/26", 0) in kernel.routes
    kernel.add_link("cali1111")  # the link monitor triggers a per-interface resync
    assert sync(desired, kernel).converged
    assert (254, "10.244.0.5/32", 0) in kernel.routes


def test_ipip_routes_wait_for_tunl0() -> None:
    """This kernel has no ipip module: IPIP is planned, and blocked until tunl0 exists."""
    state = world(ipip=EncapMode.ALWAYS)
    bgp_paths(state)
    problems = blocked(plan(state), RecordingKernel(LINKS).read())
    assert Problem("Route", "10.244.1.0/26", "interface tunl0 is missing") in problems


def test_foreign_nft_tables_untouched_owned_ones_replaced_or_removed() -> None:
    kernel = RecordingKernel(LINKS)
    foreign = NftTable("inet", "filter")
    leftover = NftTable("ip", "tabby-old")
    kernel.preload(foreign, leftover, NftTable("inet", "tabby-nat"))
    ops = diff(plan(world(nat=True)), kernel.read())
    nft_ops = [op for op in ops if isinstance(op, (DeleteNftTable, ReplaceNftTable, AddNftTable))]
    assert [type(op) for op in nft_ops] == [DeleteNftTable, ReplaceNftTable]
    assert nft_ops[0] == DeleteNftTable("ip", "tabby-old")
    sync(plan(world(nat=True)), kernel)
    assert kernel.nft_tables[foreign.key] == foreign


def test_first_batch_reads_like_an_operator_would_type_it() -> None:
    """The whole first batch for VXLAN CrossSubnet with natOutgoing, in order."""
    from felixd.plan.text import op_text

    state = world(vxlan=EncapMode.CROSS_SUBNET, nat=True)
    ops = diff(plan(state), RecordingKernel(LINKS).read())
    c = "66:00:00:00:00:0c"
    assert [op_text(op) for op in ops] == [
        "link add vxlan.calico: vxlan id 4096 local 192.168.1.10 dev eth0 dstport 4789 mtu 1450"
        " address 66:00:00:00:00:0a inet 10.244.0.1/32",
        "sysctl net.ipv4.conf.cali1111.forwarding=1",
        "sysctl net.ipv4.conf.cali1111.proxy_arp=1",
        "sysctl net.ipv4.conf.cali1111.route_localnet=1",
        "sysctl net.ipv4.neigh.cali1111.proxy_delay=0",
        f"fdb add {c} dev vxlan.calico dst 192.168.2.12 self permanent",
        "neigh add 10.244.0.5 dev cali1111 lladdr ee:ee:ee:ee:ee:01 PERMANENT",
        f"neigh add 10.244.2.1 dev vxlan.calico lladdr {c} PERMANENT",
        "route add blackhole 10.244.0.0/26 proto 80",
        "route add 10.244.0.5 dev cali1111 proto 80 scope link",
        "route add 10.244.1.0/26 via 192.168.1.11 dev eth0 proto 80 onlink",
        "route add 10.244.2.0/26 via 10.244.2.1 dev vxlan.calico proto 80 onlink",
        "nft add table inet tabby-nat",
    ]


def test_pod_deleted_and_block_moved_batch() -> None:
    from felixd.plan.text import op_text

    state = world(vxlan=EncapMode.ALWAYS)
    kernel = _programmed(state)
    state.delete(WorkloadEndpoint, "node-a-k8s-pod1-eth0")
    state.set(Block("10.244.1.0/26", "node-c"))
    ops = diff(plan(state), kernel.read())
    assert [op_text(op) for op in ops] == [
        "route del 10.244.0.5 dev cali1111 proto 80 scope link",
        "neigh del 10.244.0.5 dev cali1111 lladdr ee:ee:ee:ee:ee:01 PERMANENT",
        "neigh del 10.244.1.1 dev vxlan.calico lladdr 66:00:00:00:00:0b PERMANENT",
        "fdb del 66:00:00:00:00:0b dev vxlan.calico dst 192.168.1.11 self permanent",
        "route replace 10.244.1.0/26 via 10.244.2.1 dev vxlan.calico proto 80 onlink",
    ]
