"""Paired sessions over a fake transport and clock: establishment, keepalives, hold expiry,
collision, OPEN checks, RFC 9003 shutdown, reset and IdleHold damping (RFC 4271 §8, §6.8)."""

from __future__ import annotations

import dataclasses
import itertools

from bgpd.core.effects import Connect, DownKind, Transmit
from bgpd.core.events import State
from bgpd.core.peer import PeerCore
from bgpd.core.reload import Apply
from bgpd.wire.context import IPV4_UNICAST, IPV6_UNICAST
from bgpd.wire.errors import (
    ADMINISTRATIVE_RESET,
    BAD_PEER_AS,
    CEASE,
    CONNECTION_COLLISION_RESOLUTION,
    OPEN_MESSAGE_ERROR,
    OTHER_CONFIGURATION_CHANGE,
    UNSUPPORTED_CAPABILITY,
)
from bgpd.wire.messages import Notification
from tests.bgpd.core.harness import Net, pair, params

A_ID, B_ID = 0x0A000001, 0x0A000002


def established(net: Net, a: PeerCore, b: PeerCore, seconds: float = 1.0) -> None:
    a.start(net.now)
    b.start(net.now)
    net.advance(seconds)
    assert a.state is State.ESTABLISHED, a.primary.last_error
    assert b.state is State.ESTABLISHED, b.primary.last_error


def test_rfc4271_s8_active_and_passive_peer_establish() -> None:
    net, a, b = pair(params(A_ID, hold_time=9), params(B_ID, passive=True, hold_time=30))
    established(net, a, b)
    na, nb = a.primary.negotiated, b.primary.negotiated
    assert na is not None and nb is not None
    # RFC 4271 §4.2: the negotiated hold time is the smaller of the two.
    assert na.hold_time == nb.hold_time == 9
    assert na.keepalive_time == 3.0
    assert na.four_octet_as and na.families == (IPV4_UNICAST,)
    assert a.primary.outbound and not b.primary.outbound


def test_rfc4271_s4_4_keepalives_hold_the_session_across_many_hold_times() -> None:
    net, a, b = pair(params(A_ID, hold_time=3), params(B_ID, passive=True, hold_time=3))
    established(net, a, b)
    net.advance(30.0)
    assert a.state is State.ESTABLISHED and b.state is State.ESTABLISHED
    assert a.primary.messages_in["KEEPALIVE"] >= 10
    assert net.ups("a") == 1 and not net.downs("a")


def test_rfc4271_s6_5_hold_timer_expiry_records_reason() -> None:
    net, a, b = pair(params(A_ID, hold_time=3), params(B_ID, passive=True, hold_time=3))
    established(net, a, b)
    net.blackhole = True
    net.advance(3.5)
    (down,) = net.downs("a")
    assert down.reason.kind is DownKind.HOLD_TIMER_EXPIRED
    assert a.primary.last_error is not None
    assert a.primary.last_error.kind is DownKind.HOLD_TIMER_EXPIRED


def test_rfc4271_s4_4_hold_time_zero_sends_no_keepalives() -> None:
    net, a, b = pair(params(A_ID, hold_time=0), params(B_ID, passive=True, hold_time=90))
    established(net, a, b)
    net.advance(1000.0)
    assert a.state is State.ESTABLISHED
    assert a.primary.messages_out.get("KEEPALIVE") == 1  # only the one confirming the OPEN
    assert a.primary.get_timer() is None


def test_rfc4271_s6_8_collision_keeps_connection_of_higher_identifier() -> None:
    net, a, b = pair(params(A_ID), params(B_ID))
    established(net, a, b)
    # Both connected at once; B has the higher BGP Identifier, so B's connection survives:
    # A keeps its inbound connection, B its outbound one.
    assert a.collisions + b.collisions >= 1
    assert not a.primary.outbound and b.primary.outbound
    assert a.secondary is None and b.secondary is None
    dumps = [
        e for tag in ("a", "b") for e in net.events[tag] if "collision" in repr(e).lower() or False
    ]
    del dumps
    assert net.ups("a") == 1 and net.ups("b") == 1
    net.advance(30)
    assert a.state is State.ESTABLISHED and b.state is State.ESTABLISHED


