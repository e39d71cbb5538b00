"""Incremental planning: one input delta → only the dataplane entries that input feeds.

A full plan of 10,000 best paths costs tens of milliseconds even with the memo, and so does
diffing all of it; a single best path, block or workload endpoint feeds at most a route, a
neighbour, an FDB entry and a few sysctls. `IncrementalPlanner` keeps the last full `Planner`
with its index of who placed what (`route_src`, reference counts of shared VTEP entries, each
endpoint's `Placed`, the routes of blocks and best paths), and for each key the state logged as
changed it takes that source's entries back and places it again, recording the keys it touched.
The differ then looks at those keys only (`felixd.plan.diff.compare_touched`).

When an update is exact: the full planner places sources in a fixed order (endpoints by name,
blocks by address, then best paths) and the first one to claim a key keeps it. While no source
lost such a clash (`Planner.clashed` is empty), every source's entries are independent of the
order, so redoing one source alone gives what a full plan gives; the only order-dependent
effect that is not a clash, a local block's blackhole hiding the best path for the same prefix,
is tracked explicitly (`Planner.suppressed`). Anything else falls back to a full plan: a
change of nodes, pools, host interfaces or the configuration (they feed everything), a clash
before or after the update, or a burst of changes large enough that a full plan costs the same.
A hypothesis test checks that after every delta of random sequences the update equals a fresh
full plan, and that the touched-keys diff equals the full diff.

Invariants: pure (no asyncio, socket, time or os); `update()` drains the state's change log;
the returned `DesiredDataplane` is a copy, never changed by later updates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from felixd.plan.inputs import BestPath, Block, HostInterface, NodeInfo, Pool, WorkloadEndpoint
from felixd.plan.model import (
    DesiredDataplane,
    FdbKey,
    NeighbourKey,
    Problem,
    RouteKey,
    RouteType,
    Touched,
)
from felixd.plan.planner import Planner, Source
from felixd.plan.state import Changes, PlannerState

GLOBAL_KINDS = (NodeInfo, Pool, HostInterface)
"""Inputs that feed (nearly) every entry: a change of one means a full plan."""

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Update:
    """The new desired dataplane, and what changed in it: `touched` is None after a full plan
    (compare everything)."""

    desired: DesiredDataplane
    touched: Touched | None


@dataclass(slots=True)
class _Touch:
    routes: set[RouteKey] = field(default_factory=set)
    neighbours: set[NeighbourKey] = field(default_factory=set)
    fdb: set[FdbKey] = field(default_factory=set)
    sysctls: set[str] = field(default_factory=set)

    def frozen(self) -> Touched:
        return Touched(
            frozenset(self.routes),
            frozenset(self.neighbours),
            frozenset(self.fdb),
            frozenset(self.sysctls),
        )


def _unref(table: dict[K, V], refs: dict[K, int], key: K, touched: set[K]) -> None:
    """Drop one reference to a shared entry (a node's VTEP neighbour and FDB entry serve all of
    its blocks); the entry goes with the last one."""
    touched.add(key)
    left = refs.get(key, 0) - 1
    if left > 0:
        refs[key] = left
        return
    refs.pop(key, None)
    table.pop(key, None)


class IncrementalPlanner:
    """Plans `state` after each batch of changes, incrementally where that is exact."""

    def __init__(self, state: PlannerState, *, full_fraction: float = 0.25) -> None:
        self.state = state
        # Above this share of all inputs changed at once, one full plan is as cheap.
        self.full_fraction = full_fraction
        self._planner: Planner | None = None
        self._problems: dict[Source, set[Problem]] = {}
        self.full_plans = 0
        self.incremental_plans = 0

    def update(self, *, full: bool = False) -> Update:
        """The desired dataplane for the state as it is now; `full` forces a full plan (the
        periodic resync re-derives everything, as a safety net)."""
        changes = self.state.take_changes()
        p = self._planner
        if full or p is None or not self._incremental(changes, p):
            return self._full()
        touch = _Touch()
        for name in sorted(changes.keys[WorkloadEndpoint]):
            self._redo(p, ("WorkloadEndpoint", name), self._endpoint, touch)
        for cidr in sorted(changes.keys[Block]):
            self._redo(p, ("Block", cidr), self._block, touch)
        for text in sorted(changes.keys[BestPath]):
            self._redo(p, ("BestPath", text), self._path, touch)
        if p.clashed:
            return self._full()  # the update made a clash: the order of placement matters
        self.incremental_plans += 1
        problems = tuple(sorted({x for group in self._problems.values() for x in group}))
        return Update(p.result(problems, copy=True), touch.frozen())

    def interface_keys(self, name: str) -> Touched:
        """The entries planned on one workload interface (for a per-interface resync)."""
        p = self._planner
        endpoint = p.interface_owner.get(name) if p is not None else None
        placed = p.placed.get(endpoint) if p is not None and endpoint is not None else None
        if placed is None:
            return Touched()
        return Touched(
            frozenset(placed.routes),
            frozenset(placed.neighbours),
            frozenset(),
            frozenset(placed.sysctls),
        )

    def endpoint_interfaces(self) -> dict[str, str]:
        """Interface → endpoint name, for the valid endpoints of the last plan."""
        p = self._planner
        return dict(p.interface_owner) if p is not None else {}

    def _incremental(self, changes: Changes, p: Planner) -> bool:
        if changes.config or p.clashed:
            return False
        if any(changes.keys[kind] for kind in GLOBAL_KINDS):
            return False
        total = len(self.state.best_paths) + len(self.state.blocks) + len(self.state.endpoints)
        return changes.count() <= max(64, int(total * self.full_fraction))

    def _full(self) -> Update:
        p = Planner(self.state)
        p.run()
        self._planner = p
        self.full_plans += 1
        self._problems = {}
        for problem in p.problems:
            self._problems.setdefault((problem.kind, problem.name), set()).add(problem)
        problems = tuple(sorted({x for group in self._problems.values() for x in group}))
        return Update(p.result(problems, copy=True), None)

    def _redo(
        self,
        p: Planner,
        source: Source,
        redo: Callable[[Planner, str, _Touch], None],
        touch: _Touch,
    ) -> None:
        """Redo one source with a fresh problem list: its problems replace the old ones."""
        p.problems = []
        redo(p, source[1], touch)
        self._problems.pop(source, None)
        for problem in p.problems:
            self._problems.setdefault((problem.kind, problem.name), set()).add(problem)

    # -- one source each ------------------------------------------------------------------

    def _endpoint(self, p: Planner, name: str, touch: _Touch) -> None:
        old = p.placed.pop(name, None)
        if old is not None:
            for key in old.routes:
                p.routes.pop(key, None)
                p.route_src.pop(key, None)
                touch.routes.add(key)
            for nkey in old.neighbours:
                _unref(p.neighbours, p.neigh_refs, nkey, touch.neighbours)
            for path in old.sysctls:
                p.sysctls.pop(path, None)
                touch.sysctls.add(path)
            for address in old.addresses:
                if p.address_owner.get(address) == name:
                    del p.address_owner[address]
            if p.interface_owner.get(old.interface) == name:
                del p.interface_owner[old.interface]
        ep = self.state.endpoints.get(name)
        if ep is None:
            return
        p.place_endpoint(ep)
        new = p.placed.get(name)
        if new is not None:
            touch.routes.update(new.routes)
            touch.neighbours.update(new.neighbours)
            touch.sysctls.update(new.sysctls)

    def _block(self, p: Planner, cidr: str, touch: _Touch) -> None:
        source = ("Block", cidr)
        old = p.block_plans.pop(cidr, None)
        if old is not None:
            route, neigh, fdb = old
            if route is not None and p.route_src.get(route.key) == source:
                del p.routes[route.key]
                del p.route_src[route.key]
                touch.routes.add(route.key)
                if neigh is not None and fdb is not None:
                    _unref(p.neighbours, p.neigh_refs, neigh.key, touch.neighbours)
                    _unref(p.fdb, p.fdb_refs, fdb.key, touch.fdb)
                if route.type is RouteType.BLACKHOLE:
                    p.local_blocks.discard(route.dst)
                    self._unhide(p, route.dst, touch)
        block = self.state.blocks.get(cidr)
        if block is None:
            self.state.block_memo.results.pop(cidr, None)
            return
        outcome = p.block_outcome(cidr, block)
        route, neigh, fdb = outcome
        if route is None:
            return
        holder = p.route_src.get(route.key)
        if route.type is RouteType.BLACKHOLE and holder is not None and holder[0] == "BestPath":
            # Blocks are placed before best paths: the blackhole takes the key and hides the
            # path, as a full plan would (no clash).
            self._hide(p, holder[1], route.key, touch)
        p.place_block(cidr, outcome)
        if p.route_src.get(route.key) == source:
            touch.routes.add(route.key)
            if neigh is not None and fdb is not None:
                touch.neighbours.add(neigh.key)
                touch.fdb.add(fdb.key)

    def _hide(self, p: Planner, text: str, key: RouteKey, touch: _Touch) -> None:
        route = p.routes.pop(key)
        del p.route_src[key]
        p.stale.discard(route.dst)
        p.suppressed.setdefault(route.dst, []).append(text)
        touch.routes.add(key)

    def _unhide(self, p: Planner, dst: str, touch: _Touch) -> None:
        """A local block went: the best paths its blackhole hid are placed again (a second one
        for the same prefix clashes, which sends the update to a full plan)."""
        for text in p.suppressed.pop(dst, []):
            path, route = self.state.best_paths.get(text), p.path_routes.get(text)
            if path is None or route is None:
                continue  # deleted too: its own redo follows
            p.place_path(text, path, route)
            touch.routes.add(route.key)

    def _path(self, p: Planner, text: str, touch: _Touch) -> None:
        source = ("BestPath", text)
        old = p.path_routes.pop(text, None)
        if old is not None:
            if p.route_src.get(old.key) == source:
                del p.routes[old.key]
                del p.route_src[old.key]
                p.stale.discard(old.dst)
                touch.routes.add(old.key)
            hidden = p.suppressed.get(old.dst)
            if hidden is not None and text in hidden:
                hidden.remove(text)
                if not hidden:
                    del p.suppressed[old.dst]
        path = self.state.best_paths.get(text)
        if path is None:
            self.state.best_path_memo.results.pop(text, None)
            return
        route = p.path_outcome(text, path)
        p.place_path(text, path, route)
        if route is not None and p.route_src.get(route.key) == source:
            touch.routes.add(route.key)
