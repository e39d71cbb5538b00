"""RecordingKernel: an in-memory kernel that implements the backend protocol for tests.

It holds links, felixd's VXLAN devices, routes, neighbours, FDB entries, sysctls and nftables
tables, answers operations with the errors Linux gives (EEXIST for an exclusive add of a taken
key, ENODEV for a missing link, ESRCH/ENOENT for deleting what is not there), flushes
everything on a link when the link goes, and records every operation it applied. Tests pre-load
it with foreign state (another daemon's routes, a BIRD route, someone else's nft table) to prove
the differ leaves them alone.

Invariants: at most one route per (table, dst, metric), like an exclusive IPv4 FIB insert; a
route, neighbour, FDB entry or sysctl exists only on an existing link.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Sequence

from felixd.backends.base import OpResult
from felixd.plan.model import (
    FdbEntry,
    FdbKey,
    IpipDevice,
    Neighbour,
    NeighbourKey,
    NftTable,
    ObservedState,
    Route,
    RouteKey,
    VxlanDevice,
    sysctl_interface,
)
from felixd.plan.ops import (
    AddFdb,
    AddNeighbour,
    AddNftTable,
    AddRoute,
    AddVxlanDevice,
    DeleteFdb,
    DeleteLink,
    DeleteNeighbour,
    DeleteNftTable,
    DeleteRoute,
    Op,
    ReplaceFdb,
    ReplaceNeighbour,
    ReplaceNftTable,
    ReplaceRoute,
    SetIpipDevice,
    SetSysctl,
    SetVxlanDevice,
)


class RecordingKernel:
    def __init__(self, links: Iterable[str] = ("lo",)) -> None:
        self.links: set[str] = set(links)
        self.devices: dict[str, VxlanDevice] = {}
        self.routes: dict[RouteKey, Route] = {}
        self.neighbours: dict[NeighbourKey, Neighbour] = {}
        self.fdb: dict[FdbKey, FdbEntry] = {}
        self.sysctls: dict[str, str] = {}
        self.nft_tables: dict[tuple[str, str], NftTable] = {}
        self.tunnels: dict[str, IpipDevice] = {}
        self.applied: list[Op] = []
        self.batches = 0

    @classmethod
    def from_state(cls, state: ObservedState) -> RecordingKernel:
        kernel = cls(state.links)
        kernel.devices = dict(state.devices)
        kernel.routes = dict(state.routes)
        kernel.neighbours = dict(state.neighbours)
        kernel.fdb = dict(state.fdb)
        kernel.sysctls = dict(state.sysctls)
        kernel.nft_tables = dict(state.nft_tables)
        kernel.tunnels = dict(state.tunnels)
        return kernel

    # -- what tests do to the world --------------------------------------------------------

    def add_link(self, name: str) -> None:
        self.links.add(name)

    def remove_link(self, name: str) -> None:
        """A link disappears (a pod's veth deleted): the kernel flushes everything on it."""
        self.links.discard(name)
        self.devices.pop(name, None)
        self.tunnels.pop(name, None)
        self.routes = {k: r for k, r in self.routes.items() if name not in r.devices}
        self.neighbours = {k: n for k, n in self.neighbours.items() if n.dev != name}
        self.fdb = {k: e for k, e in self.fdb.items() if e.dev != name}
        self.sysctls = {p: v for p, v in self.sysctls.items() if sysctl_interface(p) != name}

    def preload(self, *items: Route | Neighbour | FdbEntry | NftTable) -> None:
        """Install state directly, as another program would (no ownership checks)."""
        for item in items:
            if isinstance(item, Route):
                self.routes[item.key] = item
            elif isinstance(item, Neighbour):
                self.neighbours[item.key] = item
            elif isinstance(item, FdbEntry):
                self.fdb[item.key] = item
            else:
                self.nft_tables[item.key] = item

    # -- the backend protocol --------------------------------------------------------------

    def read(self) -> ObservedState:
        return ObservedState(
            routes=dict(self.routes),
            neighbours=dict(self.neighbours),
            fdb=dict(self.fdb),
            links=frozenset(self.links),
            devices=dict(self.devices),
            sysctls=dict(self.sysctls),
            nft_tables=dict(self.nft_tables),
            tunnels=dict(self.tunnels),
        )

    def apply(self, ops: Sequence[Op]) -> list[OpResult]:
        self.batches += 1
        results = []
        for op in ops:
            error = self._apply(op)
            if error is None:
                self.applied.append(op)
            results.append(OpResult(op, error))
        return results

    def _missing(self, devs: Iterable[str]) -> bool:
        return any(d not in self.links for d in devs)

    def _apply(self, op: Op) -> int | None:
        match op:
            case AddRoute(route) | ReplaceRoute(route):
                if isinstance(op, AddRoute) and route.key in self.routes:
                    return errno.EEXIST
                if self._missing(route.devices):
                    return errno.ENODEV
                self.routes[route.key] = route
            case DeleteRoute(route):
                if route.key not in self.routes:
                    return errno.ESRCH
                del self.routes[route.key]
            case AddNeighbour(neigh) | ReplaceNeighbour(neigh):
                if isinstance(op, AddNeighbour) and neigh.key in self.neighbours:
                    return errno.EEXIST
                if self._missing([neigh.dev]):
                    return errno.ENODEV
                self.neighbours[neigh.key] = neigh
            case DeleteNeighbour(neigh):
                if self.neighbours.pop(neigh.key, None) is None:
                    return errno.ENOENT
            case AddFdb(entry) | ReplaceFdb(entry):
                if isinstance(op, AddFdb) and entry.key in self.fdb:
                    return errno.EEXIST
                if self._missing([entry.dev]):
                    return errno.ENODEV
                self.fdb[entry.key] = entry
            case DeleteFdb(entry):
                if self.fdb.pop(entry.key, None) is None:
                    return errno.ENOENT
            case AddVxlanDevice(device):
                if device.name in self.links:
                    return errno.EEXIST
                if self._missing([device.parent]):
                    return errno.ENODEV
                self.links.add(device.name)
                self.devices[device.name] = device
            case SetVxlanDevice(device):
                have = self.devices.get(device.name)
                if have is None:
                    return errno.ENODEV
                if not have.same_identity(device):
                    return errno.EOPNOTSUPP  # the kernel cannot change a VNI in place
                self.devices[device.name] = device
            case SetIpipDevice(ipip):
                if ipip.name not in self.links:
                    return errno.EOPNOTSUPP  # tunl0 missing: the kernel has no ipip module
                self.tunnels[ipip.name] = ipip
            case DeleteLink(name):
                if name not in self.links:
                    return errno.ENODEV
                self.remove_link(name)
            case SetSysctl(path, value):
                if self._missing([sysctl_interface(path)]):
                    return errno.ENOENT
                self.sysctls[path] = value
            case AddNftTable(table):
                if table.key in self.nft_tables:
                    return errno.EEXIST
                self.nft_tables[table.key] = table
            case ReplaceNftTable(table):
                self.nft_tables[table.key] = table
            case DeleteNftTable(family, name):
                if self.nft_tables.pop((family, name), None) is None:
                    return errno.ENOENT
        return None
