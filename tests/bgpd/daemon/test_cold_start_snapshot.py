"""After a cold start (no restart marker, so no RFC 4724 deferral), bgpd's first `subscribe`
snapshot waits for initial convergence: End-of-RIB from each configured peer, each within its
own bound, all within `startup_convergence_time`. felixd replaces the paths it kept stale with
that snapshot, so one sent before the sessions are up would delete the node's remote routes
and add them back seconds later. Advertisements to peers are not held back.

The routing shell with fake sessions and a fake clock first (no sockets, no sleeps), then two
in-process speakers on loopback."""

from __future__ import annotations

from pathlib import Path

from bgpd.core.effects import DownKind, DownReason
from bgpd.daemon.routing import RoutingSink
from bgpd.wire.context import IPV4_UNICAST
from bgpd.wire.messages import Update, end_of_rib
from ipc import RPCClient
from tests.bgpd.daemon.conftest import SpeakerFactory, config, free_port, peer, wait_for
from tests.bgpd.daemon.deferral import Clock, collect, eor_of, sink_with_clock
from tests.bgpd.routing_interop.test_sink import FakeSender, announcement, negotiated
from tests.bgpd.routing_interop.test_sink import peer as fake_peer


def converging_sink(*waits: tuple[int, float], limit: float) -> tuple[RoutingSink, Clock]:
    sink, clock = sink_with_clock()
    sink.begin_convergence({fake_peer(n).key: w for n, w in waits}, limit)
    return sink, clock


def converging(sink: RoutingSink) -> bool:
    return sink.converging  # a call, so that mypy does not keep an earlier assert's narrowing


def prefixes(message: dict[str, object]) -> set[str]:
    routes = message["routes"]
    assert isinstance(routes, list)
    return {str(r["prefix"]) for r in routes}


def test_first_snapshot_waits_for_end_of_rib_from_each_peer_advertisements_do_not() -> None:
    sink, clock = converging_sink((1, 30.0), (2, 30.0), limit=60.0)
    stream: list[dict[str, object]] = []
    sink.subscribe(collect(stream))
    assert stream == [] and converging(sink)
    out = {1: FakeSender(), 2: FakeSender()}
    sink.on_session_up(fake_peer(1), negotiated(1, gr=True), out[1])
    # Not a restart: the peer gets our table and End-of-RIB at once.
    assert out[1].sent and eor_of(out[1])
    sink.on_update(fake_peer(1), announcement(1, 5))
    sink.on_update(fake_peer(1), end_of_rib(*IPV4_UNICAST))
    clock.now += 3
    # A peer without graceful restart is waited for too (its End-of-RIB or its own bound).
    sink.on_session_up(fake_peer(2), negotiated(2, gr=False), out[2])
    assert eor_of(out[2]) and len({p for u in out[2].decoded() for p in u.nlri}) == 6
    sink.on_update(
        fake_peer(2), Update(attributes=announcement(2, 1).attributes, nlri=(b"\x10\x0b\x02",))
    )
    assert stream == [] and converging(sink)
    assert sink.convergence_status() == {
        "converging": True,
        "waiting": ["p2"],
        "released": {"p1": "end-of-rib"},
        "started": 100.0,
        "ended": None,
    }
    sink.on_update(fake_peer(2), end_of_rib(*IPV4_UNICAST))
    assert not converging(sink)
    # One first message, a snapshot with everything learned meanwhile; deltas after it.
    assert [m["type"] for m in stream] == ["snapshot"]
    first = prefixes(stream[0])
    assert len(first) == 1 + 5 + 1 and {"10.100.0.0/24", "11.2.0.0/16"} <= first
    sink.withdraw("10.100.0.0/24")
    assert [m["type"] for m in stream] == ["snapshot", "delta"]
    assert stream[1]["withdrawn"] == ["10.100.0.0/24"]
    # A subscriber that comes later gets its snapshot at once.
    late: list[dict[str, object]] = []
    sink.subscribe(collect(late))
    assert [m["type"] for m in late] == ["snapshot"]


