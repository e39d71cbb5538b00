"""The routing core: Adj-RIBs-In, the Loc-RIB with its decisions, and Adj-RIBs-Out.

One owner (the speaker's task) drives it with plain calls; every call returns what changed,
and nothing here does IO. The flow for a received UPDATE:
  receive()   import checks and policy → Adj-RIB-In → candidates per prefix
  decide      the changed prefixes get a new Decision (best path, reason, ECMP set)
  outgoing()  per update group (peers with one export outcome), the export rules and policy
              give what the members should now have; the difference against the group's
              Adj-RIB-Out is the announce/withdraw work, computed once and handed to every
              member, grouped by identical attributes so that UPDATE packing puts many
              prefixes in one message.
This module holds the input and decision half; the update groups and `outgoing` are
`UpdateGroups` (update_groups.py), which `RoutingTable` extends.
Invariants (checked by tests against a dict model): a prefix's candidates are exactly the
Adj-RIB-In entries (plus the local origination) that passed import; `decisions[k].best` is the
decision process applied to them; a peer's Adj-RIB-Out equals the export of every best path
for that peer after `outgoing` covered the changed keys; peers share a group exactly when
their export-relevant properties are equal.

Cost per prefix (a full table is a million of them): one `(family, prefix)` key tuple shared
by every dict that holds the prefix; an Adj-RIB-In entry of the peer it came from; a Decision
entry; and an entry in the Adj-RIB-Out of each update group that sends it (not one per peer).
A prefix with a single candidate (the common case) has no candidates dict of its own: its
Decision's best path is that candidate, and `_multi` holds candidates only for the prefixes
with two or more (promoted on the second, demoted on the way back to one). A path received in
one UPDATE is one shared `Path`, and the prefixes whose only candidate it is share one
`Decision`; `outgoing` exports each distinct best path once per call (and so shares one
`Exported` and one group `Entry`), and only the export policy, which may look at the prefix,
runs per prefix. A table being learned (every prefix of an UPDATE new, one accepted path), a
table withdrawn, a session's table gone and a first advertisement take fast paths made of
dict operations in C; they give the same results as the general loops, which the model test
checks after every step.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import NamedTuple

from bgpd.core.routing.decision import NO_ROUTE, Decision, decide
from bgpd.core.routing.export import Exported, import_loop
from bgpd.core.routing.paths import LOCAL, Path, RouteKey, RoutingPeer
from bgpd.core.routing.policy import ACCEPT_ALL, REJECT_ALL, Policy
from bgpd.core.routing.update_groups import (
    GroupKey,
    Outgoing,
    UpdateGroup,
    UpdateGroups,
    member_adj_out,
)
from bgpd.wire.attributes import PathAttributes
from bgpd.wire.context import Family
from bgpd.wire.prefix import Prefix


class BestChange(NamedTuple):
    """One prefix whose best path or ECMP set changed (a NamedTuple: one per prefix)."""

    key: RouteKey
    decision: Decision  # NO_ROUTE when the prefix is gone


# BestChange(key, decision) without the NamedTuple's Python-level __new__ (half the cost,
# and there is one per changed prefix): tuple.__new__ on the class directly.
_change: Callable[[type[BestChange], tuple[RouteKey, Decision]], BestChange] = tuple.__new__


@dataclass
class PeerTables:
    peer: RoutingPeer
    adj_in: dict[RouteKey, Path] = field(default_factory=dict)
    import_policy: Policy = ACCEPT_ALL
    export_policy: Policy = ACCEPT_ALL
    rejected: int = 0  # paths dropped by loop detection or import policy
    up: bool = True
    group: UpdateGroup | None = None
    # Has had its `full_table`: its Adj-RIB-Out is its group's (minus what is withheld).
    synced: bool = False
    # Work the group computed for this peer that `outgoing` has not handed out yet.
    pending: Outgoing | None = None
    withheld_count: int = 0  # entries of the group's Adj-RIB-Out this peer does not get

    @property
    def adj_out(self) -> Mapping[RouteKey, Exported]:
        """What this peer has been sent (or is about to be): its group's Adj-RIB-Out without
        the entries withheld from it."""
        return member_adj_out(self)


class CandidatesView(Mapping[RouteKey, Mapping[str, Path]]):
    """Every prefix's candidates, as `{source: path}`, read from the compact storage.

    The table keeps a prefix with one candidate as its Decision only (the candidate is the
    best path), and a candidates dict only for prefixes with two or more; this view puts the
    two together for readers (the API's candidate count, tests)."""

    def __init__(self, table: RoutingTable) -> None:
        self._table = table

    def __getitem__(self, key: RouteKey) -> Mapping[str, Path]:
        multi = self._table._multi.get(key)
        if multi is not None:
            return multi
        best = self._table.decisions[key].best
        assert best is not None
        return {best.source: best}

    def __iter__(self) -> Iterator[RouteKey]:
        return iter(self._table.decisions)

    def __len__(self) -> int:
        return len(self._table.decisions)

    def __contains__(self, key: object) -> bool:
        return key in self._table.decisions


def _only(path: Path) -> Decision:
    return Decision(path, "only path", (path,))


class RoutingTable(UpdateGroups):
    def __init__(
        self,
        router_id: int,
        local_as: int,
        cluster_id: int | None = None,
        *,
        max_paths: int = 1,
        ebgp_default_deny: bool = False,
    ) -> None:
        self.router_id = router_id
        self.local_as = local_as
        # RFC 4456 §7: the cluster id defaults to the router id of a reflector.
        self.cluster_id = cluster_id if cluster_id is not None else router_id
        self.max_paths = max_paths
        self.ebgp_default_deny = ebgp_default_deny
        self.peers: dict[str, PeerTables] = {}
        # The Loc-RIB. A prefix with a single candidate is stored here only (its Decision's
        # best path is that candidate); `_multi` holds the candidates of the prefixes that
        # have two or more. Invariant: key in `_multi` => len >= 2 and key in `decisions`.
        self.decisions: dict[RouteKey, Decision] = {}
        self._multi: dict[RouteKey, dict[str, Path]] = {}
        self.candidates = CandidatesView(self)
        self.local: dict[RouteKey, Path] = {}
        self.groups: dict[GroupKey, UpdateGroup] = {}
        # Bumped by every change to the table: a group's computed work is reused only for
        # the generation it was computed in.
        self._generation = 0

    # -- peers --------------------------------------------------------------------------
    def add_peer(
        self,
        peer: RoutingPeer,
        import_policy: Policy | None = None,
        export_policy: Policy | None = None,
    ) -> None:
        """A session came up. Its Adj-RIB-Out starts empty: call `full_table` to fill it."""
        self._generation += 1
        default = REJECT_ALL if self.ebgp_default_deny and not peer.ibgp else ACCEPT_ALL
        old = self.peers.get(peer.id)
        tables = PeerTables(
            peer, import_policy=import_policy or default, export_policy=export_policy or default
        )
        if old is not None:
            self._leave(old)
            tables.adj_in = old.adj_in  # stale paths kept across a graceful restart
        self.peers[peer.id] = tables
        self._join(tables)

    def remove_peer(self, peer_id: str, *, keep_stale: bool = False) -> list[BestChange]:
        """A session went down. With `keep_stale` (RFC 4724 helper) its paths stay, marked."""
        self._generation += 1
        tables = self.peers.get(peer_id)
        if tables is None:
            return []
        self._leave(tables)
        tables.up = False
        if keep_stale:
            # RFC 4724 §4.2: stale paths stay usable; the best path does not change, but
            # the decisions must hold the stale copies (so a sweep or refresh compares right).
            self._replace_paths(tables, lambda p: p._replace(stale=True), report=False)
            return []
        changes = self._withdraw(tables, peer_id, list(tables.adj_in))
        del self.peers[peer_id]
        return changes

    def update_peer(self, peer: RoutingPeer) -> list[BestChange]:
        """A session's role changed without a reset (soft reload: route-reflector client,
        next-hop mode): its paths are re-derived and decided again, and it moves to the
        update group of its new role. Then call `outgoing` over every key for every peer: the
        peer's export of what did not change is brought in line only then."""
        self._generation += 1
        tables = self.peers.get(peer.id)
        if tables is None:
            return []
        tables.peer = peer
        self._regroup(tables)
        return self._replace_paths(
            tables, lambda p: p._replace(from_client=peer.rr_client, ibgp=peer.ibgp)
        )

    def _replace_paths(
        self, tables: PeerTables, renew: Callable[[Path], Path], *, report: bool = True
    ) -> list[BestChange]:
        """Every path of one peer replaced by `renew(path)`, decided again.

        One new path (and one sole-candidate Decision) per shared path: a full table shares a
        few. The original is kept in the cache entry so that its id stays unique meanwhile."""
        source = tables.peer.id
        decisions = self.decisions
        multi = self._multi
        renewed: dict[int, tuple[Path, Path, Decision]] = {}
        olds: dict[RouteKey, Decision] = {}
        for key, path in tables.adj_in.items():
            hit = renewed.get(id(path))
            if hit is None:
                new_path = renew(path)
                hit = renewed[id(path)] = (path, new_path, _only(new_path))
            _, new_path, only = hit
            tables.adj_in[key] = new_path
            if report:
                olds[key] = decisions[key]
            cands = multi.get(key)
            if cands is None:
                decisions[key] = only
            else:
                cands[source] = new_path
                decisions[key] = decide(list(cands.values()), self.max_paths)
        return self._changes(olds)

    def sweep_stale(self, peer_id: str, family: Family | None = None) -> list[BestChange]:
        """End-of-RIB or restart timer: stale paths that were not refreshed go away."""
        self._generation += 1
        tables = self.peers.get(peer_id)
        if tables is None:
            return []
        gone = [
            k for k, p in tables.adj_in.items() if p.stale and (family is None or k[0] == family)
        ]
        changes = self._withdraw(tables, peer_id, gone)
        if not tables.up and not tables.adj_in:
            del self.peers[peer_id]
        return changes

    # -- input --------------------------------------------------------------------------
    def receive(
        self,
        peer_id: str,
        family: Family,
        announced: Sequence[Prefix],
        attrs: PathAttributes | None,
        next_hop: bytes,
        withdrawn: Sequence[Prefix] = (),
    ) -> list[BestChange]:
        self._generation += 1
        tables = self.peers[peer_id]
        peer = tables.peer
        if withdrawn and not announced:
            return self._withdraw(tables, peer_id, [(family, prefix) for prefix in withdrawn])
        olds: dict[RouteKey, Decision] = {}
        for prefix in withdrawn:
            key = (family, prefix)
            if tables.adj_in.pop(key, None) is not None:
                self._drop_candidate(key, peer_id, olds)
        if not announced or attrs is None:
            return self._changes(olds)
        if family not in peer.families:
            # RFC 4760 §8: routes of an <AFI, SAFI> are exchanged only when both speakers
            # advertised it; an UPDATE for one the session did not negotiate is not used.
            tables.rejected += len(announced)
            return self._changes(olds)
        if not peer.ibgp and attrs.local_pref is not None:
            attrs = attrs._replace(local_pref=None)  # RFC 4271 §5.1.5: MUST be ignored
        loop = import_loop(attrs, peer, self.router_id, self.cluster_id)
        base = Path(
            peer_id,
            attrs,
            next_hop,
            ibgp=peer.ibgp,
            router_id=peer.router_id,
            peer_address=peer.address,
            from_client=peer.rr_client,
        )
        policy = tables.import_policy
        if loop is None and policy is ACCEPT_ALL and not olds:
            return self._announce_one_path(tables, family, announced, base)
        only = _only(base)
        for prefix in announced:
            key = (family, prefix)
            path: Path | None = None
            if loop is None:
                if policy is ACCEPT_ALL:
                    path = base
                else:
                    accepted = policy.evaluate(family, prefix, attrs)
                    path = None if accepted is None else base._replace(attrs=accepted)
            if path is None:
                tables.rejected += 1
                if tables.adj_in.pop(key, None) is not None:  # an implicit withdraw
                    self._drop_candidate(key, peer_id, olds)
                continue
            tables.adj_in[key] = path
            self._set_candidate(key, path, only if path is base else _only(path), olds)
        return self._changes(olds)

    def _announce_one_path(
        self, tables: PeerTables, family: Family, announced: Sequence[Prefix], path: Path
    ) -> list[BestChange]:
        """The hot path: one UPDATE's prefixes, all with the same accepted path.

        Same result as `_set_candidate` per prefix and `_changes`, with one shared Decision
        for every prefix that has no other candidate.
        """
        peer_id = path.source
        adj_in = tables.adj_in
        decisions = self.decisions
        multi = self._multi
        only = _only(path)
        keys = [(family, prefix) for prefix in announced]
        if keys and keys[0] not in decisions:
            # A table being learned: every prefix new. Done with dict operations in C, and
            # dict.fromkeys over a dict reuses its stored hashes (two hashes per prefix).
            fresh = dict.fromkeys(keys, path)
            if len(fresh) == len(keys) and decisions.keys().isdisjoint(fresh):
                adj_in.update(fresh)
                decisions.update(dict.fromkeys(fresh, only))
                return [_change(BestChange, (key, only)) for key in keys]
        changes: list[BestChange] = []
        append = changes.append
        for key in keys:
            adj_in[key] = path
            old = decisions.get(key)
            if old is None:
                decisions[key] = only
                append(_change(BestChange, (key, only)))
                continue
            cands = multi.get(key)
            if cands is None:
                current = old.best
                assert current is not None
                if current.source == peer_id:
                    # The peer's own path replaced itself: nothing to decide.
                    if current == path:
                        continue
                    decisions[key] = only
                    append(_change(BestChange, (key, only)))
                    continue
                cands = multi[key] = {current.source: current}
            cands[peer_id] = path
            new = decide(list(cands.values()), self.max_paths)
            decisions[key] = new
            if old.best != new.best or old.multipath != new.multipath:
                append(_change(BestChange, (key, new)))
        return changes

    def _withdraw(self, tables: PeerTables, peer_id: str, keys: list[RouteKey]) -> list[BestChange]:
        """The peer's paths for `keys` are gone (a withdrawal, the session down, a sweep)."""
        adj_in = tables.adj_in
        decisions = self.decisions
        multi = self._multi
        if multi.keys().isdisjoint(keys):
            # No prefix with a second candidate (a full table from one peer): each key the
            # peer had is its only candidate and simply goes. Dict operations in C.
            popped = map(adj_in.pop, keys, repeat(None))
            gone = [key for key, path in zip(keys, popped, strict=True) if path is not None]
            deque(map(decisions.__delitem__, gone), 0)
            return [_change(BestChange, (key, NO_ROUTE)) for key in gone]
        olds: dict[RouteKey, Decision] = {}
        for key in keys:
            if adj_in.pop(key, None) is not None:
                self._drop_candidate(key, peer_id, olds)
        return self._changes(olds)

    def originate(
        self, family: Family, prefix: Prefix, attrs: PathAttributes, next_hop: bytes = b""
    ) -> list[BestChange]:
        self._generation += 1
        key = (family, prefix)
        path = Path(LOCAL, attrs, next_hop, router_id=self.router_id)
        self.local[key] = path
        olds: dict[RouteKey, Decision] = {}
        self._set_candidate(key, path, _only(path), olds)
        return self._changes(olds)

    def withdraw_local(self, family: Family, prefix: Prefix) -> list[BestChange]:
        self._generation += 1
        key = (family, prefix)
        if self.local.pop(key, None) is None:
            return []
        olds: dict[RouteKey, Decision] = {}
        self._drop_candidate(key, LOCAL, olds)
        return self._changes(olds)

    # -- decisions ----------------------------------------------------------------------
    def _set_candidate(
        self, key: RouteKey, path: Path, only: Decision, olds: dict[RouteKey, Decision]
    ) -> None:
        """`path` becomes (or replaces) its source's candidate for `key`; `only` is
        `_only(path)`, shared by the caller. The Decision before the first change of a call
        is kept in `olds`, for `_changes`."""
        decisions = self.decisions
        old = decisions.get(key, NO_ROUTE)
        olds.setdefault(key, old)
        if old.best is None:
            decisions[key] = only
            return
        cands = self._multi.get(key)
        if cands is None:
            if old.best.source == path.source:
                decisions[key] = only
                return
            cands = self._multi[key] = {old.best.source: old.best}
        cands[path.source] = path
        decisions[key] = decide(list(cands.values()), self.max_paths)

    def _drop_candidate(self, key: RouteKey, source: str, olds: dict[RouteKey, Decision]) -> None:
        decisions = self.decisions
        old = decisions.get(key)
        if old is None:
            return
        cands = self._multi.get(key)
        if cands is None:
            assert old.best is not None
            if old.best.source == source:
                olds.setdefault(key, old)
                del decisions[key]
            return
        if cands.pop(source, None) is None:
            return
        olds.setdefault(key, old)
        if len(cands) == 1:
            del self._multi[key]
            decisions[key] = _only(next(iter(cands.values())))
        else:
            decisions[key] = decide(list(cands.values()), self.max_paths)

    def _changes(self, olds: dict[RouteKey, Decision]) -> list[BestChange]:
        """The prefixes whose best path or ECMP set differs from the Decision in `olds`."""
        decisions = self.decisions
        changes: list[BestChange] = []
        for key, old in olds.items():
            new = decisions.get(key, NO_ROUTE)
            if old.best != new.best or old.multipath != new.multipath:
                changes.append(_change(BestChange, (key, new)))
        return changes

    # -- queries ------------------------------------------------------------------------
    def adj_in_count(self, peer_id: str) -> dict[Family, int]:
        counts: dict[Family, int] = {}
        tables = self.peers.get(peer_id)
        for family, _ in tables.adj_in if tables is not None else ():
            counts[family] = counts.get(family, 0) + 1
        return counts
