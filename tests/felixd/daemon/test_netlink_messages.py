"""The hand-packed rtnetlink codec (felixd/netlink/messages.py): an RTM_NEWROUTE/RTM_NEWNEIGH
we build decodes back to the same value (the kernel's dump uses the same layout), batches split
into their messages, and the acknowledgement's errno is read as the kernel writes it
(linux/netlink.h: a negative errno in NLMSG_ERROR, 0 for an ack)."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from felixd.netlink.channel import _without_ack
from felixd.netlink.messages import (
    HDR,
    NLM_F_ACK,
    MissingLink,
    decode_neighbour,
    decode_route,
    encode_fdb,
    encode_neighbour,
    encode_route,
    error_code,
    messages,
)
from felixd.plan.model import FdbEntry, Neighbour, NextHop, Route, RouteScope, RouteType

INDEXES = {"eth0": 2, "eth1": 3, "cali1": 7, "vxlan.calico": 9}
NAMES = {i: n for n, i in INDEXES.items()}

v4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
devs = st.sampled_from(sorted(INDEXES))
macs = st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))


@st.composite
def routes(draw: st.DrawFn) -> Route:
    length = draw(st.integers(0, 32))
    net = ipaddress.IPv4Network((draw(st.integers(0, 2**32 - 1)), length), strict=False)
    common = {
        "dst": str(net),
        "protocol": draw(st.integers(1, 255)),
        "metric": draw(st.integers(0, 2**32 - 1)),
        "table": draw(st.sampled_from([254, 100, 1000])),
        "mtu": draw(st.none() | st.integers(68, 65535)),
    }
    shape = draw(st.sampled_from(["blackhole", "link", "via", "multipath"]))
    if shape == "blackhole":
        return Route(type=RouteType.BLACKHOLE, **common)  # type: ignore[arg-type]
    if shape == "link":
        return Route(scope=RouteScope.LINK, dev=draw(devs), **common)  # type: ignore[arg-type]
    if shape == "via":
        return Route(dev=draw(devs), gateway=draw(v4), onlink=draw(st.booleans()), **common)  # type: ignore[arg-type]
    hops = draw(
        st.lists(
            st.builds(NextHop, v4, devs, st.booleans(), st.integers(1, 256)),
            min_size=2,
            max_size=4,
            unique_by=lambda h: (h.gateway, h.dev),
        )
    )
    return Route(nexthops=tuple(sorted(hops)), **common)  # type: ignore[arg-type]


@given(routes())
def test_route_encodes_and_decodes_back(route: Route) -> None:
    msg = encode_route(route, "add", 7, INDEXES)
    ((kind, _flags, seq, payload),) = list(messages(msg))
    assert (kind, seq) == (24, 7)  # RTM_NEWROUTE
    assert decode_route(payload, NAMES) == route


@given(st.lists(routes(), min_size=1, max_size=20))
def test_a_batch_splits_into_its_messages_and_acks_are_dropped_but_the_last(
    batch: list[Route],
) -> None:
    msgs = [encode_route(r, "replace", i + 1, INDEXES) for i, r in enumerate(batch)]
    quiet = [_without_ack(m) for m in msgs]
    split = list(messages(b"".join(quiet)))
    assert [s for _, _, s, _ in split] == list(range(1, len(batch) + 1))
    assert all(not f & NLM_F_ACK for _, f, _, _ in split)
    assert all(struct.unpack_from("=H", m, 6)[0] & NLM_F_ACK for m in msgs)


@given(v4, macs, devs, st.booleans())
def test_neighbour_round_trip(address: str, mac: str, dev: str, permanent: bool) -> None:
    neigh = Neighbour(dev, address, mac, permanent)
    ((_, _, _, payload),) = list(messages(encode_neighbour(neigh, "replace", 1, INDEXES)))
    assert decode_neighbour(payload, NAMES) == neigh


@given(v4, macs)
def test_fdb_round_trip(dst: str, mac: str) -> None:
    entry = FdbEntry("vxlan.calico", mac, dst)
    ((_, _, _, payload),) = list(messages(encode_fdb(entry, "add", 1, INDEXES)))
    assert decode_neighbour(payload, NAMES) == entry


def test_missing_interface_is_refused_before_the_kernel() -> None:
    route = Route("10.0.0.0/24", 80, dev="cali404")
    with pytest.raises(MissingLink, match="cali404"):
        encode_route(route, "add", 1, INDEXES)


def test_error_code_reads_the_negative_errno() -> None:
    """linux/netlink.h struct nlmsgerr: int error (negative errno, 0 = ack), then the header."""
    assert error_code(struct.pack("=i", -17) + HDR.pack(16, 24, 0, 1, 0)) == 17
    assert error_code(struct.pack("=i", 0) + HDR.pack(16, 24, 0, 1, 0)) == 0
