"""RoutingTable against a dict model (stateful hypothesis): RFC 4271 §3.2 RIB structure.

The model keeps, per peer, what the peer announced (and whether it is up or kept stale for
RFC 4724), and the local originations. After every step:
- the table's candidates are exactly the model's paths that pass import (RFC 4271 §9.1:
  loop detection, import policy, a negotiated family);
- every decision is `decide()` over those candidates (RFC 4271 §9.1.2);
- for every up peer, a replica built only from the Outgoing deltas the table returned equals
  the export (RFC 4271 §9.1.3, RFC 4456 §6-8, export policy) of every best path, as computed
  with `export_path` and the policy directly, and so does the table's own Adj-RIB-Out.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from bgpd.core.routing.decision import decide
from bgpd.core.routing.export import Exported, export_path, import_loop
from bgpd.core.routing.paths import LOCAL, Path, RouteKey, RoutingPeer
from bgpd.core.routing.policy import ACCEPT_ALL, Policy, PrefixMatch, Term
from bgpd.core.routing.table import BestChange, RoutingTable
from bgpd.core.routing.update_groups import Outgoing, group_key
from bgpd.wire.attributes import AS_SEQUENCE, NO_ADVERTISE, NO_EXPORT, PathAttributes
from bgpd.wire.context import IPV4_UNICAST, IPV6_UNICAST, Family
from bgpd.wire.prefix import Prefix, make_prefix

ROUTER_ID = 0x0A000001
LOCAL_AS = 65000
V4 = [make_prefix(t) for t in ("10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/26", "192.0.2.0/24")]
V6 = [make_prefix(t) for t in ("2001:db8::/48", "2001:db8:1::/48")]
PREFIXES: dict[Family, list[Prefix]] = {IPV4_UNICAST: V4, IPV6_UNICAST: V6}
NEXT_HOPS = {IPV4_UNICAST: bytes((10, 0, 0, 9)), IPV6_UNICAST: bytes(15) + b"\x09"}


def _peer(pid: str, asn: int, n: int, **kw: object) -> RoutingPeer:
    return RoutingPeer(
        id=pid,
        name=pid,
        local_as=LOCAL_AS,
        remote_as=asn,
        router_id=n,
        address=bytes((10, 0, 0, n)),
        local_address=bytes((10, 0, 0, 1)),
        **kw,  # type: ignore[arg-type]
    )


BOTH = (IPV4_UNICAST, IPV6_UNICAST)
# Peers with equal export-relevant roles share an update group: client and client2 (same
# export policy), ibgp and ibgp2, the three eBGP peers (the neighbour AS is not part of it);
# a soft reload or a new export policy moves one to another group.
PEERS = {
    "client": _peer("client", LOCAL_AS, 2, rr_client=True, families=BOTH),
    "client2": _peer("client2", LOCAL_AS, 6, rr_client=True, families=BOTH),
    "ibgp": _peer("ibgp", LOCAL_AS, 3, families=(IPV4_UNICAST,)),
    "ibgp2": _peer("ibgp2", LOCAL_AS, 7, families=(IPV4_UNICAST,)),
    "ebgp": _peer("ebgp", 65001, 4, families=BOTH),
    "ebgp3": _peer("ebgp3", 65001, 8, families=BOTH),
    "ebgp2": _peer("ebgp2", 65002, 5, families=BOTH, allow_own_as=1),
}
# The eBGP peer's import drops 192.0.2.0/24 and raises LOCAL_PREF; the client's export
# tags everything and rejects /26s (Calico: blocks, never what is inside them).
IMPORT = {
    "ebgp": Policy(
        "in",
        (
            Term(prefixes=(PrefixMatch.parse("192.0.2.0/24"),), action="reject"),
            Term(set_local_pref=150),
        ),
    )
}
BLOCKS_ONLY = Policy(
    "out",
    (
        Term(prefixes=(PrefixMatch.parse("10.0.0.0/8 ge 26"),), action="reject"),
        Term(add_communities=(0xFDE80001,)),
    ),
)
EXPORT = {"client": BLOCKS_ONLY, "client2": BLOCKS_ONLY}
ATTRS = [
    PathAttributes(origin=0, as_path=()),
    PathAttributes(origin=0, as_path=((AS_SEQUENCE, (65001,)),), med=10),
    PathAttributes(origin=1, as_path=((AS_SEQUENCE, (65001, 65009)),), med=5, local_pref=200),
    PathAttributes(origin=0, as_path=((AS_SEQUENCE, (65002, LOCAL_AS)),)),  # a loop for most
    PathAttributes(origin=0, as_path=(), originator_id=ROUTER_ID),  # RFC 4456 §8 loop
    PathAttributes(origin=2, as_path=(), originator_id=7, cluster_list=(9,), local_pref=100),
    # Reflected with client2 as originator: withheld from client2 only (RFC 4456 §8).
    PathAttributes(origin=0, as_path=(), originator_id=6, cluster_list=(9,)),
    # RFC 1997: to the iBGP groups only, and to nobody (the oracle is `export_path`'s rule).
    PathAttributes(origin=0, as_path=((AS_SEQUENCE, (65001,)),), communities=(NO_EXPORT,)),
    PathAttributes(origin=0, as_path=(), communities=(0xFDE80002, NO_ADVERTISE)),
]


@dataclass
class ModelPeer:
    up: bool = False
    announced: dict[RouteKey, tuple[PathAttributes, bytes, bool]] = field(default_factory=dict)


class TableAgainstModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.table = RoutingTable(ROUTER_ID, LOCAL_AS, max_paths=2)
        self.model: dict[str, ModelPeer] = {}
        self.local: dict[RouteKey, tuple[PathAttributes, bytes]] = {}
        self.replica: dict[str, dict[RouteKey, Exported]] = {}
        self.roles = dict(PEERS)
        self.export = dict(EXPORT)

    # -- helpers ------------------------------------------------------------------------
    def _apply(self, pid: str, work: Outgoing) -> None:
        replica = self.replica[pid]
        for family, gone in work.withdraw.items():
            for prefix in gone:
                assert (family, prefix) in replica, "withdrawal of a route never announced"
                del replica[(family, prefix)]
        for (family, exported), added in work.announce.items():
            for prefix in added:
                replica[(family, prefix)] = exported

    def _flush(self, changes: list[BestChange]) -> None:
        keys = [c.key for c in changes]
        for pid, mp in self.model.items():
            if mp.up:
                self._apply(pid, self.table.outgoing(pid, keys))

    def _expected_candidates(self) -> dict[RouteKey, dict[str, Path]]:
        out: dict[RouteKey, dict[str, Path]] = {}
        for pid, mp in self.model.items():
            peer = self.roles[pid]
            for key, (attrs, nh, stale) in mp.announced.items():
                if key[0] not in peer.families:
                    continue
                if import_loop(attrs, peer, ROUTER_ID, ROUTER_ID) is not None:
                    continue
                if not peer.ibgp:
                    attrs = attrs._replace(local_pref=None)  # RFC 4271 §5.1.5
                accepted = IMPORT.get(pid, ACCEPT_ALL).evaluate(key[0], key[1], attrs)
                if accepted is None:
                    continue
                path = Path(
                    pid,
                    accepted,
                    nh,
                    ibgp=peer.ibgp,
                    router_id=peer.router_id,
                    peer_address=peer.address,
                    from_client=peer.rr_client,
                    stale=stale,
                )
                out.setdefault(key, {})[pid] = path
        for key, (attrs, nh) in self.local.items():
            out.setdefault(key, {})[LOCAL] = Path(LOCAL, attrs, nh, router_id=ROUTER_ID)
        return out

    # -- rules --------------------------------------------------------------------------
    @initialize()
    def sessions_up(self) -> None:
        """Two update groups of two members each from the start."""
        for pid in ("client", "ebgp", "client2", "ebgp3"):
            self.peer_up(pid)

    @rule(pid=st.sampled_from(sorted(PEERS)), data=st.data())
    def withdraw_announced(self, pid: str, data: st.DataObject) -> None:
        """A withdraw-only UPDATE of routes the peer did announce."""
        mp = self.model.get(pid)
        if mp is None or not mp.up or not mp.announced:
            return
        keys = data.draw(st.sets(st.sampled_from(sorted(mp.announced)), min_size=1))
        for family in BOTH:
            gone = [k[1] for k in sorted(keys) if k[0] == family]
            if gone:
                changes = self.table.receive(pid, family, (), None, b"", gone)
                for prefix in gone:
                    del mp.announced[(family, prefix)]
                self._flush(changes)

    @rule(pid=st.sampled_from(sorted(PEERS)))
    def peer_up(self, pid: str) -> None:
        mp = self.model.setdefault(pid, ModelPeer())
        if mp.up:
            return
        mp.up = True
        self.table.add_peer(self.roles[pid], IMPORT.get(pid), self.export.get(pid))
        self.replica[pid] = {}
        self._apply(pid, self.table.full_table(pid))

    @rule(pid=st.sampled_from(sorted(PEERS)), keep_stale=st.booleans())
    def peer_down(self, pid: str, keep_stale: bool) -> None:
        mp = self.model.get(pid)
        if mp is None or not mp.up:
            return
        changes = self.table.remove_peer(pid, keep_stale=keep_stale)
        mp.up = False
        self.replica.pop(pid)
        if keep_stale:
            mp.announced = {k: (a, nh, True) for k, (a, nh, _) in mp.announced.items()}
        else:
            del self.model[pid]
        self._flush(changes)

    @rule(pid=st.sampled_from(sorted(PEERS)), family=st.sampled_from(BOTH))
    def sweep(self, pid: str, family: Family) -> None:
        changes = self.table.sweep_stale(pid, family)
        mp = self.model.get(pid)
        if mp is not None:
            mp.announced = {k: v for k, v in mp.announced.items() if not (v[2] and k[0] == family)}
            if not mp.up and not mp.announced:
                del self.model[pid]
        self._flush(changes)

    @rule(
        pid=st.sampled_from(sorted(PEERS)),
        family=st.sampled_from(BOTH),
        picks=st.sets(st.integers(0, 3)),  # empty: a withdraw-only UPDATE
        attrs=st.sampled_from(ATTRS),
        withdraw=st.sets(st.integers(0, 3)),
        reload=st.booleans(),
    )
    def update(
        self,
        pid: str,
        family: Family,
        picks: set[int],
        attrs: PathAttributes,
        withdraw: set[int],
        reload: bool,
    ) -> None:
        """An UPDATE, then (with `reload`, for an iBGP peer) a soft reload of its role."""
        mp = self.model.get(pid)
        if mp is None or not mp.up:
            return
        pool = PREFIXES[family]
        gone = [pool[i % len(pool)] for i in sorted(withdraw)]
        added = [pool[i % len(pool)] for i in sorted(picks)]
        nh = NEXT_HOPS[family]
        changes = self.table.receive(pid, family, added, attrs, nh, gone)
        for prefix in gone:
            mp.announced.pop((family, prefix), None)
        for prefix in added:
            mp.announced[(family, prefix)] = (attrs, nh, False)
        self._flush(changes)
        if reload and self.roles[pid].ibgp:
            self._toggle_rr_client(pid)

    @rule(
        family=st.sampled_from(BOTH),
        i=st.integers(0, 3),
        attrs=st.sampled_from(ATTRS[:3] + ATTRS[-2:]),
    )
    def originate(self, family: Family, i: int, attrs: PathAttributes) -> None:
        prefix = PREFIXES[family][i % len(PREFIXES[family])]
        self._flush(self.table.originate(family, prefix, attrs))
        self.local[(family, prefix)] = (attrs, b"")

    @rule(family=st.sampled_from(BOTH), i=st.integers(0, 3))
    def withdraw_local(self, family: Family, i: int) -> None:
        prefix = PREFIXES[family][i % len(PREFIXES[family])]
        self._flush(self.table.withdraw_local(family, prefix))
        self.local.pop((family, prefix), None)

    def _toggle_rr_client(self, pid: str) -> None:
        """A soft reload makes an iBGP peer a route-reflector client, or no longer one."""
        role = self.roles[pid]
        self.roles[pid] = replace(role, rr_client=not role.rr_client)
        self._flush(self.table.update_peer(self.roles[pid]))
        # As the speaker does after a role change: every peer brought in line over every key
        # (the changed peer's export, and other peers' exports of its re-derived paths).
        keys = list(self.table.decisions)
        for other, mp in self.model.items():
            if mp.up:
                self._apply(other, self.table.outgoing(other, keys))

    @rule(pid=st.sampled_from(sorted(PEERS)))
    def swap_export_policy(self, pid: str) -> None:
        """A new export policy (blocks only, or none): the peer changes update group; a
        resync over every key gives it the difference."""
        mp = self.model.get(pid)
        if mp is None or not mp.up:
            return
        policy = ACCEPT_ALL if self.export.get(pid, ACCEPT_ALL) is BLOCKS_ONLY else BLOCKS_ONLY
        self.export[pid] = policy
        self.table.set_export_policy(pid, policy)
        self._apply(pid, self.table.outgoing(pid, list(self.table.decisions)))

    @precondition(lambda self: bool(self.model))
    @rule()
    def full_table_refresh(self) -> None:
        """RFC 2918 route refresh: the whole table again, from an empty Adj-RIB-Out."""
        for pid, mp in self.model.items():
            if mp.up:
                self.replica[pid] = {}
                self._apply(pid, self.table.full_table(pid))

    # -- invariants ---------------------------------------------------------------------
    @invariant()
    def candidates_match_the_model(self) -> None:
        assert self.table.candidates == self._expected_candidates()

    @invariant()
    def decisions_are_decide_over_candidates(self) -> None:
        expected = {}
        for key, cands in self.table.candidates.items():
            d = decide(list(cands.values()), 2)
            expected[key] = (d.best, d.reason, d.multipath)
        got = {k: (d.best, d.reason, d.multipath) for k, d in self.table.decisions.items()}
        assert got == expected

    @invariant()
    def adj_rib_out_is_the_export_of_every_best_path(self) -> None:
        for pid, mp in self.model.items():
            if not mp.up:
                continue
            peer = self.roles[pid]
            policy = self.export.get(pid, ACCEPT_ALL)
            expected: dict[RouteKey, Exported] = {}
            for key, d in self.table.decisions.items():
                assert d.best is not None
                if key[0] not in peer.families:
                    continue
                out = export_path(d.best, peer, key[0], router_id=ROUTER_ID, cluster_id=ROUTER_ID)
                if out is None:
                    continue
                attrs = policy.evaluate(key[0], key[1], out.attrs)
                if attrs is not None:
                    expected[key] = Exported(attrs, out.next_hop)
            assert self.replica[pid] == expected
            assert self.table.peers[pid].adj_out == expected
            assert dict(self.table.peers[pid].adj_out) == expected

    @invariant()
    def peers_share_a_group_exactly_when_their_export_roles_are_equal(self) -> None:
        up = [pid for pid, mp in self.model.items() if mp.up]
        for a in up:
            for b in up:
                same = group_key(self.roles[a], self.export.get(a, ACCEPT_ALL)) == group_key(
                    self.roles[b], self.export.get(b, ACCEPT_ALL)
                )
                assert (self.table.peers[a].group is self.table.peers[b].group) == same
        for group in self.table.groups.values():
            for name, member in group.members.items():
                named = sum(name in e.withheld for e in group.adj_out.values())
                assert member.withheld_count == named


TableAgainstModel.TestCase.settings = settings(stateful_step_count=25)
test_routing_table_against_model = TableAgainstModel.TestCase