def test_a_peer_that_never_comes_up_holds_the_snapshot_until_the_bound() -> None:
    sink, clock = converging_sink((1, 30.0), (2, 30.0), limit=8.0)
    stream: list[dict[str, object]] = []
    sink.subscribe(collect(stream))
    sink.on_session_up(fake_peer(1), negotiated(1, gr=True), FakeSender())
    sink.on_update(fake_peer(1), announcement(1, 3))
    sink.on_update(fake_peer(1), end_of_rib(*IPV4_UNICAST))
    clock.now += 7.9
    sink.convergence_tick()
    assert stream == [] and converging(sink)
    clock.now += 0.1
    sink.convergence_tick()
    assert not converging(sink)
    status = sink.convergence_status()
    assert status is not None
    # A peer never seen is named by its session key.
    assert status["released"] == {"p1": "end-of-rib", "127.0.0.2||179": "deferral limit"}
    assert [m["type"] for m in stream] == ["snapshot"] and len(prefixes(stream[0])) == 4


def test_a_silent_peer_is_released_by_its_own_bound_and_a_flap_does_not_stretch_it() -> None:
    sink, clock = converging_sink((1, 5.0), limit=60.0)
    stream: list[dict[str, object]] = []
    sink.subscribe(collect(stream))
    sink.on_session_up(fake_peer(1), negotiated(1), FakeSender())
    sink.on_update(fake_peer(1), announcement(1, 2))
    clock.now += 3
    sink.on_session_down(fake_peer(1), _down())
    sink.on_session_up(fake_peer(1), negotiated(1), FakeSender())
    clock.now += 1.9
    sink.convergence_tick()
    assert converging(sink) and stream == []
    clock.now += 0.1
    sink.convergence_tick()
    assert not converging(sink)
    status = sink.convergence_status()
    assert status is not None and status["released"] == {"p1": "timeout"}
    assert [m["type"] for m in stream] == ["snapshot"]


def test_removed_peer_and_no_peers_and_zero_bound_release_at_once() -> None:
    sink, _ = converging_sink((1, 30.0), limit=60.0)
    stream: list[dict[str, object]] = []
    sink.subscribe(collect(stream))
    sink.restart_forget(fake_peer(1).key)
    assert not converging(sink) and [m["type"] for m in stream] == ["snapshot"]
    for waits, limit in (((), 60.0), (((1, 30.0),), 0.0)):
        sink, _ = converging_sink(*waits, limit=limit)
        stream = []
        sink.subscribe(collect(stream))
        assert not converging(sink) and [m["type"] for m in stream] == ["snapshot"]


def _down() -> DownReason:
    return DownReason(DownKind.PEER_CLOSED, 0.0)


# -- in-process speakers on loopback --------------------------------------------------------

A, B, NOBODY = "127.0.0.2", "127.0.0.3", "127.0.0.9"
PREFIXES = ["10.2.0.0/24", "10.2.1.0/24", "10.2.2.0/24"]


async def test_fresh_bgpd_first_snapshot_has_the_peers_routes(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    """B starts cold while A (its peer) already runs with routes: a subscriber that connects at
    once gets a first snapshot that already holds A's routes (it used to be empty)."""
    pa, pb = free_port(A), free_port(B)
    await speakers(config(tmp_path, A, pa, [peer(B, pb, local_address=A)], originate=PREFIXES))
    b = await speakers(
        config(
            tmp_path,
            B,
            pb,
            [peer(A, pa, local_address=B, passive=True)],
            startup_convergence_time=30.0,
        )
    )
    async with (
        RPCClient(f"unix:{b.config.control_socket}") as client,
        client.stream("subscribe") as sub,
    ):
        first = await sub.next(20)
    assert isinstance(first, dict) and first["type"] == "snapshot"
    assert set(PREFIXES) <= prefixes(first)
    status = b.restart_status()
    assert status["deferral"] is None
    convergence = status["convergence"]
    assert isinstance(convergence, dict) and not convergence["converging"]
    assert list(convergence["released"].values()) == ["end-of-rib"]


async def test_fresh_bgpd_with_a_peer_that_never_comes_up_sends_after_the_bound(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    pb = free_port(B)
    b = await speakers(
        config(
            tmp_path,
            B,
            pb,
            [peer(NOBODY, free_port(NOBODY), local_address=B)],
            originate=["10.3.0.0/24"],
            startup_convergence_time=1.0,
        )
    )
    async with (
        RPCClient(f"unix:{b.config.control_socket}") as client,
        client.stream("subscribe") as sub,
    ):
        first = await sub.next(20)
    assert isinstance(first, dict) and first["type"] == "snapshot"
    assert prefixes(first) == {"10.3.0.0/24"}
    convergence = b.restart_status()["convergence"]
    assert isinstance(convergence, dict)
    assert list(convergence["released"].values()) == ["deferral limit"]
    assert isinstance(b.sink, RoutingSink)
    sink = b.sink
    await wait_for(lambda: not sink.converging)
