"""Link events (issue 10): a workload interface that comes, goes or flaps resyncs only its own
routes, neighbours and sysctls (no kernel dump); a vanished workload interface is not a problem
during a grace period (the CNI plugin may be re-creating it), is reported after it, and gets its
routes back at once when it reappears."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from felixd.backends.recording import RecordingKernel
from felixd.kernel_cache import CachedKernel, _Keys
from felixd.plan import NodeInfo, PlannerState, Pool, WorkloadEndpoint, compare
from felixd.plan.diff import compare_touched
from felixd.plan.incremental import IncrementalPlanner
from felixd.plan.inputs import HostInterface
from felixd.plan.links import (
    IFLA_IFNAME,
    RTM_DELLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    LinkChange,
    LinkMessage,
    LinkTracker,
    Resync,
    parse_link_messages,
)
from felixd.plan.model import ObservedState, Touched
from tests.felixd.daemon.test_daemon import STORE, Harness, HostKernel, dsts, resources, until


def _link(kind: int, index: int, name: str, up: bool, seq: int = 0) -> bytes:
    raw = name.encode() + b"\0"
    attr = struct.pack("=HH", 4 + len(raw), IFLA_IFNAME) + raw
    attr += bytes(-len(attr) % 4)
    body = struct.pack("=BxHiII", 0, 1, index, 1 if up else 0, 0) + attr
    return struct.pack("=IHHII", 16 + len(body), kind, 0, seq, 0) + body


def test_link_messages_parse() -> None:
    addr = struct.pack("=IHHII", 16 + 8, RTM_NEWADDR, 0, 0, 0) + bytes(8)
    data = _link(RTM_NEWLINK, 7, "cali1", True) + addr + _link(RTM_DELLINK, 8, "eth1", False, 3)
    found, addresses = parse_link_messages(data)
    assert found == [
        LinkMessage(7, "cali1", True, False, False),
        LinkMessage(8, "eth1", False, True, True),
    ]
    assert addresses
    assert parse_link_messages(data[:-3]) == (found[:1], True)  # a torn tail is ignored


def test_tracker_decides_per_interface_or_full() -> None:
    t = LinkTracker("cali")
    assert t.feed(LinkMessage(2, "eth0", True, False, True)) is Resync.NONE  # start-up dump
    assert t.feed(LinkMessage(5, "cali1", False, False, False)) is LinkChange.NEW
    assert t.down == {"cali1"}
    assert t.feed(LinkMessage(5, "cali1", False, False, False)) is Resync.NONE  # same state
    assert t.feed(LinkMessage(5, "cali1", True, False, False)) is LinkChange.UP
    assert t.down == set()
    assert t.feed(LinkMessage(5, "cali1", False, False, False)) is LinkChange.DOWN
    assert t.feed(LinkMessage(5, "cali1", False, True, False)) is LinkChange.GONE
    assert t.down == set()
    assert t.feed(LinkMessage(6, "cali2", True, False, False)) is LinkChange.NEW
    assert t.feed(LinkMessage(6, "cali9", True, False, False)) is Resync.FULL  # rename
    assert t.feed(LinkMessage(2, "eth0", True, False, False)) is Resync.HOSTS  # MTU, address
    assert t.feed(LinkMessage(2, "eth0", False, False, False)) is Resync.FULL  # routes flushed
    assert t.feed(LinkMessage(9, "veth9", False, False, False)) is Resync.HOSTS
    assert t.feed(LinkMessage(9, "veth9", False, True, False)) is Resync.HOSTS  # was down


class CountingKernel(HostKernel):
    def __init__(self) -> None:
        super().__init__(("lo", "eth0", "cali1"))
        self.reads = 0

    def read(self) -> ObservedState:
        self.reads += 1
        return super().read()


async def test_a_workload_interface_comes_and_goes_without_a_full_resync(tmp_path: Path) -> None:
    k = CountingKernel()
    h = Harness(tmp_path, k, endpoint_grace=0.3)
    d = h.daemon
    await h.store.queue.put(resources())
    await d.start()
    try:
        await until(lambda: "10.244.0.5/32" in dsts(k), "the pod's route")
        d.on_link_messages([LinkMessage(5, "cali1", True, False, True)])  # start-up dump
        reads, route = k.reads, k.routes[(254, "10.244.0.5/32", 0)]

        # The pod's veth is deleted: the kernel flushes what was on it.
        k.remove_link("cali1")
        d.on_link_messages([LinkMessage(5, "cali1", False, True, False)])
        await until(lambda: d.interface_syncs == 1, "a per-interface resync")
        assert "cali1" in d.missing_since
        assert not [p for p in d.problem_lines() if "cali1" in p or "10.244.0.5" in p]
        await until(
            lambda: any("n1-cni-abc-eth0" in p and "missing" in p for p in d.problem_lines()),
            "the endpoint reported after the grace period",
        )

        # The CNI plugin makes it again: down first (no route can go on it), then up.
        k.add_link("cali1")
        d.on_link_messages([LinkMessage(6, "cali1", False, False, False)])
        await until(lambda: d.interface_syncs == 2, "the new interface seen")
        assert "10.244.0.5/32" not in dsts(k) and d.errors == 0
        d.on_link_messages([LinkMessage(6, "cali1", True, False, False)])
        await until(lambda: "10.244.0.5/32" in dsts(k), "the route on the new interface")
        assert k.routes[(254, "10.244.0.5/32", 0)] == route
        assert k.sysctls["net/ipv4/conf/cali1/proxy_arp"] == "1"
        assert not d.missing_since and not d.problem_lines()

        # Set down: the kernel drops the routes and neighbours on it; up: they come back.
        k.routes = {key: r for key, r in k.routes.items() if r.dev != "cali1"}
        k.neighbours = {key: n for key, n in k.neighbours.items() if n.dev != "cali1"}
        d.on_link_messages([LinkMessage(6, "cali1", False, False, False)])
        await until(lambda: d.interface_syncs == 4, "the down interface seen")
        assert d.errors == 0 and "10.244.0.5/32" not in dsts(k)
        d.on_link_messages([LinkMessage(6, "cali1", True, False, False)])
        await until(lambda: "10.244.0.5/32" in dsts(k), "the route after the flap")
        assert k.neighbours[("cali1", "10.244.0.5")].lladdr == "ee:ee:ee:ee:ee:01"
        assert k.reads == reads and d.errors == 0  # never a dump of the kernel

        # A host interface going down may have lost routes through it: everything is read.
        d.on_link_messages([LinkMessage(2, "eth0", True, False, True)])
        d.on_link_messages([LinkMessage(2, "eth0", False, False, False)])
        await until(lambda: k.reads > reads, "a full resync")
    finally:
        await d.stop()


def test_tracker_mirrors_felixd_own_device() -> None:
    t = LinkTracker("cali", frozenset({"vxlan.calico"}))
    assert t.feed(LinkMessage(9, "vxlan.calico", True, False, False)) is LinkChange.NEW
    assert t.feed(LinkMessage(9, "vxlan.calico", True, False, False)) is Resync.NONE  # MTU set
    assert t.feed(LinkMessage(9, "vxlan.calico", False, False, False)) is Resync.FULL  # down
    assert t.feed(LinkMessage(9, "vxlan.calico", False, True, False)) is LinkChange.GONE


async def test_vxlan_device_deleted_is_made_again_without_a_kernel_dump(tmp_path: Path) -> None:
    """Someone deletes vxlan.calico: the kernel took its routes, neighbours and FDB entries
    along; felixd mirrors that and programs the device and its entries again (issue 10)."""
    text = STORE.replace("natOutgoing: true}", "natOutgoing: true, vxlanMode: Always}").replace(
        "spec: {bgp: {ipv4Address: 192.168.50.10/24}}",
        "spec: {bgp: {ipv4Address: 192.168.50.10/24}, ipv4VXLANTunnelAddr: 10.244.0.1}",
    )
    assert text != STORE
    k = CountingKernel()
    h = Harness(tmp_path, k)
    d = h.daemon
    await h.store.queue.put(resources(text))
    await d.start()
    try:
        await until(lambda: "10.244.1.0/26" in dsts(k), "the VXLAN route")
        assert "vxlan.calico" in k.devices and k.fdb and k.neighbours
        d.on_link_messages([LinkMessage(9, "vxlan.calico", True, False, True)])  # start-up dump
        reads, fdb = k.reads, dict(k.fdb)
        k.remove_link("vxlan.calico")
        d.on_link_messages([LinkMessage(9, "vxlan.calico", True, True, False)])
        await until(lambda: "10.244.1.0/26" in dsts(k), "the route via the new device")
        assert "vxlan.calico" in k.devices and k.fdb == fdb
        assert k.reads == reads and d.errors == 0
    finally:
        await d.stop()


class PeerKernel(CountingKernel):
    """Shows, once `peer` is set, a pod veth's peer on its way into the pod: down, no
    address."""

    peer = False

    def host_interfaces(self) -> list[HostInterface]:
        found = super().host_interfaces()
        return [*found, HostInterface("veth9", (), 1500, up=False)] if self.peer else found


async def test_a_pod_veth_peer_passing_by_does_not_replan_everything(tmp_path: Path) -> None:
    k = PeerKernel()
    h = Harness(tmp_path, k)
    d = h.daemon
    await h.store.queue.put(resources())
    await d.start()
    try:
        await until(lambda: "10.244.0.5/32" in dsts(k), "the first sync")
        plans, reads, syncs = d.planner.full_plans, k.reads, d.syncs
        k.peer = True
        d.on_link_messages([LinkMessage(9, "veth9", False, False, False)])
        await until(lambda: d.syncs > syncs, "the host interfaces read again")
        assert d.planner.full_plans == plans and k.reads == reads
        assert "veth9" not in d.state.host_interfaces
    finally:
        await d.stop()


LINK_EVENTS = st.lists(
    st.tuples(
        st.sampled_from(("new-down", "new-up", "up", "down", "gone")),
        st.sampled_from(("cali1", "cali2")),
    ),
    max_size=14,
)


@settings(max_examples=80)
@given(LINK_EVENTS)
def test_per_interface_resync_mirrors_the_kernel_exactly(
    events: list[tuple[str, str]],
) -> None:
    """For any sequence of workload links coming, going and flapping, mirroring each event in
    the cached view and diffing that interface's keys leaves the cached view equal to the
    kernel, and the kernel holding exactly what a full diff wants (down links count as
    missing)."""
    state = PlannerState("node-a")
    state.set(HostInterface("eth0", ("192.168.1.10/24",)))
    state.set(NodeInfo("node-a", ("192.168.1.10/24",)))
    state.set(Pool("p", "10.244.0.0/16"))
    state.set(WorkloadEndpoint("w1", "cali1", ("10.244.0.5/32",), "ee:ee:ee:ee:ee:01"))
    state.set(WorkloadEndpoint("w2", "cali2", ("10.244.0.6/32", "fd00::6/128")))
    state.set(Pool("p6", "fd00::/64"))
    planner = IncrementalPlanner(state)
    desired = planner.update().desired
    real = RecordingKernel(("lo", "eth0", "cali1", "cali2"))
    real.apply(compare(desired, real.read()).ops)
    tracker = LinkTracker("cali")
    kernel = CachedKernel(real, tracker.down)
    kernel.read()
    index, present, up = {"cali1": 1, "cali2": 2}, {"cali1": True, "cali2": True}, {}
    up.update(present)
    for name, i in index.items():  # the start-up dump
        assert tracker.feed(LinkMessage(i, name, True, False, True)) is Resync.NONE
    for action, name in events:
        deleted = False
        if action == "gone" and present[name]:
            real.remove_link(name)
            present[name], deleted = False, True
        elif action.startswith("new") and not present[name]:
            real.add_link(name)
            present[name], up[name] = True, action == "new-up"
            index[name] += 10
        elif action == "down" and present[name] and up[name]:
            real.routes = {k: r for k, r in real.routes.items() if r.dev != name}
            real.neighbours = {k: n for k, n in real.neighbours.items() if n.dev != name}
            up[name] = False
        elif action == "up" and present[name] and not up[name]:
            up[name] = True
        else:
            continue
        change = tracker.feed(LinkMessage(index[name], name, up[name], deleted, False))
        assert isinstance(change, LinkChange)
        keys = _Keys()
        assert kernel.link_changed(change, name, keys)
        mine = planner.interface_keys(name)
        touched = Touched(
            frozenset(keys.routes | mine.routes),
            frozenset(keys.neighbours | mine.neighbours),
            frozenset(),
            frozenset(keys.sysctls | mine.sysctls),
        )
        view = kernel.view()
        assert view is not None
        results = kernel.apply(compare_touched(desired, view, touched).ops)
        assert all(r.ok for r in results)
        assert kernel.copy is not None and kernel.copy.read() == real.read()
        live = frozenset(n for n in real.links if not (n in up and not up[n]))
        assert compare(desired, dataclasses.replace(real.read(), links=live)).ops == ()
