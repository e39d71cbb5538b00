"""RFC 8538 (Notification Message Support for BGP Graceful Restart) in the session core: the N
bit is negotiated when both sides send it; with it, the Cease subcodes whose suggested behaviour
is Hard Reset (§5: Maximum Prefixes, Administrative Shutdown, Peer De-configured, and by default
Administrative Reset) go out inside a Hard Reset that carries the original cause (§3); a graceful
stop sends the plain Cease. Without N nothing is wrapped. Two cores over the fake network."""

from __future__ import annotations

from bgpd.core.effects import DownKind
from bgpd.core.events import State
from bgpd.core.peer import PeerCore
from bgpd.wire.errors import (
    ADMINISTRATIVE_RESET,
    ADMINISTRATIVE_SHUTDOWN,
    CEASE,
    OTHER_CONFIGURATION_CHANGE,
)
from bgpd.wire.messages import Notification
from tests.bgpd.core.harness import Net, pair, params

A_ID, B_ID = 0x0A000001, 0x0A000002


def _pair(n_a: bool = True, n_b: bool = True) -> tuple[Net, PeerCore, PeerCore]:
    net, a, b = pair(
        params(A_ID, graceful_restart_time=60, gr_notification=n_a, idle_hold_time=1.0),
        params(B_ID, passive=True, graceful_restart_time=60, gr_notification=n_b),
    )
    a.start(net.now)
    b.start(net.now)
    net.advance(1.0)
    assert a.state is State.ESTABLISHED and b.state is State.ESTABLISHED
    return net, a, b


def test_rfc8538_2_n_bit_negotiated_only_if_both_sides_send_it() -> None:
    for n_a, n_b, both in ((True, True, True), (True, False, False), (False, True, False)):
        _, a, b = _pair(n_a, n_b)
        na, nb = a.primary.negotiated, b.primary.negotiated
        assert na is not None and nb is not None
        assert na.gr_notification is both and nb.gr_notification is both


def test_rfc8538_5_admin_shutdown_goes_inside_a_hard_reset_with_its_communication() -> None:
    net, a, _ = _pair()
    a.stop(net.now, Notification.shutdown("bye"))
    net.advance(1.0)
    (down,) = net.downs("b")
    r = down.reason
    # §3: a Hard Reset went out; the reason holds the cause it carried, marked as hard.
    assert (r.code, r.subcode, r.hard_reset) == (CEASE, ADMINISTRATIVE_SHUTDOWN, True)
    assert r.communication == "bye"
    assert (
        r.describe() == 'NOTIFICATION received: Cease / Administrative Shutdown "bye" (hard reset)'
    )
    (sent,) = net.downs("a")
    assert sent.reason.hard_reset and sent.reason.kind is DownKind.ADMIN_DOWN


def test_rfc8538_5_admin_reset_is_hard_by_default_and_plain_when_graceful() -> None:
    net, a, _ = _pair()
    reset = Notification.shutdown("r", ADMINISTRATIVE_RESET)
    a.stop(net.now, reset, DownKind.ADMIN_RESET, restart=True)
    net.advance(15.0)
    assert net.downs("b")[0].reason.hard_reset
    assert a.state is State.ESTABLISHED
    a.stop(net.now, reset, DownKind.ADMIN_RESET, restart=True, graceful=True)
    net.advance(15.0)
    r = net.downs("b")[1].reason
    assert (r.code, r.subcode, r.hard_reset) == (CEASE, ADMINISTRATIVE_RESET, False)


def test_rfc8538_5_other_configuration_change_stays_a_plain_cease() -> None:
    net, a, _ = _pair()
    a.stop(net.now, Notification(CEASE, OTHER_CONFIGURATION_CHANGE), DownKind.CONFIG_CHANGED)
    net.advance(1.0)
    r = net.downs("b")[0].reason
    assert (r.code, r.subcode, r.hard_reset) == (CEASE, OTHER_CONFIGURATION_CHANGE, False)


def test_without_n_bit_admin_shutdown_is_not_wrapped() -> None:
    net, a, _ = _pair(n_b=False)
    a.stop(net.now, Notification.shutdown("bye"))
    net.advance(1.0)
    r = net.downs("b")[0].reason
    assert (r.code, r.subcode, r.communication, r.hard_reset) == (
        CEASE,
        ADMINISTRATIVE_SHUTDOWN,
        "bye",
        False,
    )
