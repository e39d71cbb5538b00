"""Enhanced route refresh (RFC 7313) and the RFC 8538 N bit with FRR bgpd, which implements both.

- Tabby asks FRR for a refresh (`neighbor.refresh`): FRR answers with BoRR, its routes and
  EoRR; Tabby marks FRR's routes stale at BoRR and, FRR having re-sent them all, sweeps none.
- FRR asks Tabby (`clear bgp ... soft in`): Tabby answers with BoRR, the table and EoRR, which
  FRR logs.
- FRR sees our N and F bits; a graceful admin reset (Cease without Hard Reset, N negotiated)
  leaves our route at FRR all along (FRR is the helper); a hard one goes out as Cease/Hard
  Reset carrying the Administrative Reset, which FRR logs as such.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.bgpd.interop.lab import ROOT, TABBY, Lab, free_port, tabby_peer, wait_until
from tests.bgpd.routing_interop.peers import BGPD, frr_route, start_frr, tabby_route, vtysh

FRR, FRR_AS = "127.0.0.34", 4200000034
OURS = "10.10.34.0/24"

pytestmark = [pytest.mark.debian(BGPD), pytest.mark.slow]


def frr_conf(tabby_port: int) -> str:
    n = TABBY
    return f"""frr defaults traditional
hostname frr34
log file {{log}}
debug bgp neighbor-events
!
router bgp {FRR_AS}
 bgp router-id {FRR}
 no bgp ebgp-requires-policy
 no bgp network import-check
 bgp allow-martian-nexthop
 bgp graceful-restart
 neighbor {n} remote-as 65000
 neighbor {n} port {tabby_port}
 neighbor {n} timers 1 3
 neighbor {n} timers connect 1
 neighbor {n} update-source {FRR}
 neighbor {n} advertisement-interval 0
 !
 address-family ipv4 unicast
  network 10.34.0.0/24
  network 10.34.1.0/24
 exit-address-family
!
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("frr-refresh"))
    port = free_port(FRR)
    try:
        conf = frr_conf(lab.port).replace("{log}", str(lab.tmp / "frr-debug.log"))
        start_frr(lab, "frr", FRR, port, conf)
        _start_tabby(lab, port)
        lab.frr_port = port  # type: ignore[attr-defined]
        wait_until(lambda: lab.established(FRR), 30, "session with FRR")
        wait_until(lambda: bool(tabby_route(lab, "10.34.1.0/24")), 15, "FRR's routes")
        wait_until(lambda: bool(frr_route(lab, "frr", OURS)), 15, "our route in FRR")
        yield lab
    finally:
        lab.close()


def _start_tabby(lab: Lab, port: int) -> None:
    lab.start_tabby(
        tabby_peer(FRR, port, FRR_AS, local_address=TABBY, graceful_restart_time=60),
        originate=(OURS,),
    )


def test_rfc7313_and_rfc8538_capabilities_negotiated_with_frr(lab: Lab) -> None:
    caps = lab.neighbor(FRR)["capabilities"]
    assert "enhanced-route-refresh" in caps and "graceful-restart" in caps
    data = json.loads(vtysh(lab, "frr", f"show bgp neighbors {TABBY} json") or "{}")
    gr = data[TABBY]["gracefulRestartInfo"]
    assert gr["nBit"] is True and gr["ipv4Unicast"]["fBit"] is True


def test_rfc7313_4_tabby_asks_frr_borr_eorr_nothing_swept(lab: Lab) -> None:
    before = lab.log("tabby.log").count("refresh.end")
    answer = lab.rpc("neighbor.refresh", FRR)
    assert answer == {"requested": ["ipv4-unicast"], "direction": "in"}
    wait_until(lambda: lab.log("tabby.log").count("refresh.end") > before, 10, "FRR's EoRR")
    line = [x for x in lab.log("tabby.log").splitlines() if "refresh.end" in x][-1]
    assert "how=eorr" in line and "swept=0" in line, line
    assert tabby_route(lab, "10.34.0.0/24") and tabby_route(lab, "10.34.1.0/24")


