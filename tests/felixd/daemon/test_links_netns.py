"""Per-interface resync against the real kernel (issue 10): felixd in-process with the netlink
backend in a test namespace; a pod's veth that is created down, brought up, deleted and made
again gets its route each time from the link events alone, without a single dump of the
kernel's routes, and its absence is not a problem during the grace period."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from felixd.daemon import Felixd, FelixdConfig
from felixd.netlink import NetlinkBackend
from felixd.nft import NftBackend
from felixd.plan import ObservedState, Ownership
from resources.resource import Resource
from tests.felixd.daemon.test_daemon import Feed, resources, until
from tests.felixd.netns.nsutil import cleanup, ns_name, root_snapshot, sh

pytestmark = pytest.mark.netns


@pytest.fixture
def namespaces() -> Iterator[tuple[str, str]]:
    before = root_snapshot()
    node, pod = ns_name("ln"), ns_name("lp")
    sh("ip", "netns", "add", node)
    sh("ip", "netns", "add", pod)
    try:
        sh("ip", "-n", node, "link", "add", "eth0", "type", "veth", "peer", "name", "fabric0")
        for dev in ("lo", "eth0", "fabric0"):
            sh("ip", "-n", node, "link", "set", dev, "up")
        sh("ip", "-n", node, "addr", "add", "192.168.50.10/24", "dev", "eth0")
        yield node, pod
    finally:
        cleanup(node, pod)
        assert root_snapshot() == before


class CountingBackend(NetlinkBackend):
    reads = 0

    def read(self) -> ObservedState:
        CountingBackend.reads += 1
        return super().read()


def routes(ns: str) -> str:
    return sh("ip", "-n", ns, "route", "show", "proto", "80")


async def test_pod_veth_comes_and_goes_by_link_events(
    namespaces: tuple[str, str], tmp_path: Path
) -> None:
    node, pod = namespaces
    store: Feed = Feed()
    config = FelixdConfig(
        node_name="n1",
        control_socket=tmp_path / "felixd.sock",
        pod_mtu_file=tmp_path / "mtu",
        state_dir=tmp_path,
        netns=node,
        bgpd=False,
        debounce=0.0,
        endpoint_grace=60.0,
    )

    async def source() -> AsyncIterator[list[Resource[object]]]:
        async for item in store():
            yield item  # type: ignore[misc]

    def backend(owner: Ownership) -> NetlinkBackend:
        return CountingBackend(owner, NftBackend(state_file=tmp_path / "nft-tables.json"))

    daemon = Felixd(config, store=source, backend=backend)
    await store.queue.put(resources())
    await daemon.start()
    try:
        assert "blackhole 10.244.0.0/26" in routes(node)
        reads = CountingBackend.reads
        for round_ in range(2):
            # CNI-shaped: the host end appears down in the node, its peer in the pod.
            sh(
                "ip",
                "-n",
                node,
                "link",
                "add",
                "cali1",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                pod,
            )
            await until(lambda: "cali1" in daemon.links.down, "the new veth seen down")
            sh("ip", "-n", node, "link", "set", "cali1", "up")
            await until(lambda: "10.244.0.5 dev cali1" in routes(node), "the pod's route")
            proxy_arp = sh(
                "ip", "netns", "exec", node, "sysctl", "-n", "net.ipv4.conf.cali1.proxy_arp"
            )
            assert proxy_arp.strip() == "1"
            assert "PERMANENT" in sh("ip", "-n", node, "neigh", "show", "dev", "cali1")
            assert daemon.errors == 0, daemon.last_error
            sh("ip", "-n", node, "link", "del", "cali1")
            await until(lambda: "cali1" in daemon.missing_since, f"round {round_}: veth gone")
            status = await daemon.status_rpc()
            assert not [p for p in status["problems"] if "cali1" in p]  # type: ignore[attr-defined]
        assert CountingBackend.reads == reads  # no kernel dump: per-interface resyncs only
        assert daemon.interface_syncs >= 4
    finally:
        await daemon.stop()
