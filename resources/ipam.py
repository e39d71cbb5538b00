"""IPAM objects (calico.md §1.12): IPAMBlock, BlockAffinity, IPAMHandle, IPAMConfig.

Field names are those of Calico's etcd values (`model.AllocationBlock`, `AllocationAttribute`
with `handle_id`/`secondary`), so the spec of an IPAMBlock is exactly the JSON stored at
`/calico/ipam/v2/assignment/ipv4/block/<cidr>`. Invariants after `finish_*`: a block has one
`allocations` slot per address; every allocated slot indexes an existing attribute; the
`unallocated` FIFO holds distinct in-range ordinals that are not allocated; IPAMConfig refuses
maxBlocksPerHost without strictAffinity and strictAffinity=false with autoAllocateBlocks=false.
"""

from __future__ import annotations

from dataclasses import dataclass

from resources.errors import ResourceError
from resources.schema import (
    BOOL,
    NONEMPTY,
    STRICT_CIDR,
    STRING_MAP,
    TIMESTAMP,
    Int,
    IPNetwork,
    ListOf,
    MapOf,
    NullableListOf,
    OneOf,
    Struct,
    checked,
    field,
    opt,
)

AFFINITY_STATES = ("pending", "confirmed", "pendingDeletion")
MAX_BLOCKS_PER_HOST_DEFAULT = 20
_ORDINAL = Int(0, 2**32)


def _affinity(text: str) -> str | None:
    kind, _, name = text.partition(":")
    if kind in ("host", "virtual") and name:
        return None
    return f"must be 'host:<node>' or 'virtual:<name>', not {text!r}"


@dataclass(frozen=True, slots=True)
class AllocationAttribute:
    handle_id: str | None = opt("handle_id", NONEMPTY)
    secondary: dict[str, str] = field("secondary", STRING_MAP, factory=dict)
    alternate_owner_attrs: dict[str, str] = field("alternateOwnerAttrs", STRING_MAP, factory=dict)
    released_at: str | None = opt("releasedAt", NONEMPTY)


@dataclass(frozen=True, slots=True)
class IPAMBlockSpec:
    cidr: IPNetwork = field("cidr", STRICT_CIDR, required=True)
    affinity: str | None = opt("affinity", checked(_affinity))
    affinity_claim_time: str | None = opt("affinityClaimTime", TIMESTAMP)
    strict_affinity: bool = field("strictAffinity", BOOL, False)
    allocations: tuple[int | None, ...] = field("allocations", NullableListOf(_ORDINAL), ())
    unallocated: tuple[int, ...] = field("unallocated", ListOf(_ORDINAL), ())
    attributes: tuple[AllocationAttribute, ...] = field(
        "attributes", ListOf(Struct(AllocationAttribute)), ()
    )
    sequence_number: int = field("sequenceNumber", Int(0, 2**64 - 1), 0)
    sequence_number_for_allocation: dict[str, int] = field(
        "sequenceNumberForAllocation", MapOf(Int(0, 2**64 - 1)), factory=dict
    )
    deleted: bool = field("deleted", BOOL, False)
    # Deprecated in Calico in favour of `affinity: host:<node>`, still found in old datastores.
    host_affinity: str | None = opt("hostAffinity", NONEMPTY)

    @property
    def size(self) -> int:
        return self.cidr.num_addresses

    def host(self) -> str | None:
        """The node this block is affine to, if its affinity is `host:<node>`."""
        if self.affinity and self.affinity.startswith("host:"):
            return self.affinity[len("host:") :]
        return self.host_affinity if self.affinity is None else None


def finish_ipam_block(spec: IPAMBlockSpec) -> IPAMBlockSpec:
    size = spec.cidr.num_addresses
    if size > 1 << 16:
        raise ResourceError("spec.cidr", "blocks larger than /16 (IPv4) or /112 (IPv6) are refused")
    if len(spec.allocations) != size:
        raise ResourceError(
            "spec.allocations",
            f"must have {size} entries (one per address), not {len(spec.allocations)}",
        )
    for ordinal, attr in enumerate(spec.allocations):
        if attr is not None and attr >= len(spec.attributes):
            raise ResourceError(
                f"spec.allocations[{ordinal}]", f"attribute index {attr} does not exist"
            )
    seen: set[int] = set()
    for i, ordinal in enumerate(spec.unallocated):
        if ordinal >= size or ordinal in seen or spec.allocations[ordinal] is not None:
            raise ResourceError(
                f"spec.unallocated[{i}]", f"ordinal {ordinal} is out of range, repeated or in use"
            )
        seen.add(ordinal)
    return spec


def empty_block(cidr: IPNetwork, affinity: str | None, sequence_number: int) -> IPAMBlockSpec:
    """A new block as calico-ipam creates it: all ordinals free, FIFO in address order."""
    size = cidr.num_addresses
    return IPAMBlockSpec(
        cidr=cidr,
        affinity=affinity,
        allocations=(None,) * size,
        unallocated=tuple(range(size)),
        sequence_number=sequence_number,
    )


@dataclass(frozen=True, slots=True)
class BlockAffinitySpec:
    state: str = field("state", OneOf(*AFFINITY_STATES), required=True)
    node: str = field("node", NONEMPTY, required=True)
    cidr: IPNetwork = field("cidr", STRICT_CIDR, required=True)
    type: str = field("type", OneOf("host", "virtual"), "host")
    deleted: bool = field("deleted", BOOL, False)


@dataclass(frozen=True, slots=True)
class IPAMHandleSpec:
    handle_id: str = field("handleID", NONEMPTY, required=True)
    block: dict[str, int] = field("block", MapOf(Int(0, 2**32)), factory=dict)
    deleted: bool = field("deleted", BOOL, False)


def finish_ipam_handle(spec: IPAMHandleSpec) -> IPAMHandleSpec:
    for key in spec.block:
        try:
            STRICT_CIDR.decode(key, f"spec.block.{key}")
        except ResourceError as err:
            raise ResourceError(err.path, "keys must be block CIDRs") from None
    return spec


@dataclass(frozen=True, slots=True)
class IPAMConfigSpec:
    strict_affinity: bool = field("strictAffinity", BOOL, False, omitempty=False)
    auto_allocate_blocks: bool = field("autoAllocateBlocks", BOOL, True, omitempty=False)
    max_blocks_per_host: int = field("maxBlocksPerHost", Int(0, 2**31 - 1), 0)

    def block_cap(self) -> int:
        """0 means Calico's cap of 20 blocks per host (`ipam.go` L735–752)."""
        return self.max_blocks_per_host or MAX_BLOCKS_PER_HOST_DEFAULT


def finish_ipam_config(spec: IPAMConfigSpec) -> IPAMConfigSpec:
    if spec.max_blocks_per_host > 0 and not spec.strict_affinity:
        raise ResourceError("spec.maxBlocksPerHost", "requires strictAffinity: true")
    if not spec.strict_affinity and not spec.auto_allocate_blocks:
        raise ResourceError(
            "spec.autoAllocateBlocks", "cannot be false while strictAffinity is false"
        )
    return spec
