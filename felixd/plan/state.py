"""PlannerState: the planner's inputs, fed as snapshot + deltas.

The daemon lists each store prefix, then follows its watch; bgpd sends a best-path snapshot, then
a stream of changes. Both map onto three operations per input kind: `snapshot(kind, items)`
replaces everything of that kind, `set(item)` adds or replaces one, `delete(kind, key)` removes
one (a missing key is not an error: watch deletes and bgpd withdraws may repeat).

Invariants: one owner mutates a PlannerState (the daemon's planner task, STYLE.md rule 2);
`revision` grows by one on every call that changed something, so the shell can skip planning
when nothing moved. Every change is also logged by (kind, key) until `take_changes()` drains the
log: the incremental planner recomputes only what those keys feed (felixd/plan/incremental.py). Keys (`item.key`): nodes, pools, endpoints and host interfaces by name,
blocks by CIDR, best paths by prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from itertools import compress
from typing import Generic, TypeVar, cast

from felixd.plan.inputs import (
    BestPath,
    Block,
    FelixConfig,
    HostInterface,
    Input,
    NodeInfo,
    Pool,
    WorkloadEndpoint,
)
from felixd.plan.model import FdbEntry, Neighbour, Problem, Route

InputKind = (
    type[NodeInfo]
    | type[Pool]
    | type[Block]
    | type[WorkloadEndpoint]
    | type[BestPath]
    | type[HostInterface]
)

KINDS: tuple[InputKind, ...] = (NodeInfo, Pool, Block, WorkloadEndpoint, BestPath, HostInterface)


T = TypeVar("T")

# What the planner derives from one block: its route, and for VXLAN the VTEP's neighbour and
# FDB entries.
BlockPlan = tuple[Route | None, Neighbour | None, FdbEntry | None]


@dataclass(slots=True)
class Memo(Generic[T]):
    """Results the planner may reuse while `context` is unchanged (a cache, never an input:
    dropping it changes no plan)."""

    context: object = None
    results: dict[str, T] = field(default_factory=dict)
    # The keys in planning order, re-sorted only when the set of keys changes.
    order: list[str] = field(default_factory=list)
    order_keys: set[str] = field(default_factory=set)

    def ordered(
        self, keys: Mapping[str, object], sort_key: Callable[[str], tuple[int, int, int, str]]
    ) -> list[str]:
        if self.order_keys != keys.keys():  # a C-speed set comparison, no sort
            self.order = sorted(keys, key=sort_key)
            self.order_keys = set(keys)
        return self.order


@dataclass(slots=True)
class Changes:
    """What changed since the last `take_changes()`: keys per input kind, and whether the
    configuration changed."""

    keys: dict[InputKind, set[str]] = field(default_factory=lambda: {k: set() for k in KINDS})
    config: bool = False

    def count(self) -> int:
        return sum(len(v) for v in self.keys.values()) + int(self.config)


class PlannerState:
    def __init__(self, node_name: str, config: FelixConfig | None = None) -> None:
        self.node_name = node_name
        self.config = config if config is not None else FelixConfig()
        self.revision = 0
        self._tables: dict[type, dict[str, Input]] = {kind: {} for kind in KINDS}
        self._changes = Changes()
        # Per kind, the table's items by object id (for `snapshot`'s identity comparison).
        self._ids: dict[type, dict[int, Input]] = {kind: {} for kind in KINDS}
        self.best_path_memo: Memo[tuple[BestPath, Route | None, tuple[Problem, ...]]] = Memo()
        self.block_memo: Memo[tuple[Block, NodeInfo | None, BlockPlan, tuple[Problem, ...]]] = (
            Memo()
        )

    @property
    def nodes(self) -> Mapping[str, NodeInfo]:
        return cast("Mapping[str, NodeInfo]", self._tables[NodeInfo])

    @property
    def pools(self) -> Mapping[str, Pool]:
        return cast("Mapping[str, Pool]", self._tables[Pool])

    @property
    def blocks(self) -> Mapping[str, Block]:
        return cast("Mapping[str, Block]", self._tables[Block])

    @property
    def endpoints(self) -> Mapping[str, WorkloadEndpoint]:
        return cast("Mapping[str, WorkloadEndpoint]", self._tables[WorkloadEndpoint])

    @property
    def best_paths(self) -> Mapping[str, BestPath]:
        return cast("Mapping[str, BestPath]", self._tables[BestPath])

    @property
    def host_interfaces(self) -> Mapping[str, HostInterface]:
        return cast("Mapping[str, HostInterface]", self._tables[HostInterface])

    def items(self, kind: InputKind) -> list[Input]:
        """Every input of one kind (what a snapshot of that kind would hold)."""
        return list(self._tables[kind].values())

    def set(self, item: Input) -> bool:
        """Add or replace one input; returns whether anything changed."""
        table = self._tables[type(item)]
        old = table.get(item.key)
        if old == item:
            return False
        ids = self._ids[type(item)]
        if old is not None:
            ids.pop(id(old), None)
        ids[id(item)] = item
        table[item.key] = item
        self._changes.keys[type(item)].add(item.key)
        self.revision += 1
        return True

    def delete(self, kind: InputKind, key: str) -> bool:
        """Remove one input by key; returns whether it was there."""
        old = self._tables[kind].pop(key, None)
        if old is None:
            return False
        self._ids[kind].pop(id(old), None)
        self._changes.keys[kind].add(key)
        self.revision += 1
        return True

    def snapshot(self, kind: InputKind, items: Iterable[Input]) -> bool:
        """Replace every input of `kind` (a fresh list after a compacted watch, or bgpd's
        snapshot after a reconnect); returns whether anything changed."""
        listed = list(items)
        quick = self._snapshot_by_identity(kind, listed)
        if quick is not None:
            return quick
        fresh: dict[str, Input] = {}
        for item in listed:
            if type(item) is not kind:
                raise TypeError(f"snapshot of {kind.__name__} got {type(item).__name__}")
            fresh[item.key] = item
        table = self._tables[kind]
        if table == fresh:
            return False
        changed = self._changes.keys[kind]
        changed.update(k for k, v in table.items() if fresh.get(k) != v)
        changed.update(k for k in fresh if k not in table)
        table.clear()
        table.update(fresh)
        self._ids[kind] = {id(v): v for v in fresh.values()}
        self.revision += 1
        return True

    def _snapshot_by_identity(self, kind: InputKind, listed: list[Input]) -> bool | None:
        """The daemon hands back the very objects it handed before for what did not change (the
        store adapter memoises them), so compare object identities at C speed and compute keys
        only for the objects that differ: a snapshot of 10,000 blocks with one changed costs
        set operations, not 10,000 key lookups. None when this shortcut does not apply (an
        object listed twice, two new objects with one key, a new key still held by an object
        that stays, or most of the table changed): the caller does the full comparison."""
        table = self._tables[kind]
        ids = list(map(id, listed))
        theirs = set(ids)
        if len(theirs) != len(ids):
            return None
        mine = self._ids[kind]
        added, removed = theirs - mine.keys(), mine.keys() - theirs
        if len(added) + len(removed) > max(16, len(listed) // 4):
            return None
        new = list(compress(listed, map(added.__contains__, ids)))
        if any(type(item) is not kind for item in new):
            return None  # the full path raises the TypeError
        new_by_key = {item.key: item for item in new}
        old_by_key = {item.key: item for item in (mine[i] for i in removed)}
        if len(new_by_key) != len(new):
            return None
        if any(key in table and key not in old_by_key for key in new_by_key):
            return None
        changed = {
            key
            for key in new_by_key.keys() | old_by_key.keys()
            if new_by_key.get(key) != old_by_key.get(key)
        }
        for key in old_by_key:
            del table[key]
        table.update(new_by_key)
        for i in removed:
            del mine[i]
        mine.update(zip(map(id, new), new, strict=True))
        if not changed:
            return False
        self._changes.keys[kind].update(changed)
        self.revision += 1
        return True

    def mark_stale(self, prefixes: Iterable[str] | None = None) -> int:
        """Graceful restart (RFC 4724 §4.2): bgpd went away, or says a peer is restarting.
        Its paths (all, or those for `prefixes`) stay installed but are marked stale; returns
        how many were marked."""
        paths = self.best_paths
        chosen = list(paths) if prefixes is None else [p for p in prefixes if p in paths]
        marked = 0
        for prefix in chosen:
            path = paths[prefix]
            if not path.stale:
                self.set(BestPath(path.prefix, path.next_hops, stale=True))
                marked += 1
        return marked

    def sweep_stale(self) -> list[str]:
        """The restart time ran out (RFC 4724 §4.2): remove the paths still stale, i.e. those
        bgpd did not send again; returns their prefixes."""
        gone = sorted(p for p, path in self.best_paths.items() if path.stale)
        for prefix in gone:
            self.delete(BestPath, prefix)
        return gone

    def set_config(self, config: FelixConfig) -> bool:
        if config == self.config:
            return False
        self.config = config
        self._changes.config = True
        self.revision += 1
        return True

    def take_changes(self) -> Changes:
        """The changes logged since the last call, and an empty log from now on."""
        changes, self._changes = self._changes, Changes()
        return changes
