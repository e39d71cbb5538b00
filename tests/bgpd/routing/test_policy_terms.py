"""Policy terms (matches on family, communities, large communities, AS_PATH length; actions that
set LOCAL_PREF/MED and remove/add communities) against a naive interpreter written from the
documented semantics, plus the well-known community names."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from bgpd.core.routing.policy import (
    INDEX_ABOVE,
    Policy,
    PolicyError,
    PrefixMatch,
    Term,
    parse_community,
    wire_prefix,
)
from bgpd.wire.attributes import AS_SEQUENCE, AS_SET, NO_EXPORT, PathAttributes
from bgpd.wire.context import IPV4_UNICAST, IPV6_UNICAST, Family
from bgpd.wire.prefix import prefix_from_network

Net = ipaddress.IPv4Network | ipaddress.IPv6Network

# Small pools, so that drawn terms and routes often meet.
MATCHES = [
    PrefixMatch.parse("10.0.0.0/8 ge 24 le 26"),
    PrefixMatch.parse("10.1.0.0/16"),
    PrefixMatch.parse("2001:db8::/32 le 64"),
]
NETS = [
    "10.1.0.0/16",
    "10.1.2.0/24",
    "10.1.2.64/26",
    "10.1.2.65/32",
    "192.0.2.0/24",
    "2001:db8::/48",
    "2001:db8::1/128",
]
COMMUNITIES = [0x00010001, 0x00010002, NO_EXPORT]
LARGE = [(1, 2, 3), (4, 5, 6)]


@dataclass(frozen=True)
class Route:
    net: Net
    attrs: PathAttributes

    @property
    def family(self) -> Family:
        return IPV4_UNICAST if self.net.version == 4 else IPV6_UNICAST


terms = st.builds(
    Term,
    prefixes=st.lists(st.sampled_from(MATCHES), max_size=2, unique=True).map(tuple),
    families=st.lists(st.sampled_from([IPV4_UNICAST, IPV6_UNICAST]), max_size=1).map(tuple),
    communities=st.lists(st.sampled_from(COMMUNITIES), max_size=2, unique=True).map(tuple),
    large_communities=st.lists(st.sampled_from(LARGE), max_size=1).map(tuple),
    as_path_min=st.none() | st.integers(0, 3),
    as_path_max=st.none() | st.integers(0, 3),
    set_local_pref=st.none() | st.integers(0, 300),
    set_med=st.none() | st.integers(0, 50),
    remove_communities=st.lists(st.sampled_from(COMMUNITIES), max_size=2).map(tuple),
    add_communities=st.lists(st.sampled_from(COMMUNITIES), max_size=2).map(tuple),
    remove_large_communities=st.lists(st.sampled_from(LARGE), max_size=1).map(tuple),
    add_large_communities=st.lists(st.sampled_from(LARGE), max_size=1).map(tuple),
    action=st.sampled_from([None, None, "accept", "reject"]),
)
policies = st.builds(
    Policy,
    name=st.just("p"),
    terms=st.lists(terms, max_size=4).map(tuple),
    default=st.sampled_from(["accept", "reject"]),
)
segments = st.tuples(
    st.sampled_from([AS_SEQUENCE, AS_SET]),
    st.lists(st.integers(1, 9), min_size=1, max_size=3).map(tuple),
)
routes = st.builds(
    Route,
    net=st.sampled_from(NETS).map(ipaddress.ip_network),
    attrs=st.builds(
        PathAttributes,
        origin=st.just(0),
        as_path=st.lists(segments, max_size=2).map(tuple),
        med=st.none() | st.integers(0, 50),
        local_pref=st.none() | st.integers(0, 300),
        communities=st.lists(st.sampled_from(COMMUNITIES), max_size=3, unique=True).map(
            lambda xs: tuple(sorted(xs))
        ),
        large_communities=st.lists(st.sampled_from(LARGE), max_size=2, unique=True).map(
            lambda xs: tuple(sorted(xs))
        ),
    ),
)


def _inside(net: Net, m: PrefixMatch) -> bool:
    return (
        net.version == m.network.version
        and m.ge <= net.prefixlen <= m.le
        and net.subnet_of(m.network)  # type: ignore[arg-type]
    )


def _path_length(attrs: PathAttributes) -> int:
    return sum(len(asns) if t == AS_SEQUENCE else 1 for t, asns in attrs.as_path or ())


def naive(policy: Policy, route: Route) -> PathAttributes | None:
    """The semantics in docs/bgpd.md, written the slow and obvious way."""
    attrs = route.attrs
    for t in policy.terms:
        ok = (
            (not t.families or route.family in t.families)
            and (not t.prefixes or any(_inside(route.net, m) for m in t.prefixes))
            and (not t.communities or any(c in attrs.communities for c in t.communities))
            and (
                not t.large_communities
                or any(c in attrs.large_communities for c in t.large_communities)
            )
            and (t.as_path_min is None or _path_length(attrs) >= t.as_path_min)
            and (t.as_path_max is None or _path_length(attrs) <= t.as_path_max)
        )
        if not ok:
            continue
        if t.set_local_pref is not None:
            attrs = attrs._replace(local_pref=t.set_local_pref)
        if t.set_med is not None:
            attrs = attrs._replace(med=t.set_med)
        comms = [c for c in attrs.communities if c not in t.remove_communities]
        comms += [c for c in t.add_communities if c not in comms]
        large = [c for c in attrs.large_communities if c not in t.remove_large_communities]
        large += [c for c in t.add_large_communities if c not in large]
        attrs = attrs._replace(
            communities=tuple(sorted(set(comms))), large_communities=tuple(sorted(set(large)))
        )
        if t.action == "accept":
            return attrs
        if t.action == "reject":
            return None
    return attrs if policy.default == "accept" else None


@given(policies, routes)
def test_evaluate_equals_the_naive_interpreter(policy: Policy, route: Route) -> None:
    got = policy.evaluate(route.family, prefix_from_network(route.net), route.attrs)
    assert got == naive(policy, route)


@given(policies, routes)
def test_unchanged_attributes_are_the_same_object(policy: Policy, route: Route) -> None:
    """Callers intern exported attributes on identity: no change must mean no new object."""
    got = policy.evaluate(route.family, prefix_from_network(route.net), route.attrs)
    if got == route.attrs:
        assert got is route.attrs


def test_remove_runs_before_add_so_a_term_can_replace_a_community() -> None:
    term = Term(remove_communities=(0x00010001,), add_communities=(0x00010001, 0x00010002))
    attrs = PathAttributes(communities=(0x00010001,))
    assert term.apply(attrs).communities == (0x00010001, 0x00010002)


def test_rfc1997_well_known_community_names() -> None:
    assert parse_community("no-export") == NO_EXPORT == parse_community("NO-EXPORT")
    assert parse_community("65535:65281") == NO_EXPORT
    for bad in ("no-such", "1:2:3", "70000:1"):
        try:
            parse_community(bad)
        except PolicyError as e:
            assert repr(bad) in str(e)
        else:
            raise AssertionError(bad)


def test_as_path_length_counts_a_set_as_one() -> None:
    """RFC 4271 §9.1.2.2 a): the length a term's bounds compare is the decision process's."""
    term = Term(as_path_max=2, action="reject")
    short = PathAttributes(as_path=((AS_SEQUENCE, (1,)), (AS_SET, (2, 3, 4))))
    long = PathAttributes(as_path=((AS_SEQUENCE, (1, 2, 3)),))
    policy = Policy("p", (term,), "accept")
    prefix = prefix_from_network(ipaddress.ip_network("192.0.2.0/24"))
    assert policy.evaluate(IPV4_UNICAST, prefix, short) is None
    assert policy.evaluate(IPV4_UNICAST, prefix, long) is long


@st.composite
def many_matches_and_a_prefix(draw: st.DrawFn) -> tuple[list[PrefixMatch], Net]:
    """Enough matches to use the index, around one base network so that many of them nest
    and share lengths, and a prefix somewhere near them (or of the other family)."""
    version = draw(st.sampled_from([4, 6]))
    bits = 32 if version == 4 else 128
    base = draw(st.integers(0, 2**bits - 1))
    matches = []
    for _ in range(draw(st.integers(INDEX_ABOVE + 1, 40))):
        length = draw(st.integers(0, bits))
        address = base ^ draw(st.integers(0, 2 ** max(0, bits - length) - 1)) << min(length, 0)
        net = ipaddress.ip_network((address >> (bits - length) << (bits - length), length))
        ge = draw(st.integers(length, bits))
        matches.append(PrefixMatch(net, ge, draw(st.integers(ge, bits))))
    length = draw(st.integers(0, bits))
    address = base ^ draw(st.integers(0, 2**bits - 1)) >> draw(st.integers(0, bits))
    version_of_prefix = draw(st.sampled_from([version, version, version, 10 - version]))
    if version_of_prefix != version:
        bits, address = (128, address) if version == 4 else (32, address & 0xFFFFFFFF)
        length = min(length, bits)
    net = ipaddress.ip_network((address >> (bits - length) << (bits - length), length))
    return matches, net


@given(many_matches_and_a_prefix())
def test_prefix_index_equals_trying_every_match(case: tuple[list[PrefixMatch], Net]) -> None:
    matches, net = case
    term = Term(prefixes=tuple(matches))
    assert term._index is not None
    family = IPV4_UNICAST if net.version == 4 else IPV6_UNICAST
    wp = wire_prefix(prefix_from_network(net), family[0])
    expected = any(m.matches_wire(wp) for m in matches)
    assert expected == any(_inside(net, m) for m in matches)
    assert term.matches(family, wp, PathAttributes()) == expected
