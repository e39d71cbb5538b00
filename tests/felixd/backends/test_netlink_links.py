"""The IPIP device's netlink messages and felix's configure-tunl0 steps, without the ipip module
(calico.md §4.2; felix's ipip_mgr.go `configureIPIPDevice`).

The messages we pack are read back by pyroute2's own parser (an independent reading of the
kernel's layouts) and by our decoders (hypothesis round trips, and decoders total on arbitrary
bytes). `NetlinkBackend.ensure_ipip` runs against a small in-memory link table that answers as
the kernel does (EOPNOTSUPP for an unknown link kind when the module is missing, EEXIST for a
taken name), so "create, set MTU and up, exactly one /32" and "write nothing that is already
right" are checked here; tests/felixd/netns/test_ipip.py runs the same against a real kernel.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct
from collections.abc import Iterator, Sequence
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from felixd.netlink.backend import NetlinkBackend
from felixd.netlink.links import (
    IFF_UP,
    IFLA_MTU,
    RTM_DELADDR,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_NEWADDR,
    RTM_NEWLINK,
    LinkInfo,
    decode_address,
    decode_link,
    encode_address,
    encode_link_add,
    encode_link_set,
)
from felixd.netlink.messages import (
    NLM_F_CREATE,
    NLM_F_EXCL,
    RTNH_F_ONLINK,
    attrs,
    decode_route,
    encode_route,
    messages,
)
from felixd.plan.model import Route

names = st.text("abcdefghijklmnopqrstuvwxyz0123456789.-_", min_size=1, max_size=15)


def payload(msg: bytes) -> bytes:
    ((_, _, _, body),) = list(messages(msg))
    return body


def test_link_add_is_what_ip_link_add_sends() -> None:
    """`ip link add tunl0 type ipip mtu 1480`: RTM_NEWLINK, create-exclusive, IFLA_LINKINFO
    nesting the kind, as pyroute2 reads it."""
    m = ifinfmsg(encode_link_add("tunl0", "ipip", 1480, 7))
    m.decode()
    assert m["header"]["type"] == RTM_NEWLINK and m["header"]["sequence_number"] == 7
    assert m["header"]["flags"] & (NLM_F_CREATE | NLM_F_EXCL) == NLM_F_CREATE | NLM_F_EXCL
    assert m.get_attr("IFLA_IFNAME") == "tunl0" and m.get_attr("IFLA_MTU") == 1480
    assert m.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_KIND") == "ipip"


@pytest.mark.parametrize(
    ("mtu", "up", "flags", "change"),
    [(1480, True, IFF_UP, IFF_UP), (None, True, IFF_UP, IFF_UP), (1400, None, 0, 0)],
)
def test_link_set_changes_only_what_is_given(
    mtu: int | None, up: bool | None, flags: int, change: int
) -> None:
    m = ifinfmsg(encode_link_set(5, 8, mtu=mtu, up=up))
    m.decode()
    assert (m["index"], m["flags"], m["change"]) == (5, flags, change)
    assert m.get_attr("IFLA_MTU") == mtu
    assert not m["header"]["flags"] & NLM_F_CREATE  # never creates a link by index


def test_address_is_what_ip_addr_sends() -> None:
    m = ifaddrmsg(encode_address(5, "10.244.1.1/32", "add", 9))
    m.decode()
    assert m["header"]["type"] == RTM_NEWADDR
    assert (m["family"], m["prefixlen"], m["index"]) == (socket.AF_INET, 32, 5)
    assert m.get_attr("IFA_LOCAL") == m.get_attr("IFA_ADDRESS") == "10.244.1.1"
    d = ifaddrmsg(encode_address(5, "10.244.1.1/32", "delete", 10))
    d.decode()
    assert d["header"]["type"] == RTM_DELADDR


def test_remote_ipip_route_goes_via_tunl0_onlink_with_the_tunnel_mtu() -> None:
    """calico.md §4.2: `10.244.2.0/26 via <node IP> dev tunl0 proto 80 onlink mtu 1480`."""
    route = Route(
        dst="10.244.2.0/26", protocol=80, dev="tunl0", gateway="192.168.1.11", onlink=True, mtu=1480
    )
    msg = encode_route(route, "add", 3, {"tunl0": 12})
    m = rtmsg(msg)
    m.decode()
    assert m.get_attr("RTA_OIF") == 12 and m.get_attr("RTA_GATEWAY") == "192.168.1.11"
    assert m["flags"] & RTNH_F_ONLINK and m["proto"] == 80 and m["dst_len"] == 26
    assert m.get_attr("RTA_METRICS").get_attr("RTAX_MTU") == 1480
    assert decode_route(payload(msg), {12: "tunl0"}) == route


@given(names, st.sampled_from(["ipip", "vxlan", "dummy"]), st.integers(68, 65535))
def test_link_round_trip(name: str, kind: str, mtu: int) -> None:
    assert decode_link(payload(encode_link_add(name, kind, mtu, 1))) == LinkInfo(
        0, name, kind, mtu, False
    )


@given(
    st.integers(1, 2**31 - 1),
    st.one_of(
        st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 32)).map(
            lambda t: f"{ipaddress.IPv4Address(t[0])}/{t[1]}"
        ),
        st.tuples(st.integers(0, 2**128 - 1), st.integers(0, 128)).map(
            lambda t: f"{ipaddress.IPv6Address(t[0])}/{t[1]}"
        ),
    ),
)
def test_address_round_trip(index: int, address: str) -> None:
    assert decode_address(payload(encode_address(index, address, "add", 1))) == (index, address)


@given(st.binary(max_size=200))
def test_decoders_are_total(data: bytes) -> None:
    decode_link(data)
    decode_address(data)


# -- ensure_ipip against an in-memory link table ------------------------------------------


class LinkKernel:
    """Links and IPv4 addresses, answering RTM_{NEW,GET}LINK and RTM_{NEW,DEL,GET}ADDR as Linux
    does for what ensure_ipip sends."""

    def __init__(self, ipip_module: bool) -> None:
        self.ipip_module = ipip_module
        self.links: dict[int, LinkInfo] = {1: LinkInfo(1, "lo", "", 65536, True)}
        self.addresses: set[tuple[int, str]] = set()
        self.writes: list[int] = []  # message types applied
        self.seq = 0

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def dump(self, request: bytes, seq: int) -> Iterator[tuple[int, bytes]]:
        ((kind, _, _, _),) = list(messages(request))
        if kind == RTM_GETLINK:
            for link in self.links.values():
                msg = encode_link_add(link.name, link.kind, link.mtu, seq)
                body = bytearray(payload(msg))
                body[4:8] = link.index.to_bytes(4, "little", signed=True)
                body[8:12] = (IFF_UP if link.up else 0).to_bytes(4, "little")
                yield RTM_NEWLINK, bytes(body)
        elif kind == RTM_GETADDR:
            for index, address in sorted(self.addresses):
                yield RTM_NEWADDR, payload(encode_address(index, address, "add", seq))

    def request_batch(self, batch: Sequence[tuple[int, bytes]]) -> list[int | None]:
        return [self._apply(msg) for _, msg in batch]

    def _apply(self, msg: bytes) -> int | None:
        ((kind, flags, _, body),) = list(messages(msg))
        if kind == RTM_NEWLINK and not flags & NLM_F_CREATE:
            index, iflags, change = struct.unpack_from("=iII", body, 4)
            old = self.links[index]
            mtu = struct.unpack("=I", attrs(body, 16)[IFLA_MTU])[0] if len(body) > 16 else old.mtu
            up = bool(iflags & IFF_UP) if change & IFF_UP else old.up
            self.links[index] = replace(old, mtu=mtu, up=up)
        elif kind == RTM_NEWLINK:
            link = decode_link(body)
            if link is None:
                return errno.EINVAL
            if any(x.name == link.name for x in self.links.values()):
                return errno.EEXIST
            if link.kind == "ipip" and not self.ipip_module:
                return errno.EOPNOTSUPP  # "Unknown device type"
            index = max(self.links) + 1
            self.links[index] = replace(link, index=index, up=False)
        elif kind in (RTM_NEWADDR, RTM_DELADDR):
            found = decode_address(body)
            assert found is not None
            if kind == RTM_DELADDR:
                self.addresses.discard(found)
            elif found in self.addresses:
                return errno.EEXIST
            else:
                self.addresses.add(found)
        self.writes.append(kind)
        return None


def backend(kernel: LinkKernel) -> NetlinkBackend:
    b = NetlinkBackend()
    b._channel = kernel  # type: ignore[assignment]
    return b


def test_without_the_module_nothing_is_left_behind() -> None:
    kernel = LinkKernel(ipip_module=False)
    assert backend(kernel).ensure_ipip("tunl0", 1480, "10.244.1.1/32") == errno.EOPNOTSUPP
    assert [link.name for link in kernel.links.values()] == ["lo"] and not kernel.writes


def test_create_configure_and_then_write_nothing() -> None:
    kernel = LinkKernel(ipip_module=True)
    b = backend(kernel)
    assert b.ensure_ipip("tunl0", 1480, "10.244.1.1/32") is None
    (tunl0,) = (link for link in kernel.links.values() if link.name == "tunl0")
    assert (tunl0.kind, tunl0.mtu, tunl0.up) == ("ipip", 1480, True)
    assert kernel.addresses == {(tunl0.index, "10.244.1.1/32")}
    assert b.indexes["tunl0"] == tunl0.index  # routes via tunl0 can be encoded at once
    kernel.writes.clear()
    assert b.ensure_ipip("tunl0", 1480, "10.244.1.1/32") is None
    assert kernel.writes == []  # a restart changes nothing that is already right


def test_the_modules_fallback_device_is_adopted_and_fixed() -> None:
    """With the module loaded, tunl0 exists in every namespace (down, MTU 1480, no address);
    someone may have left an old address on it: exactly the tunnel address remains."""
    kernel = LinkKernel(ipip_module=True)
    kernel.links[2] = LinkInfo(2, "tunl0", "ipip", 1480, False)
    kernel.addresses = {(2, "10.244.9.9/32"), (2, "10.244.1.1/32")}
    assert backend(kernel).ensure_ipip("tunl0", 1430, "10.244.1.1/32") is None
    assert kernel.links[2] == LinkInfo(2, "tunl0", "ipip", 1430, True)
    assert kernel.addresses == {(2, "10.244.1.1/32")}
    assert RTM_NEWLINK in kernel.writes and RTM_NEWADDR not in kernel.writes


def test_a_link_of_another_kind_is_not_taken_over() -> None:
    kernel = LinkKernel(ipip_module=True)
    kernel.links[2] = LinkInfo(2, "tunl0", "dummy", 1500, True)
    assert backend(kernel).ensure_ipip("tunl0", 1480, "10.244.1.1/32") == errno.EEXIST
    assert not kernel.writes


def test_an_empty_address_removes_the_old_ones() -> None:
    kernel = LinkKernel(ipip_module=True)
    kernel.links[2] = LinkInfo(2, "tunl0", "ipip", 1480, True)
    kernel.addresses = {(2, "10.244.9.9/32")}
    assert backend(kernel).ensure_ipip("tunl0", 1480, "") is None
    assert kernel.addresses == set() and kernel.writes == [RTM_DELADDR]
