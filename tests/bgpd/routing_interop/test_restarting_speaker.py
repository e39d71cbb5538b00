"""Tabby as the restarting speaker (RFC 4724 §4.1) with BIRD 2 as the helper.

tabby-bgpd is killed (-9), or stopped with `graceful_stop` (a planned restart: no NOTIFICATION,
the marker kept), and started again on the same run marker. BIRD keeps our routes as stale
while we are away; we come back with the Restart State bit, BIRD keeps the routes without a
flap (polled all along), sends us its table and End-of-RIB, we end the deferral, send ours and
End-of-RIB; BIRD then sweeps the one route we no longer originate (at End-of-RIB, long before
the restart time). A best-path subscriber (as felixd is) that reconnects across the restart
sees no withdrawal, and its first snapshot after the restart already holds BIRD's routes.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ipc import RPCClient
from ipc.errors import TIMEOUT, RPCError
from tests.bgpd.interop.lab import TABBY, Lab, free_port, tabby_peer, wait_until
from tests.bgpd.routing_interop.peers import bird_bgp, bird_conf, birdc, start_bird

BIRD = "127.0.0.52"
RESTART_TIME = 30  # what we advertise: BIRD keeps our routes this long after we die
GR = "  graceful restart on;\n  debug { events, packets };\n"
KEPT, DROPPED = "10.10.7.0/24", "10.10.8.0/24"

pytestmark = [pytest.mark.debian("bird"), pytest.mark.slow]


class Subscriber(threading.Thread):
    """A `subscribe` client that reconnects like felixd; records every message."""

    def __init__(self, lab: Lab) -> None:
        super().__init__(daemon=True)
        self.lab = lab
        self.messages: list[tuple[int, dict[str, Any]]] = []  # (connection number, message)
        self.stop = threading.Event()
        self.connections = 0

    def run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        deadline = time.monotonic() + 120
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                async with (
                    RPCClient(f"unix:{self.lab.socket}") as client,
                    client.stream("subscribe") as sub,
                ):
                    self.connections += 1
                    n = self.connections
                    while not self.stop.is_set():
                        try:
                            msg = await sub.next(0.2)
                        except RPCError as exc:
                            if exc.code == TIMEOUT:
                                continue
                            raise
                        assert isinstance(msg, dict)
                        self.messages.append((n, msg))
            except Exception:
                await asyncio.sleep(0.1)

    def seen(self, conn: int, prefix: str) -> bool:
        return any(
            r.get("prefix") == prefix
            for n, m in list(self.messages)
            if n == conn
            for r in m.get("routes", [])
        )

    def withdrawn(self) -> set[str]:
        return {p for _, m in self.messages for p in m.get("withdrawn", [])}


class Poller(threading.Thread):
    """Polls BIRD's table; records each time a prefix was missing."""

    def __init__(self, lab: Lab, prefix: str) -> None:
        super().__init__(daemon=True)
        self.lab, self.prefix = lab, prefix
        self.missing = 0
        self.polls = 0
        self.stop = threading.Event()

    def run(self) -> None:
        end = time.monotonic() + 120
        while not self.stop.is_set() and time.monotonic() < end:
            if self.prefix not in birdc(self.lab, "bird", "show", "route"):
                self.missing += 1
            self.polls += 1
            time.sleep(0.05)


@pytest.fixture
def lab(tmp_path: pytest.TempPathFactory) -> Iterator[tuple[Lab, int]]:
    lab = Lab(tmp_path)  # type: ignore[arg-type]
    try:
        yield lab, free_port(BIRD)
    finally:
        lab.close()


def _start_tabby(lab: Lab, bport: int, originate: tuple[str, ...], passive: bool) -> None:
    lab.start_tabby(
        "graceful_stop = true\n"
        + tabby_peer(
            BIRD,
            bport,
            65000,
            local_address=TABBY,
            graceful_restart_time=RESTART_TIME,
            passive=passive,
        ),
        originate=originate,
    )


