"""Calico's export rule (`calico_export_to_bgp_peers`) as confd renders it for tabby-bgpd and
BIRD: routes inside an exported pool go out down to the pool's block size, never the /32s
(/128s) inside the blocks; nothing inside a `disableBGPExport` pool; nothing outside the pools.
Mesh, reflector and external peers get the same filter."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from bgpd.core.events import State
from bgpd.core.routing.policy import Policy
from bgpd.daemon.config import BgpdConfig
from bgpd.daemon.routing import RoutingSink
from bgpd.daemon.speaker import Speaker
from bgpd.wire.attributes import PathAttributes
from bgpd.wire.context import IPV4_UNICAST, IPV6_UNICAST
from bgpd.wire.prefix import make_prefix
from confd.render.bgpd_toml import EXPORT_POLICY, render_bgpd_toml
from confd.render.bird import render_bird
from confd.render.compute import compute_plan
from confd.render.model import NodeBGPPlan, PoolExport
from confd.render.view import build_view
from resources.resource import parse_resource
from runtime.config import from_mapping
from tests.bgpd.daemon.conftest import wait_for
from tests.confd.test_plan import BASE, plan_for

POOLS = """
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: private}
spec: {cidr: 172.16.0.0/16, disableBGPExport: true}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: small-blocks}
spec: {cidr: 10.50.0.0/16, blockSize: 29, disabled: true}
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: v6}
spec: {cidr: "fd00:244::/48"}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: tor}
spec: {peerIP: 10.192.0.254, asNumber: 65001}
"""

CASES = [
    ("192.168.10.0/26", True),  # this node's block
    ("192.168.20.0/26", True),  # another node's block (a reflector passes it on)
    ("192.168.0.0/16", True),  # the pool itself: Calico's `net ~ pool`
    ("192.168.10.5/32", False),  # a pod address inside a block
    ("192.168.10.0/27", False),  # longer than the block size
    ("172.16.0.0/26", False),  # disableBGPExport
    ("172.16.0.0/16", False),
    ("10.50.1.8/29", True),  # the pool's own block size; `disabled` only stops allocation
    ("10.50.1.9/32", False),
    ("10.0.0.0/8", False),  # covers a pool, is not inside one
    ("8.8.8.0/24", False),
    ("fd00:244::40/122", True),
    ("fd00:244::41/128", False),
    ("fd00:245::/122", False),
]


def export_of(config: BgpdConfig) -> dict[str, Policy]:
    policies = config.peer_policies()
    return {p.name: policies[p.key][1] for p in config.peers}


def test_plan_lists_every_pool_with_its_block_size_and_export_flag() -> None:
    plan = plan_for("kube-master", POOLS)
    assert plan.pools == (
        PoolExport(ipaddress.ip_network("10.50.0.0/16"), 29, True),
        PoolExport(ipaddress.ip_network("172.16.0.0/16"), 26, False),
        PoolExport(ipaddress.ip_network("192.168.0.0/16"), 26, True),
        PoolExport(ipaddress.ip_network("fd00:244::/48"), 122, True),
    )


@pytest.mark.parametrize(("net", "exported"), CASES)
def test_bgpd_export_policy_exports_blocks_never_the_addresses_inside(
    net: str, exported: bool
) -> None:
    config = from_mapping(
        BgpdConfig, tomllib.loads(render_bgpd_toml(plan_for("kube-master", POOLS)))
    )
    by_peer = export_of(config)
    # Every peer, mesh or external, runs the same policy.
    assert {p.export_policy for p in config.peers} == {EXPORT_POLICY}
    assert "Global_10_192_0_254" in by_peer
    assert len(set(by_peer.values())) == 1
    (policy,) = set(by_peer.values())
    family = IPV6_UNICAST if ":" in net else IPV4_UNICAST
    attrs = PathAttributes(origin=0)
    assert (policy.evaluate(family, make_prefix(net), attrs) is not None) is exported


def test_without_pools_nothing_is_exported_and_the_file_still_loads() -> None:
    docs = [
        d
        for d in yaml.safe_load_all(textwrap.dedent(BASE))
        if d and d["kind"] in ("Node", "BGPConfiguration")
    ]
    plan = compute_plan("kube-master", build_view(parse_resource(d) for d in docs))
    assert plan.pools == () and plan.originate == ()
    text = render_bgpd_toml(plan)
    assert "[[prefix_lists]]" not in text
    config = from_mapping(BgpdConfig, tomllib.loads(text))
    for policy in export_of(config).values():
        assert (
            policy.evaluate(IPV4_UNICAST, make_prefix("192.168.10.0/26"), PathAttributes()) is None
        )


def test_bird_export_filter_says_the_same() -> None:
    """The BIRD filter's prefix sets are the bgpd policy's prefix lists, term for term."""
    text = render_bird(plan_for("kube-master", POOLS))
    assert "if net ~ [ 172.16.0.0/16+ ] then reject;" in text
    assert "if net ~ [ 10.50.0.0/16{16,29}, 192.168.0.0/16{16,26} ] then accept;" in text
    assert "if net ~ [ fd00:244::/48{48,122} ] then accept;" in text
    assert "RTS_BGP" not in text  # learned routes outside the pools are not passed on


@pytest.mark.debian("bird")
def test_bird_export_filter_parses(tmp_path: Path) -> None:
    conf = tmp_path / "bird.conf"
    conf.write_text(render_bird(plan_for("kube-master", POOLS), loopback_next_hops=True))
    out = subprocess.run(
        ["bird", "-p", "-c", str(conf)], capture_output=True, text=True, timeout=30, check=False
    )
    assert out.returncode == 0, out.stderr + conf.read_text()


E2E_NODES = {"node-a": "127.0.0.71", "node-b": "127.0.0.72"}


def _e2e_cluster(port: int) -> str:
    docs = [
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n"
        f"spec: {{listenPort: {port}, bindMode: NodeIP}}",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pods}\n"
        "spec: {cidr: 10.244.0.0/16}",
        "apiVersion: projectcalico.org/v3\nkind: BlockAffinity\nmetadata: {name: node-a-10-244-1-0-26}\n"
        "spec: {state: confirmed, node: node-a, cidr: 10.244.1.0/26}",
    ]
    for name, address in E2E_NODES.items():
        docs.append(
            f"apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{name: {name}}}\n"
            f"spec: {{bgp: {{ipv4Address: {address}/8}}}}"
        )
    return "\n---\n".join(docs)


async def test_rendered_bgpd_config_exports_the_block_but_not_a_pod_route(tmp_path: Path) -> None:
    """End to end: confd's rendering runs in tabby-bgpd; the pod /32 and a prefix outside the
    pools, announced on node-a over the API, never reach node-b; the block does."""

    from bgpd.daemon.speaker import Speaker

    with socket.socket() as s:
        s.bind((E2E_NODES["node-a"], 0))
        port = s.getsockname()[1]
    view = build_view(parse_resource(d) for d in yaml.safe_load_all(_e2e_cluster(port)))
    speakers: dict[str, Speaker] = {}
    try:
        # node-a is passive toward node-b (greater address): start it first, node-b dials.
        for name in E2E_NODES:
            base: dict[str, str | bool] = {
                "control_socket": str(tmp_path / f"{name}.sock"),
                "uvloop": False,
            }
            text = render_bgpd_toml(compute_plan(name, view), base)
            config = from_mapping(BgpdConfig, tomllib.loads(text))
            speakers[name] = Speaker(config)
            await speakers[name].start()
        a, b = speakers["node-a"].sink, speakers["node-b"].sink
        assert isinstance(a, RoutingSink) and isinstance(b, RoutingSink)
        a.announce("10.244.1.5/32")
        a.announce("192.168.99.0/24")

        def learned() -> set[str]:
            routes = b.rib()["routes"]
            assert isinstance(routes, list)
            return {str(r["prefix"]) for r in routes}

        await wait_for(lambda: "10.244.1.0/26" in learned(), 20)
        assert learned() == {"10.244.1.0/26"}
        (tables,) = a.table.peers.values()
        assert len(tables.adj_out) == 1
        assert all(
            r.core.state is State.ESTABLISHED for sp in speakers.values() for r in sp.peers.values()
        )
    finally:
        for sp in speakers.values():
            await sp.stop()


def _inside(
    draw: st.DrawFn, outer: ipaddress.IPv4Network, min_length: int
) -> ipaddress.IPv4Network:
    length = draw(st.integers(max(min_length, outer.prefixlen), 32))
    address = int(outer.network_address) | draw(st.integers(0, 2 ** (32 - outer.prefixlen) - 1))
    return ipaddress.IPv4Network(
        (address >> (32 - length) << (32 - length) if length else 0, length)
    )


@st.composite
def pools_and_prefix(draw: st.DrawFn) -> tuple[tuple[PoolExport, ...], ipaddress.IPv4Network]:
    """A few IPv4 pools, often nested inside one another (a disabled pool inside an exported
    one, and the reverse), and a prefix inside one of them or near: Calico's rule is about
    containment, order and length, so the draws keep them close together."""
    top = ipaddress.IPv4Network("10.0.0.0/8")
    pools: list[PoolExport] = []
    nets: list[ipaddress.IPv4Network] = [top]
    for _ in range(draw(st.integers(0, 4))):
        net = _inside(draw, draw(st.sampled_from(nets)), 8)
        if net.prefixlen > 28:
            net = net.supernet(new_prefix=28)
        nets.append(net)
        pools.append(PoolExport(net, draw(st.integers(net.prefixlen, 32)), draw(st.booleans())))
    prefix = _inside(draw, draw(st.sampled_from(nets)), 0)
    return tuple(sorted(set(pools), key=lambda p: (p.cidr, p.block_size, p.export))), prefix


def calico_says(pools: tuple[PoolExport, ...], net: ipaddress.IPv4Network) -> bool:
    """`calico_export_to_bgp_peers`, read off the reference: a disableBGPExport pool holding
    the route rejects it; else an exported pool holding it, with the route no longer than the
    pool's block size, accepts it; anything else is rejected."""
    if any(not p.export and net.subnet_of(p.cidr) for p in pools):  # type: ignore[arg-type]
        return False
    return any(
        p.export and net.subnet_of(p.cidr) and net.prefixlen <= p.block_size  # type: ignore[arg-type]
        for p in pools
    )


@given(pools_and_prefix())
def test_rendered_policy_agrees_with_calicos_rule(case: tuple[tuple[PoolExport, ...], Any]) -> None:
    pools, net = case
    plan = NodeBGPPlan("n", ipaddress.IPv4Address("10.0.0.1"), 64512, pools=pools)
    config = from_mapping(BgpdConfig, tomllib.loads(render_bgpd_toml(plan)))
    policy = config.compiled_policies()[EXPORT_POLICY]
    got = policy.evaluate(IPV4_UNICAST, make_prefix(str(net)), PathAttributes()) is not None
    assert got == calico_says(pools, net)