def test_rfc6286_s2_3_equal_identifiers_collision_decided_by_as() -> None:
    net, a, b = pair(
        params(A_ID, local_as=65001, remote_as=65002), params(A_ID, local_as=65002, remote_as=65001)
    )
    established(net, a, b)
    # Equal identifiers (eBGP): the connection initiated by the larger AS (B) survives.
    assert b.primary.outbound and not a.primary.outbound


def test_rfc4271_s6_8_collision_loser_sends_cease_connection_collision_resolution() -> None:
    net, a, b = pair(params(A_ID), params(B_ID))
    established(net, a, b)
    cease7 = [
        tag
        for tag in ("a", "b")
        for _, e in net.events[tag]
        if isinstance(e, Transmit)
        and e.data[18] == 3
        and (e.data[19], e.data[20]) == (CEASE, CONNECTION_COLLISION_RESOLUTION)
    ]
    # Both sides detect the collision and dump the same connection: the one A initiated.
    assert cease7 and set(cease7) <= {"a", "b"}
    assert not net.downs("a") and not net.downs("b")


def test_rfc4271_s6_2_bad_peer_as_is_refused_and_shown_on_both_sides() -> None:
    net, a, b = pair(params(A_ID, remote_as=65001), params(B_ID, passive=True))
    a.start(net.now)
    b.start(net.now)
    net.advance(1.0)
    ea, eb = a.primary.last_error, b.primary.last_error
    assert ea is not None and eb is not None
    assert (ea.kind, ea.code, ea.subcode) == (
        DownKind.NOTIFICATION_SENT,
        OPEN_MESSAGE_ERROR,
        BAD_PEER_AS,
    )
    assert (eb.kind, eb.code, eb.subcode) == (
        DownKind.NOTIFICATION_RECEIVED,
        OPEN_MESSAGE_ERROR,
        BAD_PEER_AS,
    )
    assert "Bad Peer AS" in eb.describe()


def test_rfc5492_s5_required_capability_missing_refuses_with_its_code() -> None:
    net, a, b = pair(
        params(A_ID, required_capabilities=frozenset({"route-refresh"})),
        params(B_ID, passive=True, route_refresh=False),
    )
    a.start(net.now)
    b.start(net.now)
    net.advance(1.0)
    eb = b.primary.last_error
    assert eb is not None and (eb.code, eb.subcode) == (OPEN_MESSAGE_ERROR, UNSUPPORTED_CAPABILITY)
    assert eb.data == bytes([2, 0])  # the Route Refresh capability TLV (RFC 5492 §5)


def test_rfc4760_families_are_intersected_and_missing_ones_fall_back() -> None:
    net, a, b = pair(
        params(A_ID, families=(IPV4_UNICAST, IPV6_UNICAST)),
        params(B_ID, passive=True, families=(IPV6_UNICAST,)),
    )
    established(net, a, b)
    na = a.primary.negotiated
    assert na is not None and na.families == (IPV6_UNICAST,)


def test_no_common_family_is_refused() -> None:
    net, a, b = pair(params(A_ID), params(B_ID, passive=True, families=(IPV6_UNICAST,)))
    a.start(net.now)
    b.start(net.now)
    net.advance(1.0)
    ea = a.primary.last_error
    assert ea is not None and ea.subcode == UNSUPPORTED_CAPABILITY
    assert a.state is not State.ESTABLISHED


def test_rfc6793_four_octet_as_establishes() -> None:
    net, a, b = pair(
        params(A_ID, local_as=4200000001, remote_as=4200000002),
        params(B_ID, local_as=4200000002, remote_as=4200000001, passive=True),
    )
    established(net, a, b)
    assert a.primary.negotiated is not None and a.primary.negotiated.remote_as == 4200000002


def test_rfc9003_shutdown_communication_is_seen_by_the_peer() -> None:
    net, a, b = pair(params(A_ID), params(B_ID, passive=True))
    established(net, a, b)
    a.stop(net.now, Notification.shutdown("maintenance window 42"))
    net.advance(1.0)
    (down,) = net.downs("b")
    assert down.reason.kind is DownKind.NOTIFICATION_RECEIVED
    assert down.reason.communication == "maintenance window 42"
    assert a.state is State.IDLE
    net.advance(100.0)
    assert a.state is State.IDLE  # admin down does not restart


