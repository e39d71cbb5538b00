"""Update groups: the Adj-RIB-Out half of the routing table (RFC 4271 §9.2, §9.1.3).

Why a module of its own: exporting to a hundred peers that would be sent the same thing is
done once, not a hundred times (FRR's update-group idea; RFC 4271 §9.2 leaves how to share
the work open), and that sharing is most of the table's output code. `RoutingTable`
(table.py) keeps the Adj-RIBs-In and the decisions and extends `UpdateGroups`, which holds
the groups, their shared Adj-RIBs-Out and `outgoing` / `full_table`.

Invariants (checked by the table's model test): peers share a group exactly when their
export-relevant properties (`group_key`) are equal; a member's Adj-RIB-Out is its group's
without the entries withheld from it (`excluded`: the best path came from it, or it
originated it), and equals the export of every best path for that member once `outgoing`
covered the changed keys. Entries are shared per best path and policy result, so a group
costs one dict entry per prefix it sends, whatever its size. Pure: no IO, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, KeysView, Mapping
from dataclasses import dataclass, field
from itertools import repeat
from operator import is_, itemgetter
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from bgpd.core.routing.decision import Decision
from bgpd.core.routing.export import Exported, excluded, export_shared
from bgpd.core.routing.paths import Path, RouteKey, RoutingPeer
from bgpd.core.routing.policy import ACCEPT_ALL, Policy
from bgpd.wire.context import Family
from bgpd.wire.prefix import Prefix

if TYPE_CHECKING:
    from bgpd.core.routing.table import PeerTables


@dataclass
class Outgoing:
    """One peer's work after a change: announcements grouped by exported attributes."""

    announce: dict[tuple[Family, Exported], list[Prefix]] = field(default_factory=dict)
    withdraw: dict[Family, list[Prefix]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.announce or self.withdraw)


_EMPTY: Mapping[RouteKey, Exported] = MappingProxyType({})


GroupKey = tuple[bool, bool, int, str, bytes, tuple[Family, ...], Policy]


def group_key(peer: RoutingPeer, export_policy: Policy) -> GroupKey:
    """Everything `export_shared` and the export policy depend on: peers with equal keys are
    sent the same thing, apart from the per-peer rules of `excluded`.

    The neighbour's AS is not in it: past iBGP or eBGP, nothing exported depends on it (our
    AS is prepended, not theirs; there is no sender-side AS_PATH loop check), so eBGP peers
    of different ASes (Calico nodes with an AS each) share a group, as in FRR."""
    return (
        peer.ibgp,
        peer.rr_client,
        peer.local_as,
        peer.next_hop,
        peer.local_address,
        peer.families,
        export_policy,
    )


@dataclass
class UpdateGroup:
    """Peers with one export outcome (RFC 4271 §9.2 leaves how to share the work open; this
    is FRR's update-group idea): one Adj-RIB-Out, one export and diff per change.

    `adj_out` holds an Entry for a prefix when at least one member gets it; the Entry names
    the members that do not, by the per-peer rules of `excluded` (the best path came from
    them, or they originated it). A member's own Adj-RIB-Out is `adj_out` without the entries
    withheld from it. Entries are shared like Exported (one per best path and policy result),
    so naming who is left out costs nothing per prefix. `done` remembers the last
    (generation, keys) processed, so that the other members asking for the same change get
    the work already computed."""

    key: GroupKey
    role: RoutingPeer  # the first member's role: its shared properties are everyone's
    policy: Policy
    members: dict[str, PeerTables] = field(default_factory=dict)
    by_router_id: dict[int, list[str]] = field(default_factory=dict)
    adj_out: dict[RouteKey, Entry] = field(default_factory=dict)
    done: tuple[int, object] | None = None


class Entry(NamedTuple):
    """One prefix of a group's Adj-RIB-Out: what is sent, and which members do not get it."""

    exported: Exported
    withheld: tuple[str, ...] = ()


