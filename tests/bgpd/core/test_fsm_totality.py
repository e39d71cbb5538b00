"""FSM totality (RFC 4271 §8): every state × event is defined and leaves a legal state.

Checked three ways: the table itself (every pair resolves, every action exists), every pair
applied to a session brought into that state by real events, and hypothesis-driven random
sequences of events, messages, connection changes and clock steps with invariants after each.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bgpd.core.effects import Disconnect, SessionDown, SessionUp, Transmit
from bgpd.core.events import Event, State, Timer
from bgpd.core.fsm import _ACTIONS, DEFAULTS, TRANSITIONS, Session, transition
from bgpd.core.negotiation import SessionParams, local_open
from bgpd.wire.codec import encode_message
from bgpd.wire.context import DEFAULT
from bgpd.wire.messages import KEEPALIVE_MESSAGE, Message, Notification, RouteRefresh, Update
from bgpd.wire.rfc7606 import Malformation

LOCAL = SessionParams(local_as=65000, remote_as=65000, local_id=1, hold_time=9)
PEER = SessionParams(local_as=65000, remote_as=65000, local_id=2, hold_time=9)
PEER_OPEN = encode_message(local_open(PEER), DEFAULT)


def test_rfc4271_s8_every_state_event_pair_resolves_to_a_defined_transition() -> None:
    assert len(Event) == 28 and [int(e) for e in Event] == list(range(1, 29))
    for state in State:
        for event in Event:
            t = transition(state, event)
            assert t.target is None or isinstance(t.target, State)
            for action in t.actions:
                assert action in _ACTIONS, action
    for (state, event), t in TRANSITIONS.items():
        assert isinstance(state, State) and isinstance(event, Event)
        assert all(a in _ACTIONS for a in t.actions)
    assert set(DEFAULTS) == set(State)


def session_in(state: State) -> Session:
    s = Session(LOCAL)
    if state is State.IDLE:
        return s
    if state is State.ACTIVE:
        s.params = dataclasses.replace(LOCAL, passive=True)
        s.start(0.0)
        return s
    s.start(0.0)
    if state is State.CONNECT:
        return s
    s.tcp_connected(0.0, outbound=True)
    if state is State.OPEN_SENT:
        return s
    s.receive_data(PEER_OPEN, 0.0)
    if state is State.OPEN_CONFIRM:
        return s
    s.receive_data(encode_message(KEEPALIVE_MESSAGE, DEFAULT), 0.0)
    return s


def check_invariants(s: Session, ups: int, downs: int) -> None:
    assert isinstance(s.state, State)
    if s.state is State.IDLE:
        assert not s.connected
        assert set(s.timers) <= {Timer.IDLE_HOLD}
    if s.state is State.ESTABLISHED:
        assert s.negotiated is not None and s.connected
    # SessionDown follows every SessionUp exactly once.
    assert downs <= ups <= downs + 1
    assert (ups == downs + 1) == (s.state is State.ESTABLISHED)


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
def test_rfc4271_s8_every_event_in_every_state_is_handled_cleanly(state: State) -> None:
    for event in Event:
        s = session_in(state)
        assert s.state is state
        effects = s.take_effects()
        ups = sum(isinstance(e, SessionUp) for e in effects)
        s.handle_event(event, 1.0)
        effects = s.take_effects()
        ups += sum(isinstance(e, SessionUp) for e in effects)
        downs = sum(isinstance(e, SessionDown) for e in effects)
        check_invariants(s, ups, downs)
        default = (state, event) not in TRANSITIONS
        if default and state in (State.OPEN_SENT, State.OPEN_CONFIRM, State.ESTABLISHED):
            # RFC 6608: an unexpected event sends FSM Error, then the connection closes.
            assert s.state is State.IDLE
            assert any(isinstance(e, Transmit) and e.data[18] == 3 for e in effects)
            assert isinstance(effects[-1], Disconnect) or any(
                isinstance(e, Disconnect) for e in effects
            )


MESSAGES: list[Message] = [
    KEEPALIVE_MESSAGE,
    Update(),
    Notification(6, 2, b"\x03bye"),
    RouteRefresh(1, 1),
]

step = st.one_of(
    st.tuples(st.just("event"), st.sampled_from(list(Event))),
    st.tuples(st.just("open"), st.just(0)),
    st.tuples(st.just("message"), st.integers(0, len(MESSAGES) - 1)),
    st.tuples(st.just("garbage"), st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("connected"), st.booleans()),
    st.tuples(st.just("failed"), st.just(0)),
    st.tuples(st.just("clock"), st.floats(0.0, 200.0)),
    st.tuples(st.just("start"), st.just(0)),
    st.tuples(st.just("stop"), st.booleans()),
)


@given(st.booleans(), st.floats(0.0, 10.0), st.lists(step, max_size=40))
def test_rfc4271_s8_random_sequences_keep_the_fsm_legal(
    passive: bool, delay_open: float, steps: list[tuple[str, object]]
) -> None:
    params = dataclasses.replace(LOCAL, passive=passive, delay_open_time=delay_open)
    s = Session(params)
    now = 0.0
    ups = downs = 0
    for kind, arg in steps:
        if kind == "event":
            assert isinstance(arg, Event)
            s.handle_event(arg, now)
        elif kind == "open":
            s.receive_data(PEER_OPEN, now)
        elif kind == "message":
            assert isinstance(arg, int)
            ctx = s.framer.context
            s.receive_data(encode_message(MESSAGES[arg], ctx), now)
        elif kind == "garbage":
            assert isinstance(arg, bytes)
            s.receive_data(arg, now)
        elif kind == "connected":
            if s.state in (State.CONNECT, State.ACTIVE):
                s.tcp_connected(now, outbound=bool(arg))
        elif kind == "failed":
            s.tcp_failed(now, "reset by test")
        elif kind == "clock":
            assert isinstance(arg, float)
            now += arg
            s.handle_timer(now)
        elif kind == "start":
            s.start(now)
        else:
            s.stop(now, restart=bool(arg))
        for e in s.take_effects():
            ups += isinstance(e, SessionUp)
            downs += isinstance(e, SessionDown)
            if isinstance(e, Transmit):
                assert e.data[:16] == b"\xff" * 16
        check_invariants(s, ups, downs)


def test_rfc7606_afi_safi_disable_falls_back_to_session_reset() -> None:
    s = session_in(State.ESTABLISHED)
    s.take_effects()
    bad = Malformation("mp-reach-malformed", 14, b"\x01\x02", (2, 1))
    s._message = Update(malformations=(bad,))
    s.handle_event(Event.UPDATE_MSG, 1.0)
    effects = s.take_effects()
    assert s.state is State.IDLE
    sent = [e.data for e in effects if isinstance(e, Transmit)]
    assert sent and sent[0][18:] == bytes((3, 3, bad.subcode)) + b"\x01\x02"
    assert s.last_error is not None and s.last_error.code == 3
