"""A best path as the control API and the best-path stream show it (`rib`, `subscribe`): the
prefix, every ECMP next hop, where it came from, its attributes and why it won. felixd and
`tabbyctl bgp rib` read these rows; the routing shell builds them."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from bgpd.core.routing.decision import Decision
from bgpd.core.routing.paths import RouteKey
from bgpd.wire.context import AFI_IPV6, Family
from bgpd.wire.prefix import format_prefix


def next_hop_text(raw: bytes) -> str:
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if len(raw) >= 16:
        return str(ipaddress.IPv6Address(raw[:16]))
    return raw.hex()


def family_name(family: Family) -> str:
    return "ipv6" if family[0] == AFI_IPV6 else "ipv4"


def describe(key: RouteKey, decision: Decision, names: dict[str, str]) -> dict[str, object]:
    """A best path for the API and the stream: prefix, ECMP next hops, attributes, reason."""
    return {"prefix": format_prefix(key[1], key[0][0]), **_describe_path(key, decision, names)}


def _describe_path(key: RouteKey, decision: Decision, names: dict[str, str]) -> dict[str, object]:
    best = decision.best
    assert best is not None
    a = best.attrs
    return {
        "family": family_name(key[0]),
        "next_hops": list(
            dict.fromkeys(next_hop_text(p.next_hop) for p in decision.multipath if not p.local)
        ),
        "local": best.local,
        "source": "local" if best.local else names.get(best.source, best.source),
        "reason": decision.reason,
        "stale": best.stale,
        "as_path": [list(asns) for _, asns in a.as_path or ()],
        "origin": a.origin,
        "med": a.med,
        "local_pref": a.local_pref,
        "communities": [f"{c >> 16}:{c & 0xFFFF}" for c in a.communities],
        "large_communities": [":".join(map(str, c)) for c in a.large_communities],
        "originator_id": str(ipaddress.IPv4Address(a.originator_id))
        if a.originator_id is not None
        else None,
        "cluster_list": [str(ipaddress.IPv4Address(c)) for c in a.cluster_list],
    }


def describe_many(
    items: Iterable[tuple[RouteKey, Decision]], names: dict[str, str]
) -> list[dict[str, object]]:
    """`describe` for many prefixes: prefixes sharing one Decision object (one UPDATE's worth,
    from the table's hot path) share the attribute part, built once; each row is its own dict."""
    shared: dict[tuple[int, Family], tuple[Decision, dict[str, object]]] = {}
    rows = []
    for key, decision in items:
        if decision.best is None:
            continue
        hit = shared.get((id(decision), key[0]))
        if hit is None:
            # The Decision is kept in the value so that its id is not reused meanwhile.
            hit = shared[(id(decision), key[0])] = (
                decision,
                _describe_path(key, decision, names),
            )
        rows.append({"prefix": format_prefix(key[1], key[0][0]), **hit[1]})
    return rows