def test_tabbyctl_bgp_refresh_asks_the_peer(lab: Lab) -> None:
    before = lab.log("tabby.log").count("refresh.end")
    out = subprocess.run(
        [sys.executable, "-m", "ctl.main", "bgp", "refresh", FRR, "--socket", str(lab.socket)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{FRR}: route refresh requested for ipv4-unicast"
    wait_until(lambda: lab.log("tabby.log").count("refresh.end") > before, 10, "FRR's EoRR")


def test_rfc7313_4_frr_asks_tabby_and_gets_borr_and_eorr(lab: Lab) -> None:
    log = lab.tmp / "frr-debug.log"
    start = len(log.read_text(errors="replace")) if log.exists() else 0
    vtysh(lab, "frr", f"clear bgp ipv4 unicast {TABBY} soft in")

    def seen() -> str:
        return log.read_text(errors="replace")[start:] if log.exists() else ""

    wait_until(lambda: "rcvd route-refresh (EoRR)" in seen(), 10, "FRR logging our EoRR")
    text = seen()
    assert text.index("rcvd route-refresh (BoRR)") < text.index("rcvd route-refresh (EoRR)")
    assert f"marking prefix {OURS} as stale" in text  # FRR's side of §4
    assert frr_route(lab, "frr", OURS)


class Poller(threading.Thread):
    def __init__(self, lab: Lab) -> None:
        super().__init__(daemon=True)
        self.lab = lab
        self.polls = self.missing = 0
        self.stop = threading.Event()

    def run(self) -> None:
        end = time.monotonic() + 60
        while not self.stop.is_set() and time.monotonic() < end:
            self.polls += 1
            if not frr_route(self.lab, "frr", OURS):
                self.missing += 1
            time.sleep(0.05)


def test_rfc8538_graceful_reset_keeps_our_route_at_frr_hard_reset_is_recorded(lab: Lab) -> None:
    count = lab.neighbor(FRR)["established_count"]
    poll = Poller(lab)
    poll.start()
    lab.rpc("neighbor.reset", FRR, "graceful", "graceful one")
    wait_until(lambda: lab.neighbor(FRR)["established_count"] == count + 1, 30, "back up")
    wait_until(lambda: lab.established(FRR), 15, "established")
    time.sleep(2.0)  # FRR receives our table and End-of-RIB
    poll.stop.set()
    poll.join(5)
    assert poll.polls >= 5 and poll.missing == 0
    # FRR (debug bgp neighbor-events) logs what it received: the plain Cease, no Hard Reset.
    log = lab.tmp / "frr-debug.log"
    text = log.read_text(errors="replace")
    assert (
        'received from neighbor 127.0.0.10 6/4 (Cease/Administrative Reset) "graceful one"' in text
    )
    start = len(text)
    lab.rpc("neighbor.reset", FRR, "hard", "hard one")
    wait_until(lambda: "hard one" in log.read_text(errors="replace")[start:], 15, "FRR's log")
    assert (
        "%NOTIFICATION(Hard Reset): received from neighbor 127.0.0.10 6/4 "
        '(Cease/Administrative Reset) "hard one"'
    ) in log.read_text(errors="replace")[start:]
    wait_until(lambda: lab.established(FRR), 30, "established again")


def test_rfc4724_4_1_killed_tabby_restarts_with_frr_as_helper(lab: Lab) -> None:
    """Last in the module: kill -9 of tabby-bgpd, FRR keeps our route stale; back on the same
    marker with R set, FRR keeps it without a flap and gets our End-of-RIB."""
    poll = Poller(lab)
    poll.start()
    assert lab.tabby is not None
    lab.tabby.send_signal(signal.SIGKILL)
    lab.tabby.wait(5)
    wait_until(lambda: "Established" not in vtysh(lab, "frr", "show bgp summary"), 10, "FRR")
    lab.socket.unlink(missing_ok=True)
    _start_tabby(lab, lab.frr_port)  # type: ignore[attr-defined]
    wait_until(lambda: lab.established(FRR), 30, "re-establishment")

    def gr_info() -> dict[str, Any]:
        data = json.loads(vtysh(lab, "frr", f"show bgp neighbors {TABBY} json") or "{}")
        return dict(data.get(TABBY, {}).get("gracefulRestartInfo", {}))

    assert gr_info()["rBit"] is True  # our OPEN after the restart
    wait_until(lambda: gr_info().get("endOfRibRecv", {}).get("ipv4Unicast") is True, 15, "EoR")
    poll.stop.set()
    poll.join(5)
    assert poll.polls >= 5 and poll.missing == 0
    status = lab.rpc("status")["graceful_restart"]
    assert status["restarted"] is True
    # FRR sets R itself for a while after its own start (then it waits for our End-of-RIB
    # and is not waited for, RFC 4724 §3), else it is released by its End-of-RIB.
    (how,) = status["deferral"]["released"].values()
    assert how in ("end-of-rib", "peer restarting")
