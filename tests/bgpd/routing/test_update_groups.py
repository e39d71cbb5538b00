"""Update groups: peers with one export outcome share one Adj-RIB-Out and one computation
per change (issue 5; the dict-model test checks every member's table after every step, this
one the sharing itself and the membership paths)."""

from __future__ import annotations

from bgpd.core.routing.paths import RoutingPeer
from bgpd.core.routing.policy import ACCEPT_ALL, Policy, PrefixMatch, Term
from bgpd.core.routing.table import RoutingTable
from bgpd.wire.attributes import AS_SEQUENCE, PathAttributes
from bgpd.wire.context import IPV4_UNICAST
from bgpd.wire.prefix import make_prefix

P = [make_prefix(f"10.0.{i}.0/24") for i in range(4)]
KEYS = [(IPV4_UNICAST, p) for p in P]
NH = bytes((10, 0, 0, 9))
ATTRS = PathAttributes(origin=0, as_path=((AS_SEQUENCE, (65001,)),))
NOT_10_0_0 = Policy("out", (Term(prefixes=(PrefixMatch.parse("10.0.0.0/24"),), action="reject"),))


def _peer(pid: str, n: int, asn: int = 65001) -> RoutingPeer:
    return RoutingPeer(
        id=pid,
        name=pid,
        local_as=65000,
        remote_as=asn,
        router_id=n,
        address=bytes((10, 0, 0, n)),
        local_address=bytes((10, 0, 0, 1)),
        families=(IPV4_UNICAST,),
    )


def _up(table: RoutingTable, pid: str, n: int, asn: int = 65001) -> None:
    table.add_peer(_peer(pid, n, asn))
    table.full_table(pid)


def test_members_share_one_computation_and_the_source_is_left_out() -> None:
    table = RoutingTable(1, 65000)
    for pid, n in (("a", 2), ("b", 3), ("c", 4)):
        _up(table, pid, n)
    _up(table, "other-as", 5, asn=65002)  # same group: the neighbour AS changes nothing sent
    table.add_peer(_peer("ibgp", 6, asn=65000))
    assert len(table.groups) == 2
    changes = table.receive("a", IPV4_UNICAST, P, ATTRS, NH)
    keys = [c.key for c in changes]
    work_b = table.outgoing("b", keys)
    work_c = table.outgoing("c", keys)
    assert work_b is work_c is table.outgoing("other-as", keys)  # computed once, handed out
    assert sorted(p for ps in work_b.announce.values() for p in ps) == sorted(P)
    # RFC 4271 §9.1.3: not back to the peer it came from; its view lacks the entries.
    assert not table.outgoing("a", keys)
    assert dict(table.peers["a"].adj_out) == {}
    assert dict(table.peers["b"].adj_out) == dict(table.peers["c"].adj_out)
    # The speaker's skip check: a holds none of them, b all.
    assert table.peers["a"].adj_out.keys().isdisjoint(keys)
    assert not table.peers["b"].adj_out.keys().isdisjoint(keys)
    assert KEYS[0] not in table.peers["a"].adj_out and KEYS[0] in table.peers["b"].adj_out
    assert set(table.peers["b"].adj_out) == set(KEYS)
    # a withdraws: b and c get the withdrawal, a nothing.
    changes = table.receive("a", IPV4_UNICAST, (), None, b"", P[:1])
    keys = [c.key for c in changes]
    assert table.outgoing("b", keys).withdraw == {IPV4_UNICAST: P[:1]}
    assert table.outgoing("c", keys).withdraw == {IPV4_UNICAST: P[:1]}
    assert not table.outgoing("a", keys)


def test_late_member_gets_the_groups_table() -> None:
    table = RoutingTable(1, 65000)
    _up(table, "src", 2, asn=65009)
    _up(table, "b", 3)
    changes = table.receive("src", IPV4_UNICAST, P, ATTRS, NH)
    table.outgoing("b", [c.key for c in changes])
    table.add_peer(_peer("late", 4))
    assert table.peers["late"].group is table.peers["b"].group
    work = table.full_table("late")
    group_table = table.peers["b"].group.adj_out  # type: ignore[union-attr]
    assert {(f, p): out for (f, out), ps in work.announce.items() for p in ps} == dict(
        table.peers["b"].adj_out
    )
    # The very objects of the group's table: nothing exported again.
    assert all(out is group_table[(f, ps[0])].exported for (f, out), ps in work.announce.items())


