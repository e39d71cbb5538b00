"""RFC 4724 §4.1 (restarting speaker) in the pure core: the R and F bits, what our OPEN carries,
and the per-peer bounded wait for End-of-RIB (`bgpd.core.restart`)."""

from __future__ import annotations

import pytest

from bgpd.core.negotiation import SessionParams, check_open, local_open
from bgpd.core.restart import Deferral, RestartBits, restart_bits
from bgpd.wire.capabilities import GR_FORWARDING_STATE, GracefulRestart
from bgpd.wire.codec import decode_message, encode_message
from bgpd.wire.context import DEFAULT, IPV4_UNICAST, IPV6_UNICAST
from bgpd.wire.messages import Open

V4, V6 = IPV4_UNICAST, IPV6_UNICAST


def finished(d: Deferral) -> bool:
    return d.finished  # a call, so that mypy does not keep an earlier assert's narrowing


@pytest.mark.parametrize(
    ("enabled", "downtime", "restart_time", "hold", "expected"),
    [
        # cold start (no marker: first start or a clean stop): no R; F kept for later flaps
        (True, None, 120, 120, RestartBits(False, True)),
        # GR off toward this peer, or the restarting role off
        (True, 5.0, 0, 120, RestartBits(False, True)),
        (False, 5.0, 120, 120, RestartBits(False, True)),
        # died and back within the restart time and the dataplane's hold: R and F
        (True, 5.0, 120, 120, RestartBits(True, True)),
        # back within the restart time but after felixd swept our routes: R without F (§4.2:
        # the helper then deletes our stale routes at once)
        (True, 90.0, 120, 60, RestartBits(True, False)),
        # away longer than the restart time: the helper flushed already, no R
        (True, 200.0, 120, 300, RestartBits(False, True)),
        (True, 200.0, 120, 60, RestartBits(False, False)),
    ],
)
def test_rfc4724_3_restart_and_forwarding_bits(
    enabled: bool, downtime: float | None, restart_time: float, hold: float, expected: RestartBits
) -> None:
    got = restart_bits(
        enabled=enabled, downtime=downtime, restart_time=restart_time, forwarding_hold=hold
    )
    assert got == expected


def _gr_of(p: SessionParams) -> GracefulRestart:
    raw = encode_message(local_open(p), DEFAULT)
    msg = decode_message(raw, DEFAULT)
    assert isinstance(msg, Open)
    return next(c for c in msg.capabilities if isinstance(c, GracefulRestart))


def test_rfc4724_3_open_carries_r_n_and_per_family_f_bits() -> None:
    p = SessionParams(
        local_as=65000,
        remote_as=65001,
        local_id=1,
        families=(V4, V6),
        graceful_restart_time=90,
        gr_restarting=True,
        gr_forwarding=True,
    )
    gr = _gr_of(p)
    assert gr.restart_state and gr.notification and gr.restart_time == 90
    assert gr.families == ((1, 1, GR_FORWARDING_STATE), (2, 1, GR_FORWARDING_STATE))
    cold = _gr_of(SessionParams(65000, 65001, 1, graceful_restart_time=90, gr_forwarding=False))
    assert not cold.restart_state and cold.families == ((1, 1, 0),)
    no_n = _gr_of(SessionParams(65000, 65001, 1, graceful_restart_time=90, gr_notification=False))
    assert not no_n.notification


def test_rfc8538_2_n_bit_is_negotiated_only_when_both_send_it() -> None:
    ours = SessionParams(65000, 65001, 1, graceful_restart_time=90)
    peer_n = Open.build(65001, 90, 2, (GracefulRestart(notification=True),))
    peer_plain = Open.build(65001, 90, 2, (GracefulRestart(notification=False),))
    assert check_open(ours, local_open(ours), peer_n).gr_notification
    assert not check_open(ours, local_open(ours), peer_plain).gr_notification
    off = SessionParams(65000, 65001, 1, graceful_restart_time=90, gr_notification=False)
    assert not check_open(off, local_open(off), peer_n).gr_notification
    peer_r = Open.build(65001, 90, 2, (GracefulRestart(restart_state=True),))
    assert check_open(ours, local_open(ours), peer_r).peer_restarting


