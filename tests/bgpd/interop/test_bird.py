"""Interop with BIRD 2 (Debian bird2): iBGP with TCP-MD5 carrying IPv4 and IPv6 (MP-BGP over
an IPv4 session: BIRD refuses ::1 as a neighbor), eBGP with a 4-octet AS and GTSM, keepalives across hold times, hard reset and RFC 9003 shutdown seen by
BIRD, and BIRD's NOTIFICATION decoded and shown by `tabbyctl node status`."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.bgpd.interop.lab import TABBY, Lab, free_port, tabby_peer, wait_until

BIRD = "127.0.0.11"
BIRD_E = "127.0.0.21"
BIRD_AS4 = 4200000011

pytestmark = [pytest.mark.debian("bird"), pytest.mark.slow]


COMMON = "  hold time 3;\n  keepalive time 1;\n  connect retry time 1;\n  error wait time 1, 2;\n"


def bird_conf(lab: Lab, router: str, log: str, protocol: str) -> str:
    # One BGP protocol per BIRD instance: BIRD 2.0.12 did not listen for a second protocol
    # bound to another local address in the same instance.
    return f"""
router id {router};
log "{lab.tmp}/{log}" all;
ipv4 table igp4;
ipv6 table igp6;
protocol device {{}}
protocol static igps4 {{ ipv4 {{ table igp4; }}; route 0.0.0.0/0 via "lo"; }}
protocol static igps6 {{ ipv6 {{ table igp6; }}; route ::/0 via "lo"; }}
protocol static s4 {{ ipv4; route 10.11.0.0/24 blackhole; route 10.11.1.0/24 blackhole; }}
protocol static s6 {{ ipv6; route fd11::/64 blackhole; }}
{protocol}
"""


def ibgp_md5(lab: Lab, port: int) -> str:
    return f"""protocol bgp tabby4 {{
  local {BIRD} port {port} as 65000;
  neighbor {TABBY} port {lab.port} as 65000;
  strict bind on;
  multihop;
  password "s3cret";
{COMMON}  ipv4 {{ import all; export all; igp table igp4; next hop self; }};
  ipv6 {{ import all; export all; igp table igp6; next hop address 2001:db8::11; }};
}}"""


def ebgp_gtsm(lab: Lab, port: int) -> str:
    return f"""protocol bgp tabby_e {{
  local {BIRD_E} port {port} as {BIRD_AS4};
  neighbor {TABBY} port {lab.port} as 65000;
  strict bind on;
  multihop;
  ttl security on;
{COMMON}  ipv4 {{ import all; export all; igp table igp4; next hop self; }};
}}"""


def start_bird(lab: Lab, name: str, text: str) -> None:
    conf = lab.tmp / f"{name}.conf"
    conf.write_text(text)
    subprocess.run(["bird", "-p", "-c", str(conf)], check=True, timeout=10)
    ctl, pid = lab.tmp / f"{name}.ctl", lab.tmp / f"{name}.pid"
    lab.spawn(["bird", "-f", "-c", str(conf), "-s", str(ctl), "-P", str(pid)], f"{name}.out")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, int, int]]:
    lab = Lab(tmp_path_factory.mktemp("bird"))
    port, port_e = free_port(BIRD), free_port(BIRD_E)
    try:
        start_bird(lab, "bird", bird_conf(lab, BIRD, "bird.log", ibgp_md5(lab, port)))
        start_bird(lab, "bird_e", bird_conf(lab, BIRD_E, "bird_e.log", ebgp_gtsm(lab, port_e)))
        lab.start_tabby(
            tabby_peer(
                BIRD, port, 65000, local_address=TABBY, password="s3cret", families=["ipv4", "ipv6"]
            )
            + tabby_peer(
                BIRD_E,
                port_e,
                BIRD_AS4,
                local_address=TABBY,
                ttl_security=True,
                peer_type="node specific",
            )
        )
        wait_until(
            lambda: lab.established(BIRD) and lab.established(BIRD_E), 20, "sessions with BIRD"
        )
        yield lab, port, port_e
    finally:
        lab.close()


def birdc(lab: Lab, *cmd: str, instance: str = "bird") -> str:
    out = subprocess.run(
        ["birdc", "-s", str(lab.tmp / f"{instance}.ctl"), *cmd],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return out.stdout


def test_ibgp_ipv4_ipv6_with_md5_and_ebgp_4_octet_as_with_gtsm_establish(
    lab: tuple[Lab, int, int],
) -> None:
    lb, _, _ = lab
    ibgp, ebgp = lb.neighbor(BIRD), lb.neighbor(BIRD_E)
    assert {"ipv4-unicast", "ipv6-unicast", "4-octet-as"} <= set(ibgp["capabilities"])
    assert ebgp["remote_as"] == BIRD_AS4 and "4-octet-as" in ebgp["capabilities"]
    text = birdc(lb, "show", "protocols", "all", "tabby_e", instance="bird_e")
    assert "Established" in text and "external" in text and "AS4" in text
    # BIRD's two IPv4 and one IPv6 prefixes arrive; our IPv4 prefix reaches BIRD. (BIRD reads an
    # IPv4-mapped IPv6 next hop as IPv4 and withdraws our IPv6 route, so it is not checked.)
    wait_until(lambda: lb.neighbor(BIRD)["prefixes"].get("ipv4") == 2, 15, "BIRD's IPv4 routes")
    wait_until(lambda: lb.neighbor(BIRD)["prefixes"].get("ipv6") == 1, 15, "BIRD's IPv6 route")
    wait_until(lambda: lb.neighbor(BIRD_E)["prefixes"].get("ipv4") == 2, 15, "eBGP routes")
    assert "10.10.0.0/24" in birdc(lb, "show", "route")


def test_keepalives_keep_hold_time_3_sessions_up_across_several_hold_times(
    lab: tuple[Lab, int, int],
) -> None:
    lb, _, _ = lab
    before = lb.neighbor(BIRD)["established_count"], lb.neighbor(BIRD_E)["established_count"]
    time.sleep(10)  # more than three hold times
    after = lb.neighbor(BIRD), lb.neighbor(BIRD_E)
    assert all(n["state"] == "Established" for n in after)
    assert (after[0]["established_count"], after[1]["established_count"]) == before
    assert after[0]["messages_in"]["KEEPALIVE"] >= 8


def test_hard_reset_is_seen_by_bird(lab: tuple[Lab, int, int]) -> None:
    lb, _, _ = lab
    count = lb.neighbor(BIRD)["established_count"]
    assert lb.rpc("neighbor.reset", BIRD, "hard", "tabby test reset") == 1
    wait_until(
        lambda: lb.neighbor(BIRD)["established_count"] == count + 1 and lb.established(BIRD), 20
    )
    wait_until(
        lambda: "Received: Administrative reset" in lb.log("bird.log"), 15, "BIRD logging the reset"
    )


def test_rfc9003_shutdown_message_is_shown_by_bird(lab: tuple[Lab, int, int]) -> None:
    lb, _, _ = lab
    assert lb.rpc("neighbor.shutdown", BIRD, "tabby maintenance window") == 1
    wait_until(
        lambda: "tabby maintenance window" in birdc(lb, "show", "protocols", "all", "tabby4"), 10
    )
    assert "Administrative shutdown" in birdc(lb, "show", "protocols", "all", "tabby4")
    assert "down" in lb.node_status()
    lb.rpc("neighbor.enable", BIRD)
    wait_until(lambda: lb.established(BIRD), 20, "re-establishment")


def test_notification_from_bird_is_decoded_and_shown_by_node_status(
    lab: tuple[Lab, int, int],
) -> None:
    lb, _, _ = lab
    birdc(lb, "disable", "tabby4", '"bird operator says bye"')
    wait_until(lambda: not lb.established(BIRD), 15)
    err = lb.neighbor(BIRD)["last_error"]
    assert err["kind"] == "notification_received" and (err["code"], err["subcode"]) == (6, 2)
    assert err["communication"] == "bird operator says bye"
    table = lb.node_status()
    assert (
        'NOTIFICATION received: Cease / Administrative Shutdown "bird operator says bye"' in table
    )
    assert "IPv6 BGP status" in table and "node specific" in table and "Established" in table
    birdc(lb, "enable", "tabby4")
    wait_until(lambda: lb.established(BIRD), 20, "re-establishment")
