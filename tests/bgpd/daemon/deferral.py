"""Shared by the tests of the sink's two waits before its first answers: graceful-restart
deferral (test_restarting.py) and cold-start convergence (test_cold_start_snapshot.py)."""

from __future__ import annotations

from collections.abc import Callable

from bgpd.daemon.config import BgpdConfig
from bgpd.daemon.routing import RoutingSink
from bgpd.wire.context import IPV4_UNICAST
from tests.bgpd.routing_interop.test_sink import FakeSender


class Clock:
    """The sink's clock, moved by the test: deadlines are states, not sleeps."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def sink_with_clock() -> tuple[RoutingSink, Clock]:
    sink = RoutingSink(
        BgpdConfig(router_id="127.0.0.100", local_as=65000, originate=["10.100.0.0/24"])
    )
    clock = Clock()
    sink.clock = clock
    return sink, clock


def collect(stream: list[dict[str, object]]) -> Callable[[dict[str, object]], bool]:
    def push(message: dict[str, object]) -> bool:
        stream.append(message)
        return True

    return push


def eor_of(sender: FakeSender) -> bool:
    return any(u.end_of_rib == IPV4_UNICAST for u in sender.updates)
