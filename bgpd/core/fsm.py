"""The BGP finite state machine of RFC 4271 §8 as a transition table, sans-IO.

`Session` is one peer's FSM. The shell feeds it events (`start`, `stop`, `tcp_connected`,
`tcp_failed`, `receive_data`, `handle_timer(now)`) and drains `take_effects()`; time comes in as
`now` and `get_timer()` tells the shell when to call `handle_timer` next (the aioquic pattern).

`TRANSITIONS` maps (state, event) to a target state and a tuple of action names; a pair that is
not in the table falls to `DEFAULTS[state]`: ignored in Idle (RFC 4271 §8.2.2 "Idle ... any other
event is ignored"), a clean close in Connect/Active, and a NOTIFICATION Finite State Machine Error
(RFC 6608 subcodes) plus a close in OpenSent/OpenConfirm/Established. So every state × event is
defined. An action may override the target (e.g. a failed OPEN check goes to Idle).

Deliberate deviations, each also taken by BIRD and GoBGP:
- TcpConnectionFails (Event 18) in Connect/Active goes to Active with the ConnectRetry timer
  running instead of Idle, so a refused connection is retried every ConnectRetryTime.
- A NOTIFICATION received in OpenSent/OpenConfirm (Event 25) closes without answering with an
  FSM Error: the peer closes the connection after sending it (RFC 4271 §6).
- A header or OPEN error in Established sends that error's NOTIFICATION (RFC 4271 §6.1, §6.2
  fix its content) rather than FSM Error.
- Automatic restarts always use DampPeerOscillations (Events 6/7): the IdleHold timer starts at
  `idle_hold_time` and doubles on each flap up to `idle_hold_max`; `stable_time` in Established
  resets it.

Invariants: effects are appended in the order the RFC lists the actions; `Transmit` is only
emitted while a TCP connection exists; entering Idle drops the connection and clears every
timer except IdleHold; `SessionDown` follows every `SessionUp` exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bgpd.core.effects import (
    Connect,
    Disconnect,
    DownKind,
    DownReason,
    Effect,
    Received,
    RefreshRequested,
    SessionDown,
    SessionUp,
    Transmit,
)
from bgpd.core.events import TIMER_EVENTS, Event, State, Timer
from bgpd.core.negotiation import Negotiated, SessionParams, check_open, local_open
from bgpd.wire.codec import decode_message, encode_message
from bgpd.wire.context import DEFAULT
from bgpd.wire.errors import (
    ADMINISTRATIVE_RESET,
    ADMINISTRATIVE_SHUTDOWN,
    CEASE,
    CONNECTION_COLLISION_RESOLUTION,
    MAXIMUM_NUMBER_OF_PREFIXES_REACHED,
    OPEN_MESSAGE_ERROR,
    PEER_DE_CONFIGURED,
    UNSUPPORTED_VERSION_NUMBER,
    UPDATE_MESSAGE_ERROR,
    Action,
    BGPError,
    FSMError,
    HoldTimerExpired,
    MessageHeaderError,
    OpenMessageError,
    UpdateMessageError,
)
from bgpd.wire.framer import Framer
from bgpd.wire.messages import (
    KEEPALIVE_MESSAGE,
    REFRESH_BORR,
    REFRESH_EORR,
    REFRESH_NORMAL,
    Keepalive,
    Message,
    Notification,
    Open,
    RouteRefresh,
    Update,
)

E = Event
S = State


@dataclass(frozen=True, slots=True)
class Transition:
    target: State | None  # None: stay in the current state
    actions: tuple[str, ...] = ()


def to(target: State | None, *actions: str) -> Transition:
    return Transition(target, actions)


IGNORE = to(None)
_STARTS = (1, 3, 4, 5, 6, 7)

# RFC 8538 §5: Cease subcodes whose suggested behaviour is Hard Reset (Administrative Reset is
# "user control": hard unless the caller asks for a graceful one).
HARD_RESET_CEASES = frozenset(
    {
        MAXIMUM_NUMBER_OF_PREFIXES_REACHED,
        ADMINISTRATIVE_SHUTDOWN,
        PEER_DE_CONFIGURED,
        ADMINISTRATIVE_RESET,
    }
)

# RFC 6608 §4: FSM Error subcode by the state the unexpected message arrived in.
FSM_SUBCODES: dict[State, int] = {S.OPEN_SENT: 1, S.OPEN_CONFIRM: 2, S.ESTABLISHED: 3}

DEFAULTS: dict[State, Transition] = {
    S.IDLE: IGNORE,
    S.CONNECT: to(S.IDLE, "cause_fsm", "inc_counter"),
    S.ACTIVE: to(S.IDLE, "cause_fsm", "inc_counter"),
    S.OPEN_SENT: to(S.IDLE, "notify_fsm", "inc_counter"),
    S.OPEN_CONFIRM: to(S.IDLE, "notify_fsm", "inc_counter"),
    S.ESTABLISHED: to(S.IDLE, "notify_fsm", "inc_counter"),
}

TRANSITIONS: dict[tuple[State, Event], Transition] = {
    # --- Idle (RFC 4271 §8.2.2) --------------------------------------------------------------
    (S.IDLE, E.MANUAL_START): to(S.CONNECT, "init", "zero_counter", "start_crt", "connect"),
    (S.IDLE, E.AUTOMATIC_START): to(S.CONNECT, "init", "start_crt", "connect"),
    (S.IDLE, E.MANUAL_START_WITH_PASSIVE_TCP_ESTABLISHMENT): to(
        S.ACTIVE, "init", "zero_counter", "start_crt"
    ),
    (S.IDLE, E.AUTOMATIC_START_WITH_PASSIVE_TCP_ESTABLISHMENT): to(S.ACTIVE, "init", "start_crt"),
    (S.IDLE, E.AUTOMATIC_START_WITH_DAMP_PEER_OSCILLATIONS): to(None, "start_idle_hold"),
    (
        S.IDLE,
        E.AUTOMATIC_START_WITH_DAMP_PEER_OSCILLATIONS_AND_PASSIVE_TCP_ESTABLISHMENT,
    ): to(None, "start_idle_hold"),
    (S.IDLE, E.IDLE_HOLD_TIMER_EXPIRES): to(
        S.CONNECT, "init", "start_crt", "connect_unless_passive"
    ),
    # --- Connect -----------------------------------------------------------------------------
    **{(S.CONNECT, Event(n)): IGNORE for n in _STARTS},
    (S.CONNECT, E.MANUAL_STOP): to(S.IDLE, "cause_admin", "zero_counter"),
    (S.CONNECT, E.CONNECT_RETRY_TIMER_EXPIRES): to(
        S.CONNECT, "drop_connection", "start_crt", "stop_delay_open", "connect"
    ),
    (S.CONNECT, E.DELAY_OPEN_TIMER_EXPIRES): to(S.OPEN_SENT, "send_open"),
    (S.CONNECT, E.TCP_CONNECTION_VALID): IGNORE,
    (S.CONNECT, E.TCP_CR_INVALID): IGNORE,
    (S.CONNECT, E.TCP_CR_ACKED): to(S.OPEN_SENT, "stop_crt", "open_or_delay"),
    (S.CONNECT, E.TCP_CONNECTION_CONFIRMED): to(S.OPEN_SENT, "stop_crt", "open_or_delay"),
    (S.CONNECT, E.TCP_CONNECTION_FAILS): to(
        S.ACTIVE, "record_cause", "stop_delay_open", "start_crt"
    ),
    (S.CONNECT, E.BGP_OPEN_WITH_DELAY_OPEN_TIMER_RUNNING): to(
        S.OPEN_CONFIRM, "stop_crt", "stop_delay_open", "send_open", "process_open"
    ),
    (S.CONNECT, E.BGP_HEADER_ERR): to(S.IDLE, "notify_error", "inc_counter"),
    (S.CONNECT, E.BGP_OPEN_MSG_ERR): to(S.IDLE, "notify_error", "inc_counter"),
    (S.CONNECT, E.NOTIF_MSG_VER_ERR): to(S.IDLE, "cause_received"),
    # --- Active ------------------------------------------------------------------------------
    **{(S.ACTIVE, Event(n)): IGNORE for n in _STARTS},
    (S.ACTIVE, E.MANUAL_STOP): to(S.IDLE, "cause_admin", "zero_counter"),
    (S.ACTIVE, E.CONNECT_RETRY_TIMER_EXPIRES): to(S.CONNECT, "start_crt", "connect_unless_passive"),
    (S.ACTIVE, E.DELAY_OPEN_TIMER_EXPIRES): to(S.OPEN_SENT, "send_open"),
    (S.ACTIVE, E.TCP_CONNECTION_VALID): IGNORE,
    (S.ACTIVE, E.TCP_CR_INVALID): IGNORE,
    (S.ACTIVE, E.TCP_CR_ACKED): to(S.OPEN_SENT, "stop_crt", "open_or_delay"),
    (S.ACTIVE, E.TCP_CONNECTION_CONFIRMED): to(S.OPEN_SENT, "stop_crt", "open_or_delay"),
    (S.ACTIVE, E.TCP_CONNECTION_FAILS): to(
        S.ACTIVE, "record_cause", "stop_delay_open", "start_crt"
    ),
    (S.ACTIVE, E.BGP_OPEN_WITH_DELAY_OPEN_TIMER_RUNNING): to(
        S.OPEN_CONFIRM, "stop_crt", "stop_delay_open", "send_open", "process_open"
    ),
    (S.ACTIVE, E.BGP_HEADER_ERR): to(S.IDLE, "notify_error", "inc_counter"),
    (S.ACTIVE, E.BGP_OPEN_MSG_ERR): to(S.IDLE, "notify_error", "inc_counter"),
    (S.ACTIVE, E.NOTIF_MSG_VER_ERR): to(S.IDLE, "cause_received"),
    # --- OpenSent ----------------------------------------------------------------------------
    **{(S.OPEN_SENT, Event(n)): IGNORE for n in _STARTS},
    (S.OPEN_SENT, E.MANUAL_STOP): to(S.IDLE, "notify_admin", "zero_counter"),
    (S.OPEN_SENT, E.AUTOMATIC_STOP): to(S.IDLE, "notify_admin", "inc_counter"),
    (S.OPEN_SENT, E.HOLD_TIMER_EXPIRES): to(S.IDLE, "notify_hold", "inc_counter"),
    # §8.2.2: a second connection is tracked per §6.8 until its OPEN arrives (see PeerCore).
    (S.OPEN_SENT, E.TCP_CONNECTION_VALID): IGNORE,
    (S.OPEN_SENT, E.TCP_CR_ACKED): IGNORE,
    (S.OPEN_SENT, E.TCP_CONNECTION_CONFIRMED): IGNORE,
    (S.OPEN_SENT, E.TCP_CR_INVALID): IGNORE,
    (S.OPEN_SENT, E.TCP_CONNECTION_FAILS): to(S.ACTIVE, "record_cause", "start_crt"),
    (S.OPEN_SENT, E.BGP_OPEN): to(S.OPEN_CONFIRM, "stop_delay_open", "stop_crt", "process_open"),
    (S.OPEN_SENT, E.BGP_HEADER_ERR): to(S.IDLE, "notify_error", "inc_counter"),
    (S.OPEN_SENT, E.BGP_OPEN_MSG_ERR): to(S.IDLE, "notify_error", "inc_counter"),
    (S.OPEN_SENT, E.OPEN_COLLISION_DUMP): to(S.IDLE, "notify_collision", "inc_counter"),
    (S.OPEN_SENT, E.NOTIF_MSG_VER_ERR): to(S.IDLE, "cause_received"),
    (S.OPEN_SENT, E.NOTIF_MSG): to(S.IDLE, "cause_received", "inc_counter"),
    # --- OpenConfirm -------------------------------------------------------------------------
    **{(S.OPEN_CONFIRM, Event(n)): IGNORE for n in _STARTS},
    (S.OPEN_CONFIRM, E.MANUAL_STOP): to(S.IDLE, "notify_admin", "zero_counter"),
    (S.OPEN_CONFIRM, E.AUTOMATIC_STOP): to(S.IDLE, "notify_admin", "inc_counter"),
    (S.OPEN_CONFIRM, E.HOLD_TIMER_EXPIRES): to(S.IDLE, "notify_hold", "inc_counter"),
    (S.OPEN_CONFIRM, E.KEEPALIVE_TIMER_EXPIRES): to(None, "send_keepalive"),
    (S.OPEN_CONFIRM, E.TCP_CONNECTION_VALID): IGNORE,
    (S.OPEN_CONFIRM, E.TCP_CR_ACKED): IGNORE,
    (S.OPEN_CONFIRM, E.TCP_CONNECTION_CONFIRMED): IGNORE,
    (S.OPEN_CONFIRM, E.TCP_CR_INVALID): IGNORE,
    (S.OPEN_CONFIRM, E.TCP_CONNECTION_FAILS): to(S.IDLE, "keep_cause", "inc_counter"),
    (S.OPEN_CONFIRM, E.BGP_HEADER_ERR): to(S.IDLE, "notify_error", "inc_counter"),
    (S.OPEN_CONFIRM, E.BGP_OPEN_MSG_ERR): to(S.IDLE, "notify_error", "inc_counter"),
    (S.OPEN_CONFIRM, E.OPEN_COLLISION_DUMP): to(S.IDLE, "notify_collision", "inc_counter"),
    (S.OPEN_CONFIRM, E.NOTIF_MSG_VER_ERR): to(S.IDLE, "cause_received"),
    (S.OPEN_CONFIRM, E.NOTIF_MSG): to(S.IDLE, "cause_received", "inc_counter"),
    (S.OPEN_CONFIRM, E.KEEPALIVE_MSG): to(S.ESTABLISHED, "restart_hold", "established"),
    # --- Established -------------------------------------------------------------------------
    **{(S.ESTABLISHED, Event(n)): IGNORE for n in _STARTS},
    (S.ESTABLISHED, E.MANUAL_STOP): to(S.IDLE, "notify_admin", "zero_counter"),
    (S.ESTABLISHED, E.AUTOMATIC_STOP): to(S.IDLE, "notify_admin", "inc_counter"),
    (S.ESTABLISHED, E.HOLD_TIMER_EXPIRES): to(S.IDLE, "notify_hold", "inc_counter"),
    (S.ESTABLISHED, E.KEEPALIVE_TIMER_EXPIRES): to(None, "send_keepalive"),
    (S.ESTABLISHED, E.TCP_CONNECTION_VALID): IGNORE,
    (S.ESTABLISHED, E.TCP_CR_ACKED): IGNORE,
    (S.ESTABLISHED, E.TCP_CONNECTION_CONFIRMED): IGNORE,
    (S.ESTABLISHED, E.TCP_CR_INVALID): IGNORE,
    (S.ESTABLISHED, E.TCP_CONNECTION_FAILS): to(S.IDLE, "keep_cause", "inc_counter"),
    (S.ESTABLISHED, E.BGP_HEADER_ERR): to(S.IDLE, "notify_error", "inc_counter"),
    (S.ESTABLISHED, E.BGP_OPEN_MSG_ERR): to(S.IDLE, "notify_error", "inc_counter"),
    (S.ESTABLISHED, E.OPEN_COLLISION_DUMP): to(S.IDLE, "notify_collision", "inc_counter"),
    (S.ESTABLISHED, E.NOTIF_MSG_VER_ERR): to(S.IDLE, "cause_received", "inc_counter"),
    (S.ESTABLISHED, E.NOTIF_MSG): to(S.IDLE, "cause_received", "inc_counter"),
    (S.ESTABLISHED, E.KEEPALIVE_MSG): to(None, "restart_hold"),
    (S.ESTABLISHED, E.UPDATE_MSG): to(None, "restart_hold", "process_update"),
    (S.ESTABLISHED, E.UPDATE_MSG_ERR): to(S.IDLE, "notify_error", "inc_counter"),
}


def transition(state: State, event: Event) -> Transition:
    """The defined transition for (state, event): the table entry or the state's default."""
    return TRANSITIONS.get((state, event), DEFAULTS[state])


