"""IPPool validation (calico.md §1.1) and the pool facts the planner uses.

A pool is refused, and named in the status, when its CIDR is malformed or not strictly masked,
when it overlaps link-local space, when both ipipMode and vxlanMode are on, when it asks for IPIP
on IPv6 ("IPIP is not supported on IPv6 pools"), or VXLAN on IPv6 (not implemented in Tabby yet),
or when it overlaps a pool already accepted. Pools are considered in name order, so the
survivor of an overlap does not depend on the order of watch events.

Invariant: the accepted pools are pairwise disjoint, so every prefix lies in at most one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from felixd.plan.addresses import IPNetwork, Prefix, parse_network, prefix_of
from felixd.plan.inputs import EncapMode, Pool
from felixd.plan.model import Problem

_LINK_LOCAL = {
    4: ipaddress.ip_network("169.254.0.0/16"),
    6: ipaddress.ip_network("fe80::/10"),
}


@dataclass(frozen=True, slots=True)
class ValidPool:
    name: str
    net: IPNetwork
    prefix: Prefix
    encap: str  # "vxlan" | "ipip" | "none"
    cross_subnet: bool
    nat_outgoing: bool
    disabled: bool


def _refusal(pool: Pool, net: IPNetwork, accepted: list[ValidPool]) -> str | None:
    if pool.ipip_mode is not EncapMode.NEVER and pool.vxlan_mode is not EncapMode.NEVER:
        return "ipipMode and vxlanMode cannot both be enabled"
    if net.version == 6 and pool.ipip_mode is not EncapMode.NEVER:
        return "IPIP is not supported on IPv6 pools"
    if net.version == 6 and pool.vxlan_mode is not EncapMode.NEVER:
        return "VXLAN on IPv6 pools is not supported by tabby yet"
    if net.overlaps(_LINK_LOCAL[net.version]):
        return f"{net} overlaps link-local {_LINK_LOCAL[net.version]}"
    for other in accepted:
        if other.net.version == net.version and other.net.overlaps(net):
            return f"{net} overlaps IP pool {other.name!r} ({other.net})"
    return None


def validate_pools(pools: Iterable[Pool]) -> tuple[list[ValidPool], list[Problem]]:
    accepted: list[ValidPool] = []
    problems: list[Problem] = []
    for pool in sorted(pools, key=lambda p: p.name):
        net = parse_network(pool.cidr)
        if net is None:
            problems.append(Problem("IPPool", pool.name, f"bad CIDR {pool.cidr!r}"))
            continue
        reason = _refusal(pool, net, accepted)
        if reason is not None:
            problems.append(Problem("IPPool", pool.name, reason))
            continue
        mode: EncapMode
        if pool.vxlan_mode is not EncapMode.NEVER:
            encap, mode = "vxlan", pool.vxlan_mode
        elif pool.ipip_mode is not EncapMode.NEVER:
            encap, mode = "ipip", pool.ipip_mode
        else:
            encap, mode = "none", EncapMode.NEVER
        accepted.append(
            ValidPool(
                name=pool.name,
                net=net,
                prefix=prefix_of(net),
                encap=encap,
                cross_subnet=mode is EncapMode.CROSS_SUBNET,
                nat_outgoing=pool.nat_outgoing,
                disabled=pool.disabled,
            )
        )
    return accepted, problems
