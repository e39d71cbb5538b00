"""The routing core: Adj-RIBs-In, the Loc-RIB with its decisions, and Adj-RIBs-Out.

One owner (the speaker's task) drives it with plain calls; every call returns what changed,
and nothing here does IO. The flow for a received UPDATE:
  receive()   import checks and policy → Adj-RIB-In → candidates per prefix
  decide      the changed prefixes get a new Decision (best path, reason, ECMP set)
  outgoing()  per peer, the export rules and policy give what the peer should now have;
              the difference against that peer's Adj-RIB-Out is the announce/withdraw work,
              grouped by identical attributes so that UPDATE packing puts many prefixes in
              one message.
Invariants (checked by tests against a dict model): a prefix's candidates are exactly the
Adj-RIB-In entries (plus the local origination) that passed import; `decisions[k].best` is the
decision process applied to them; a peer's Adj-RIB-Out equals the export of every best path
for that peer after `outgoing` covered the changed keys.

Cost per prefix (a full table is a million of them): a path received in one UPDATE is one
shared `Path`; a prefix whose only candidate is that path shares one `Decision`; `outgoing`
exports each distinct best path once per call (and so shares one `Exported`), and only the
export policy, which may look at the prefix, runs per prefix. A table being learned (every
prefix of an UPDATE new, one accepted path) and its first advertisement to a peer take fast
paths made of dict operations in C; they give the same results as the general loops, which
the model test checks after every step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import is_
from typing import NamedTuple

from bgpd.core.routing.decision import NO_ROUTE, Decision, decide
from bgpd.core.routing.export import Exported, export_path, import_loop
from bgpd.core.routing.paths import LOCAL, Path, RouteKey, RoutingPeer
from bgpd.core.routing.policy import ACCEPT_ALL, REJECT_ALL, Policy
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
class Outgoing:
    """One peer's work after a change: announcements grouped by exported attributes."""

    announce: dict[tuple[Family, Exported], list[Prefix]] = field(default_factory=dict)
    withdraw: dict[Family, list[Prefix]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.announce or self.withdraw)


@dataclass
class PeerTables:
    peer: RoutingPeer
    adj_in: dict[RouteKey, Path] = field(default_factory=dict)
    adj_out: dict[RouteKey, Exported] = field(default_factory=dict)
    import_policy: Policy = ACCEPT_ALL
    export_policy: Policy = ACCEPT_ALL
    rejected: int = 0  # paths dropped by loop detection or import policy
    up: bool = True