@pytest.mark.parametrize("stop", ["kill -9", "planned (SIGTERM, graceful_stop)"])
def test_rfc4724_4_1_tabby_restarts_with_r_bit_bird_keeps_routes_and_gets_eor(
    lab: tuple[Lab, int], stop: str
) -> None:
    lb, bport = lab
    proto = bird_bgp(lb, BIRD, bport, 65000, TABBY, lb.port, 65000, extra=GR)
    start_bird(lb, "bird", bird_conf(lb, "bird", BIRD, proto, "route 10.52.0.0/24 blackhole;"))
    _start_tabby(lb, bport, (KEPT, DROPPED), passive=False)
    wait_until(lambda: lb.established(BIRD), 30, "session with BIRD")
    wait_until(lambda: DROPPED in birdc(lb, "bird", "show", "route"), 15, "our routes in BIRD")
    status = lb.rpc("status")["graceful_restart"]
    assert status["restarted"] is False  # the first start is a cold one
    assert "Restart recovery" not in birdc(lb, "bird", "show", "protocols", "all", "tabby")
    sub = Subscriber(lb)
    sub.start()
    wait_until(lambda: sub.seen(1, "10.52.0.0/24"), 15, "BIRD's route on the stream")
    poll = Poller(lb, KEPT)
    poll.start()

    assert lb.tabby is not None
    lb.tabby.send_signal(signal.SIGKILL if stop == "kill -9" else signal.SIGTERM)
    lb.tabby.wait(15)
    wait_until(
        lambda: "Established" not in birdc(lb, "bird", "show", "protocols", "tabby"),
        10,
        "BIRD noticing",
    )
    assert KEPT in birdc(lb, "bird", "show", "route")  # stale, kept (§4.2)
    lb.socket.unlink(missing_ok=True)
    bird_log_before = len(lb.log("bird.log"))
    # The same marker: a restart. Passive now, so that BIRD's session comes back a little
    # after the subscriber does (BIRD retries each second): the subscriber's first snapshot
    # must still wait for BIRD's routes.
    _start_tabby(lb, bport, (KEPT,), passive=True)
    wait_until(lambda: sub.connections >= 2, 15, "subscriber reconnected")
    wait_until(lambda: lb.established(BIRD), 30, "re-establishment")
    # BIRD shows our OPEN's Graceful Restart capability: R ("Restart recovery") and F.
    shown = birdc(lb, "bird", "show", "protocols", "all", "tabby")
    assert "Restart recovery" in shown and "AF preserved: ipv4" in shown, shown
    wait_until(lambda: DROPPED not in birdc(lb, "bird", "show", "route"), 15, "sweep at our EoR")
    restarted = time.monotonic()
    poll.stop.set()
    poll.join(5)
    sub.stop.set()
    sub.join(5)

    # We came back with R set and deferred until BIRD's End-of-RIB.
    status = lb.rpc("status")["graceful_restart"]
    assert status["restarted"] is True and status["downtime"] < RESTART_TIME
    deferral = status["deferral"]
    assert deferral["deferring"] is False and deferral["released"] == {
        f"{BIRD}:{bport}": "end-of-rib"
    }
    assert "gr.selection_done" in lb.log("tabby.log")
    # BIRD saw our restart as graceful, kept KEPT all along and got our End-of-RIB.
    bird_log = lb.log("bird.log")[bird_log_before:]
    assert "Neighbor graceful restart detected" in lb.log("bird.log")
    assert "Got END-OF-RIB" in bird_log
    assert poll.polls > 10 and poll.missing == 0
    assert KEPT in birdc(lb, "bird", "show", "route")
    assert time.monotonic() - restarted < RESTART_TIME
    # The subscriber: no withdrawal of anything, and the first snapshot after the restart
    # already had BIRD's route (it was sent after the deferral, not at subscribe time).
    assert not (sub.withdrawn() & {KEPT, "10.52.0.0/24"})
    firsts = [m for n, m in sub.messages if n == 2]
    assert firsts and firsts[0]["type"] == "snapshot"
    assert {"10.52.0.0/24", KEPT} <= {r["prefix"] for r in firsts[0]["routes"]}
