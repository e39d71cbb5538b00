"""ExaBGP injects routes into Tabby: attributes (communities, large communities, MED, a 4-octet
AS_PATH) arrive intact, and raw malformed attributes are handled by RFC 7606 with the session
staying up: a COMMUNITIES attribute whose length is not a multiple of 4 makes its UPDATE
treat-as-withdraw (§7.8), an ATOMIC_AGGREGATE of length 1 is discarded (§7.6) and its route kept.
The other direction (ExaBGP receiving Tabby's routes) is in test_exabgp_receive.py."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.bgpd.interop.lab import TABBY, Lab, tabby_peer, wait_until
from tests.bgpd.routing_interop.peers import tabby_route

EXA = "127.0.0.61"

pytestmark = [pytest.mark.debian("exabgp"), pytest.mark.slow]


def exabgp_conf(lab: Lab) -> str:
    nh = f"next-hop {EXA}"
    return f"""neighbor {TABBY} {{
  router-id {EXA};
  local-address {EXA};
  local-as 65000;
  peer-as 65000;
  hold-time 3;
  connect {lab.port};
  family {{ ipv4 unicast; }}
  static {{
    route 10.61.0.0/24 {nh} community [65061:1 65061:2] large-community [4200000061:7:8] med 30 as-path [4200000061 4200000062];
    route 10.61.8.0/24 {nh} attribute [ 0x06 0x40 0x01 ];
    route 10.61.9.0/24 {nh} attribute [ 0x08 0xc0 0x010203 ];
    route 10.61.10.0/24 {nh};
  }}
}}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("exabgp"))
    try:
        lab.start_tabby(tabby_peer(EXA, 179, 65000, local_address=TABBY, passive=True))
        conf = lab.tmp / "exabgp.conf"
        conf.write_text(exabgp_conf(lab))
        lab.spawn_exabgp(conf)
        wait_until(lambda: lab.established(EXA), 30, "session with ExaBGP")
        yield lab
    finally:
        lab.close()


def test_exabgp_route_attributes_intact(lab: Lab) -> None:
    wait_until(lambda: bool(tabby_route(lab, "10.61.0.0/24")), 15, "ExaBGP's route")
    r = tabby_route(lab, "10.61.0.0/24")
    assert r["as_path"] == [[4200000061, 4200000062]]
    assert r["communities"] == ["65061:1", "65061:2"]
    assert r["large_communities"] == ["4200000061:7:8"]
    assert r["med"] == 30
    assert r["next_hops"] == [EXA]


def test_rfc7606_malformed_attributes_treat_as_withdraw_and_discard_session_stays_up(
    lab: Lab,
) -> None:
    wait_until(lambda: bool(tabby_route(lab, "10.61.10.0/24")), 15, "ExaBGP's last route")
    count = lab.neighbor(EXA)["established_count"]
    assert not tabby_route(lab, "10.61.9.0/24")  # §7.8: treat-as-withdraw
    assert tabby_route(lab, "10.61.8.0/24")  # §7.6: attribute discard, route kept
    time.sleep(4)  # more than a hold time: no reset followed the malformed UPDATEs
    n = lab.neighbor(EXA)
    assert n["state"] == "Established" and n["established_count"] == count
    # Both malformed UPDATEs did reach Tabby (and were not silently dropped by ExaBGP).
    cases = [line for line in lab.log("tabby.log").splitlines() if "update.rfc7606" in line]
    assert any("treat_as_withdraw=true" in line.lower() for line in cases), cases
    assert any("treat_as_withdraw=false" in line.lower() for line in cases), cases
    assert n["prefixes"].get("ipv4") == 3