# Error class raised by the codec -> the FSM event it becomes (RFC 4271 §8.1.5).
_ERROR_EVENTS: dict[type[BGPError], Event] = {
    MessageHeaderError: E.BGP_HEADER_ERR,
    OpenMessageError: E.BGP_OPEN_MSG_ERR,
    UpdateMessageError: E.UPDATE_MSG_ERR,
}

CollisionCheck = Callable[["Session", Open], bool]


class Session:
    """One peer's FSM (RFC 4271 §8) with its timers, counters and down reason."""

    def __init__(self, params: SessionParams, name: str = "") -> None:
        self.params = params
        self.name = name
        self.state = S.IDLE
        self.timers: dict[Timer, float] = {}
        self.connect_retry_counter = 0
        self.connected = False
        self.outbound = False  # the current connection was initiated by us
        self.auto_restart = False
        self.framer = Framer(DEFAULT)
        self.local_open: Open = local_open(params)
        self.remote_open: Open | None = None
        self.negotiated: Negotiated | None = None
        self.last_error: DownReason | None = None
        self.established_at: float | None = None
        self.last_change = 0.0
        self.flaps = 0
        self.established_count = 0
        self.messages_in: dict[str, int] = {}
        self.messages_out: dict[str, int] = {}
        self.on_open: CollisionCheck | None = None
        self._effects: list[Effect] = []
        self._now = 0.0
        self._cause: DownReason | None = None
        self._error: BGPError | None = None
        self._message: Message | None = None
        self._stop_notification: Notification | None = None
        self._stop_kind = DownKind.ADMIN_DOWN
        self._stop_graceful = False

    # --- shell-facing API -----------------------------------------------------------------------
    def take_effects(self) -> list[Effect]:
        out, self._effects = self._effects, []
        return out

    def get_timer(self) -> float | None:
        return min(self.timers.values()) if self.timers else None

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at `now`, earliest first (RFC 4271 §8.1.3 events 9-13)."""
        while self.timers:
            timer, when = min(self.timers.items(), key=lambda kv: kv[1])
            if when > now:
                return
            del self.timers[timer]
            self.handle_event(TIMER_EVENTS[timer], now)

    def start(self, now: float) -> None:
        """ManualStart (Event 1), or Event 4 for a passive peer."""
        self.auto_restart = True
        event = (
            E.MANUAL_START_WITH_PASSIVE_TCP_ESTABLISHMENT if self.params.passive else E.MANUAL_START
        )
        self.timers.pop(Timer.IDLE_HOLD, None)
        self.handle_event(event, now)

    def stop(
        self,
        now: float,
        notification: Notification | None = None,
        kind: DownKind = DownKind.ADMIN_DOWN,
        restart: bool = False,
        graceful: bool = False,
    ) -> None:
        """ManualStop (Event 2): Cease with `notification` (default Administrative Shutdown).

        `restart` starts again after `idle_hold_time` (a hard reset); otherwise it stays Idle.
        With the RFC 8538 N bit negotiated, an Administrative Shutdown/Reset, Peer De-configured
        or Maximum Prefixes Cease goes out inside a Hard Reset unless `graceful` (the peer then
        keeps our routes as stale, as for a restart).
        """
        self._stop_notification = notification or Notification.shutdown("")
        self._stop_kind = kind
        self._stop_graceful = graceful
        self.auto_restart = False
        self.handle_event(E.MANUAL_STOP, now)
        self._stop_notification = None
        self._stop_graceful = False
        self.timers.pop(Timer.IDLE_HOLD, None)
        if restart:
            # Reconnect after IdleHold, not at once: a peer that negotiated Graceful Restart
            # takes a new connection on an Established session for a restart (RFC 4724 §4.2)
            # and would never read the NOTIFICATION we just sent.
            self.auto_restart = True
            self._now = now
            self._set(Timer.IDLE_HOLD, self.params.idle_hold_time)

    def tcp_connected(self, now: float, outbound: bool) -> None:
        """Tcp_CR_Acked (Event 16) for our connection, TcpConnectionConfirmed (17) for theirs."""
        self.connected = True
        self.outbound = outbound
        self.handle_event(E.TCP_CR_ACKED if outbound else E.TCP_CONNECTION_CONFIRMED, now)

    def tcp_failed(self, now: float, detail: str = "", outbound_attempt: bool = False) -> None:
        """TcpConnectionFails (Event 18): the connection closed or could not be opened."""
        if not self.connected and not outbound_attempt:
            return
        kind = DownKind.CONNECT_FAILED if not self.connected else DownKind.SOCKET_ERROR
        if self.connected and not detail:
            kind, detail = DownKind.PEER_CLOSED, ""
        self.connected = False
        self._cause = DownReason(kind, now, detail=detail)
        self.handle_event(E.TCP_CONNECTION_FAILS, now)

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the connection; each whole message becomes an event (§8.1.5)."""
        if not self.connected:
            return
        try:
            self.framer.feed(data)
        except BGPError as err:
            self._fire_error(err, now)
            return
        while self.connected:
            try:
                frame = self.framer.next_frame()
                if frame is None:
                    return
                msg = self._decode(frame)
            except BGPError as err:
                self._fire_error(err, now)
                return
            self._on_message(msg, now)

    def send_update(self, update: Update) -> None:
        """Queue an UPDATE (Established only); resets the Keepalive timer (RFC 4271 §4.4)."""
        if self.state is not S.ESTABLISHED or self.negotiated is None:
            raise RuntimeError(f"send_update in {self.state.value}")
        self._send(update)
        self._restart_keepalive()

    def send_encoded(self, data: bytes) -> None:
        """Queue UPDATEs already encoded with this session's context (`pack_updates`)."""
        if self.state is not S.ESTABLISHED:
            raise RuntimeError(f"send_encoded in {self.state.value}")
        self._effects.append(Transmit(data))
        self.messages_out["UPDATE"] = self.messages_out.get("UPDATE", 0) + 1
        self._restart_keepalive()

    def send_route_refresh(self, afi: int, safi: int, subtype: int = REFRESH_NORMAL) -> bool:
        """Ask the peer to re-send a family (RFC 2918 §3), if it supports it; or, with
        `subtype` BoRR/EoRR, mark the start/end of our re-send (RFC 7313 §4), if the peer
        negotiated enhanced route refresh (§3: otherwise they MUST NOT be sent)."""
        n = self.negotiated
        if self.state is not S.ESTABLISHED or n is None or not n.route_refresh:
            return False
        if subtype != REFRESH_NORMAL and not n.enhanced_route_refresh:
            return False
        self._send(RouteRefresh(afi, safi, subtype))
        return True

    # --- event dispatch -------------------------------------------------------------------------
    def handle_event(self, event: Event, now: float) -> None:
        """Apply one RFC 4271 §8.1 event through the transition table."""
        self._now = now
        before = self.state
        t = transition(before, event)
        target = t.target
        for name in t.actions:
            override = _ACTIONS[name](self)
            if override is not None:
                target = override
                break
        if target is None or (target is before and target is not S.IDLE):
            return
        if target is S.IDLE:
            if before is not S.IDLE:
                self._enter_idle(before)
            return
        self.state = target
        self.last_change = now

    def _decode(self, frame: bytes) -> Message:
        return decode_message(frame, self.framer.context)

    def _fire_error(self, err: BGPError, now: float) -> None:
        self._error = err
        self.handle_event(_ERROR_EVENTS.get(type(err), E.BGP_HEADER_ERR), now)
        self._error = None

    def _on_message(self, msg: Message, now: float) -> None:
        kind = type(msg).__name__.upper()
        self.messages_in[kind] = self.messages_in.get(kind, 0) + 1
        self._message = msg
        try:
            if isinstance(msg, Open):
                delayed = Timer.DELAY_OPEN in self.timers
                self.handle_event(
                    E.BGP_OPEN_WITH_DELAY_OPEN_TIMER_RUNNING if delayed else E.BGP_OPEN, now
                )
            elif isinstance(msg, Keepalive):
                self.handle_event(E.KEEPALIVE_MSG, now)
            elif isinstance(msg, Update):
                self.handle_event(E.UPDATE_MSG, now)
            elif isinstance(msg, Notification):
                version = (msg.code, msg.subcode) == (
                    OPEN_MESSAGE_ERROR,
                    UNSUPPORTED_VERSION_NUMBER,
                )
                self.handle_event(E.NOTIF_MSG_VER_ERR if version else E.NOTIF_MSG, now)
            elif self.state is S.ESTABLISHED:
                # RFC 2918 §4: ROUTE-REFRESH asks us to re-send Adj-RIB-Out for the family;
                # RFC 7313 §4: BoRR/EoRR bracket the peer's own re-send.
                self._restart_hold()
                if self._refresh_usable(msg):
                    self._effects.append(RefreshRequested(msg.afi, msg.safi, msg.subtype))
            else:
                self.handle_event(E.UPDATE_MSG, now)  # unexpected message before Established
        finally:
            self._message = None

    # --- helpers -------------------------------------------------------------------------------
    def _refresh_usable(self, msg: RouteRefresh) -> bool:
        """RFC 2918 §4: a family we did not negotiate is ignored; RFC 7313 §5: an unknown
        subtype is ignored, and so are BoRR/EoRR from a peer that did not negotiate them."""
        n = self.negotiated
        if n is None or (msg.afi, msg.safi) not in n.families:
            return False
        if msg.subtype == REFRESH_NORMAL:
            return True
        return msg.subtype in (REFRESH_BORR, REFRESH_EORR) and n.enhanced_route_refresh

    def _send(self, msg: Message) -> None:
        if not self.connected:
            return
        ctx = self.framer.context
        self._effects.append(Transmit(encode_message(msg, ctx)))
        kind = type(msg).__name__.upper()
        self.messages_out[kind] = self.messages_out.get(kind, 0) + 1

    def _set(self, timer: Timer, delay: float) -> None:
        if delay > 0:
            self.timers[timer] = self._now + delay
        else:
            self.timers.pop(timer, None)

    def _restart_keepalive(self) -> None:
        if self.negotiated is not None and self.negotiated.keepalive_time:
            self._set(Timer.KEEPALIVE, self.negotiated.keepalive_time)

    def _restart_hold(self) -> None:
        if self.negotiated is not None:
            # RFC 4271 §4.4: a hold time of zero means no Hold timer (and no KEEPALIVEs).
            self._set(Timer.HOLD, float(self.negotiated.hold_time))

    def _notify(
        self, n: Notification, kind: DownKind = DownKind.NOTIFICATION_SENT, detail: str = ""
    ) -> None:
        self._send(n)
        self._cause = DownReason.notification(kind, n, self._now, detail)

    def _drop_connection(self) -> None:
        if self.connected:
            self._effects.append(Disconnect())
        self.connected = False
        self.framer = Framer(DEFAULT)
        self.negotiated = None
        self.remote_open = None
        for timer in (Timer.HOLD, Timer.KEEPALIVE, Timer.DELAY_OPEN):
            self.timers.pop(timer, None)

    def _enter_idle(self, before: State) -> None:
        """Common actions on entering Idle: release resources, drop TCP, record why."""
        now = self._now
        cause = self._cause or DownReason(DownKind.FSM_ERROR, now, detail=f"in {before.value}")
        self._cause = None
        self._drop_connection()
        self.timers.clear()
        self.state = S.IDLE
        self.last_change = now
        self.last_error = cause
        if before is S.ESTABLISHED:
            self._effects.append(SessionDown(cause))
            if (
                self.established_at is not None
                and now - self.established_at >= self.params.stable_time
            ):
                self.flaps = 0
        self.established_at = None
        if self.auto_restart:
            event = (
                E.AUTOMATIC_START_WITH_DAMP_PEER_OSCILLATIONS_AND_PASSIVE_TCP_ESTABLISHMENT
                if self.params.passive
                else E.AUTOMATIC_START_WITH_DAMP_PEER_OSCILLATIONS
            )
            self.handle_event(event, now)

    # --- actions (names used in TRANSITIONS) ------------------------------------------------------
    def _a_init(self) -> State | None:
        self.framer = Framer(DEFAULT)
        self.negotiated = None
        self.remote_open = None
        self.local_open = local_open(self.params)
        return None

    def _a_zero_counter(self) -> State | None:
        self.connect_retry_counter = 0
        return None

    def _a_inc_counter(self) -> State | None:
        self.connect_retry_counter += 1
        return None

    def _a_start_crt(self) -> State | None:
        self._set(Timer.CONNECT_RETRY, self.params.connect_retry_time)
        return None

    def _a_stop_crt(self) -> State | None:
        self.timers.pop(Timer.CONNECT_RETRY, None)
        return None

    def _a_stop_delay_open(self) -> State | None:
        self.timers.pop(Timer.DELAY_OPEN, None)
        return None

    def _a_start_idle_hold(self) -> State | None:
        p = self.params
        delay = min(p.idle_hold_time * (2**self.flaps), p.idle_hold_max)
        self.flaps = min(self.flaps + 1, 32)
        self._set(Timer.IDLE_HOLD, max(delay, 0.001))
        return None

    def _a_connect(self) -> State | None:
        self._effects.append(Connect())
        return None

    def _a_connect_unless_passive(self) -> State | None:
        if self.params.passive:
            return S.ACTIVE
        self._effects.append(Connect())
        return None

    def _a_drop_connection(self) -> State | None:
        self._drop_connection()
        return None

    def _a_open_or_delay(self) -> State | None:
        if self.params.delay_open_time > 0:
            # RFC 4271 §8.2.2: with DelayOpen, wait for the peer's OPEN before sending ours.
            self._set(Timer.DELAY_OPEN, self.params.delay_open_time)
            return self.state
        return self._a_send_open()

    def _a_send_open(self) -> State | None:
        self._send(self.local_open)
        self._set(Timer.HOLD, self.params.open_hold_time)
        return None

    def _a_process_open(self) -> State | None:
        msg = self._message
        if not isinstance(msg, Open):
            # Only reachable by injecting Event 19/20 without an OPEN: an FSM error, not a crash.
            self._a_notify_fsm()
            return S.IDLE
        try:
            neg = check_open(self.params, self.local_open, msg)
        except OpenMessageError as err:
            self._notify(Notification.from_error(err), detail=err.reason)
            self.connect_retry_counter += 1
            return S.IDLE
        self.remote_open = msg
        if self.on_open is not None and self.on_open(self, msg):
            # RFC 4271 §6.8: this connection lost the collision (OpenCollisionDump, Event 23).
            self._notify(Notification(CEASE, CONNECTION_COLLISION_RESOLUTION), DownKind.COLLISION)
            return S.IDLE
        self.negotiated = neg
        self.framer.context = neg.context
        self._send(KEEPALIVE_MESSAGE)
        self._restart_keepalive()
        self._restart_hold()
        return None

    def _a_send_keepalive(self) -> State | None:
        self._send(KEEPALIVE_MESSAGE)
        self._restart_keepalive()
        return None

    def _a_restart_hold(self) -> State | None:
        self._restart_hold()
        return None

    def _a_established(self) -> State | None:
        self.established_at = self._now
        self.established_count += 1
        self.last_error = None
        self._effects.append(SessionUp())
        return None

    def _a_process_update(self) -> State | None:
        msg = self._message
        if not isinstance(msg, Update):
            return None
        if msg.disabled_families:
            # RFC 7606 §2 / RFC 4760 §7: a malformed MP_REACH/MP_UNREACH disables the family;
            # we do not keep a session with a family switched off, so we fall back to the
            # session reset the malformation carries (its NOTIFICATION code, subcode, data).
            bad = next(m for m in msg.malformations if m.action is Action.AFISAFI_DISABLE)
            self._notify(Notification(UPDATE_MESSAGE_ERROR, bad.subcode, bad.data), detail=bad.case)
            self.connect_retry_counter += 1
            return S.IDLE
        self._effects.append(Received(msg))
        return None

    def _a_notify_admin(self) -> State | None:
        n = self._stop_notification or Notification.shutdown("")
        neg = self.negotiated
        if (
            neg is not None
            and neg.gr_notification
            and not self._stop_graceful
            and n.code == CEASE
            and n.subcode in HARD_RESET_CEASES
        ):
            # RFC 8538 §5: with the N bit, these Cease subcodes mean "flush my routes", which
            # only a Hard Reset says; any other NOTIFICATION leaves them stale at the peer.
            n = Notification.hard_reset(n)
        self._notify(n, self._stop_kind)
        return None

    def _a_notify_hold(self) -> State | None:
        self._send(Notification.from_error(HoldTimerExpired()))
        self._cause = DownReason(DownKind.HOLD_TIMER_EXPIRED, self._now)
        return None

    def _a_notify_error(self) -> State | None:
        err = self._error or FSMError(0)
        self._notify(Notification.from_error(err), detail=err.reason)
        return None

    def _a_notify_fsm(self) -> State | None:
        err = FSMError(FSM_SUBCODES.get(self.state, 0))
        self._notify(Notification.from_error(err), DownKind.FSM_ERROR, f"in {self.state.value}")
        return None

    def _a_notify_collision(self) -> State | None:
        self._notify(Notification(CEASE, CONNECTION_COLLISION_RESOLUTION), DownKind.COLLISION)
        return None

    def _a_cause_received(self) -> State | None:
        msg = self._message
        if isinstance(msg, Notification):
            self._cause = DownReason.notification(DownKind.NOTIFICATION_RECEIVED, msg, self._now)
        return None

    def _a_cause_admin(self) -> State | None:
        # No OPEN was exchanged yet, so no NOTIFICATION is sent (RFC 4271 §8.2.2 Connect/Active).
        self._cause = DownReason(self._stop_kind, self._now)
        return None

    def _a_record_cause(self) -> State | None:
        """Keep why the connection failed when the FSM stays out of Idle (Event 18)."""
        if self._cause is not None:
            self.last_error = self._cause
            self._cause = None
        self._drop_connection()
        return None

    def _a_keep_cause(self) -> State | None:
        return None  # the cause set by tcp_failed becomes the down reason on entering Idle

    def _a_cause_fsm(self) -> State | None:
        self._cause = DownReason(DownKind.FSM_ERROR, self._now, detail=f"in {self.state.value}")
        return None


_ACTIONS: dict[str, Callable[[Session], State | None]] = {
    name[3:]: getattr(Session, name) for name in dir(Session) if name.startswith("_a_")
}
