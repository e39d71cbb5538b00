"""natOutgoing as one nftables table (calico.md §5.7).

Felix masquerades packets whose source is in a natOutgoing pool and whose destination is in no
pool (`cali-nat-outgoing`: `--match-set masq-ipam-pools src ! --match-set all-ipam-pools dst -j
MASQUERADE`). Tabby renders the same rule into its own `inet` table so the differ can replace
the whole table in one transaction and never touches anyone else's ruleset.

Invariants: interval sets never hold overlapping elements (nft refuses them), so every set is
collapsed; elements are in numeric order; a family gets a rule only if it has a natOutgoing
pool; with no natOutgoing pool at all there is no table.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from felixd.plan.addresses import IPNetwork
from felixd.plan.model import NftChain, NftMatch, NftRule, NftSet, NftTable

# The srcnat hook priority (nft's named priority `srcnat`).
SRCNAT_PRIORITY = 100

_FAMILIES = {4: ("ip", "ipv4_addr", "v4"), 6: ("ip6", "ipv6_addr", "v6")}


def _collapsed(nets: Iterable[IPNetwork], version: int) -> tuple[str, ...]:
    if version == 4:
        v4 = [n for n in nets if isinstance(n, ipaddress.IPv4Network)]
        return tuple(str(n) for n in ipaddress.collapse_addresses(v4))
    v6 = [n for n in nets if isinstance(n, ipaddress.IPv6Network)]
    return tuple(str(n) for n in ipaddress.collapse_addresses(v6))


def nat_table(
    name: str,
    all_pools: Iterable[IPNetwork],
    masq_pools: Iterable[IPNetwork],
    exclusions: Iterable[IPNetwork],
) -> NftTable | None:
    """The natOutgoing table, or None when no pool asks for natOutgoing."""
    pools, masq, excl = list(all_pools), list(masq_pools), list(exclusions)
    sets: list[NftSet] = []
    rules: list[NftRule] = []
    for version, (proto, set_type, suffix) in _FAMILIES.items():
        sources = _collapsed(masq, version)
        if not sources:
            continue
        no_nat = _collapsed([*pools, *excl], version)
        sets.append(NftSet(f"masq-pools-{suffix}", set_type, sources))
        sets.append(NftSet(f"no-nat-dst-{suffix}", set_type, no_nat))
        rules.append(
            NftRule(
                (
                    NftMatch(f"{proto} saddr", "==", f"@masq-pools-{suffix}"),
                    NftMatch(f"{proto} daddr", "!=", f"@no-nat-dst-{suffix}"),
                ),
                "masquerade",
                comment="natOutgoing",
            )
        )
    if not rules:
        return None
    chain = NftChain(
        "postrouting",
        tuple(rules),
        type="nat",
        hook="postrouting",
        priority=SRCNAT_PRIORITY,
        policy="accept",
    )
    return NftTable("inet", name, tuple(sets), (chain,))
