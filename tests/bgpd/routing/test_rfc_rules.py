"""Import, decision and export rules, each test named after the RFC section it checks."""

from __future__ import annotations

from bgpd.core.routing.decision import decide
from bgpd.core.routing.export import export_path
from bgpd.core.routing.paths import LOCAL, Path, RoutingPeer
from bgpd.core.routing.policy import Policy, Term
from bgpd.core.routing.table import RoutingTable
from bgpd.wire.attributes import AS_SEQUENCE, PathAttributes
from bgpd.wire.context import IPV4_UNICAST, IPV6_UNICAST
from bgpd.wire.prefix import make_prefix

RID = 0x0A000001
AS = 65000
BOTH = (IPV4_UNICAST, IPV6_UNICAST)
P4 = make_prefix("10.244.1.0/26")
P6 = make_prefix("2001:db8:1::/64")
GLOBAL6 = bytes.fromhex("20010db8000000000000000000000009")
LINK_LOCAL6 = bytes.fromhex("fe800000000000000000000000000009")


def peer(pid: str, asn: int = AS, n: int = 2, **kw: object) -> RoutingPeer:
    return RoutingPeer(
        id=pid,
        name=pid,
        local_as=AS,
        remote_as=asn,
        router_id=n,
        address=bytes((10, 0, 0, n)),
        local_address=bytes((10, 0, 0, 1)),
        families=kw.pop("families", BOTH),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def learned(source: str, attrs: PathAttributes, *, ibgp: bool, nh: bytes = bytes(4)) -> Path:
    return Path(source, attrs, nh, ibgp=ibgp, router_id=7, peer_address=bytes((10, 0, 0, 7)))


def exp(path: Path, to: RoutingPeer, family: tuple[int, int] = IPV4_UNICAST):  # type: ignore[no-untyped-def]
    return export_path(path, to, family, router_id=RID, cluster_id=RID)


EBGP_ATTRS = PathAttributes(origin=0, as_path=((AS_SEQUENCE, (65001,)),), med=30)


def test_rfc4271_5_1_5_local_pref_from_ebgp_is_ignored_but_import_policy_sets_it() -> None:
    table = RoutingTable(RID, AS, max_paths=1)
    table.add_peer(peer("e1", 65001, 3))
    table.add_peer(peer("e2", 65002, 4), import_policy=Policy("lp", (Term(set_local_pref=120),)))
    table.add_peer(peer("i", AS, 5))
    # e1 claims LOCAL_PREF 500 (and a shorter path): it MUST be ignored, so e2's path,
    # given 120 by our own import policy, wins on LOCAL_PREF.
    table.receive("e1", IPV4_UNICAST, [P4], EBGP_ATTRS._replace(local_pref=500), bytes(4))
    long_path = PathAttributes(origin=0, as_path=((AS_SEQUENCE, (65002, 65009)),))
    table.receive("e2", IPV4_UNICAST, [P4], long_path, bytes(4))
    d = table.decisions[(IPV4_UNICAST, P4)]
    assert d.best is not None and d.best.source == "e2" and d.reason == "local_pref"
    assert table.candidates[(IPV4_UNICAST, P4)]["e1"].attrs.local_pref is None


def test_rfc4271_5_1_5_ibgp_gets_local_pref_100_by_default_ebgp_gets_none() -> None:
    path = learned("e1", EBGP_ATTRS, ibgp=False)
    to_ibgp = exp(path, peer("i"))
    assert to_ibgp is not None and to_ibgp.attrs.local_pref == 100
    ibgp_path = learned("i", PathAttributes(origin=0, as_path=(), local_pref=300), ibgp=True)
    to_ebgp = exp(ibgp_path, peer("e2", 65002, 4))
    assert to_ebgp is not None and to_ebgp.attrs.local_pref is None


def test_rfc4456_8_originator_id_only_on_reflected_routes() -> None:
    client = peer("c", rr_client=True, n=9)
    local = Path(LOCAL, PathAttributes(origin=0, as_path=()), b"", router_id=RID)
    from_ebgp = learned("e1", EBGP_ATTRS, ibgp=False)
    for path in (local, from_ebgp):
        out = exp(path, client)
        assert out is not None
        assert out.attrs.originator_id is None and out.attrs.cluster_list == ()
    reflected = exp(learned("i", PathAttributes(origin=0, as_path=()), ibgp=True), client)
    assert reflected is not None
    assert reflected.attrs.originator_id == 7 and reflected.attrs.cluster_list == (RID,)
    # ... and a route whose ORIGINATOR_ID is the client itself is not sent back to it.
    own = learned("i", PathAttributes(origin=0, as_path=(), originator_id=9), ibgp=True)
    assert exp(own, client) is None


def test_rfc4271_5_1_4_med_not_passed_to_another_as_but_kept_inside() -> None:
    path = learned("e1", EBGP_ATTRS, ibgp=False)
    to_ibgp = exp(path, peer("i"))
    to_ebgp = exp(path, peer("e2", 65002, 4))
    assert to_ibgp is not None and to_ibgp.attrs.med == 30
    assert to_ebgp is not None and to_ebgp.attrs.med is None
    own = Path(LOCAL, PathAttributes(origin=0, as_path=(), med=5), b"", router_id=RID)
    out = exp(own, peer("e2", 65002, 4))
    assert out is not None and out.attrs.med == 5


def test_rfc2545_3_link_local_next_hop_not_passed_on() -> None:
    nh = GLOBAL6 + LINK_LOCAL6
    path = learned("i", PathAttributes(origin=0, as_path=()), ibgp=True, nh=nh)
    out = exp(path, peer("c", rr_client=True), IPV6_UNICAST)
    assert out is not None and out.next_hop == GLOBAL6 and out.attrs.next_hop is None
    keep = exp(path._replace(ibgp=False), peer("e", 65003, next_hop="keep"), IPV6_UNICAST)
    assert keep is not None and keep.next_hop == GLOBAL6


def test_rfc4291_2_5_5_2_next_hop_self_for_ipv6_over_an_ipv4_session() -> None:
    path = learned("e1", EBGP_ATTRS, ibgp=False, nh=GLOBAL6)
    out = exp(path, peer("e2", 65002, 4), IPV6_UNICAST)
    assert out is not None and out.next_hop == bytes(10) + b"\xff\xff" + bytes((10, 0, 0, 1))


def test_rfc4760_8_family_not_negotiated_is_neither_imported_nor_exported() -> None:
    table = RoutingTable(RID, AS)
    table.add_peer(peer("v4only", families=(IPV4_UNICAST,)))
    table.add_peer(peer("both", n=3))
    assert table.receive("v4only", IPV6_UNICAST, [P6], EBGP_ATTRS, GLOBAL6) == []
    assert table.peers["v4only"].rejected == 1 and not table.candidates
    table.receive("both", IPV6_UNICAST, [P6], PathAttributes(origin=0, as_path=()), GLOBAL6)
    assert (IPV6_UNICAST, P6) in table.decisions
    assert not table.outgoing("v4only", [(IPV6_UNICAST, P6)])
    assert not table.full_table("v4only")


def test_ecmp_one_path_per_next_hop_best_first_in_any_arrival_order() -> None:
    """Multipath for felixd: two reflectors reflecting one client's route are one next hop."""
    attrs = PathAttributes(origin=0, as_path=(), originator_id=20, cluster_list=(1,))
    via_rr1 = Path("rr1", attrs, bytes((10, 0, 0, 20)), ibgp=True, peer_address=b"\x01")
    via_rr2 = Path("rr2", attrs, bytes((10, 0, 0, 20)), ibgp=True, peer_address=b"\x02")
    other = Path(
        "n3", attrs._replace(originator_id=30), bytes((10, 0, 0, 30)), ibgp=True, router_id=30
    )
    for order in ([via_rr1, via_rr2, other], [other, via_rr2, via_rr1]):
        d = decide(order, max_paths=4)
        assert d.multipath == (via_rr1, other)


def test_rfc4724_4_2_stale_paths_replaced_as_they_return_and_the_rest_swept() -> None:
    table = RoutingTable(RID, AS)
    table.add_peer(peer("i"))
    p2 = make_prefix("10.244.2.0/26")
    table.receive("i", IPV4_UNICAST, [P4, p2], PathAttributes(origin=0, as_path=()), bytes(4))
    assert table.remove_peer("i", keep_stale=True) == []
    assert all(d.best is not None and d.best.stale for d in table.decisions.values())
    table.add_peer(peer("i"))
    table.receive("i", IPV4_UNICAST, [P4], PathAttributes(origin=0, as_path=()), bytes(4))
    gone = table.sweep_stale("i")
    assert [c.key for c in gone] == [(IPV4_UNICAST, p2)]
    d = table.decisions[(IPV4_UNICAST, P4)]
    assert d.best is not None and not d.best.stale


def test_rfc1997_well_known_communities_on_export() -> None:
    from bgpd.wire.attributes import NO_ADVERTISE, NO_EXPORT, NO_EXPORT_SUBCONFED

    ibgp, client, ebgp = peer("i", n=5), peer("c", n=6, rr_client=True), peer("e", 65002, 4)
    local = Path(LOCAL, PathAttributes(origin=0, as_path=()), b"", router_id=RID)
    from_ebgp = learned("e1", EBGP_ATTRS, ibgp=False)
    from_client = Path(
        "c2",
        PathAttributes(origin=0, as_path=()),
        bytes(4),
        ibgp=True,
        from_client=True,
        router_id=7,
        peer_address=bytes((10, 0, 0, 7)),
    )
    for path in (local, from_ebgp, from_client):
        for community in (NO_EXPORT, NO_EXPORT_SUBCONFED):
            tagged = replace_communities(path, (0xFDE80001, community))
            # Not to eBGP (no confederations: every eBGP peer is outside it) ...
            assert exp(tagged, ebgp) is None
            # ... but still to iBGP peers and reflector clients.
            for to in (ibgp, client):
                out = exp(tagged, to)
                assert out is not None and community in out.attrs.communities
        no_advertise = replace_communities(path, (NO_ADVERTISE,))
        for to in (ibgp, client, ebgp):
            assert exp(no_advertise, to) is None
        # Other communities (and none) do not withhold anything.
        assert exp(replace_communities(path, (0xFFFF029A,)), ebgp) is not None
        assert exp(path, ebgp) is not None


def test_rfc1997_no_export_table_groups() -> None:
    """Through the table's update groups: the two iBGP peers get a NO_EXPORT route, the two
    eBGP peers (of different ASes, one group) do not; once the community is gone they do."""
    from bgpd.wire.attributes import NO_EXPORT

    table = RoutingTable(RID, AS, max_paths=1)
    peers = {"i": peer("i", n=5), "i2": peer("i2", n=6), "e": peer("e", 65002, 4)}
    peers["e2"] = peer("e2", 65003, 3)
    for pid, p in peers.items():
        table.add_peer(p)
        table.full_table(pid)
    key = (IPV4_UNICAST, P4)
    attrs = PathAttributes(origin=0, as_path=(), communities=(NO_EXPORT,))

    def sent(pid: str, changes: list) -> bool:  # type: ignore[type-arg]
        work = table.outgoing(pid, [c.key for c in changes])
        return any(P4 in ps for (_, _), ps in work.announce.items())

    changes = table.originate(IPV4_UNICAST, P4, attrs)
    assert [sent(pid, changes) for pid in peers] == [True, True, False, False]
    assert key in table.peers["i"].adj_out and key not in table.peers["e"].adj_out
    changes = table.originate(IPV4_UNICAST, P4, attrs._replace(communities=()))
    assert [sent(pid, changes) for pid in peers] == [True, True, True, True]
    assert key in table.peers["e2"].adj_out


def replace_communities(path: Path, communities: tuple[int, ...]) -> Path:
    return path._replace(attrs=path.attrs._replace(communities=communities))
