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

from dataclasses import dataclass

from felixd.plan.addresses import network_sort_key
from felixd.plan.model import (
    DesiredDataplane,
    ObservedState,
    Problem,
    RouteKey,
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


def compare(desired: DesiredDataplane, observed: ObservedState) -> Diff:
    owner = desired.owner
    blocked_: list[Problem] = []
    deletes: list[Op] = []
    link_deletes: list[Op] = []
    creates: list[Op] = []

    # Links felixd creates. A deleted link takes everything on it along (the kernel flushes its
    # routes, neighbours and FDB), so nothing on it needs deleting, and a re-created link needs
    # everything re-added.
    deleted: set[str] = set()
    created: set[str] = set()
    for name in sorted(
        (set(desired.devices) | set(observed.devices) | observed.links) & owner.devices
    ):
        want = desired.devices.get(name)
        have = observed.devices.get(name)
        if want is not None and want.parent not in observed.links:
            # Leave whatever is there as it is until the parent NIC (re)appears.
            blocked_.append(Problem("Link", name, f"parent interface {want.parent} is missing"))
            continue
        if want is None:
            if name in observed.links:
                link_deletes.append(DeleteLink(name))
                deleted.add(name)
        elif have is None or not have.same_identity(want):
            # Absent, not a VXLAN link, or a VNI/port/local/parent that only creation can set.
            if name in observed.links:
                link_deletes.append(DeleteLink(name))
                deleted.add(name)
            creates.append(AddVxlanDevice(want))
            created.add(name)
        elif have != want:
            creates.append(SetVxlanDevice(want))
    live = (observed.links - deleted) | created

    # sysctls are only ever set; an interface's own disappear with it.
    for path in sorted(desired.sysctls):
        value = desired.sysctls[path]
        if sysctl_interface(path) not in live:
            blocked_.append(Problem("Sysctl", path, "interface is missing"))
        elif observed.sysctls.get(path) != value:
            creates.append(SetSysctl(path, value))

    # FDB entries.
    obs_fdb = {k: e for k, e in observed.fdb.items() if e.dev not in deleted}
    keep: set[tuple[str, str]] = set()
    for key in sorted(desired.fdb):
        want_fdb = desired.fdb[key]
        if want_fdb.dev not in live:
            blocked_.append(
                Problem("FDB", f"{want_fdb.mac} on {want_fdb.dev}", "interface is missing")
            )
            continue
        keep.add(key)
        have_fdb = obs_fdb.get(key)
        if have_fdb is None:
            creates.append(AddFdb(want_fdb))
        elif have_fdb != want_fdb:
            creates.append(ReplaceFdb(want_fdb))
    fdb_deletes: list[Op] = [
        DeleteFdb(obs_fdb[k])
        for k in sorted(obs_fdb)
        if k not in keep and owner.owns_fdb(obs_fdb[k])
    ]

    # Neighbours: non-permanent entries are the kernel's cache, overwritten where we want one.
    obs_neigh = {k: n for k, n in observed.neighbours.items() if n.dev not in deleted}
    keep_n: set[tuple[str, str]] = set()
    for key in sorted(desired.neighbours):
        want_n = desired.neighbours[key]
        name = f"{want_n.address} on {want_n.dev}"
        if not owner.owns_interface(want_n.dev):
            blocked_.append(Problem("Neighbour", name, "interface is not felixd's"))
            continue
        if want_n.dev not in live:
            blocked_.append(Problem("Neighbour", name, "interface is missing"))
            continue
        keep_n.add(key)
        have_n = obs_neigh.get(key)
        if have_n is None:
            creates.append(AddNeighbour(want_n))
        elif have_n != want_n:
            creates.append(ReplaceNeighbour(want_n))
    neigh_deletes: list[Op] = [
        DeleteNeighbour(obs_neigh[k])
        for k in sorted(obs_neigh)
        if k not in keep_n and owner.owns_neighbour(obs_neigh[k])
    ]

    # Routes: the hot path (tens of thousands on a big cluster, nearly all already right), so
    # walk unsorted and sort only what produces an operation.
    obs_routes = observed.routes
    if deleted:
        obs_routes = {k: r for k, r in obs_routes.items() if not (r.devices & deleted)}
    route_creates: list[tuple[RouteKey, Op]] = []
    unplaced: set[RouteKey] = set()  # desired but not programmable now
    for rkey, want_r in desired.routes.items():
        have_r = obs_routes.get(rkey)
        if have_r is want_r or have_r == want_r:
            continue
        if have_r is not None and not owner.owns_route(have_r):
            how = f"proto {have_r.protocol}" + (f" dev {have_r.dev}" if have_r.dev else "")
            blocked_.append(Problem("Route", want_r.dst, f"a foreign route ({how}) holds its key"))
            unplaced.add(rkey)
            continue
        missing = sorted(want_r.devices - live)
        if missing:
            blocked_.append(Problem("Route", want_r.dst, f"interface {missing[0]} is missing"))
            unplaced.add(rkey)
            continue
        op: Op = AddRoute(want_r) if have_r is None else ReplaceRoute(want_r)
        route_creates.append((rkey, op))
    route_creates.sort(key=lambda c: _route_order(c[0]))
    creates.extend(op for _, op in route_creates)
    stale_keys = [
        k
        for k, r in obs_routes.items()
        if (k not in desired.routes or k in unplaced) and owner.owns_route(r)
    ]
    route_deletes: list[Op] = [
        DeleteRoute(obs_routes[k]) for k in sorted(stale_keys, key=_route_order)
    ]

    # nftables tables, each replaced whole in one transaction.
    nft_deletes: list[Op] = []
    for tkey in sorted(set(desired.nft_tables) | set(observed.nft_tables)):
        if not owner.owns_nft_table(*tkey):
            if tkey in desired.nft_tables:
                blocked_.append(Problem("NftTable", " ".join(tkey), "table is not felixd's"))
            continue
        want_t = desired.nft_tables.get(tkey)
        have_t = observed.nft_tables.get(tkey)
        if want_t is None:
            nft_deletes.append(DeleteNftTable(*tkey))
        elif have_t is None:
            creates.append(AddNftTable(want_t))
        elif have_t != want_t:
            creates.append(ReplaceNftTable(want_t))

    deletes = [*nft_deletes, *route_deletes, *neigh_deletes, *fdb_deletes, *link_deletes]
    return Diff(tuple(deletes + creates), tuple(sorted(blocked_)))