class _WithPending(Mapping[RouteKey, Exported]):
    """A member's Adj-RIB-Out while it has pending work: those prefixes count as present."""

    def __init__(self, table: Mapping[RouteKey, Exported], pending: Outgoing) -> None:
        self._table = table
        self._pending = pending
        self._pending_keys: set[RouteKey] | None = None

    def __getitem__(self, key: RouteKey) -> Exported:
        return self._table[key]

    def __contains__(self, key: object) -> bool:
        if key in self._table:
            return True
        if self._pending_keys is None:
            work = self._pending
            self._pending_keys = {(f, p) for f, ps in work.withdraw.items() for p in ps} | {
                (f, p) for (f, _), ps in work.announce.items() for p in ps
            }
        return key in self._pending_keys

    def __iter__(self) -> Iterator[RouteKey]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


class _AdjOutView(Mapping[RouteKey, Exported]):
    """A member's Adj-RIB-Out, read from its group's entries. With nothing withheld from the
    member (`whole`), `keys()` is the group dict's own (the speaker's C-level isdisjoint)."""

    def __init__(self, entries: dict[RouteKey, Entry], member: str, whole: bool) -> None:
        self._entries, self._member, self._whole = entries, member, whole

    def __getitem__(self, key: RouteKey) -> Exported:
        entry = self._entries[key]
        if not self._whole and self._member in entry.withheld:
            raise KeyError(key)
        return entry.exported

    def __contains__(self, key: object) -> bool:
        entry = self._entries.get(key)  # type: ignore[call-overload]
        return entry is not None and (self._whole or self._member not in entry.withheld)

    def __iter__(self) -> Iterator[RouteKey]:
        if self._whole:
            return iter(self._entries)
        me = self._member
        return (k for k, e in self._entries.items() if me not in e.withheld)

    def __len__(self) -> int:
        return len(self._entries) if self._whole else sum(1 for _ in self)

    def keys(self) -> KeysView[RouteKey]:
        return self._entries.keys() if self._whole else _ViewKeys(self)

    def holds_none_of(self, keys: Iterable[RouteKey]) -> bool:
        """`keys().isdisjoint(keys)` in C: one dict probe per key, then a look at each
        distinct entry found (entries are shared, so a batch finds a few)."""
        entries = self._entries
        if not isinstance(keys, list):
            keys = list(keys)
        if entries.keys().isdisjoint(keys):
            return True
        found = list(map(entries.get, keys))
        me = self._member
        first = found[0]
        if all(map(is_, found, repeat(first))):  # one UPDATE's worth: one shared entry
            return first is None or me in first.withheld
        distinct = dict(zip(map(id, found), found, strict=True))
        return not any(e is not None and me not in e.withheld for e in distinct.values())


class _ViewKeys(KeysView[RouteKey]):
    _mapping: _AdjOutView

    def isdisjoint(self, other: Iterable[object]) -> bool:
        return self._mapping.holds_none_of(other)  # type: ignore[arg-type]


# Prefixes whose entry, or the members it is withheld from, changed in a group's Adj-RIB-Out,
# by (withheld from before, withheld from now): the (key, old export, new export) of each, and
# how many of them are in the shared work (their export changed, not only who is left out).
Names = tuple[str, ...]
_Pattern = tuple[Names, Names]


@dataclass
class _Special:
    entries: list[tuple[RouteKey, Exported | None, Exported | None]] = field(default_factory=list)
    in_shared: int = 0