class RoutingTable:
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
        self.candidates: dict[RouteKey, dict[str, Path]] = {}
        self.decisions: dict[RouteKey, Decision] = {}
        self.local: dict[RouteKey, Path] = {}

    # -- peers --------------------------------------------------------------------------
    def add_peer(
        self,
        peer: RoutingPeer,
        import_policy: Policy | None = None,
        export_policy: Policy | None = None,
    ) -> None:
        """A session came up. Its Adj-RIB-Out starts empty: call `full_table` to fill it."""
        default = REJECT_ALL if self.ebgp_default_deny and not peer.ibgp else ACCEPT_ALL
        old = self.peers.get(peer.id)
        tables = PeerTables(
            peer, import_policy=import_policy or default, export_policy=export_policy or default
        )
        if old is not None:
            tables.adj_in = old.adj_in  # stale paths kept across a graceful restart
        self.peers[peer.id] = tables

    def remove_peer(self, peer_id: str, *, keep_stale: bool = False) -> list[BestChange]:
        """A session went down. With `keep_stale` (RFC 4724 helper) its paths stay, marked."""
        tables = self.peers.get(peer_id)
        if tables is None:
            return []
        tables.adj_out.clear()
        tables.up = False
        if keep_stale:
            # RFC 4724 §4.2: stale paths stay usable; the best path does not change, but
            # the decisions must hold the stale copies (so a sweep or refresh compares right).
            # One stale copy (and one sole-candidate Decision) per shared path, as on receive.
            # (The original is kept in the entry so that its id stays unique meanwhile.)
            marked: dict[int, tuple[Path, Path, Decision]] = {}
            for key, path in tables.adj_in.items():
                hit = marked.get(id(path))
                if hit is None:
                    stale = path._replace(stale=True)
                    only = Decision(stale, "only path", (stale,))
                    hit = marked[id(path)] = (path, stale, only)
                _, stale, only = hit
                tables.adj_in[key] = stale
                cands = self.candidates[key]
                cands[peer_id] = stale
                if len(cands) == 1:
                    self.decisions[key] = only
                else:
                    self.decisions[key] = decide(list(cands.values()), self.max_paths)
            return []
        changes = self._withdraw(tables, peer_id, list(tables.adj_in))
        del self.peers[peer_id]
        return changes

    def update_peer(self, peer: RoutingPeer) -> list[BestChange]:
        """A session's role changed without a reset (soft reload: route-reflector client,
        next-hop mode): its paths are re-derived and decided again."""
        tables = self.peers.get(peer.id)
        if tables is None:
            return []
        tables.peer = peer
        # One new path per shared path (a full table shares a few); the original is kept in
        # the entry so that its id stays unique meanwhile.
        renewed: dict[int, tuple[Path, Path]] = {}
        for key, path in tables.adj_in.items():
            hit = renewed.get(id(path))
            if hit is None:
                hit = (path, path._replace(from_client=peer.rr_client, ibgp=peer.ibgp))
                renewed[id(path)] = hit
            new = hit[1]
            tables.adj_in[key] = new
            self.candidates[key][peer.id] = new
        return self._redecide(list(tables.adj_in))

    def sweep_stale(self, peer_id: str, family: Family | None = None) -> list[BestChange]:
        """End-of-RIB or restart timer: stale paths that were not refreshed go away."""
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
        tables = self.peers[peer_id]
        peer = tables.peer
        if withdrawn and not announced:
            return self._withdraw(tables, peer_id, [(family, prefix) for prefix in withdrawn])
        touched: list[RouteKey] = []
        for prefix in withdrawn:
            key = (family, prefix)
            if tables.adj_in.pop(key, None) is not None:
                self._drop_candidate(key, peer_id)
                touched.append(key)
        if not announced or attrs is None:
            return self._redecide(touched)
        if family not in peer.families:
            # RFC 4760 §8: routes of an <AFI, SAFI> are exchanged only when both speakers
            # advertised it; an UPDATE for one the session did not negotiate is not used.
            tables.rejected += len(announced)
            return self._redecide(touched)
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
        if loop is None and policy is ACCEPT_ALL and not touched:
            return self._announce_one_path(tables, family, announced, base)
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
                    self._drop_candidate(key, peer_id)
                    touched.append(key)
                continue
            tables.adj_in[key] = path
            self.candidates.setdefault(key, {})[peer_id] = path
            touched.append(key)
        return self._redecide(touched)

    def _announce_one_path(
        self, tables: PeerTables, family: Family, announced: Sequence[Prefix], path: Path
    ) -> list[BestChange]:
        """The hot path: one UPDATE's prefixes, all with the same accepted path.

        Same result as storing them and `_redecide`, without its per-prefix list copies and
        with one shared Decision for every prefix that has no other candidate.
        """
        peer_id = path.source
        adj_in = tables.adj_in
        all_cands = self.candidates
        decisions = self.decisions
        only = Decision(path, "only path", (path,))
        keys = [(family, prefix) for prefix in announced]
        if keys and keys[0] not in all_cands:
            # A table being learned: every prefix new. Done with dict operations in C, and
            # dict.fromkeys over a dict reuses its stored hashes (two hashes per prefix).
            fresh = {key: {peer_id: path} for key in keys if key not in all_cands}
            if len(fresh) == len(keys):  # all new, none repeated
                all_cands.update(fresh)
                adj_in.update(dict.fromkeys(fresh, path))
                decisions.update(dict.fromkeys(fresh, only))
                return [_change(BestChange, (key, only)) for key in keys]
        changes: list[BestChange] = []
        append = changes.append
        for key in keys:
            adj_in[key] = path
            cands = all_cands.get(key)
            if cands is None:
                all_cands[key] = {peer_id: path}
                decisions[key] = only
                append(_change(BestChange, (key, only)))
                continue
            cands[peer_id] = path
            old = decisions.get(key, NO_ROUTE)
            if len(cands) == 1:
                # The peer's own path replaced itself: nothing to decide.
                if old.best == path:
                    continue
                decisions[key] = only
                append(_change(BestChange, (key, only)))
                continue
            new = decide(list(cands.values()), self.max_paths)
            decisions[key] = new
            if old.best != new.best or old.multipath != new.multipath:
                append(_change(BestChange, (key, new)))
        return changes

    def _withdraw(
        self, tables: PeerTables, peer_id: str, keys: Iterable[RouteKey]
    ) -> list[BestChange]:
        """The peer's paths for `keys` are gone (a withdrawal, the session down, a sweep):
        `_drop_candidate` and `_redecide` inlined, for full tables."""
        adj_in = tables.adj_in
        all_cands = self.candidates
        decisions = self.decisions
        changes: list[BestChange] = []
        append = changes.append
        for key in keys:
            if adj_in.pop(key, None) is None:
                continue  # never announced, or a repeat within this message
            cands = all_cands[key]
            del cands[peer_id]
            if not cands:
                del all_cands[key]
                del decisions[key]
                append(_change(BestChange, (key, NO_ROUTE)))
                continue
            old = decisions[key]
            new = decide(list(cands.values()), self.max_paths)
            decisions[key] = new
            if old.best != new.best or old.multipath != new.multipath:
                append(_change(BestChange, (key, new)))
        return changes

    def originate(
        self, family: Family, prefix: Prefix, attrs: PathAttributes, next_hop: bytes = b""
    ) -> list[BestChange]:
        key = (family, prefix)
        path = Path(LOCAL, attrs, next_hop, router_id=self.router_id)
        self.local[key] = path
        self.candidates.setdefault(key, {})[LOCAL] = path
        return self._redecide([key])

    def withdraw_local(self, family: Family, prefix: Prefix) -> list[BestChange]:
        key = (family, prefix)
        if self.local.pop(key, None) is None:
            return []
        self._drop_candidate(key, LOCAL)
        return self._redecide([key])

    # -- decisions ----------------------------------------------------------------------
    def _drop_candidate(self, key: RouteKey, source: str) -> None:
        cands = self.candidates.get(key)
        if cands is not None:
            cands.pop(source, None)
            if not cands:
                del self.candidates[key]

    def _redecide(self, keys: Iterable[RouteKey]) -> list[BestChange]:
        changes: list[BestChange] = []
        seen: set[RouteKey] = set()
        for key in keys:
            if key in seen:
                continue
            seen.add(key)
            cands = self.candidates.get(key)
            new = decide(list(cands.values()), self.max_paths) if cands else NO_ROUTE
            old = self.decisions.get(key, NO_ROUTE)
            if new.best is None:
                self.decisions.pop(key, None)
            else:
                self.decisions[key] = new
            if old.best != new.best or old.multipath != new.multipath:
                changes.append(_change(BestChange, (key, new)))
        return changes

    # -- output -------------------------------------------------------------------------
    def outgoing(self, peer_id: str, keys: Iterable[RouteKey]) -> Outgoing:
        """Bring one peer's Adj-RIB-Out up to date for `keys`; returns the difference.

        The export rules depend only on (best path, family, peer), so each distinct best
        path is exported once per call; the export policy may depend on the prefix and
        runs per prefix. Equal results share one `Exported`, which UPDATE packing groups on.
        """
        tables = self.peers[peer_id]
        peer = tables.peer
        policy = tables.export_policy
        families = peer.families
        decisions = self.decisions
        adj_out = tables.adj_out
        if policy is ACCEPT_ALL and isinstance(keys, list) and keys:
            bulk = self._outgoing_one_decision(tables, keys)
            if bulk is not None:
                return bulk
        announce: dict[tuple[Family, Exported], list[Prefix]] = {}
        withdraw: dict[Family, list[Prefix]] = {}
        # id(best path), family -> (the path, kept alive so the id stays unique; its export)
        exported: dict[tuple[int, Family], tuple[Path, Exported | None]] = {}
        # Policy results, so that prefixes given equal attributes share one Exported.
        interned: dict[Exported, Exported] = {}
        # The previous prefix's best path and group: consecutive prefixes of one UPDATE
        # share both, and this skips hashing a whole attribute set per prefix.
        last_best: Path | None = None
        last_family: Family | None = None
        last_out: Exported | None = None
        last_group: list[Prefix] = []
        last_group_key_new: Exported | None = None
        last_group_family: Family | None = None
        for key in keys:
            family, prefix = key
            decision = decisions.get(key)
            new: Exported | None = None
            if decision is not None and family in families:
                best = decision.best
                if best is last_best and family == last_family:
                    out = last_out
                else:
                    hit = exported.get((id(best), family))
                    if hit is None:
                        assert best is not None
                        out = export_path(
                            best, peer, family, router_id=self.router_id, cluster_id=self.cluster_id
                        )
                        exported[(id(best), family)] = (best, out)
                    else:
                        out = hit[1]
                    last_best, last_family, last_out = best, family, out
                if out is not None and policy is not ACCEPT_ALL:
                    attrs = policy.evaluate(family, prefix, out.attrs)
                    if attrs is None:
                        out = None
                    elif attrs is not out.attrs:
                        fresh = Exported(attrs, out.next_hop)
                        out = interned.setdefault(fresh, fresh)
                new = out
            old = adj_out.get(key)
            if new is old or new == old:
                continue
            if new is None:
                del adj_out[key]
                withdraw.setdefault(family, []).append(prefix)
                continue
            adj_out[key] = new
            if new is last_group_key_new and family == last_group_family:
                last_group.append(prefix)
                continue
            group = announce.get((family, new))
            if group is None:
                group = announce[(family, new)] = []
            group.append(prefix)
            last_group, last_group_key_new, last_group_family = group, new, family
        return Outgoing(announce, withdraw)

    def _outgoing_one_decision(self, tables: PeerTables, keys: list[RouteKey]) -> Outgoing | None:
        """The hot path of `outgoing`: the prefixes of one received UPDATE, new to the peer.

        They share one Decision object (`_announce_one_path` gives all prefixes of one call,
        hence of one family, the same one), so one export serves them all and the work is
        dict operations in C. None when the keys are not of that shape.
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
        adj_out = tables.adj_out
        if not adj_out.keys().isdisjoint(keys):
            return None
        family = keys[0][0]
        assert first.best is not None
        out = None
        if family in tables.peer.families:
            out = export_path(
                first.best,
                tables.peer,
                family,
                router_id=self.router_id,
                cluster_id=self.cluster_id,
            )
        if out is None:
            return Outgoing()  # nothing was advertised for these keys, nothing is now
        fresh = dict.fromkeys(keys, out)
        if len(fresh) != len(keys):
            return None  # a key repeated: the general path reports it once
        adj_out.update(fresh)
        return Outgoing({(family, out): [key[1] for key in keys]}, {})

    def full_table(self, peer_id: str) -> Outgoing:
        """Everything the peer should have (a new session, or a route refresh)."""
        self.peers[peer_id].adj_out.clear()
        return self.outgoing(peer_id, list(self.decisions))

    # -- queries ------------------------------------------------------------------------
    def adj_in_count(self, peer_id: str) -> dict[Family, int]:
        counts: dict[Family, int] = {}
        tables = self.peers.get(peer_id)
        for family, _ in tables.adj_in if tables is not None else ():
            counts[family] = counts.get(family, 0) + 1
        return counts
