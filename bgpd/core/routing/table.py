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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bgpd.core.routing.decision import NO_ROUTE, Decision, decide
from bgpd.core.routing.export import Exported, export_path, import_loop
from bgpd.core.routing.paths import LOCAL, Path, RouteKey, RoutingPeer
from bgpd.core.routing.policy import ACCEPT_ALL, REJECT_ALL, Policy
from bgpd.wire.attributes import PathAttributes
from bgpd.wire.context import Family
from bgpd.wire.prefix import Prefix


@dataclass(frozen=True, slots=True)
class BestChange:
    key: RouteKey
    decision: Decision  # NO_ROUTE when the prefix is gone


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
            for key, path in tables.adj_in.items():
                stale = path._replace(stale=True)
                tables.adj_in[key] = stale
                self.candidates[key][peer_id] = stale
            return []
        keys = list(tables.adj_in)
        for key in keys:
            self._drop_candidate(key, peer_id)
        del self.peers[peer_id]
        return self._redecide(keys)

    def sweep_stale(self, peer_id: str, family: Family | None = None) -> list[BestChange]:
        """End-of-RIB or restart timer: stale paths that were not refreshed go away."""
        tables = self.peers.get(peer_id)
        if tables is None:
            return []
        gone = [
            k for k, p in tables.adj_in.items() if p.stale and (family is None or k[0] == family)
        ]
        for key in gone:
            del tables.adj_in[key]
            self._drop_candidate(key, peer_id)
        if not tables.up and not tables.adj_in:
            del self.peers[peer_id]
        return self._redecide(gone)

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
        touched: list[RouteKey] = []
        for prefix in withdrawn:
            key = (family, prefix)
            if tables.adj_in.pop(key, None) is not None:
                self._drop_candidate(key, peer_id)
                touched.append(key)
        if announced and attrs is not None:
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
                changes.append(BestChange(key, new))
        return changes

    # -- output -------------------------------------------------------------------------
    def _export(self, tables: PeerTables, key: RouteKey) -> Exported | None:
        decision = self.decisions.get(key)
        if decision is None or decision.best is None:
            return None
        peer = tables.peer
        if key[0] not in peer.families:
            return None
        out = export_path(
            decision.best, peer, key[0], router_id=self.router_id, cluster_id=self.cluster_id
        )
        if out is None or tables.export_policy is ACCEPT_ALL:
            return out
        attrs = tables.export_policy.evaluate(key[0], key[1], out.attrs)
        return None if attrs is None else Exported(attrs, out.next_hop)

    def outgoing(self, peer_id: str, keys: Iterable[RouteKey]) -> Outgoing:
        """Bring one peer's Adj-RIB-Out up to date for `keys`; returns the difference."""
        tables = self.peers[peer_id]
        work = Outgoing()
        adj_out = tables.adj_out
        for key in keys:
            new = self._export(tables, key)
            old = adj_out.get(key)
            if new == old:
                continue
            family, prefix = key
            if new is None:
                del adj_out[key]
                work.withdraw.setdefault(family, []).append(prefix)
            else:
                adj_out[key] = new
                work.announce.setdefault((family, new), []).append(prefix)
        return work

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
