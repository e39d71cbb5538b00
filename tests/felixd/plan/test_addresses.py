"""Address parsing: the hand-written IPv4 fast path agrees with `ipaddress` (differential
oracle), and the helpers behave as felix's do (calico.md §1.4 VTEP MAC)."""

from __future__ import annotations

import ipaddress

from hypothesis import example, given
from hypothesis import strategies as st

from felixd.plan.addresses import (
    canonical_prefix,
    ip_within,
    normalise_mac,
    parse_ip,
    parse_prefix,
    prefix_within,
    valid_interface_name,
)

octet = st.one_of(
    st.integers(0, 300).map(str),
    st.sampled_from(
        ["0", "255", "256", "999", "1000", "00", "01", "007", "", "-1", "1a", " 1", "٣"]
    ),
)
ipv4_texts = st.builds(".".join, st.lists(octet, min_size=3, max_size=5))
lengths = st.one_of(
    st.integers(0, 40).map(str), st.sampled_from(["", "0", "32", "33", "026", "+8", "255.0.0.0"])
)
prefix_texts = st.one_of(
    st.builds(lambda a, n: f"{a}/{n}", ipv4_texts, lengths),
    st.builds(
        lambda a, n: f"{ipaddress.ip_address(a)}/{n}",
        st.integers(0, 2**32 - 1),
        st.integers(0, 32),
    ),
    st.sampled_from(["fd00::/64", "FD00::/64", "fd00::1/64", "::/0", "junk", "/", "1.2.3.4"]),
)


def _oracle_prefix(text: str) -> tuple[str, tuple[int, int, int]] | None:
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError:
        return None
    return (str(net), (net.version, int(net.network_address), net.prefixlen))


def _oracle_ip(text: str) -> tuple[int, int, str] | None:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    return (addr.version, int(addr), str(addr))


@given(prefix_texts)
@example("10.244.0.0/26")
@example("10.244.0.1/26")
@example("0.0.0.0/0")
@example("255.255.255.255/32")
@example("256.0.0.0/8")
@example("10.0.0.0/33")
@example("10.0.0.0/026")
@example("010.0.0.0/8")
def test_fast_prefix_parser_agrees_with_ipaddress(text: str) -> None:
    assert canonical_prefix(text) == _oracle_prefix(text)
    oracle = _oracle_prefix(text)
    assert parse_prefix(text) == (None if oracle is None else oracle[1])


@given(ipv4_texts)
@example("192.168.1.1")
@example("1.2.3.04")
@example("1.2.3.256")
@example("fd00::1")
def test_fast_ip_parser_agrees_with_ipaddress(text: str) -> None:
    assert parse_ip(text) == _oracle_ip(text)


@given(st.integers(0, 2**32 - 1), st.integers(0, 32), st.integers(0, 2**32 - 1), st.integers(0, 32))
def test_prefix_within_agrees_with_subnet_of(a: int, alen: int, b: int, blen: int) -> None:
    inner = ipaddress.IPv4Network((a, alen), strict=False)
    outer = ipaddress.IPv4Network((b, blen), strict=False)
    mine = prefix_within(
        (4, int(inner.network_address), inner.prefixlen),
        (4, int(outer.network_address), outer.prefixlen),
    )
    assert mine == inner.subnet_of(outer)
    host = parse_ip(str(ipaddress.ip_address(a)))
    assert host is not None
    assert ip_within(host, (4, int(outer.network_address), outer.prefixlen)) == (
        ipaddress.ip_address(a) in outer
    )


def test_mac_and_interface_name_rules() -> None:
    assert normalise_mac("EE-EE-EE-EE-EE-01") == "ee:ee:ee:ee:ee:01"
    assert normalise_mac("ee:ee:ee:ee:ee") is None
    assert normalise_mac("ee:ee:ee:ee:ee:gg") is None
    assert valid_interface_name("cali1234567890a")  # 15 bytes: the longest the kernel takes
    assert not valid_interface_name("cali1234567890ab")
    assert not valid_interface_name("cali/x") and not valid_interface_name("cali:0")
    assert not valid_interface_name("") and not valid_interface_name("..")
