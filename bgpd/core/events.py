"""FSM states and the numbered events of RFC 4271 §8.1 (Events 1-28), plus timer names.

Invariant: `Event` values are exactly the RFC's event numbers, so logs and tests can cite them.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    """RFC 4271 §8.2.2 session states."""

    IDLE = "Idle"
    CONNECT = "Connect"
    ACTIVE = "Active"
    OPEN_SENT = "OpenSent"
    OPEN_CONFIRM = "OpenConfirm"
    ESTABLISHED = "Established"


class Event(enum.IntEnum):
    """RFC 4271 §8.1.2-§8.1.5 events, numbered as in the RFC."""

    MANUAL_START = 1
    MANUAL_STOP = 2
    AUTOMATIC_START = 3
    MANUAL_START_WITH_PASSIVE_TCP_ESTABLISHMENT = 4
    AUTOMATIC_START_WITH_PASSIVE_TCP_ESTABLISHMENT = 5
    AUTOMATIC_START_WITH_DAMP_PEER_OSCILLATIONS = 6
    AUTOMATIC_START_WITH_DAMP_PEER_OSCILLATIONS_AND_PASSIVE_TCP_ESTABLISHMENT = 7
    AUTOMATIC_STOP = 8
    CONNECT_RETRY_TIMER_EXPIRES = 9
    HOLD_TIMER_EXPIRES = 10
    KEEPALIVE_TIMER_EXPIRES = 11
    DELAY_OPEN_TIMER_EXPIRES = 12
    IDLE_HOLD_TIMER_EXPIRES = 13
    TCP_CONNECTION_VALID = 14
    TCP_CR_INVALID = 15
    TCP_CR_ACKED = 16
    TCP_CONNECTION_CONFIRMED = 17
    TCP_CONNECTION_FAILS = 18
    BGP_OPEN = 19
    BGP_OPEN_WITH_DELAY_OPEN_TIMER_RUNNING = 20
    BGP_HEADER_ERR = 21
    BGP_OPEN_MSG_ERR = 22
    OPEN_COLLISION_DUMP = 23
    NOTIF_MSG_VER_ERR = 24
    NOTIF_MSG = 25
    KEEPALIVE_MSG = 26
    UPDATE_MSG = 27
    UPDATE_MSG_ERR = 28


class Timer(enum.Enum):
    """RFC 4271 §8.1.3 timers (IdleHold from the optional DampPeerOscillations attribute)."""

    CONNECT_RETRY = "ConnectRetry"
    HOLD = "Hold"
    KEEPALIVE = "Keepalive"
    DELAY_OPEN = "DelayOpen"
    IDLE_HOLD = "IdleHold"


# Which event a timer's expiry raises (RFC 4271 §8.1.3).
TIMER_EVENTS: dict[Timer, Event] = {
    Timer.CONNECT_RETRY: Event.CONNECT_RETRY_TIMER_EXPIRES,
    Timer.HOLD: Event.HOLD_TIMER_EXPIRES,
    Timer.KEEPALIVE: Event.KEEPALIVE_TIMER_EXPIRES,
    Timer.DELAY_OPEN: Event.DELAY_OPEN_TIMER_EXPIRES,
    Timer.IDLE_HOLD: Event.IDLE_HOLD_TIMER_EXPIRES,
}
