"""Interop with GoBGP (Debian gobgpd): eBGP carrying IPv4 and IPv6 (MP-BGP), keepalives across
hold times, hard reset and RFC 9003 shutdown seen by GoBGP, and GoBGP's shutdown NOTIFICATION
(`--reason`) shown by `tabbyctl node status`."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.bgpd.interop.lab import TABBY, Lab, free_port, gobgp_conf, tabby_peer, wait_until

GOBGP = "127.0.0.12"
GOBGP_AS = 65012

pytestmark = [pytest.mark.debian("gobgpd"), pytest.mark.slow]


class GoBGP:
    def __init__(self, lab: Lab, api: int) -> None:
        self.lab = lab
        self.api = api

    def cli(self, *args: str) -> str:
        argv = ["gobgp", "-u", GOBGP, "-p", str(self.api), *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False).stdout

    def neighbor(self) -> dict[str, Any]:
        out = self.cli("neighbor", TABBY, "-j")
        return dict(json.loads(out)) if out.strip().startswith("{") else {}

    def established(self) -> bool:
        # gobgp -j prints the gRPC enum: 6 is ESTABLISHED.
        return str(self.neighbor().get("state", {}).get("session_state", "")) in (
            "6",
            "established",
        )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, GoBGP]]:
    lab = Lab(tmp_path_factory.mktemp("gobgp"))
    port, api = free_port(GOBGP), free_port(GOBGP)
    try:
        conf = lab.tmp / "gobgpd.toml"
        conf.write_text(
            gobgp_conf(GOBGP, GOBGP_AS, port, lab.port, ("ipv4-unicast", "ipv6-unicast"))
        )
        lab.spawn(
            [
                "gobgpd",
                "-f",
                str(conf),
                "-t",
                "toml",
                "-p",
                f"--api-hosts={GOBGP}:{api}",
                "--pprof-disable",
            ],
            "gobgpd.log",
        )
        gobgp = GoBGP(lab, api)
        wait_until(lambda: gobgp.cli("global").strip() != "", 15, "gobgpd API")
        gobgp.cli("global", "rib", "add", "10.12.0.0/24", "-a", "ipv4")
        gobgp.cli("global", "rib", "add", "fd12::/64", "-a", "ipv6")
        lab.start_tabby(
            tabby_peer(GOBGP, port, GOBGP_AS, local_address=TABBY, families=["ipv4", "ipv6"])
        )
        wait_until(lambda: lab.established(GOBGP), 30, "session with GoBGP")
        yield lab, gobgp
    finally:
        lab.close()


def test_ebgp_ipv4_ipv6_establish_and_routes_arrive(lab: tuple[Lab, GoBGP]) -> None:
    lb, gobgp = lab
    n = lb.neighbor(GOBGP)
    assert {"ipv4-unicast", "ipv6-unicast", "4-octet-as"} <= set(n["capabilities"])
    assert gobgp.established()
    wait_until(lambda: lb.neighbor(GOBGP)["prefixes"].get("ipv4") == 1, 15, "GoBGP's IPv4 route")
    wait_until(lambda: lb.neighbor(GOBGP)["prefixes"].get("ipv6") == 1, 15, "GoBGP's IPv6 route")


def test_keepalives_keep_hold_time_3_session_up(lab: tuple[Lab, GoBGP]) -> None:
    lb, gobgp = lab
    count = lb.neighbor(GOBGP)["established_count"]
    time.sleep(10)
    n = lb.neighbor(GOBGP)
    assert n["state"] == "Established" and n["established_count"] == count
    assert gobgp.established()


def test_hard_reset_and_rfc9003_shutdown_are_seen_by_gobgp(lab: tuple[Lab, GoBGP]) -> None:
    lb, _ = lab
    count = lb.neighbor(GOBGP)["established_count"]
    lb.rpc("neighbor.reset", GOBGP, "hard", "tabby reset")
    wait_until(
        lambda: "administrative reset" in lb.log("gobgpd.log").lower(),
        15,
        "GoBGP logging the reset",
    )
    wait_until(lambda: lb.neighbor(GOBGP)["established_count"] == count + 1, 30, "re-establishment")
    lb.rpc("neighbor.shutdown", GOBGP, "tabby maintenance")
    wait_until(
        lambda: "tabby maintenance" in lb.log("gobgpd.log"), 15, "GoBGP logging the communication"
    )
    lb.rpc("neighbor.enable", GOBGP)
    wait_until(lambda: lb.established(GOBGP), 30, "re-establishment")


def test_gobgp_shutdown_notification_is_shown_by_node_status(lab: tuple[Lab, GoBGP]) -> None:
    lb, gobgp = lab
    gobgp.cli("neighbor", TABBY, "shutdown", "--reason", "gobgp says bye")
    wait_until(lambda: not lb.established(GOBGP), 15)
    err = lb.neighbor(GOBGP)["last_down"]
    assert (err["code"], err["subcode"], err["communication"]) == (6, 2, "gobgp says bye")
    assert 'Cease / Administrative Shutdown "gobgp says bye"' in lb.node_status()
    gobgp.cli("neighbor", TABBY, "enable")
    wait_until(lambda: lb.established(GOBGP), 30, "re-establishment")
