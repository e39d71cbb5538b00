"""The IPIP device against a real kernel (calico.md §4.2; felix's `configureIPIPDevice`):
`NetlinkBackend.ensure_ipip` makes `tunl0` an up ipip link with the tunnel MTU and exactly the
node's tunnel address, writes nothing the second time, and a remote block route goes via it
`onlink` with the tunnel MTU.

This kernel has no ipip module: creating tunl0 fails with EOPNOTSUPP ("Unknown device type").
The test checks that the failure leaves nothing behind, then skips the rest with that reason.
The message building is tested without the module in tests/felixd/backends/test_netlink_links.py.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Iterator, Sequence

import pytest

from felixd.netlink import NetlinkBackend
from felixd.netlink.links import encode_address, encode_link_add, encode_link_set
from felixd.plan.model import IpipDevice, Route
from felixd.plan.ops import AddRoute
from tests.felixd.netns.nsutil import cleanup, in_ns, ns_name, root_snapshot, sh

pytestmark = pytest.mark.netns

NO_MODULE = "kernel has no ipip module: tunl0 cannot be created (EOPNOTSUPP), IPIP not testable"
ROUTE = Route(
    dst="10.244.2.0/26", protocol=80, dev="tunl0", gateway="192.168.60.11", onlink=True, mtu=1480
)


@pytest.fixture
def ns() -> Iterator[str]:
    before = root_snapshot()
    name = ns_name("ip")
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", "fabric0")
        sh("ip", "-n", name, "addr", "add", "192.168.60.10/24", "dev", "eth0")
        sh("ip", "-n", name, "link", "set", "eth0", "up")
        yield name
    finally:
        cleanup(name)
        assert root_snapshot() == before


def test_tunl0_configured_once_and_routes_go_via_it(ns: str) -> None:
    def first() -> int | None:
        b = NetlinkBackend()
        try:
            return b.ensure_ipip("tunl0", 1480, "10.244.1.1/32")
        finally:
            b.close()

    error = in_ns(ns, first)
    if error == errno.EOPNOTSUPP:
        assert "tunl0" not in sh("ip", "-n", ns, "link", "show")  # nothing half-made
        pytest.skip(NO_MODULE)
    assert error is None
    (link,) = json.loads(sh("ip", "-n", ns, "-d", "-j", "link", "show", "tunl0"))
    assert link["linkinfo"]["info_kind"] == "ipip" and link["mtu"] == 1480
    assert "UP" in link["flags"]
    addrs = json.loads(sh("ip", "-n", ns, "-j", "-4", "addr", "show", "dev", "tunl0"))
    assert [(a["local"], a["prefixlen"]) for a in addrs[0]["addr_info"]] == [("10.244.1.1", 32)]

    def again() -> tuple[int | None, int | None, Route | None]:
        b = NetlinkBackend()
        try:
            sent: list[tuple[int, bytes]] = []
            real = b.channel.request_batch

            def counting(batch: Sequence[tuple[int, bytes]]) -> list[int | None]:
                sent.extend(batch)
                return real(batch)

            b.channel.request_batch = counting  # type: ignore[method-assign]
            unchanged = b.ensure_ipip("tunl0", 1480, "10.244.1.1/32")
            assert sent == []  # nothing written when it is already right
            (result,) = b.apply([AddRoute(ROUTE)])
            observed = b.read()
            # What the differ compares with the planned device (felixd/plan: SetIpipDevice).
            assert observed.tunnels == {"tunl0": IpipDevice("tunl0", 1480, "10.244.1.1/32")}
            return unchanged, result.error, observed.routes.get(ROUTE.key)
        finally:
            b.close()

    unchanged, added, read = in_ns(ns, again)
    assert unchanged is None and added is None and read == ROUTE
    assert "10.244.2.0/26 via 192.168.60.11 dev tunl0 proto 80 onlink mtu 1480" in sh(
        "ip", "-n", ns, "route", "show"
    )


def test_the_same_messages_work_on_a_kernel_without_ipip(ns: str) -> None:
    """Every message ensure_ipip sends (link add, link set MTU/up, address add/delete), and the
    dumps `tunnel` reads, exercised on a link kind this kernel has (a bridge), so the packing is
    checked by the kernel here even though tunl0 cannot exist."""

    def run() -> list[object]:
        b = NetlinkBackend()
        ch = b.channel
        try:
            out: list[object] = []
            for _ in range(2):  # the second add is EEXIST: create is exclusive
                seq = ch.next_seq()
                out.extend(ch.request_batch([(seq, encode_link_add("tbr0", "bridge", 1400, seq))]))
            found = b.tunnel("tbr0")
            assert found is not None
            link, _ = found
            out.append((link.kind, link.mtu, link.up))
            seqs = [ch.next_seq() for _ in range(4)]
            batch = [
                (seqs[0], encode_link_set(link.index, seqs[0], mtu=1300, up=True)),
                (seqs[1], encode_address(link.index, "10.244.1.1/32", "add", seqs[1])),
                (seqs[2], encode_address(link.index, "10.244.9.9/32", "add", seqs[2])),
                (seqs[3], encode_address(link.index, "10.244.9.9/32", "delete", seqs[3])),
            ]
            out.extend(ch.request_batch(batch))
            found = b.tunnel("tbr0")
            assert found is not None
            out.append((found[0].mtu, found[0].up, found[1]))
            return out
        finally:
            b.close()

    assert in_ns(ns, run) == [
        None,
        errno.EEXIST,
        ("bridge", 1400, False),
        None,
        None,
        None,
        None,
        (1300, True, ("10.244.1.1/32",)),
    ]
