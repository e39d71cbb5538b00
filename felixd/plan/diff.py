"""The differ: (desired, observed) → the smallest ordered batch of kernel operations.

calico.md §4.3: felixd keeps what is right, fixes what is wrong, removes what is stale, and only
ever within what it owns (`Ownership` in model.py). A foreign entry that occupies the kernel key
a desired entry needs (same table, prefix and metric; or a link of the same name that felixd did
not make) is left alone and the desired entry is reported as blocked rather than forced in, so
felixd never clobbers another writer. Desired entries on an interface that does not exist yet
(a veth the CNI plugin has not made, tunl0 on a kernel without ipip) are blocked the same way
and retried at the next resync.

Order, fixed so that every step finds what it depends on: deletes first (nft tables, routes,
neighbours, FDB entries, then links), then creates and changes (the VXLAN device before anything
on it, sysctls, FDB, neighbours, routes, nft tables). Inside a group, entries are sorted by key,
so the same inputs always give the same batch.

Invariants (the hypothesis tests check them): applying the batch to a kernel that matches
`observed` yields exactly the programmable part of `desired` in every owned entry and leaves every
foreign entry as it was; diffing again then gives no operation; nothing that already matches is
touched (a restart of felixd changes nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from felixd.plan.addresses import network_sort_key
from felixd.plan.model import (
    DesiredDataplane,
    FdbKey,
    NeighbourKey,
    ObservedState,
    Ownership,
    Problem,
    Route,
    RouteKey,
    Touched,
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


@dataclass(frozen=True, slots=True)
class Diff:
    ops: tuple[Op, ...]
    blocked: tuple[Problem, ...]


def diff(desired: DesiredDataplane, observed: ObservedState) -> list[Op]:
    """The ordered batch that takes the owned part of `observed` to `desired`."""
    return list(compare(desired, observed).ops)


def blocked(desired: DesiredDataplane, observed: ObservedState) -> list[Problem]:
    """Desired entries the batch cannot program now, and why."""
    return list(compare(desired, observed).blocked)


def _route_order(key: RouteKey) -> tuple[int, tuple[int, int, int, str], int]:
    table, dst, metric = key
    return (table, network_sort_key(dst), metric)


@dataclass(slots=True)
class _Batch:
    """The batch under construction, in its groups (the module docstring gives their order)."""

    owner: Ownership
    blocked: list[Problem] = field(default_factory=list)
    nft_deletes: list[Op] = field(default_factory=list)
    route_deletes: list[Op] = field(default_factory=list)
    neigh_deletes: list[Op] = field(default_factory=list)
    fdb_deletes: list[Op] = field(default_factory=list)
    link_deletes: list[Op] = field(default_factory=list)
    creates: list[Op] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)  # links this batch deletes
    live: frozenset[str] = frozenset()  # links that exist once the link ops ran

    def block(self, kind: str, name: str, reason: str) -> None:
        self.blocked.append(Problem(kind, name, reason))

    def result(self) -> Diff:
        ops = [
            *self.nft_deletes,
            *self.route_deletes,
            *self.neigh_deletes,
            *self.fdb_deletes,
            *self.link_deletes,
            *self.creates,
        ]
        return Diff(tuple(ops), tuple(sorted(self.blocked)))


def compare(desired: DesiredDataplane, observed: ObservedState) -> Diff:
    """The batch and the blocked entries; `diff` and `blocked` are its two halves."""
    batch = _Batch(desired.owner)
    _links(batch, desired, observed)
    _tunnels(batch, desired, observed)
    _sysctls(batch, desired, observed)
    _fdb(batch, desired, observed)
    _neighbours(batch, desired, observed)
    _routes(batch, desired, observed)
    _nft_tables(batch, desired, observed)
    return batch.result()


def compare_touched(desired: DesiredDataplane, observed: ObservedState, touched: Touched) -> Diff:
    """`compare` restricted to the keys an incremental plan touched (felixd/plan/incremental.py):
    the same operations, in the same order, as `compare` gives when `observed` already matched
    the previous plan, at a cost that does not grow with the size of the dataplane. Links and
    devices, nft tables and the pod MTU only change in a full plan, so they are not looked at;
    `blocked` names the touched entries only."""
    batch = _Batch(desired.owner)
    owner = batch.owner
    batch.live = observed.links
    for path in sorted(touched.sysctls):
        value = desired.sysctls.get(path)
        if value is None:
            continue  # sysctls are only ever set
        if sysctl_interface(path) not in batch.live:
            batch.block("Sysctl", path, "interface is missing")
        elif observed.sysctls.get(path) != value:
            batch.creates.append(SetSysctl(path, value))
    for fkey in sorted(touched.fdb):
        want_fdb, have_fdb = desired.fdb.get(fkey), observed.fdb.get(fkey)
        placed = False
        if want_fdb is not None:
            name = f"{want_fdb.mac} on {want_fdb.dev}"
            if not owner.owns_fdb(want_fdb):
                batch.block("FDB", name, "interface is not felixd's")
            elif want_fdb.dev not in batch.live:
                batch.block("FDB", name, "interface is missing")
            else:
                placed = True
                if have_fdb is None:
                    batch.creates.append(AddFdb(want_fdb))
                elif have_fdb != want_fdb:
                    batch.creates.append(ReplaceFdb(want_fdb))
        if not placed and have_fdb is not None and owner.owns_fdb(have_fdb):
            batch.fdb_deletes.append(DeleteFdb(have_fdb))
    for nkey in sorted(touched.neighbours):
        want_n, have_n = desired.neighbours.get(nkey), observed.neighbours.get(nkey)
        placed = False
        if want_n is not None:
            name = f"{want_n.address} on {want_n.dev}"
            if not owner.owns_interface(want_n.dev):
                batch.block("Neighbour", name, "interface is not felixd's")
            elif want_n.dev not in batch.live:
                batch.block("Neighbour", name, "interface is missing")
            else:
                placed = True
                if have_n is None:
                    batch.creates.append(AddNeighbour(want_n))
                elif have_n != want_n:
                    batch.creates.append(ReplaceNeighbour(want_n))
        if not placed and have_n is not None and owner.owns_neighbour(have_n):
            batch.neigh_deletes.append(DeleteNeighbour(have_n))
    for rkey in sorted(touched.routes, key=_route_order):
        want, now = desired.routes.get(rkey), observed.routes.get(rkey)
        if want is not None:
            if now is want or now == want:
                continue
            if now is not None and not owner.owns_route(now):
                how = f"proto {now.protocol}" + (f" dev {now.dev}" if now.dev else "")
                batch.block("Route", want.dst, f"a foreign route ({how}) holds its key")
                continue
            missing = _missing_devices(want, batch.live)
            if not missing:
                batch.creates.append(AddRoute(want) if now is None else ReplaceRoute(want))
                continue
            batch.block("Route", want.dst, f"interface {missing[0]} is missing")
        if now is not None and owner.owns_route(now):
            batch.route_deletes.append(DeleteRoute(now))
    return batch.result()


def _links(batch: _Batch, desired: DesiredDataplane, observed: ObservedState) -> None:
    # A deleted link takes everything on it along (the kernel flushes its routes, neighbours
    # and FDB), so nothing on it needs deleting, and a re-created link needs everything re-added.
    created: set[str] = set()
    names = (set(desired.devices) | set(observed.devices) | observed.links) & batch.owner.devices
    for name in sorted(names):
        want = desired.devices.get(name)
        have = observed.devices.get(name)
        if want is not None and want.parent not in observed.links:
            # Leave whatever is there as it is until the parent NIC (re)appears.
            batch.block("Link", name, f"parent interface {want.parent} is missing")
            continue
        if want is None:
            if name in observed.links:
                batch.link_deletes.append(DeleteLink(name))
                batch.deleted.add(name)
        elif have is None or not have.same_identity(want):
            # Absent, not a VXLAN link, or a VNI/port/local/parent that only creation can set.
            if name in observed.links:
                batch.link_deletes.append(DeleteLink(name))
                batch.deleted.add(name)
            batch.creates.append(AddVxlanDevice(want))
            created.add(name)
        elif have != want:
            batch.creates.append(SetVxlanDevice(want))
    batch.live = frozenset((observed.links - batch.deleted) | created)


def _tunnels(batch: _Batch, desired: DesiredDataplane, observed: ObservedState) -> None:
    # tunl0 exists exactly when the kernel has the ipip module (the module makes it in every
    # namespace): without it, the device and every route via it are blocked, not failed.
    for name in sorted(desired.tunnels):
        want = desired.tunnels[name]
        if name not in batch.live:
            batch.block("Link", name, "interface is missing (no ipip module in this kernel?)")
        elif observed.tunnels.get(name) != want:
            batch.creates.append(SetIpipDevice(want))


def _sysctls(batch: _Batch, desired: DesiredDataplane, observed: ObservedState) -> None:
    # Only ever set: an interface's sysctls disappear with the interface.
    for path in sorted(desired.sysctls):
        value = desired.sysctls[path]
        if sysctl_interface(path) not in batch.live:
            batch.block("Sysctl", path, "interface is missing")
        elif observed.sysctls.get(path) != value:
            batch.creates.append(SetSysctl(path, value))


def _fdb(batch: _Batch, desired: DesiredDataplane, observed: ObservedState) -> None:
    have = {k: e for k, e in observed.fdb.items() if e.dev not in batch.deleted}
    placed: set[FdbKey] = set()
    for key in sorted(desired.fdb):
        want = desired.fdb[key]
        name = f"{want.mac} on {want.dev}"
        if not batch.owner.owns_fdb(want):
            batch.block("FDB", name, "interface is not felixd's")
        elif want.dev not in batch.live:
            batch.block("FDB", name, "interface is missing")
        else:
            placed.add(key)
            now = have.get(key)
            if now is None:
                batch.creates.append(AddFdb(want))
            elif now != want:
                batch.creates.append(ReplaceFdb(want))
    batch.fdb_deletes = [
        DeleteFdb(have[k])
        for k in sorted(have)
        if k not in placed and batch.owner.owns_fdb(have[k])
    ]


def _neighbours(batch: _Batch, desired: DesiredDataplane, observed: ObservedState) -> None:
    # Non-permanent entries are the kernel's ARP cache: overwritten where we want one, and
    # otherwise never deleted (Ownership.owns_neighbour).
    have = {k: n for k, n in observed.neighbours.items() if n.dev not in batch.deleted}
    placed: set[NeighbourKey] = set()
    for key in sorted(desired.neighbours):
        want = desired.neighbours[key]
        name = f"{want.address} on {want.dev}"
        if not batch.owner.owns_interface(want.dev):
            batch.block("Neighbour", name, "interface is not felixd's")
        elif want.dev not in batch.live:
            batch.block("Neighbour", name, "interface is missing")
        else:
            placed.add(key)
            now = have.get(key)
            if now is None:
                batch.creates.append(AddNeighbour(want))
            elif now != want:
                batch.creates.append(ReplaceNeighbour(want))
    batch.neigh_deletes = [
        DeleteNeighbour(have[k])
        for k in sorted(have)
        if k not in placed and batch.owner.owns_neighbour(have[k])
    ]


def _routes(batch: _Batch, desired: DesiredDataplane, observed: ObservedState) -> None:
    # The hot path (tens of thousands on a big cluster, nearly all already right): walk
    # unsorted, and sort only what produces an operation.
    owner, live = batch.owner, batch.live
    have = observed.routes
    if batch.deleted:
        have = {k: r for k, r in have.items() if not (r.devices & batch.deleted)}
    creates: list[tuple[RouteKey, Op]] = []
    unplaced: set[RouteKey] = set()  # desired but not programmable now
    for key, want in desired.routes.items():
        now = have.get(key)
        if now is want or now == want:
            continue
        if now is not None and not owner.owns_route(now):
            how = f"proto {now.protocol}" + (f" dev {now.dev}" if now.dev else "")
            batch.block("Route", want.dst, f"a foreign route ({how}) holds its key")
            unplaced.add(key)
            continue
        missing = _missing_devices(want, live)
        if missing:
            batch.block("Route", want.dst, f"interface {missing[0]} is missing")
            unplaced.add(key)
            continue
        creates.append((key, AddRoute(want) if now is None else ReplaceRoute(want)))
    creates.sort(key=lambda c: _route_order(c[0]))
    batch.creates.extend(op for _, op in creates)
    stale = [
        k
        for k, r in have.items()
        if (k not in desired.routes or k in unplaced) and owner.owns_route(r)
    ]
    batch.route_deletes = [DeleteRoute(have[k]) for k in sorted(stale, key=_route_order)]


def _missing_devices(route: Route, live: frozenset[str]) -> list[str]:
    """The route's interfaces that do not exist, sorted (the hot path: most routes have one
    device or none, and building `route.devices` for each would cost more than the check)."""
    if route.nexthops:
        return sorted(route.devices - live)
    if route.dev is not None and route.dev not in live:
        return [route.dev]
    return []


def _nft_tables(batch: _Batch, desired: DesiredDataplane, observed: ObservedState) -> None:
    # Each table is replaced whole, in one nftables transaction.
    for key in sorted(set(desired.nft_tables) | set(observed.nft_tables)):
        want = desired.nft_tables.get(key)
        if not batch.owner.owns_nft_table(*key):
            if want is not None:
                batch.block("NftTable", " ".join(key), "table is not felixd's")
            continue
        now = observed.nft_tables.get(key)
        if want is None:
            batch.nft_deletes.append(DeleteNftTable(*key))
        elif now is None:
            batch.creates.append(AddNftTable(want))
        elif now != want:
            batch.creates.append(ReplaceNftTable(want))
