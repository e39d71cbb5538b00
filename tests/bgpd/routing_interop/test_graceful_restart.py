"""Graceful restart (RFC 4724) with BIRD 2, in both roles, by kill -9 of one side:

- BIRD restarts in recovery mode (`bird -R`: R and F bits): Tabby, as helper, keeps BIRD's
  routes marked stale (§4.2) while BIRD is gone, replaces the ones BIRD re-announces and sweeps
  the rest at BIRD's End-of-RIB. Started plainly (F clear), its stale routes go at once (§4.2
  "MUST immediately remove").
- Tabby restarts: BIRD, as helper, keeps Tabby's route until Tabby's restart time runs out,
  then removes it.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.bgpd.interop.lab import TABBY, Lab, free_port, tabby_peer, wait_until
from tests.bgpd.routing_interop.peers import bird_bgp, bird_conf, birdc, start_bird, tabby_route

BIRD = "127.0.0.51"
TABBY_RESTART_TIME = 4
GR = "  graceful restart on;\n  graceful restart time 8;\n"

pytestmark = [pytest.mark.debian("bird"), pytest.mark.slow]


class GrLab:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.bport = free_port(BIRD)
        self.bird: subprocess.Popen[bytes] | None = None

    def start_bird(self, statics: str, recovery: bool = False) -> None:
        proto = bird_bgp(self.lab, BIRD, self.bport, 65000, TABBY, self.lab.port, 65000, extra=GR)
        conf = bird_conf(self.lab, "bird", BIRD, proto, statics)
        self.bird = start_bird(self.lab, "bird", conf, recovery=recovery)

    def kill_bird(self) -> None:
        assert self.bird is not None
        self.bird.send_signal(signal.SIGKILL)
        self.bird.wait(5)


@pytest.fixture(scope="module")
def gr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrLab]:
    lab = Lab(tmp_path_factory.mktemp("gr"))
    g = GrLab(lab)
    try:
        g.start_bird("route 10.51.0.0/24 blackhole; route 10.51.1.0/24 blackhole;")
        lab.start_tabby(
            tabby_peer(
                BIRD, g.bport, 65000, local_address=TABBY, graceful_restart_time=TABBY_RESTART_TIME
            ),
            originate=("10.10.0.0/24",),
        )
        wait_until(lambda: lab.established(BIRD), 30, "session with BIRD")
        wait_until(lambda: bool(tabby_route(lab, "10.51.1.0/24")), 15, "BIRD's routes")
        yield g
    finally:
        lab.close()


def test_rfc4724_4_2_tabby_keeps_restarting_bird_routes_stale_then_sweeps_at_eor(
    gr: GrLab,
) -> None:
    lab = gr.lab
    assert "graceful-restart" in lab.neighbor(BIRD)["capabilities"]
    gr.kill_bird()
    wait_until(lambda: not lab.established(BIRD), 10, "session down")
    for prefix in ("10.51.0.0/24", "10.51.1.0/24"):
        route = tabby_route(lab, prefix)
        assert route and route["stale"] is True, route
    # BIRD comes back without 10.51.1.0/24: the re-announced route is fresh again, the other
    # one is swept at End-of-RIB (§4.2), well before BIRD's 8 s restart time.
    gr.start_bird("route 10.51.0.0/24 blackhole;", recovery=True)
    wait_until(lambda: lab.established(BIRD), 20, "re-establishment")
    wait_until(lambda: not tabby_route(lab, "10.51.1.0/24"), 5, "sweep at End-of-RIB")
    route = tabby_route(lab, "10.51.0.0/24")
    assert route and route["stale"] is False
    assert "gr.forwarding_not_kept" not in lab.log("tabby.log")  # F was set: kept until EoR


def test_rfc4724_4_2_bird_back_without_forwarding_state_has_stale_routes_removed_at_once(
    gr: GrLab,
) -> None:
    lab = gr.lab
    wait_until(lambda: bool(tabby_route(lab, "10.51.0.0/24")), 15, "BIRD's route")
    gr.kill_bird()
    wait_until(lambda: not lab.established(BIRD), 10, "session down")
    route = tabby_route(lab, "10.51.0.0/24")
    assert route and route["stale"] is True
    gr.start_bird("route 10.51.2.0/24 blackhole;")  # a plain start: F clear
    wait_until(lambda: "gr.forwarding_not_kept" in lab.log("tabby.log"), 20, "swept at once")
    wait_until(lambda: bool(tabby_route(lab, "10.51.2.0/24")), 15, "BIRD's new route")
    assert not tabby_route(lab, "10.51.0.0/24")


def test_rfc4724_bird_as_helper_keeps_killed_tabby_route_until_restart_time(gr: GrLab) -> None:
    lab = gr.lab
    wait_until(lambda: "10.10.0.0/24" in birdc(lab, "bird", "show", "route"), 15, "ours in BIRD")
    assert lab.tabby is not None
    killed = time.monotonic()
    lab.tabby.send_signal(signal.SIGKILL)
    lab.tabby.wait(5)
    wait_until(
        lambda: "Established" not in birdc(lab, "bird", "show", "protocols", "tabby"),
        10,
        "BIRD noticing",
    )
    if time.monotonic() - killed < TABBY_RESTART_TIME - 1:
        assert "10.10.0.0/24" in birdc(lab, "bird", "show", "route")
    wait_until(
        lambda: "10.10.0.0/24" not in birdc(lab, "bird", "show", "route"),
        TABBY_RESTART_TIME + 10,
        "BIRD dropping our route after the restart time",
    )
