"""IPIP in the planner (calico.md §4.2, §4.4, §4.6; issue 10 "IPIP via tunl0"): remote blocks of
an IPIP pool go onlink via tunl0 to the remote node's address, tunl0 is up with the IPIP MTU
(host MTU - 20) and this node's ipv4IPIPTunnelAddr, and the pod MTU drops by 20.

This kernel has no ipip module, so tunl0 does not exist here: the differ then blocks the device
and every route via it (reported, not failed); the netlink side of `SetIpipDevice` is checked
by the backend's tests where the module exists.
"""

from __future__ import annotations

from felixd.backends.recording import RecordingKernel
from felixd.backends.sync import sync
from felixd.inputs import node_info
from felixd.plan import EncapMode, FelixConfig, HostInterface, NodeInfo, Pool, compare, plan
from felixd.plan.model import IpipDevice, RouteKind
from felixd.plan.ops import DeleteRoute, SetIpipDevice
from felixd.plan.text import op_text
from resources.resource import parse_resource
from tests.felixd.plan.world import bgp_paths, world

TUNL0 = IpipDevice("tunl0", 1480, "10.244.0.1/32")


def test_ipip_always_plans_tunl0_routes_and_mtu() -> None:
    state = world(ipip=EncapMode.ALWAYS)
    bgp_paths(state)
    desired = plan(state)
    assert desired.tunnels == {"tunl0": TUNL0}
    assert desired.pod_mtu == 1480
    remote = desired.routes[(254, "10.244.2.0/26", 0)]
    assert (remote.dev, remote.gateway, remote.onlink, remote.mtu) == (
        "tunl0",
        "192.168.2.12",
        True,
        1480,
    )
    assert remote.kind is RouteKind.REMOTE_IPIP
    assert desired.route_counts()["remote-ipip"] == 2
    assert not desired.devices  # no VXLAN device


def test_ipip_mtu_follows_the_host_and_the_configuration() -> None:
    state = world(ipip=EncapMode.ALWAYS)
    state.set(HostInterface("eth0", ("192.168.1.10/24",), 9000))
    assert plan(state).tunnels["tunl0"].mtu == 8980 and plan(state).pod_mtu == 8980
    state.set_config(FelixConfig(ipip_mtu=1400))
    assert plan(state).tunnels["tunl0"].mtu == 1400 and plan(state).pod_mtu == 1400


def test_missing_tunnel_address_is_reported_and_tunl0_has_none() -> None:
    state = world(ipip=EncapMode.CROSS_SUBNET)
    state.set(NodeInfo("node-a", ("192.168.1.10/24",)))
    desired = plan(state)
    assert desired.tunnels["tunl0"].address == ""
    assert any("ipv4IPIPTunnelAddr" in p.reason for p in desired.problems)


def test_without_the_ipip_module_tunl0_and_its_routes_are_blocked_not_failed() -> None:
    state = world(ipip=EncapMode.ALWAYS)
    bgp_paths(state)
    desired = plan(state)
    kernel = RecordingKernel(("lo", "eth0", "cali1111"))  # no tunl0: no ipip module here
    report = sync(desired, kernel)
    assert report.converged and not report.failures
    assert not kernel.tunnels
    names = {(p.kind, p.name) for p in report.blocked}
    assert ("Link", "tunl0") in names and ("Route", "10.244.2.0/26") in names


def test_tunl0_is_configured_before_routes_use_it_and_only_once() -> None:
    state = world(ipip=EncapMode.ALWAYS)
    bgp_paths(state)
    desired = plan(state)
    kernel = RecordingKernel(("lo", "eth0", "cali1111", "tunl0"))
    ops = compare(desired, kernel.read()).ops
    assert ops[0] == SetIpipDevice(TUNL0)
    assert op_text(ops[0]) == "link set tunl0: ipip mtu 1480 inet 10.244.0.1/32 up"
    kernel.apply(ops)
    assert kernel.tunnels == {"tunl0": TUNL0}
    assert compare(desired, kernel.read()).ops == ()

    # IPIP switched off: tunl0 is left as it is (felixd never deletes it); no route uses it
    # (the same-subnet block goes direct, the other one has no connected next hop).
    state.set(Pool("default-pool", "10.244.0.0/16"))
    off = plan(state)
    assert not off.tunnels
    ops = compare(off, kernel.read()).ops
    assert not any(isinstance(op, SetIpipDevice) for op in ops)
    assert {op.route.dst for op in ops if isinstance(op, DeleteRoute)} == {"10.244.2.0/26"}
    kernel.apply(ops)
    assert "tunl0" in kernel.links and kernel.tunnels == {"tunl0": TUNL0}
    assert not any("tunl0" in r.devices for r in kernel.routes.values())


def test_node_resource_gives_the_ipip_tunnel_address() -> None:
    res = parse_resource(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "Node",
            "metadata": {"name": "n1"},
            "spec": {"bgp": {"ipv4Address": "192.168.1.10/24", "ipv4IPIPTunnelAddr": "10.244.0.1"}},
        }
    )
    assert node_info(res).ipv4_ipip_tunnel_address == "10.244.0.1"
