"""Policy prefix matching on the wire form against ipaddress (prefix lists with ge/le, as
BIRD's `net ~ [ prefix{a,b} ]` and Calico's "export blocks, not the /32s inside them")."""

from __future__ import annotations

import ipaddress
from itertools import islice

from hypothesis import given
from hypothesis import strategies as st

from bgpd.core.routing.policy import ACCEPT_ALL, Policy, PolicyError, PrefixMatch, Term
from bgpd.wire.attributes import PathAttributes
from bgpd.wire.context import IPV4_UNICAST, IPV6_UNICAST
from bgpd.wire.prefix import prefix_from_network

ATTRS = PathAttributes(origin=0)
Net = ipaddress.IPv4Network | ipaddress.IPv6Network


@st.composite
def networks(draw: st.DrawFn, version: int) -> Net:
    bits = 32 if version == 4 else 128
    length = draw(st.integers(0, bits))
    address = draw(st.integers(0, 2**bits - 1)) >> (bits - length) << (bits - length)
    if version == 4:
        return ipaddress.IPv4Network((address, length))
    return ipaddress.IPv6Network((address, length))


@st.composite
def match_and_prefix(draw: st.DrawFn) -> tuple[PrefixMatch, Net]:
    version = draw(st.sampled_from([4, 6]))
    net = draw(networks(version))
    ge = draw(st.integers(net.prefixlen, net.max_prefixlen))
    le = draw(st.integers(ge, net.max_prefixlen))
    # Prefixes near the match (a subnet, a supernet) as well as anywhere.
    other_version = draw(st.sampled_from([version, version, version, 10 - version]))
    kind = draw(st.sampled_from(["anywhere", "subnet", "supernet"]))
    candidate: Net
    if kind == "anywhere":
        candidate = draw(networks(other_version))
    elif kind == "subnet":
        length = draw(st.integers(net.prefixlen, net.max_prefixlen))
        subnets = [ipaddress.ip_network(str(n)) for n in islice(net.subnets(new_prefix=length), 4)]
        candidate = draw(st.sampled_from(subnets))
    else:
        candidate = ipaddress.ip_network(
            str(net.supernet(new_prefix=draw(st.integers(0, net.prefixlen))))
        )
    return PrefixMatch(net, ge, le), candidate


@given(match_and_prefix())
def test_wire_matching_equals_the_ipaddress_definition(case) -> None:  # type: ignore[no-untyped-def]
    m, candidate = case
    expected = (
        candidate.version == m.network.version
        and m.ge <= candidate.prefixlen <= m.le
        and candidate.subnet_of(m.network)
    )
    assert m.matches(candidate) == expected
    family = IPV4_UNICAST if candidate.version == 4 else IPV6_UNICAST
    policy = Policy("p", (Term(prefixes=(m,), action="accept"),), default="reject")
    assert (policy.evaluate(family, prefix_from_network(candidate), ATTRS) is not None) == expected


def test_calico_export_blocks_not_the_addresses_inside_them() -> None:
    pool = Policy(
        "pool-blocks",
        (Term(prefixes=(PrefixMatch.parse("10.244.0.0/16 ge 26 le 26"),), action="accept"),),
        default="reject",
    )
    for text, accepted in (
        ("10.244.3.64/26", True),
        ("10.244.3.65/32", False),
        ("10.244.0.0/16", False),
        ("10.245.0.0/26", False),
    ):
        prefix = prefix_from_network(ipaddress.ip_network(text))
        assert (pool.evaluate(IPV4_UNICAST, prefix, ATTRS) is not None) == accepted, text
    assert ACCEPT_ALL.evaluate(IPV4_UNICAST, prefix, ATTRS) is ATTRS


def test_prefix_list_syntax_errors_name_the_bad_part() -> None:
    for bad in ("10.0.0.0/33", "10.0.0.0/8 ge", "10.0.0.0/8 ge 4", "10.0.0.0/8 ge 20 le 10"):
        try:
            PrefixMatch.parse(bad)
        except PolicyError as e:
            assert repr(bad) in str(e) or bad.split()[0] in str(e)
        else:
            raise AssertionError(f"{bad!r} parsed")
