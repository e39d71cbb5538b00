"""RFC 4724 §4.2 in the pure routing core: after a session drop kept for graceful restart, the
Loc-RIB best path of the restarting peer's prefixes is marked stale (the API and the best-path
stream read the decisions, not the candidates)."""

from __future__ import annotations

from bgpd.core.routing.paths import RoutingPeer
from bgpd.core.routing.table import RoutingTable
from bgpd.wire.attributes import PathAttributes
from bgpd.wire.context import IPV4_UNICAST
from bgpd.wire.prefix import make_prefix


def _table_with_one_route() -> tuple[RoutingTable, tuple[object, ...]]:
    table = RoutingTable(0x7F00000A, 65000, None)
    peer = RoutingPeer(
        id="p",
        name="p",
        local_as=65000,
        remote_as=65000,
        router_id=0x7F000033,
        address=bytes([127, 0, 0, 51]),
        local_address=bytes([127, 0, 0, 10]),
        rr_client=False,
        next_hop="auto",
        families=(IPV4_UNICAST,),
    )
    table.add_peer(peer)
    prefix = make_prefix("10.51.0.0/24")
    attrs = PathAttributes(origin=0, as_path=(), local_pref=100)
    table.receive("p", IPV4_UNICAST, [prefix], attrs, bytes([127, 0, 0, 51]))
    return table, (IPV4_UNICAST, prefix)


def test_rfc4724_4_2_remove_peer_keep_stale_marks_loc_rib_best_stale() -> None:
    table, key = _table_with_one_route()
    table.remove_peer("p", keep_stale=True)
    best = table.decisions[key].best  # type: ignore[index]
    assert best is not None and best.stale


def test_rfc4724_4_2_candidates_are_marked_stale_on_keep() -> None:
    table, key = _table_with_one_route()
    table.remove_peer("p", keep_stale=True)
    assert table.candidates[key]["p"].stale  # type: ignore[index]