def _member_work(
    shared: Outgoing, shared_count: int, specials: list[tuple[_Pattern, _Special]], member: str
) -> Outgoing:
    """`shared` for a member named in `specials`: those prefixes as the member sees them.

    A batch from one source is one pattern covering all the shared work: then nothing of
    `shared` is kept and no prefix is looked at twice."""
    if sum(sp.in_shared for _, sp in specials) == shared_count:
        announce: dict[tuple[Family, Exported], list[Prefix]] = {}
        withdraw: dict[Family, list[Prefix]] = {}
    else:
        skip = {key for _, sp in specials for key, _, _ in sp.entries}
        announce = {
            (family, out): kept
            for (family, out), prefixes in shared.announce.items()
            if (kept := [p for p in prefixes if (family, p) not in skip])
        }
        withdraw = {
            family: kept
            for family, prefixes in shared.withdraw.items()
            if (kept := [p for p in prefixes if (family, p) not in skip])
        }
    for (old_names, names), sp in specials:
        had_it = member not in old_names
        gets_it = member not in names
        if not had_it and not gets_it:
            continue  # withheld before and after: nothing for this member
        for (family, prefix), old, new in sp.entries:
            had = old if had_it else None
            gets = new if gets_it else None
            if had is gets or had == gets:
                continue
            if gets is None:
                withdraw.setdefault(family, []).append(prefix)
            else:
                announce.setdefault((family, gets), []).append(prefix)
    return Outgoing(announce, withdraw)


def _merge(first: Outgoing, then: Outgoing) -> Outgoing:
    """Two rounds of work for one peer as one: per prefix, the later wins."""
    state: dict[RouteKey, Exported | None] = {}
    for work in (first, then):
        for family, prefixes in work.withdraw.items():
            for prefix in prefixes:
                state[(family, prefix)] = None
        for (family, exported), prefixes in work.announce.items():
            for prefix in prefixes:
                state[(family, prefix)] = exported
    merged = Outgoing()
    for (family, prefix), out in state.items():
        if out is None:
            merged.withdraw.setdefault(family, []).append(prefix)
        else:
            merged.announce.setdefault((family, out), []).append(prefix)
    return merged


def _announce_all(table: Mapping[RouteKey, Exported]) -> Outgoing:
    work = Outgoing()
    announce = work.announce
    last: list[Prefix] = []
    last_out: Exported | None = None
    last_family: Family | None = None
    for (family, prefix), out in table.items():
        if out is last_out and family == last_family:
            last.append(prefix)
            continue
        last = announce.setdefault((family, out), [])
        last.append(prefix)
        last_out, last_family = out, family
    return work


def _difference(had: Mapping[RouteKey, Exported], now: Mapping[RouteKey, Exported]) -> Outgoing:
    work = Outgoing()
    for key, out in now.items():
        old = had.get(key)
        if old is None or old != out:
            work.announce.setdefault((key[0], out), []).append(key[1])
    for key in had:
        if key not in now:
            work.withdraw.setdefault(key[0], []).append(key[1])
    return work


def member_adj_out(tables: PeerTables) -> Mapping[RouteKey, Exported]:
    """`PeerTables.adj_out`: what the member has been sent (or is about to be)."""
    group = tables.group
    if group is None or not tables.synced:
        return _EMPTY
    table = _AdjOutView(group.adj_out, tables.peer.id, not tables.withheld_count)
    if tables.pending is not None:
        # Another member's call already brought the group's table past what this peer
        # was sent: a prefix with work pending may still be on the peer (a withdrawal
        # not handed out yet), so it counts as present for `in` (the speaker skips a
        # peer whose Adj-RIB-Out holds none of a change's prefixes).
        return _WithPending(table, tables.pending)
    return table


