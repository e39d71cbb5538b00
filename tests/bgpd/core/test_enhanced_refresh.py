"""RFC 7313 (enhanced route refresh) and RFC 2918 in the session core: the capability is
negotiated when both sides send it; BoRR/EoRR are sent only then (§3) and, received, reach the
shell only then (§5); a ROUTE-REFRESH for a family that was not negotiated, or with an unknown
subtype, is ignored (RFC 2918 §4, RFC 7313 §5)."""

from __future__ import annotations

from bgpd.core.effects import RefreshRequested
from bgpd.core.events import State
from bgpd.core.peer import PeerCore
from bgpd.wire.codec import encode_message
from bgpd.wire.context import DEFAULT
from bgpd.wire.messages import REFRESH_BORR, REFRESH_EORR, REFRESH_NORMAL, RouteRefresh
from tests.bgpd.core.harness import Net, pair, params

A_ID, B_ID = 0x0A000001, 0x0A000002


def _pair(err_a: bool, err_b: bool) -> tuple[Net, PeerCore, PeerCore]:
    net, a, b = pair(
        params(A_ID, enhanced_route_refresh=err_a),
        params(B_ID, passive=True, enhanced_route_refresh=err_b),
    )
    a.start(net.now)
    b.start(net.now)
    net.advance(1.0)
    assert a.state is State.ESTABLISHED and b.state is State.ESTABLISHED
    return net, a, b


def _refreshes(net: Net, tag: str) -> list[tuple[int, int, int]]:
    return [
        (e.afi, e.safi, e.subtype) for _, e in net.events[tag] if isinstance(e, RefreshRequested)
    ]


def test_rfc7313_3_borr_and_eorr_flow_when_both_negotiated() -> None:
    net, a, _ = _pair(True, True)
    n = a.primary.negotiated
    assert n is not None and n.enhanced_route_refresh
    assert "enhanced-route-refresh" in n.capability_names()
    for subtype in (REFRESH_NORMAL, REFRESH_BORR, REFRESH_EORR):
        assert a.primary.send_route_refresh(1, 1, subtype)
    net.advance(0.1)
    assert _refreshes(net, "b") == [(1, 1, 0), (1, 1, 1), (1, 1, 2)]


def test_rfc7313_3_no_borr_to_a_peer_without_the_capability() -> None:
    net, a, _ = _pair(True, False)
    n = a.primary.negotiated
    assert n is not None and not n.enhanced_route_refresh
    assert a.primary.send_route_refresh(1, 1)  # a plain RFC 2918 request still goes
    assert not a.primary.send_route_refresh(1, 1, REFRESH_BORR)
    assert not a.primary.send_route_refresh(1, 1, REFRESH_EORR)
    net.advance(0.1)
    assert _refreshes(net, "b") == [(1, 1, 0)]


def test_rfc7313_5_and_rfc2918_4_unusable_refreshes_are_ignored() -> None:
    net, a, b = _pair(False, True)
    # Injected straight into B's session: subtypes 1/2 without the capability negotiated, an
    # unknown subtype, and a family that was not negotiated (IPv6) are all ignored, and the
    # session stays up (RFC 7313 §5: "MUST ignore").
    s = b.primary
    for msg in (
        RouteRefresh(1, 1, REFRESH_BORR),
        RouteRefresh(1, 1, REFRESH_EORR),
        RouteRefresh(1, 1, 7),
        RouteRefresh(2, 1, REFRESH_NORMAL),
        RouteRefresh(1, 1, REFRESH_NORMAL),
    ):
        s.receive_data(encode_message(msg, DEFAULT), net.now)
    net.advance(0.1)
    assert _refreshes(net, "b") == [(1, 1, 0)]
    assert b.state is State.ESTABLISHED and a.state is State.ESTABLISHED
