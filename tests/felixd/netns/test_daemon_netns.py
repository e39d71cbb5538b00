"""felixd in-process with the real netlink backend in a test namespace: a pod's veth that
appears after its WorkloadEndpoint gets its route at once, through the link monitor, not at the
next routeRefreshInterval (issue 10: link events trigger a resync)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from felixd.daemon import Felixd, FelixdConfig
from resources.resource import Resource
from tests.felixd.daemon.test_daemon import Feed, resources, until
from tests.felixd.netns.nsutil import cleanup, ns_name, root_snapshot, sh

pytestmark = pytest.mark.netns


@pytest.fixture
def node_ns() -> Iterator[str]:
    before = root_snapshot()
    ns = ns_name("dm")
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "fabric0")
        for dev in ("lo", "eth0", "fabric0"):
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", ns, "addr", "add", "192.168.50.10/24", "dev", "eth0")
        yield ns
    finally:
        cleanup(ns)
        assert root_snapshot() == before


def routes(ns: str) -> str:
    return sh("ip", "-n", ns, "route", "show", "proto", "80")


async def test_new_veth_gets_its_route_through_link_events(node_ns: str, tmp_path: Path) -> None:
    store: Feed = Feed()
    config = FelixdConfig(
        node_name="n1",
        control_socket=tmp_path / "felixd.sock",
        pod_mtu_file=tmp_path / "mtu",
        netns=node_ns,
        bgpd=False,
        debounce=0.0,
    )

    async def source() -> AsyncIterator[list[Resource[object]]]:
        async for item in store():
            yield item  # type: ignore[misc]

    daemon = Felixd(config, store=source)
    await store.queue.put(resources())
    await daemon.start()
    try:
        assert "blackhole 10.244.0.0/26" in routes(node_ns)
        assert "cali1" not in routes(node_ns)  # its veth is not there yet: blocked, not failed
        sh("ip", "-n", node_ns, "link", "add", "cali1", "type", "veth", "peer", "name", "pod1")
        sh("ip", "-n", node_ns, "link", "set", "cali1", "up")
        await until(lambda: "10.244.0.5 dev cali1" in routes(node_ns), "the pod's route")
        sysctl = sh("ip", "netns", "exec", node_ns, "sysctl", "-n", "net.ipv4.conf.cali1.proxy_arp")
        assert sysctl.strip() == "1"
        assert daemon.state.config.route_refresh_interval == 30.0  # no refresh could explain it
        assert daemon.errors == 0, daemon.last_error  # nor a retry after an error
    finally:
        await daemon.stop()
