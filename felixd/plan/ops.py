"""Kernel operations: what the differ emits and a backend applies, one netlink message (or one
nftables transaction) each.

Add means "create, fail with EEXIST if the key is taken" (NLM_F_CREATE|NLM_F_EXCL): felixd adds
only where it saw nothing, so a route someone else created in the meantime is not clobbered; the
error sends the daemon into a resync. Replace means NLM_F_CREATE|NLM_F_REPLACE, used only where
the observed entry is felixd's own. Delete removes exactly the entry read from the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

from felixd.plan.model import FdbEntry, IpipDevice, Neighbour, NftTable, Route, VxlanDevice


@dataclass(frozen=True, slots=True)
class AddRoute:
    route: Route


@dataclass(frozen=True, slots=True)
class ReplaceRoute:
    route: Route


@dataclass(frozen=True, slots=True)
class DeleteRoute:
    route: Route


@dataclass(frozen=True, slots=True)
class AddNeighbour:
    neighbour: Neighbour


@dataclass(frozen=True, slots=True)
class ReplaceNeighbour:
    neighbour: Neighbour


@dataclass(frozen=True, slots=True)
class DeleteNeighbour:
    neighbour: Neighbour


@dataclass(frozen=True, slots=True)
class AddFdb:
    entry: FdbEntry


@dataclass(frozen=True, slots=True)
class ReplaceFdb:
    entry: FdbEntry


@dataclass(frozen=True, slots=True)
class DeleteFdb:
    entry: FdbEntry


@dataclass(frozen=True, slots=True)
class AddVxlanDevice:
    device: VxlanDevice


@dataclass(frozen=True, slots=True)
class SetVxlanDevice:
    """Change a VXLAN link's mutable attributes (MAC, MTU, address) in place."""

    device: VxlanDevice


@dataclass(frozen=True, slots=True)
class SetIpipDevice:
    """Bring the IPIP device up with this MTU and exactly this address (felix's
    configureIPIPDevice); the netlink backend's `ensure_ipip` does it, writing only what
    differs."""

    device: IpipDevice


@dataclass(frozen=True, slots=True)
class DeleteLink:
    """Delete a link felixd created; the kernel drops its routes, neighbours and FDB with it."""

    name: str


@dataclass(frozen=True, slots=True)
class SetSysctl:
    path: str  # relative to /proc/sys, '/'-separated
    value: str


@dataclass(frozen=True, slots=True)
class AddNftTable:
    table: NftTable


@dataclass(frozen=True, slots=True)
class ReplaceNftTable:
    """Delete and re-add the table in one nftables transaction."""

    table: NftTable


@dataclass(frozen=True, slots=True)
class DeleteNftTable:
    family: str
    name: str


Op = (
    AddRoute
    | ReplaceRoute
    | DeleteRoute
    | AddNeighbour
    | ReplaceNeighbour
    | DeleteNeighbour
    | AddFdb
    | ReplaceFdb
    | DeleteFdb
    | AddVxlanDevice
    | SetVxlanDevice
    | SetIpipDevice
    | DeleteLink
    | SetSysctl
    | AddNftTable
    | ReplaceNftTable
    | DeleteNftTable
)
