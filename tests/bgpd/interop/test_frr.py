"""Interop with FRR bgpd (Debian frr, bgpd alone with -Z): eBGP with a 4-octet AS, TCP-MD5 and
GTSM carrying IPv4 and IPv6 (MP-BGP), keepalives across hold times, hard reset and RFC 9003
shutdown seen by FRR, and FRR's own shutdown NOTIFICATION shown by `tabbyctl node status`."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.bgpd.interop.lab import TABBY, Lab, free_port, tabby_peer, wait_until

FRR = "127.0.0.13"
FRR_AS = 4200000013
BGPD = "/usr/lib/frr/bgpd"

pytestmark = [pytest.mark.debian(BGPD), pytest.mark.slow]


def frr_conf(lab: Lab) -> str:
    n = TABBY
    return f"""frr defaults traditional
hostname frr13
!
router bgp {FRR_AS}
 bgp router-id {FRR}
 no bgp ebgp-requires-policy
 no bgp network import-check
 bgp allow-martian-nexthop
 neighbor {n} remote-as 65000
 neighbor {n} port {lab.port}
 neighbor {n} password s3cret
 neighbor {n} ttl-security hops 1
 neighbor {n} timers 1 3
 neighbor {n} timers connect 1
 neighbor {n} update-source {FRR}
 neighbor {n} advertisement-interval 0
 !
 address-family ipv4 unicast
  network 10.13.0.0/24
  network 10.13.1.0/24
 exit-address-family
 !
 address-family ipv6 unicast
  network fd13::/64
  neighbor {n} activate
 exit-address-family
!
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("frr"))
    port = free_port(FRR)
    try:
        conf = lab.tmp / "frr.conf"
        conf.write_text(frr_conf(lab))
        lab.spawn(
            [
                BGPD, "-f", str(conf), "-i", str(lab.tmp / "bgpd.pid"), "--vty_socket", str(lab.tmp),
                "-P", "0", "-Z", "-S", "-l", FRR, "-p", str(port), "--log", f"file:{lab.tmp}/frr.log",
            ],
            "frr.out",
        )  # fmt: skip
        lab.start_tabby(
            tabby_peer(
                FRR, port, FRR_AS, local_address=TABBY, password="s3cret", ttl_security=True,
                families=["ipv4", "ipv6"], peer_type="global",
            )
        )  # fmt: skip
        wait_until(lambda: lab.established(FRR), 30, "session with FRR")
        yield lab
    finally:
        lab.close()


def vtysh(lab: Lab, *commands: str) -> str:
    argv = ["vtysh", "--vty_socket", str(lab.tmp), "-d", "bgpd"]
    for c in commands:
        argv += ["-c", c]
    return subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False).stdout


def frr_neighbor(lab: Lab) -> dict[str, Any]:
    data = json.loads(vtysh(lab, f"show bgp neighbors {TABBY} json") or "{}")
    return dict(data.get(TABBY, {}))


def test_ebgp_4_octet_as_md5_gtsm_ipv4_ipv6_establish(lab: Lab) -> None:
    n = lab.neighbor(FRR)
    assert n["remote_as"] == FRR_AS
    assert {"ipv4-unicast", "ipv6-unicast", "4-octet-as"} <= set(n["capabilities"])
    f = frr_neighbor(lab)
    assert f["bgpState"] == "Established" and f["remoteAs"] == 65000
    wait_until(lambda: lab.neighbor(FRR)["prefixes"].get("ipv4") == 2, 15, "FRR's IPv4 routes")
    wait_until(lambda: lab.neighbor(FRR)["prefixes"].get("ipv6") == 1, 15, "FRR's IPv6 route")
    wait_until(
        lambda: "10.10.0.0/24" in vtysh(lab, "show bgp ipv4 unicast"), 15, "our route in FRR"
    )
    wait_until(
        lambda: "fd10::/64" in vtysh(lab, "show bgp ipv6 unicast"), 15, "our IPv6 route in FRR"
    )


def test_keepalives_keep_hold_time_3_session_up(lab: Lab) -> None:
    count = lab.neighbor(FRR)["established_count"]
    time.sleep(10)
    n = lab.neighbor(FRR)
    assert n["state"] == "Established" and n["established_count"] == count
    assert frr_neighbor(lab)["bgpState"] == "Established"


def test_hard_reset_is_seen_by_frr(lab: Lab) -> None:
    count = lab.neighbor(FRR)["established_count"]
    lab.rpc("neighbor.reset", FRR, "hard", "tabby reset")
    seen: dict[str, Any] = {}

    def frr_saw_reset() -> bool:
        seen.update(frr_neighbor(lab))
        return seen.get("lastNotificationReason") == "Cease/Administrative Reset"

    wait_until(frr_saw_reset, 15, "FRR recording the reset")
    assert seen["lastShutdownDescription"] == "tabby reset"
    wait_until(lambda: lab.neighbor(FRR)["established_count"] == count + 1, 30, "re-establishment")


def test_rfc9003_shutdown_message_is_shown_by_frr(lab: Lab) -> None:
    lab.rpc("neighbor.shutdown", FRR, "tabby maintenance")
    wait_until(lambda: frr_neighbor(lab).get("bgpState") != "Established", 15)
    f = frr_neighbor(lab)
    assert f["lastNotificationReason"] == "Cease/Administrative Shutdown"
    assert f["lastShutdownDescription"] == "tabby maintenance"
    lab.rpc("neighbor.enable", FRR)
    wait_until(lambda: lab.established(FRR), 30, "re-establishment")


def test_frr_shutdown_notification_is_shown_by_node_status(lab: Lab) -> None:
    vtysh(
        lab,
        "configure terminal",
        f"router bgp {FRR_AS}",
        f"neighbor {TABBY} shutdown message frr says bye",
    )
    wait_until(lambda: not lab.established(FRR), 15)
    err = lab.neighbor(FRR)["last_error"]
    assert (err["code"], err["subcode"], err["communication"]) == (6, 2, "frr says bye")
    assert 'Cease / Administrative Shutdown "frr says bye"' in lab.node_status()
    vtysh(lab, "configure terminal", f"router bgp {FRR_AS}", f"no neighbor {TABBY} shutdown")
    wait_until(lambda: lab.established(FRR), 30, "re-establishment")
