"""The table's compact storage: a prefix with one candidate keeps only its Decision, and a
candidates dict exists only while a prefix has two or more (RFC 4271 §9.1 gives the same
decisions either way; the dict-model test checks that, this one the storage paths)."""

from __future__ import annotations

from bgpd.core.routing.paths import RoutingPeer
from bgpd.core.routing.table import RoutingTable
from bgpd.wire.attributes import AS_SEQUENCE, PathAttributes
from bgpd.wire.context import IPV4_UNICAST
from bgpd.wire.prefix import make_prefix

P = [make_prefix(f"10.0.{i}.0/24") for i in range(3)]
KEYS = [(IPV4_UNICAST, p) for p in P]


def _peer(pid: str, asn: int, n: int) -> RoutingPeer:
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


def _attrs(*asns: int) -> PathAttributes:
    return PathAttributes(origin=0, as_path=((AS_SEQUENCE, asns),))


def _table() -> RoutingTable:
    table = RoutingTable(1, 65000, max_paths=2)
    table.add_peer(_peer("a", 65001, 2))
    table.add_peer(_peer("b", 65002, 3))
    return table


def test_single_candidate_then_two_then_one_again() -> None:
    table = _table()
    nh = bytes((10, 0, 0, 2))
    # One UPDATE, every prefix new: the learning fast path, one shared Decision, no dicts.
    changes = table.receive("a", IPV4_UNICAST, P, _attrs(65001), nh)
    assert [c.key for c in changes] == KEYS
    assert not table._multi
    assert len({id(table.decisions[k]) for k in KEYS}) == 1
    assert table.candidates[KEYS[0]] == {"a": table.decisions[KEYS[0]].best}
    # A second candidate (shorter path from b wins) promotes the prefix to a dict.
    changes = table.receive("b", IPV4_UNICAST, P[:1], _attrs(65002), bytes((10, 0, 0, 3)))
    assert [c.key for c in changes] == KEYS[:1]
    assert set(table._multi) == {KEYS[0]}
    assert set(table.candidates[KEYS[0]]) == {"a", "b"}
    assert table.decisions[KEYS[0]].best.source == "a"  # type: ignore[union-attr]
    assert table.decisions[KEYS[0]].reason == "router_id"
    # a withdraws: back to one candidate, the dict goes, b's path is the only path.
    changes = table.receive("a", IPV4_UNICAST, (), None, b"", P[:1])
    assert [c.key for c in changes] == KEYS[:1]
    assert not table._multi
    d = table.decisions[KEYS[0]]
    assert d.best is not None and d.best.source == "b" and d.reason == "only path"
    assert table.candidates[KEYS[0]] == {"b": d.best}
    # a's other prefixes go on the withdrawal fast path (no prefix with two candidates).
    changes = table.receive("a", IPV4_UNICAST, (), None, b"", [*P[1:], P[1]])
    assert [(c.key, c.decision.best) for c in changes] == [(k, None) for k in KEYS[1:]]
    assert set(table.decisions) == {KEYS[0]}
    assert not table.peers["a"].adj_in


def test_replacement_by_the_same_peer_stays_single() -> None:
    table = _table()
    nh = bytes((10, 0, 0, 2))
    table.receive("a", IPV4_UNICAST, P[:1], _attrs(65001), nh)
    changes = table.receive("a", IPV4_UNICAST, P[:1], _attrs(65001, 65009), nh)
    assert [c.key for c in changes] == KEYS[:1]
    assert not table._multi
    assert table.candidates[KEYS[0]]["a"].attrs.as_path == ((AS_SEQUENCE, (65001, 65009)),)
    # Unchanged re-announcement: no change reported.
    assert table.receive("a", IPV4_UNICAST, P[:1], _attrs(65001, 65009), nh) == []


def test_session_down_demotes_and_removes() -> None:
    table = _table()
    table.receive("a", IPV4_UNICAST, P, _attrs(65001), bytes((10, 0, 0, 2)))
    table.receive("b", IPV4_UNICAST, P[:2], _attrs(65002, 1), bytes((10, 0, 0, 3)))
    assert set(table._multi) == set(KEYS[:2])
    changes = table.remove_peer("a")
    assert {c.key for c in changes} == set(KEYS)
    assert not table._multi
    assert set(table.decisions) == set(KEYS[:2])
    assert all(table.decisions[k].reason == "only path" for k in KEYS[:2])