def test_hard_reset_restarts_and_peer_sees_administrative_reset() -> None:
    net, a, b = pair(
        params(A_ID, idle_hold_time=1.0), params(B_ID, passive=True, idle_hold_time=1.0)
    )
    established(net, a, b)
    a.stop(
        net.now,
        Notification.shutdown("reset", ADMINISTRATIVE_RESET),
        DownKind.ADMIN_RESET,
        restart=True,
    )
    net.advance(5.0)
    (down,) = net.downs("b")
    assert (down.reason.code, down.reason.subcode) == (CEASE, ADMINISTRATIVE_RESET)
    assert a.state is State.ESTABLISHED and b.state is State.ESTABLISHED
    assert net.ups("a") == 2


def test_idle_hold_doubles_on_repeated_flaps_up_to_the_maximum() -> None:
    net, a, b = pair(
        params(A_ID, remote_as=65009, idle_hold_time=1.0, idle_hold_max=8.0),
        params(B_ID, passive=True, idle_hold_time=1.0),
    )
    a.start(net.now)
    b.start(net.now)
    net.advance(40.0)
    attempts = [t for t, e in net.events["a"] if isinstance(e, Connect)]
    gaps = [round(y - x, 6) for x, y in itertools.pairwise(attempts)]
    assert gaps[:5] == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_refused_connection_retries_on_connect_retry_timer() -> None:
    net, a, _b = pair(params(A_ID, connect_retry_time=5.0), params(B_ID, passive=True))
    a.start(net.now)  # B never started: Idle refuses connections
    net.advance(21.0)
    attempts = [t for t, e in net.events["a"] if isinstance(e, Connect)]
    assert attempts == [0.0, 5.0, 10.0, 15.0, 20.0]
    assert a.state in (State.ACTIVE, State.CONNECT)
    assert a.primary.last_error is not None
    assert a.primary.last_error.kind is DownKind.CONNECT_FAILED


def test_passive_pair_never_connects() -> None:
    net, a, b = pair(params(A_ID, passive=True), params(B_ID, passive=True))
    a.start(net.now)
    b.start(net.now)
    net.advance(60.0)
    assert a.state is State.ACTIVE and b.state is State.ACTIVE
    assert net.count("a", Connect) == 0 and net.count("b", Connect) == 0


def test_delay_open_waits_for_the_peer_open() -> None:
    net, a, b = pair(
        params(A_ID, delay_open_time=5.0), params(B_ID, passive=True, delay_open_time=5.0)
    )
    a.start(net.now)
    b.start(net.now)
    net.advance(1.0)
    # RFC 4271 §8.2.2: with DelayOpen on both sides, nobody sends OPEN until the timer fires.
    assert (a.state, b.state) == (State.CONNECT, State.ACTIVE)
    net.advance(5.0)
    assert (a.state, b.state) == (State.ESTABLISHED, State.ESTABLISHED)


def test_reload_matrix_hot_keeps_and_reset_restarts_with_new_open() -> None:
    """Reload (docs/bgpd.md matrix): a hot change keeps the session; a reset change closes it
    with Cease / Other Configuration Change (RFC 4486) and re-opens with the new hold time."""
    pa = params(A_ID, hold_time=9, idle_hold_time=1.0)
    net, a, b = pair(pa, params(B_ID, passive=True, hold_time=30, idle_hold_time=1.0))
    established(net, a, b)
    assert not a.reconfigure(dataclasses.replace(pa, connect_retry_time=7.0), Apply.HOT, net.now)
    net.advance(30.0)
    assert net.ups("a") == 1 and not net.downs("b")
    assert a.reconfigure(dataclasses.replace(pa, hold_time=6), Apply.RESET, net.now)
    net.advance(5.0)
    (down,) = net.downs("b")
    assert (down.reason.code, down.reason.subcode) == (CEASE, OTHER_CONFIGURATION_CHANGE)
    assert (a.state, b.state) == (State.ESTABLISHED, State.ESTABLISHED)
    nb = b.primary.negotiated
    assert nb is not None and nb.hold_time == 6


def test_reload_reset_of_an_admin_down_peer_does_not_start_it() -> None:
    pa = params(A_ID)
    net, a, b = pair(pa, params(B_ID, passive=True))
    established(net, a, b)
    a.stop(net.now)
    net.advance(1.0)
    assert not a.reconfigure(dataclasses.replace(pa, hold_time=30), Apply.RESET, net.now)
    net.advance(30.0)
    assert a.state is State.IDLE and a.params.hold_time == 30
