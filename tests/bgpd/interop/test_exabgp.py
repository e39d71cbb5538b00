"""Interop with ExaBGP (Debian exabgp): iBGP IPv4 and IPv6 routes injected by ExaBGP are counted,
keepalives hold a 3 s session up, and a hard reset and a shutdown reach ExaBGP (seen through an
ExaBGP API process that records received NOTIFICATIONs as JSON)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.bgpd.interop.lab import TABBY, Lab, tabby_peer, wait_until

EXA = "127.0.0.14"

pytestmark = [pytest.mark.debian("exabgp"), pytest.mark.slow]


def exabgp_conf(lab: Lab) -> str:
    # An API process records what ExaBGP receives (NOTIFICATIONs as JSON) in api.log.
    watcher = lab.tmp / "watch.py"
    watcher.write_text(
        "import sys\n"
        f"with open({str(lab.tmp / 'api.log')!r}, 'a') as out:\n"
        "    for line in sys.stdin:\n"
        "        out.write(line)\n"
        "        out.flush()\n"
    )
    return f"""process watcher {{
  run /usr/bin/python3 -u {watcher};
  encoder json;
}}
neighbor {TABBY} {{
  api {{
    processes [ watcher ];
    neighbor-changes;
    receive {{ parsed; notification; }}
  }}
  router-id {EXA};
  local-address {EXA};
  local-as 65000;
  peer-as 65000;
  hold-time 3;
  connect {lab.port};
  family {{
    ipv4 unicast;
    ipv6 unicast;
  }}
  static {{
    route 10.14.0.0/24 next-hop {EXA};
    route 10.14.1.0/24 next-hop {EXA};
    route 10.14.2.0/24 next-hop {EXA};
    route fd14::/64 next-hop 2001:db8::14;
  }}
}}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("exabgp"))
    try:
        lab.start_tabby(
            tabby_peer(
                EXA, 179, 65000, local_address=TABBY, passive=True, families=["ipv4", "ipv6"]
            )
        )
        conf = lab.tmp / "exabgp.conf"
        conf.write_text(exabgp_conf(lab))
        lab.spawn_exabgp(conf)
        wait_until(lambda: lab.established(EXA), 30, "session with ExaBGP")
        yield lab
    finally:
        lab.close()


def test_ibgp_establishes_and_injected_routes_are_counted(lab: Lab) -> None:
    n = lab.neighbor(EXA)
    assert {"ipv4-unicast", "ipv6-unicast"} <= set(n["capabilities"])
    wait_until(lambda: lab.neighbor(EXA)["prefixes"].get("ipv4") == 3, 15, "ExaBGP's IPv4 routes")
    wait_until(lambda: lab.neighbor(EXA)["prefixes"].get("ipv6") == 1, 15, "ExaBGP's IPv6 route")


def test_keepalives_keep_hold_time_3_session_up(lab: Lab) -> None:
    count = lab.neighbor(EXA)["established_count"]
    time.sleep(10)
    n = lab.neighbor(EXA)
    assert n["state"] == "Established" and n["established_count"] == count


def test_hard_reset_and_shutdown_reach_exabgp(lab: Lab) -> None:
    # ExaBGP 4.2.21 cannot decode a non-empty RFC 9003 Shutdown Communication (it formats the
    # decoded str into bytes and answers with a Message Header Error), so no text is sent here.
    count = lab.neighbor(EXA)["established_count"]
    lab.rpc("neighbor.reset", EXA, "hard", "")
    wait_until(
        lambda: '"code": 6, "subcode": 4' in lab.log("api.log"), 15, "ExaBGP receiving the reset"
    )
    wait_until(lambda: lab.neighbor(EXA)["established_count"] == count + 1, 30, "re-establishment")
    lab.rpc("neighbor.shutdown", EXA, "")
    wait_until(
        lambda: '"code": 6, "subcode": 2' in lab.log("api.log"), 15, "ExaBGP receiving the shutdown"
    )
    lab.rpc("neighbor.enable", EXA)
    wait_until(lambda: lab.established(EXA), 30, "re-establishment")
