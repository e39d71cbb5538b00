"""IPPool (calico.md §1.1): spec, Calico's defaults and validation, and the pool-overlap rule.

Defaults are those `clientv3/ippool.go` applies on create: blockSize 26 (IPv4) / 122 (IPv6),
ipipMode and vxlanMode Never, nodeSelector `all()`, allowedUses [Workload, Tunnel],
assignmentMode Automatic. Invariants after `finish_ippool`: the CIDR is strictly masked and
outside link-local space, the block fits in the pool, IPIP is IPv4-only and never combined
with VXLAN, and `nodeSelector` parses and does not use `global()`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, replace

from resources.errors import ResourceError
from resources.schema import (
    BOOL,
    SELECTOR,
    STRICT_CIDR,
    Int,
    IPNetwork,
    ListOf,
    OneOf,
    field,
)
from resources.selector import parse_selector

ENCAP_MODES = ("Always", "CrossSubnet", "Never")
ALLOWED_USES = ("Workload", "Tunnel", "LoadBalancer")
DEFAULT_BLOCK_SIZE = {4: 26, 6: 122}
BLOCK_SIZE_RANGE = {4: (20, 32), 6: (116, 128)}
LINK_LOCAL = {4: ipaddress.ip_network("169.254.0.0/16"), 6: ipaddress.ip_network("fe80::/10")}


@dataclass(frozen=True, slots=True)
class IPPoolSpec:
    cidr: IPNetwork = field("cidr", STRICT_CIDR, required=True)
    vxlan_mode: str = field("vxlanMode", OneOf(*ENCAP_MODES), "Never")
    ipip_mode: str = field("ipipMode", OneOf(*ENCAP_MODES), "Never")
    nat_outgoing: bool = field("natOutgoing", BOOL, False)
    disabled: bool = field("disabled", BOOL, False)
    disable_bgp_export: bool = field("disableBGPExport", BOOL, False)
    # 0 only between decoding and `finish_ippool`, which fills in the per-family default.
    block_size: int = field("blockSize", Int(0, 128), 0)
    node_selector: str = field("nodeSelector", SELECTOR, "all()")
    namespace_selector: str = field("namespaceSelector", SELECTOR, "")
    allowed_uses: tuple[str, ...] = field("allowedUses", ListOf(OneOf(*ALLOWED_USES)), ())
    assignment_mode: str = field("assignmentMode", OneOf("Automatic", "Manual"), "Automatic")

    @property
    def ip_version(self) -> int:
        return self.cidr.version

    def encapsulation(self) -> str:
        """`VXLAN`, `IPIP` or `None`: the tunnel the pool's remote routes use (felix rule)."""
        if self.vxlan_mode != "Never":
            return "VXLAN"
        if self.ipip_mode != "Never":
            return "IPIP"
        return "None"


def finish_ippool(spec: IPPoolSpec) -> IPPoolSpec:
    version = spec.cidr.version
    if spec.block_size == 0:
        spec = replace(spec, block_size=DEFAULT_BLOCK_SIZE[version])
    if not spec.node_selector:
        # clientv3 treats an empty selector as "every node" and stores it as such.
        spec = replace(spec, node_selector="all()")
    if not spec.allowed_uses:
        spec = replace(spec, allowed_uses=("Workload", "Tunnel"))
    if spec.cidr.overlaps(LINK_LOCAL[version]):
        raise ResourceError(
            "spec.cidr", f"must not overlap the link-local range {LINK_LOCAL[version]}"
        )
    low, high = BLOCK_SIZE_RANGE[version]
    if not low <= spec.block_size <= high:
        raise ResourceError(
            "spec.blockSize", f"must be between {low} and {high} for an IPv{version} pool"
        )
    if not spec.disabled and spec.block_size < spec.cidr.prefixlen:
        raise ResourceError(
            "spec.blockSize",
            f"block /{spec.block_size} is larger than the pool /{spec.cidr.prefixlen}",
        )
    if version == 6 and spec.ipip_mode != "Never":
        raise ResourceError("spec.ipipMode", "IPIP is not supported on IPv6 pools")
    if spec.ipip_mode != "Never" and spec.vxlan_mode != "Never":
        raise ResourceError("spec.vxlanMode", "ipipMode and vxlanMode cannot both be enabled")
    if parse_selector(spec.node_selector).uses_global():
        raise ResourceError("spec.nodeSelector", "global() is not allowed in an IPPool selector")
    if "LoadBalancer" in spec.allowed_uses:
        if len(spec.allowed_uses) > 1:
            raise ResourceError(
                "spec.allowedUses", "LoadBalancer cannot be combined with Workload or Tunnel"
            )
        if spec.encapsulation() != "None":
            raise ResourceError("spec.allowedUses", "a LoadBalancer pool cannot use IPIP or VXLAN")
    if len(set(spec.allowed_uses)) != len(spec.allowed_uses):
        raise ResourceError("spec.allowedUses", "must not repeat a value")
    return spec


def check_pool_overlaps(pools: Iterable[tuple[str, IPPoolSpec]]) -> None:
    """Calico refuses a pool whose CIDR overlaps another pool's (`clientv3/ippool.go` L469).

    `pools` are (name, spec) pairs; the first overlapping pair raises a ResourceError naming
    both pools at `spec.cidr`.
    """
    seen: list[tuple[str, IPPoolSpec]] = []
    for name, spec in sorted(pools, key=lambda p: (p[1].cidr.version, p[1].cidr, p[0])):
        for other_name, other in seen:
            if other_name != name and other.cidr.overlaps(spec.cidr):
                raise ResourceError(
                    "spec.cidr",
                    f"IPPool({name}) CIDR {spec.cidr} overlaps with IPPool({other_name}) "
                    f"CIDR {other.cidr}",
                )
        seen.append((name, spec))


def pool_for(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, pools: Iterable[IPPoolSpec]
) -> IPPoolSpec | None:
    """The pool containing `address`, if any (pools never overlap)."""
    for pool in pools:
        if pool.cidr.version == address.version and address in pool.cidr:
            return pool
    return None
