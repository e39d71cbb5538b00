"""RecordingKernel answers like Linux: EEXIST, ENODEV, ESRCH/ENOENT, flush on link removal."""

from __future__ import annotations

import errno

from felixd.backends.base import DataplaneBackend, OpResult
from felixd.backends.recording import RecordingKernel
from felixd.plan import FdbEntry, Neighbour, Route, RouteScope, RouteType, VxlanDevice
from felixd.plan.ops import (
    AddFdb,
    AddNeighbour,
    AddRoute,
    AddVxlanDevice,
    DeleteLink,
    DeleteNeighbour,
    DeleteNftTable,
    DeleteRoute,
    Op,
    ReplaceRoute,
    SetSysctl,
    SetVxlanDevice,
)

DEV = VxlanDevice(
    "vxlan.calico", 4096, 4789, "192.168.1.10", "eth0", "66:00:00:00:00:0a", 1450, "10.244.0.1/32"
)
VIA_VXLAN = Route("10.244.1.0/26", 80, dev="vxlan.calico", gateway="10.244.1.1", onlink=True)
BLACKHOLE = Route("10.244.0.0/26", 80, type=RouteType.BLACKHOLE)


def _errors(results: list[OpResult]) -> list[int | None]:
    return [r.error for r in results]


def test_is_a_backend() -> None:
    backend: DataplaneBackend = RecordingKernel()
    assert backend.read().links == {"lo"}


def test_exclusive_add_of_a_taken_key_is_eexist_whatever_the_route() -> None:
    kernel = RecordingKernel(["lo", "eth0"])
    foreign = Route("10.244.0.0/26", 12, gateway="192.168.1.1", dev="eth0")
    kernel.preload(foreign)
    assert _errors(kernel.apply([AddRoute(BLACKHOLE)])) == [errno.EEXIST]
    assert kernel.routes[foreign.key] == foreign
    assert _errors(kernel.apply([ReplaceRoute(BLACKHOLE)])) == [None]


def test_ops_on_missing_links_are_enodev() -> None:
    kernel = RecordingKernel(["lo"])
    ops: list[Op] = [
        AddVxlanDevice(DEV),  # parent eth0 missing
        AddRoute(VIA_VXLAN),
        AddNeighbour(Neighbour("cali1", "10.244.0.5", "ee:ee:ee:ee:ee:ee")),
        AddFdb(FdbEntry("vxlan.calico", "66:00:00:00:00:0b", "192.168.1.11")),
        SetVxlanDevice(DEV),
        DeleteLink("vxlan.calico"),
    ]
    assert _errors(kernel.apply(ops)) == [errno.ENODEV] * 6
    assert _errors(kernel.apply([SetSysctl("net/ipv4/conf/cali1/proxy_arp", "1")])) == [
        errno.ENOENT
    ]


def test_deleting_what_is_not_there_fails() -> None:
    kernel = RecordingKernel()
    results = kernel.apply(
        [
            DeleteRoute(BLACKHOLE),
            DeleteNeighbour(Neighbour("cali1", "10.244.0.5", "ee:ee:ee:ee:ee:ee")),
            DeleteNftTable("inet", "tabby-nat"),
        ]
    )
    assert _errors(results) == [errno.ESRCH, errno.ENOENT, errno.ENOENT]
    assert kernel.applied == []


def test_vni_cannot_change_in_place() -> None:
    kernel = RecordingKernel(["lo", "eth0"])
    kernel.apply([AddVxlanDevice(DEV)])
    other = VxlanDevice("vxlan.calico", 5000, 4789, DEV.local, "eth0", DEV.mac, 1450, DEV.address)
    assert _errors(kernel.apply([SetVxlanDevice(other)])) == [errno.EOPNOTSUPP]
    assert _errors(kernel.apply([AddVxlanDevice(DEV)])) == [errno.EEXIST]


def test_link_removal_flushes_everything_on_it() -> None:
    kernel = RecordingKernel(["lo", "eth0", "cali1"])
    wl = Route("10.244.0.5/32", 80, scope=RouteScope.LINK, dev="cali1")
    results = kernel.apply(
        [
            AddVxlanDevice(DEV),
            AddRoute(VIA_VXLAN),
            AddRoute(wl),
            AddNeighbour(Neighbour("vxlan.calico", "10.244.1.1", "66:00:00:00:00:0b")),
            AddFdb(FdbEntry("vxlan.calico", "66:00:00:00:00:0b", "192.168.1.11")),
            SetSysctl("net/ipv4/conf/cali1/proxy_arp", "1"),
        ]
    )
    assert all(r.ok for r in results)
    kernel.apply([DeleteLink("vxlan.calico")])
    kernel.remove_link("cali1")
    state = kernel.read()
    assert state.routes == {} and state.neighbours == {} and state.fdb == {}
    assert state.sysctls == {} and state.devices == {} and state.links == {"lo", "eth0"}
    assert len(kernel.applied) == 7 and kernel.batches == 2


def test_read_is_a_snapshot() -> None:
    kernel = RecordingKernel(["lo"])
    before = kernel.read()
    kernel.apply([AddRoute(BLACKHOLE)])
    assert before.routes == {} and BLACKHOLE.key in kernel.read().routes
