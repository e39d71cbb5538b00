"""felixd's view of the kernel between full resyncs, and the incremental sync against it.

A module of its own because it is the one piece of the daemon that holds kernel state: a
change costs plan + diff + apply against this copy, not a dump of every route, and whatever
the kernel does on its own (a link gone, set down, made again: link_events.py) is mirrored
into the copy here so that the next diff stays right without reading the kernel. Invariant:
the copy is what the kernel held after the last batch it acknowledged in full; any doubt
(an error, the refresh timer) drops it and the next read goes to the kernel.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from felixd.backends.base import DataplaneBackend, OpResult
from felixd.backends.recording import RecordingKernel
from felixd.backends.sync import SyncReport
from felixd.plan import DesiredDataplane, ObservedState, Op
from felixd.plan.diff import compare_touched
from felixd.plan.links import LinkChange
from felixd.plan.model import Route, Touched, sysctl_interface


def _on_link(route: Route, name: str) -> bool:
    return route.dev == name or any(hop.dev == name for hop in route.nexthops)


@dataclasses.dataclass(slots=True)
class _Keys:
    routes: set[tuple[int, str, int]] = dataclasses.field(default_factory=set)
    neighbours: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    sysctls: set[str] = dataclasses.field(default_factory=set)
    whole: bool = False  # a device of felixd's changed: diff everything against the view


class CachedKernel:
    """The kernel view between full resyncs: after a batch the kernel acknowledged in full, the
    same operations are applied to an in-memory copy (`RecordingKernel` answers as Linux does),
    so a change costs plan + diff + apply, not a dump of every route. Any error, a link event
    or the refresh timer drops the copy and the next read goes to the kernel."""

    def __init__(self, backend: DataplaneBackend, down: set[str] | None = None) -> None:
        self.backend = backend
        self.copy: RecordingKernel | None = None
        # Workload interfaces that exist but are down: shown as missing, since the kernel
        # refuses routes on them (ENETDOWN) and would only be asked again and again.
        self.down = down if down is not None else set()

    def invalidate(self) -> None:
        self.copy = None

    def read(self) -> ObservedState:
        if self.copy is None:
            self.copy = RecordingKernel.from_state(self.backend.read())
        state = self.copy.read()
        if self.down & state.links:
            state = dataclasses.replace(state, links=state.links - self.down)
        return state

    def device_changed(self, change: LinkChange, name: str, keys: _Keys) -> bool:
        """Mirror felixd's own device (vxlan.calico) appearing or going: deleted, it took its
        routes, neighbours and FDB entries along; appeared without felixd making it, its
        settings are unknown, so the differ makes it again. Either way the next diff looks at
        everything (against the view: the kernel is not read)."""
        copy = self.copy
        if copy is None:
            return False
        if change is LinkChange.GONE:
            copy.remove_link(name)
            keys.whole = True
        elif change is LinkChange.NEW and name not in copy.links:
            copy.links.add(name)
            copy.devices.pop(name, None)
            keys.whole = True
        return True

    def link_changed(self, change: LinkChange, name: str, keys: _Keys) -> bool:
        """Mirror in the cached copy what the kernel did to one workload interface's entries,
        adding the keys it dropped to `keys`; False when there is no copy (a full read comes)."""
        copy = self.copy
        if copy is None:
            return False
        if change is LinkChange.UP:
            return True  # nothing was flushed; the entries felixd held back follow now
        gone = [k for k, r in copy.routes.items() if _on_link(r, name)]
        for key in gone:
            del copy.routes[key]
        keys.routes.update(gone)
        dropped = [k for k, n in copy.neighbours.items() if n.dev == name]
        for nkey in dropped:
            del copy.neighbours[nkey]
        keys.neighbours.update(dropped)
        if change is LinkChange.DOWN:
            return True  # routes and neighbours go; sysctls stay
        stale = [p for p in copy.sysctls if sysctl_interface(p) == name]
        for path in stale:
            del copy.sysctls[path]  # a new interface has the kernel's defaults
        keys.sysctls.update(stale)
        if change is LinkChange.GONE:
            copy.links.discard(name)
            copy.devices.pop(name, None)
        else:
            copy.links.add(name)
        return True

    def view(self) -> ObservedState | None:
        """The cached kernel itself, not a copy (for one diff in the worker thread), or None
        when it must be read again."""
        copy = self.copy
        if copy is None:
            return None
        return ObservedState(
            routes=copy.routes,
            neighbours=copy.neighbours,
            fdb=copy.fdb,
            links=frozenset(copy.links - self.down),
            devices=copy.devices,
            sysctls=copy.sysctls,
            nft_tables=copy.nft_tables,
            tunnels=copy.tunnels,
        )

    def apply(self, ops: Sequence[Op]) -> list[OpResult]:
        results = self.backend.apply(ops)
        if self.copy is not None and all(r.ok for r in results):
            self.copy.apply(ops)
        else:
            self.copy = None
        return results


def sync_touched(
    desired: DesiredDataplane, touched: Touched, kernel: CachedKernel
) -> SyncReport | None:
    """The incremental pass: diff only the touched keys against the cached kernel and apply
    that batch. None when there is no cached kernel (the caller runs a full `sync`); after a
    failed operation the cache is gone, and the caller runs a full `sync`, which reads the
    kernel again (calico.md §4.3: trust nothing after an error)."""
    view = kernel.view()
    if view is None:
        return None
    found = compare_touched(desired, view, touched)
    if not found.ops:
        return SyncReport(True, 0, 0, (), found.blocked)
    results = kernel.apply(found.ops)
    bad = tuple(r for r in results if not r.ok)
    applied = sum(1 for r in results if r.ok)
    return SyncReport(not bad, 1, applied, bad, found.blocked)
