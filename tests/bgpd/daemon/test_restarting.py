"""RFC 4724 §4.1 in the routing shell: after a restart, `RoutingSink` learns routes but defers
advertisement to peers and the best-path stream until End-of-RIB from each waited-for peer (or
that peer's own timeout), then sends every peer its table and End-of-RIB, and gives subscribers
(felixd) one first snapshot with everything — never a withdrawal of a route that is only late.
Fake sessions and a fake clock; no sockets, no sleeps."""

from __future__ import annotations

from bgpd.daemon.routing import RoutingSink
from bgpd.wire.context import IPV4_UNICAST
from bgpd.wire.messages import Update, end_of_rib
from tests.bgpd.daemon.deferral import Clock, collect, eor_of, sink_with_clock
from tests.bgpd.routing_interop.test_sink import FakeSender, announcement, negotiated, peer


def restarting_sink(*waits: tuple[int, float], limit: float = 60.0) -> tuple[RoutingSink, Clock]:
    sink, clock = sink_with_clock()
    sink.begin_restart({peer(n).key: w for n, w in waits}, limit)
    return sink, clock


def deferring(sink: RoutingSink) -> bool:
    return sink.deferring  # a call, so that mypy does not keep an earlier assert's narrowing


def test_rfc4724_4_1_nothing_is_advertised_or_streamed_until_end_of_rib_from_each_peer() -> None:
    sink, clock = restarting_sink((1, 30.0), (2, 30.0))
    done: list[bool] = []
    sink.on_restart_done = lambda: done.append(True)
    stream: list[dict[str, object]] = []
    sink.subscribe(collect(stream))
    out = {1: FakeSender(), 2: FakeSender()}
    sink.on_session_up(peer(1), negotiated(1, gr=True), out[1])
    sink.on_update(peer(1), announcement(1, 50))
    sink.on_update(peer(1), end_of_rib(*IPV4_UNICAST))
    clock.now += 5
    sink.on_session_up(peer(2), negotiated(2, gr=True), out[2])
    sink.on_update(
        peer(2), Update(attributes=announcement(2, 1).attributes, nlri=(b"\x10\x0b\x02",))
    )
    assert stream == [] and out[1].sent == out[2].sent == []
    assert not eor_of(out[1]) and not eor_of(out[2])
    assert deferring(sink) and not done
    assert sink.restart_status() == {
        "deferring": True,
        "waiting": ["p2"],
        "released": {"p1": "end-of-rib"},
        "started": 100.0,
        "ended": None,
    }
    sink.on_update(peer(2), end_of_rib(*IPV4_UNICAST))
    assert not deferring(sink) and done == [True]
    # Each peer now has the other's routes plus ours, then End-of-RIB (§4.1).
    to1 = {p for u in out[1].decoded() for p in u.nlri}
    to2 = {p for u in out[2].decoded() for p in u.nlri}
    assert len(to1) == 2 and len(to2) == 51
    assert eor_of(out[1]) and eor_of(out[2])
    # The subscriber's first message is a snapshot with everything; no withdrawal ever.
    assert [m["type"] for m in stream] == ["snapshot"]
    routes = stream[0]["routes"]
    assert isinstance(routes, list) and len(routes) == 52


def test_rfc4724_4_1_silent_peer_released_by_its_own_timer() -> None:
    sink, clock = restarting_sink((1, 30.0), (2, 10.0))
    stream: list[dict[str, object]] = []
    sink.subscribe(collect(stream))
    out = {1: FakeSender(), 2: FakeSender()}
    sink.on_session_up(peer(1), negotiated(1, gr=True), out[1])
    sink.on_update(peer(1), end_of_rib(*IPV4_UNICAST))
    sink.on_session_up(peer(2), negotiated(2, gr=True), out[2])  # never sends End-of-RIB
    sink.on_update(peer(2), announcement(2, 3))
    clock.now += 9.9
    sink.restart_tick()
    assert deferring(sink) and stream == []
    clock.now += 0.1
    sink.restart_tick()
    assert not deferring(sink)
    status = sink.restart_status()
    assert status is not None and status["released"] == {"p1": "end-of-rib", "p2": "timeout"}
    assert [m["type"] for m in stream] == ["snapshot"] and eor_of(out[1]) and eor_of(out[2])
    assert len({p for u in out[1].decoded() for p in u.nlri}) == 4


def test_rfc4724_4_1_peer_without_gr_is_not_waited_for_and_later_sessions_are_normal() -> None:
    sink, _ = restarting_sink((1, 30.0))
    out = FakeSender()
    sink.on_session_up(peer(1), negotiated(1, gr=False), out)
    assert not deferring(sink) and eor_of(out)
    late = FakeSender()
    sink.on_session_up(peer(3), negotiated(3, gr=True), late)
    assert eor_of(late) and late.sent  # our originated prefix, at once
    stream: list[dict[str, object]] = []
    sink.subscribe(collect(stream))
    assert [m["type"] for m in stream] == ["snapshot"]


def test_rfc4724_4_1_route_refresh_while_deferring_waits_for_the_full_send() -> None:
    sink, _ = restarting_sink((1, 30.0))
    out = FakeSender()
    sink.on_session_up(peer(1), negotiated(1, gr=True), out)
    sink.on_route_refresh(peer(1), 1, 1, out)
    assert out.sent == [] and out.updates == []
    sink.on_update(peer(1), end_of_rib(*IPV4_UNICAST))
    assert out.sent and eor_of(out)


def test_rfc4724_4_1_a_peer_removed_by_reload_is_no_longer_waited_for() -> None:
    sink, _ = restarting_sink((1, 30.0), (2, 30.0))
    out = FakeSender()
    sink.on_session_up(peer(1), negotiated(1, gr=True), out)
    sink.on_update(peer(1), end_of_rib(*IPV4_UNICAST))
    assert deferring(sink)
    sink.restart_forget(peer(2).key)
    assert not deferring(sink) and eor_of(out)
    status = sink.restart_status()
    assert status is not None
    assert status["released"] == {"p1": "end-of-rib", "127.0.0.2||179": "removed"}
