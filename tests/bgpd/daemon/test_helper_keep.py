"""When the helper keeps a peer's routes stale (RFC 4724 §4.2, RFC 8538 §4): `keeps_stale`
as a table, and through the routing shell (a kept peer's routes stay, a flushed peer's go)."""

from __future__ import annotations

import dataclasses

import pytest

from bgpd.core.effects import DownKind, DownReason
from bgpd.daemon.sink_state import peer_id
from bgpd.daemon.stale_routes import keeps_stale
from bgpd.wire.capabilities import GracefulRestart
from bgpd.wire.errors import ADMINISTRATIVE_SHUTDOWN, CEASE, HARD_RESET, HOLD_TIMER_EXPIRED
from tests.bgpd.routing_interop.test_sink import (
    FakeSender,
    announcement,
    negotiated,
    peer,
    sink_with_peers,
)

SHUT = (CEASE, ADMINISTRATIVE_SHUTDOWN)
HARD = (CEASE, HARD_RESET)
HOLD = (HOLD_TIMER_EXPIRED, 0)


@pytest.mark.parametrize(
    ("gr", "n", "kind", "code", "keep"),
    [
        # RFC 4724 §4.2: the TCP session ends without a NOTIFICATION
        (True, False, DownKind.PEER_CLOSED, (0, 0), True),
        (True, False, DownKind.SOCKET_ERROR, (0, 0), True),
        (False, True, DownKind.PEER_CLOSED, (0, 0), False),  # no GR: flush
        # without N, any NOTIFICATION (hold timer expiry too) flushes
        (True, False, DownKind.NOTIFICATION_RECEIVED, SHUT, False),
        (True, False, DownKind.HOLD_TIMER_EXPIRED, HOLD, False),
        # RFC 8538 §4: with N, a NOTIFICATION either way keeps them, unless a Hard Reset
        (True, True, DownKind.NOTIFICATION_RECEIVED, SHUT, True),
        (True, True, DownKind.HOLD_TIMER_EXPIRED, HOLD, True),
        (True, True, DownKind.NOTIFICATION_SENT, (3, 1), True),
        (True, True, DownKind.NOTIFICATION_RECEIVED, HARD, False),  # malformed: no cause
        (True, True, DownKind.NOTIFICATION_RECEIVED, (*SHUT, True), False),
        (True, True, DownKind.ADMIN_DOWN, (*SHUT, True), False),
    ],
)
def test_rfc4724_4_2_and_rfc8538_4_helper_keeps_or_flushes(
    gr: bool, n: bool, kind: DownKind, code: tuple[int, ...], keep: bool
) -> None:
    neg = dataclasses.replace(negotiated(1, gr=gr), gr_notification=n)
    reason = DownReason(kind, 0.0, code[0], code[1], hard_reset=len(code) > 2)
    assert keeps_stale(neg, reason) is keep


async def test_rfc8538_hold_timer_expiry_with_n_keeps_routes_stale_hard_reset_flushes() -> None:
    sink, _ = sink_with_peers(2)
    for n, reason, stays in (
        (1, DownReason(DownKind.HOLD_TIMER_EXPIRED, 0.0, *HOLD), True),
        (3, DownReason(DownKind.NOTIFICATION_RECEIVED, 0.0, *HARD), False),
    ):
        neg = dataclasses.replace(negotiated(n, gr=True), gr_notification=True)
        sink.on_session_up(peer(n), neg, FakeSender())
        sink.on_update(peer(n), announcement(n, 2))
        sink.on_session_down(peer(n), reason)
        routes = sink.rib(peer=peer(n).name)["routes"]
        assert isinstance(routes, list)
        assert (len(routes) == 2) is stays
        assert all(r["stale"] for r in routes)
    for timer in sink.stale_timers.values():
        timer.cancel()


def _gr(forwarding: bool) -> GracefulRestart:
    return GracefulRestart(restart_time=60, families=((1, 1, 0x80 if forwarding else 0),))


async def test_rfc4724_4_2_returning_peer_without_f_bit_or_gr_has_its_stale_routes_swept() -> None:
    for cap, swept in ((_gr(True), False), (_gr(False), True), (None, True)):
        sink, out = sink_with_peers(2)
        neg = dataclasses.replace(negotiated(1), graceful_restart=_gr(True))
        sink.on_session_up(peer(1), neg, FakeSender())
        sink.on_update(peer(1), announcement(1, 3))
        sink.on_session_down(peer(1), DownReason(DownKind.PEER_CLOSED, 0.0))
        assert sink.rib()["total"] == 3  # kept, stale
        out[2].sent.clear()
        sink.on_session_up(peer(1), dataclasses.replace(neg, graceful_restart=cap), FakeSender())
        # §4.2: no GR capability or the F bit clear: "MUST immediately remove" the stale routes
        assert sink.rib()["total"] == (0 if swept else 3)
        assert bool(out[2].decoded()) is swept  # the withdrawals reached the other peer
        # with F set they wait for End-of-RIB, bounded by the stale-path timer
        assert (peer_id(peer(1).key) in sink.stale_timers) is not swept
        for timer in sink.stale_timers.values():
            timer.cancel()


async def test_rfc4724_4_2_a_second_restart_gets_its_own_restart_time() -> None:
    """The peer restarts, comes back (we wait `stale_path_time` for its End-of-RIB) and drops
    again before sending it: the wait from its return must not sweep what the new restart
    keeps before the new restart time runs out (found in review: the old timer was left)."""
    sink, _ = sink_with_peers(2)
    neg = dataclasses.replace(negotiated(1), graceful_restart=_gr(True))
    closed = DownReason(DownKind.PEER_CLOSED, 0.0, 0, 0)
    sink.on_session_up(peer(1), neg, FakeSender())
    sink.on_update(peer(1), announcement(1, 2))
    sink.on_session_down(peer(1), closed)  # restart 1: kept for the restart time
    sink.on_session_up(peer(1), neg, FakeSender())  # back: waits for its End-of-RIB
    waiting = sink.stale_timers[peer_id(peer(1).key)]
    sink.on_session_down(peer(1), closed)  # restart 2, before its End-of-RIB
    current = sink.stale_timers[peer_id(peer(1).key)]
    assert waiting.cancelled() and current is not waiting and not current.cancelled()
    current.cancel()