def test_rfc4724_4_1_deferral_ends_when_every_waited_peer_sent_end_of_rib() -> None:
    d = Deferral(0.0, 60.0, {"a": 30.0, "b": 30.0})
    d.session_up("a", 1.0, (V4, V6), gr=True)
    d.session_up("b", 2.0, (V4,), gr=True)
    d.end_of_rib("a", V4, 3.0)
    assert not finished(d) and d.waiting() == ["a", "b"]  # a still owes IPv6
    d.end_of_rib("b", V4, 3.5)
    d.end_of_rib("a", V6, 4.0)
    assert finished(d) and d.ended_at == 4.0
    assert d.released == {"a": "end-of-rib", "b": "end-of-rib"}
    assert d.get_timer() is None


def test_rfc4724_4_1_a_silent_peer_is_dropped_after_its_own_wait_not_the_others() -> None:
    # b comes up and never sends End-of-RIB; a sends it at once. b's own wait (10 s from its
    # session coming up) ends the deferral, long before the 60 s upper bound.
    d = Deferral(0.0, 60.0, {"a": 30.0, "b": 10.0})
    d.session_up("a", 1.0, (V4,), gr=True)
    d.session_up("b", 2.0, (V4,), gr=True)
    d.end_of_rib("a", V4, 2.5)
    assert d.waiting() == ["b"] and d.get_timer() == 12.0
    d.handle_timer(11.9)
    assert not finished(d)
    d.handle_timer(12.0)
    assert finished(d) and d.released["b"] == "timeout" and d.ended_at == 12.0


def test_rfc4724_4_1_a_peer_that_never_returns_stops_being_waited_for_at_its_deadline() -> None:
    d = Deferral(0.0, 60.0, {"gone": 5.0, "slow": 30.0})
    d.session_up("slow", 1.0, (V4,), gr=True)
    d.handle_timer(5.0)
    assert d.released == {"gone": "timeout"} and d.waiting() == ["slow"]
    d.end_of_rib("slow", V4, 6.0)
    assert finished(d)


def test_rfc4724_4_1_upper_bound_releases_everyone() -> None:
    d = Deferral(0.0, 20.0, {"a": 100.0})
    d.session_up("a", 15.0, (V4,), gr=True)
    assert d.get_timer() == 20.0  # its own wait is capped by the upper bound
    d.handle_timer(20.0)
    assert finished(d) and d.released == {"a": "deferral limit"}


def test_rfc4724_4_1_peers_without_gr_or_restarting_too_are_not_waited_for() -> None:
    d = Deferral(0.0, 60.0, {"a": 30.0, "b": 30.0})
    d.session_up("a", 1.0, (V4,), gr=False)
    assert d.released == {"a": "no graceful restart"} and not finished(d)
    d.session_up("b", 2.0, (V4,), gr=True, peer_restarting=True)
    assert d.released == {"a": "no graceful restart", "b": "peer restarting"}
    assert finished(d)


def test_rfc4724_4_1_flapping_peer_counts_end_of_rib_again_but_keeps_its_deadline() -> None:
    d = Deferral(0.0, 60.0, {"a": 10.0})
    d.session_up("a", 1.0, (V4, V6), gr=True)
    d.end_of_rib("a", V4, 2.0)
    d.session_down("a")
    d.end_of_rib("a", V6, 3.0)  # not established: ignored
    assert not finished(d)
    d.session_up("a", 4.0, (V4, V6), gr=True)
    assert d.get_timer() == 11.0  # still 10 s from its first session, not from this one
    d.end_of_rib("a", V6, 5.0)
    assert not finished(d)  # IPv4's End-of-RIB is owed again after the flap
    d.end_of_rib("a", V4, 6.0)
    assert finished(d)


def test_no_peers_or_zero_limit_means_no_deferral() -> None:
    assert finished(Deferral(0.0, 60.0, {}))
    assert finished(Deferral(0.0, 0.0, {"a": 5.0}))