class UpdateGroups:
    """The update groups of a `RoutingTable` and their Adj-RIBs-Out; `RoutingTable` sets the
    attributes below and calls `_join` / `_leave` / `_regroup` as its peers come and go."""

    router_id: int
    cluster_id: int
    peers: dict[str, PeerTables]
    decisions: dict[RouteKey, Decision]
    groups: dict[GroupKey, UpdateGroup]
    _generation: int

    # -- update groups ------------------------------------------------------------------
    def set_export_policy(self, peer_id: str, policy: Policy) -> None:
        """A new export policy for an Established peer: it moves to the update group of its
        new export outcome. Then call `outgoing` over every key (as after a role change) to
        get the difference the peer must be sent."""
        self._generation += 1
        tables = self.peers[peer_id]
        tables.export_policy = policy
        self._regroup(tables)

    def _join(self, tables: PeerTables) -> UpdateGroup:
        key = group_key(tables.peer, tables.export_policy)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = UpdateGroup(key, tables.peer, tables.export_policy)
        peer = tables.peer
        group.members[peer.id] = tables
        group.by_router_id.setdefault(peer.router_id, []).append(peer.id)
        group.done = None
        tables.group, tables.synced, tables.pending, tables.withheld_count = group, False, None, 0
        return group

    def _leave(self, tables: PeerTables) -> None:
        group = tables.group
        if group is None:
            return
        peer = tables.peer
        withheld_from_it = tables.withheld_count
        tables.group, tables.synced, tables.pending, tables.withheld_count = None, False, None, 0
        del group.members[peer.id]
        same_id = group.by_router_id[peer.router_id]
        same_id.remove(peer.id)
        if not same_id:
            del group.by_router_id[peer.router_id]
        group.done = None
        if not group.members:
            del self.groups[group.key]
            return
        if not withheld_from_it:
            return
        # Entries withheld from the member that left: no longer withheld from it, and gone
        # if they are now withheld from every member left.
        # Entries are shared (a full table has one per UPDATE): each distinct one gets its
        # successor once, and the table is rewritten with dict operations in C.
        left = len(group.members)
        adj_out = group.adj_out
        keys = list(adj_out)
        entries = list(adj_out.values())
        successor: dict[int, Entry] = {}
        doomed: set[int] = set()  # ids of entries now withheld from every member left
        for entry in dict(zip(map(id, entries), entries, strict=True)).values():
            if peer.id not in entry.withheld:
                successor[id(entry)] = entry
                continue
            new = entry._replace(withheld=tuple(n for n in entry.withheld if n != peer.id))
            successor[id(entry)] = new
            if len(new.withheld) == left:
                doomed.add(id(entry))
        adj_out.update(zip(keys, map(successor.__getitem__, map(id, entries)), strict=True))
        if doomed:
            for key, entry in zip(keys, entries, strict=True):
                if id(entry) in doomed:
                    del adj_out[key]
                    for n in successor[id(entry)].withheld:
                        group.members[n].withheld_count -= 1

    def _regroup(self, tables: PeerTables) -> None:
        """A member whose export-relevant properties changed leaves its group for the one of
        its new properties. It keeps what it was sent: a new group starts from that, and in
        a group that is already in use the difference becomes its pending work."""
        old_group = tables.group
        if old_group is None or old_group.key == group_key(tables.peer, tables.export_policy):
            return
        was_synced = tables.synced
        had = dict(tables.adj_out)
        pending = tables.pending
        self._leave(tables)
        group = self._join(tables)
        if not was_synced:
            return
        if not any(m.synced for m in group.members.values()):
            self._reset(group)
            entries: dict[int, tuple[Exported, Entry]] = {}
            for key, out in had.items():
                hit = entries.get(id(out))
                if hit is None:
                    hit = entries[id(out)] = (out, Entry(out))
                group.adj_out[key] = hit[1]
            tables.synced, tables.pending = True, pending
            return
        tables.synced = True
        now = self._member_table(group, tables)
        work = _difference(had, now)
        tables.pending = work if pending is None else _merge(pending, work)

    @staticmethod
    def _reset(group: UpdateGroup) -> None:
        """The group's table emptied, to be computed anew (no member relies on it)."""
        group.adj_out.clear()
        for member in group.members.values():
            member.withheld_count = 0
        group.done = None

    def _excluded_members(self, group: UpdateGroup, best: Path) -> tuple[str, ...]:
        """The members of `group` that must not get `best` (`excluded`), in a fixed order."""
        names: tuple[str, ...] = ()
        if best.source in group.members:
            names = (best.source,)
        oid = best.attrs.originator_id
        if oid is not None and best.ibgp and group.role.ibgp:
            for n in group.by_router_id.get(oid, ()):
                if n != best.source:
                    names = (*names, n)
        return names

    # -- output -------------------------------------------------------------------------
    def outgoing(self, peer_id: str, keys: Iterable[RouteKey]) -> Outgoing:
        """Bring one peer's Adj-RIB-Out up to date for `keys`; returns the difference.

        The work is its update group's: the first member to ask for a change (one generation
        of the table, one `keys` object) has the group's Adj-RIB-Out brought up to date and
        the difference handed to every member; the others get theirs without recomputing.
        The returned Outgoing may be shared between members: read it, do not change it. It
        may hold more than `keys` (work of an earlier change the peer had not asked for).
        """
        tables = self.peers[peer_id]
        group = tables.group
        if group is None:
            return Outgoing()
        if not tables.synced:
            return self.full_table(peer_id)
        stamp = (self._generation, keys)
        done = group.done
        if done is None or done[0] != stamp[0] or done[1] is not keys:
            self._process(group, keys)
            group.done = stamp
        work = tables.pending
        tables.pending = None
        return work if work is not None else Outgoing()

    def _process(self, group: UpdateGroup, keys: Iterable[RouteKey]) -> None:
        """The group's Adj-RIB-Out brought up to date for `keys`; each synced member's
        difference added to its pending work.

        The export rules depend only on (best path, family, group), so each distinct best
        path is exported once per call; the export policy may depend on the prefix and runs
        per prefix. Equal results share one `Exported` (and one Entry), which UPDATE packing
        groups on.
        """
        role = group.role
        policy = group.policy
        families = role.families
        decisions = self.decisions
        adj_out = group.adj_out
        members = group.members
        if isinstance(keys, list) and keys:
            if policy is ACCEPT_ALL:
                bulk = self._process_one_decision(group, keys)
                if bulk is not None:
                    self._hand_out(group, bulk[0], {}, bulk[1])
                    return
            if self._process_gone(group, keys):
                return
        announce: dict[tuple[Family, Exported], list[Prefix]] = {}
        withdraw: dict[Family, list[Prefix]] = {}
        patterns: dict[_Pattern, _Special] = {}
        last_pattern: tuple[Names, Names, _Special] | None = None
        # id(best path), family -> (the path, kept alive so the id stays unique; its entry)
        exported: dict[tuple[int, Family], tuple[Path, Entry | None]] = {}
        # Policy results, so that prefixes given equal attributes share one Entry.
        interned: dict[Entry, Entry] = {}
        # The previous prefix's best path and group: consecutive prefixes of one UPDATE
        # share both, and this skips hashing a whole attribute set per prefix.
        last_best: Path | None = None
        last_family: Family | None = None
        last_entry: Entry | None = None
        last_group: list[Prefix] = []
        last_group_key_new: Exported | None = None
        last_group_family: Family | None = None
        for key in keys:
            family, prefix = key
            decision = decisions.get(key)
            entry: Entry | None = None
            if decision is not None and family in families:
                best = decision.best
                if best is last_best and family == last_family:
                    entry = last_entry
                else:
                    hit = exported.get((id(best), family))
                    if hit is None:
                        assert best is not None
                        out = export_shared(
                            best, role, family, router_id=self.router_id, cluster_id=self.cluster_id
                        )
                        if out is not None:
                            names = self._excluded_members(group, best)
                            # Withheld from every member: not kept.
                            entry = Entry(out, names) if len(names) < len(members) else None
                        exported[(id(best), family)] = (best, entry)
                    else:
                        entry = hit[1]
                    last_best, last_family, last_entry = best, family, entry
                if entry is not None and policy is not ACCEPT_ALL:
                    attrs = policy.evaluate(family, prefix, entry.exported.attrs)
                    if attrs is None:
                        entry = None
                    elif attrs is not entry.exported.attrs:
                        fresh = Entry(Exported(attrs, entry.exported.next_hop), entry.withheld)
                        entry = interned.setdefault(fresh, fresh)
            old_entry = adj_out.get(key)
            if entry is old_entry or entry == old_entry:
                continue
            old = old_entry.exported if old_entry is not None else None
            new = entry.exported if entry is not None else None
            old_names = old_entry.withheld if old_entry is not None else ()
            names = entry.withheld if entry is not None else ()
            if old_names or names:
                # Names tuples are shared (one per entry): identity finds the last pattern.
                if last_pattern is None or not (
                    last_pattern[0] is old_names and last_pattern[1] is names
                ):
                    sp = patterns.get((old_names, names))
                    if sp is None:
                        sp = patterns[(old_names, names)] = _Special()
                    last_pattern = (old_names, names, sp)
                special = last_pattern[2]
                special.entries.append((key, old, new))
                if not (new is old or new == old):
                    special.in_shared += 1
            if entry is None:
                del adj_out[key]
                withdraw.setdefault(family, []).append(prefix)
                continue
            adj_out[key] = entry
            if new is old or new == old:
                continue  # only who is left out changed
            assert new is not None
            if new is last_group_key_new and family == last_group_family:
                last_group.append(prefix)
                continue
            group_list = announce.get((family, new))
            if group_list is None:
                group_list = announce[(family, new)] = []
            group_list.append(prefix)
            last_group, last_group_key_new, last_group_family = group_list, new, family
        for (old_names, names), sp in patterns.items():
            for n in old_names:
                members[n].withheld_count -= len(sp.entries)
            for n in names:
                members[n].withheld_count += len(sp.entries)
        self._hand_out(group, Outgoing(announce, withdraw), patterns)

    def _hand_out(
        self,
        group: UpdateGroup,
        shared: Outgoing,
        patterns: dict[_Pattern, _Special],
        left_out: Names = (),
    ) -> None:
        """Every synced member gets `shared`, except those named in a pattern (entries
        withheld from them before or after), who get their own copy, and those in
        `left_out`, who get nothing."""
        own: dict[str, list[tuple[_Pattern, _Special]]] = {}
        for pattern, sp in patterns.items():
            for n in {*pattern[0], *pattern[1]}:
                own.setdefault(n, []).append((pattern, sp))
        shared_count = 0
        if own:
            shared_count = sum(map(len, shared.announce.values())) + sum(
                map(len, shared.withdraw.values())
            )
        for name, member in group.members.items():
            if not member.synced or name in left_out:
                continue
            specials = own.get(name)
            work = (
                shared if specials is None else _member_work(shared, shared_count, specials, name)
            )
            if not work:
                continue
            member.pending = work if member.pending is None else _merge(member.pending, work)

    def _process_one_decision(
        self, group: UpdateGroup, keys: list[RouteKey]
    ) -> tuple[Outgoing, tuple[str, ...]] | None:
        """The hot path of `_process`: the prefixes of one received UPDATE, new to the group.

        They share one Decision object (`_announce_one_path` gives all prefixes of one call,
        hence of one family, the same one), so one export serves them all and the work is
        dict operations in C. The work for every member, and the members it is withheld
        from; None when the keys are not of that shape.
        """
        decisions = self.decisions
        first = decisions.get(keys[0])
        if first is None:
            return None
        found = [decisions.get(key) for key in keys]
        # Identity, not equality (list.count would use ==): equal decisions of two
        # families must not be taken for one.
        if not all(map(is_, found, repeat(first))):
            return None
        adj_out = group.adj_out
        if not adj_out.keys().isdisjoint(keys):
            return None
        family = keys[0][0]
        best = first.best
        assert best is not None
        out = None
        if family in group.role.families:
            out = export_shared(
                best, group.role, family, router_id=self.router_id, cluster_id=self.cluster_id
            )
        if out is None:
            return Outgoing(), ()  # nothing was advertised for these keys, nothing is now
        names = self._excluded_members(group, best)
        if len(names) == len(group.members):
            return Outgoing(), ()  # withheld from every member: nothing kept, nothing sent
        fresh = dict.fromkeys(keys, Entry(out, names))
        if len(fresh) != len(keys):
            return None  # a key repeated: the general path reports it once
        adj_out.update(fresh)
        for n in names:
            group.members[n].withheld_count += len(fresh)
        return Outgoing({(family, out): [key[1] for key in keys]}, {}), names

    def _process_gone(self, group: UpdateGroup, keys: list[RouteKey]) -> bool:
        """The other hot path of `_process`: prefixes of one family with no best path any
        more, whose entries in the group's table (shared: one per UPDATE they were learned
        in) are withheld from the same members, or absent (a withdrawal, a session down).
        Dict operations in C; False when the keys are not of that shape."""
        family = keys[0][0]
        if any(map(self.decisions.__contains__, keys)):
            return False
        if not all(map(family.__eq__, map(itemgetter(0), keys))):
            return False
        adj_out = group.adj_out
        found = list(map(adj_out.get, keys))
        distinct = dict(zip(map(id, found), found, strict=True))
        withheld = {e.withheld for e in distinct.values() if e is not None}
        if len(withheld) > 1:
            return False
        if not withheld:
            return True  # none of them was in the table: nothing to do
        names = withheld.pop()
        popped = map(adj_out.pop, keys, repeat(None))
        gone = [key[1] for key, entry in zip(keys, popped, strict=True) if entry is not None]
        for n in names:
            group.members[n].withheld_count -= len(gone)
        # The members they were withheld from never had these prefixes: nothing for them.
        self._hand_out(group, Outgoing({}, {family: gone}), {}, names)
        return True

    def full_table(self, peer_id: str) -> Outgoing:
        """Everything the peer should have (a new session, or a route refresh).

        A peer joining a group that is in use gets the group's Adj-RIB-Out as its table (plus
        what the group did not keep because it was withheld from every other member); a peer
        alone in its group has the group's table computed anew."""
        tables = self.peers[peer_id]
        group = tables.group
        if group is None:
            group = self._join(tables)
        tables.pending = None
        if not any(m.synced for m in group.members.values() if m is not tables):
            self._reset(group)
        tables.synced = True
        return _announce_all(self._member_table(group, tables))

    def _member_table(self, group: UpdateGroup, tables: PeerTables) -> dict[RouteKey, Exported]:
        """What a member that (re)joined `group` should have, its group's Adj-RIB-Out for the
        other members' sake brought up to date with it (entries withheld from all the others
        were not kept). One pass over the Loc-RIB; exports only for prefixes not in the
        group's table."""
        me = tables.peer.id
        role = group.role
        policy = group.policy
        decisions = self.decisions
        adj_out = group.adj_out
        members = group.members
        table: dict[RouteKey, Exported] = {}
        exported: dict[tuple[int, Family], tuple[Path, Entry | None]] = {}
        interned: dict[Entry, Entry] = {}
        renamed: dict[int, tuple[Entry, Entry]] = {}  # id(entry) -> (it, it withheld from me)
        for key, decision in decisions.items():
            best = decision.best
            assert best is not None
            have = adj_out.get(key)
            if have is not None:
                if me in have.withheld:
                    continue
                if excluded(best, tables.peer):
                    hit = renamed.get(id(have))
                    if hit is None:
                        hit = renamed[id(have)] = (
                            have,
                            have._replace(withheld=(*have.withheld, me)),
                        )
                    adj_out[key] = hit[1]
                    tables.withheld_count += 1
                    continue
                table[key] = have.exported
                continue
            family = key[0]
            if family not in role.families:
                continue
            cached = exported.get((id(best), family))
            if cached is None:
                out = export_shared(
                    best, role, family, router_id=self.router_id, cluster_id=self.cluster_id
                )
                entry = None
                if out is not None:
                    names = self._excluded_members(group, best)
                    entry = Entry(out, names) if len(names) < len(members) else None
                cached = exported[(id(best), family)] = (best, entry)
            entry = cached[1]
            if entry is None:
                continue
            if policy is not ACCEPT_ALL:
                attrs = policy.evaluate(family, key[1], entry.exported.attrs)
                if attrs is None:
                    continue
                if attrs is not entry.exported.attrs:
                    fresh = Entry(Exported(attrs, entry.exported.next_hop), entry.withheld)
                    entry = interned.setdefault(fresh, fresh)
            adj_out[key] = entry
            for n in entry.withheld:
                members[n].withheld_count += 1
            if me not in entry.withheld:
                table[key] = entry.exported
        return table