def test_joining_a_group_whose_only_member_was_the_source() -> None:
    """Entries withheld from every member are not kept; a newcomer still gets them."""
    table = RoutingTable(1, 65000)
    _up(table, "a", 2)
    changes = table.receive("a", IPV4_UNICAST, P, ATTRS, NH)
    assert not table.outgoing("a", [c.key for c in changes])
    assert not table.peers["a"].group.adj_out  # type: ignore[union-attr]
    table.add_peer(_peer("b", 3))
    work = table.full_table("b")
    assert sorted(p for ps in work.announce.values() for p in ps) == sorted(P)
    assert dict(table.peers["a"].adj_out) == {}
    # a leaves: nothing is withheld any more, and its routes are withdrawn from b.
    changes = table.remove_peer("a")
    group = table.peers["b"].group
    assert group is not None and not any(e.withheld for e in group.adj_out.values())
    assert table.outgoing("b", [c.key for c in changes]).withdraw == {IPV4_UNICAST: P}
    assert not group.adj_out


def test_policy_change_moves_a_member_to_another_group() -> None:
    table = RoutingTable(1, 65000)
    _up(table, "src", 2, asn=65009)
    _up(table, "b", 3)
    _up(table, "c", 4)
    changes = table.receive("src", IPV4_UNICAST, P, ATTRS, NH)
    keys = [c.key for c in changes]
    table.outgoing("b", keys)
    table.outgoing("c", keys)
    before = table.peers["c"].group
    table.set_export_policy("c", NOT_10_0_0)
    assert table.peers["c"].group is not before and table.peers["b"].group is before
    work = table.outgoing("c", list(table.decisions))
    assert work.withdraw == {IPV4_UNICAST: P[:1]} and not work.announce
    assert set(table.peers["c"].adj_out) == set(KEYS[1:])
    assert set(table.peers["b"].adj_out) == set(KEYS)
    # Back to accepting all: c joins b's group again, the difference is its pending work.
    table.set_export_policy("c", ACCEPT_ALL)
    assert table.peers["c"].group is table.peers["b"].group
    work = table.outgoing("c", list(table.decisions))
    assert list(work.announce.values()) == [P[:1]] and not work.withdraw


def _announced(work: object) -> set[bytes]:
    return {p for ps in work.announce.values() for p in ps}  # type: ignore[attr-defined]


def test_one_batch_with_entries_withheld_from_different_members() -> None:
    """x (iBGP, another group) loses its paths: P0 falls back to b's, P1 to c's. b must get a
    withdrawal of P0 (its own path now) and c's path for P1, and the reverse for c."""
    table = RoutingTable(1, 65000)
    for pid, n in (("b", 3), ("c", 4), ("d", 5)):
        _up(table, pid, n)
    _up(table, "x", 6, asn=65000)
    table.receive("b", IPV4_UNICAST, P[:1], ATTRS, NH)
    table.receive("c", IPV4_UNICAST, P[1:2], ATTRS, NH)
    preferred = PathAttributes(origin=0, as_path=(), local_pref=200)
    changes = table.receive("x", IPV4_UNICAST, P[:2], preferred, NH)
    for pid in ("b", "c", "d"):
        table.outgoing(pid, [c.key for c in changes])
    changes = table.remove_peer("x")
    keys = [c.key for c in changes]
    work_b, work_c, work_d = (table.outgoing(pid, keys) for pid in ("b", "c", "d"))
    assert work_b.withdraw == {IPV4_UNICAST: P[:1]} and _announced(work_b) == {P[1]}
    assert work_c.withdraw == {IPV4_UNICAST: P[1:2]} and _announced(work_c) == {P[0]}
    assert not work_d.withdraw and _announced(work_d) == set(P[:2])


def test_one_batch_where_only_who_is_left_out_changes() -> None:
    """a and b send P0 with one attribute set (equal exports; a wins on router id). a's
    UPDATE withdraws P0 and announces P1: for P0 only the member left out changes (a gets
    it, b loses it: nothing for d), P1 is new for b and d."""
    table = RoutingTable(1, 65000)
    for pid, n in (("a", 2), ("b", 3), ("d", 5)):
        _up(table, pid, n)
    for pid in ("a", "b"):
        keys = [c.key for c in table.receive(pid, IPV4_UNICAST, P[:1], ATTRS, NH)]
        for member in ("a", "b", "d"):
            table.outgoing(member, keys)
    changes = table.receive("a", IPV4_UNICAST, P[1:2], ATTRS, NH, withdrawn=P[:1])
    keys = [c.key for c in changes]
    work_a, work_b, work_d = (table.outgoing(pid, keys) for pid in ("a", "b", "d"))
    assert not work_a.withdraw and _announced(work_a) == {P[0]}
    assert work_b.withdraw == {IPV4_UNICAST: P[:1]} and _announced(work_b) == {P[1]}
    assert not work_d.withdraw and _announced(work_d) == {P[1]}
