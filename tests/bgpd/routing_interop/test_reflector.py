"""Tabby as an RFC 4456 route reflector with BIRD 2 and FRR bgpd as its iBGP clients:
client-to-client reflection in both directions, with ORIGINATOR_ID set to the originating
client's router id and Tabby's cluster id in CLUSTER_LIST (RFC 4456 §8) as the clients show
them, and the client's own reflected route dropped by the client's loop detection."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from tests.bgpd.interop.lab import TABBY, Lab, free_port, tabby_peer, wait_until
from tests.bgpd.routing_interop.peers import (
    BGPD,
    bird_bgp,
    bird_conf,
    birdc,
    frr_route,
    start_bird,
    start_frr,
    tabby_route,
)

BIRD, FRR = "127.0.0.41", "127.0.0.43"

pytestmark = [pytest.mark.debian("bird"), pytest.mark.debian(BGPD), pytest.mark.slow]


def frr_conf(tabby_port: int) -> str:
    n = TABBY
    return f"""frr defaults traditional
hostname frr43
!
router bgp 65000
 bgp router-id {FRR}
 no bgp network import-check
 bgp allow-martian-nexthop
 neighbor {n} remote-as 65000
 neighbor {n} port {tabby_port}
 neighbor {n} timers 1 3
 neighbor {n} timers connect 1
 neighbor {n} update-source {FRR}
 neighbor {n} advertisement-interval 0
 !
 address-family ipv4 unicast
  network 10.43.0.0/24
  neighbor {n} send-community all
 exit-address-family
!
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("reflector"))
    bport, fport = free_port(BIRD), free_port(FRR)
    try:
        start_bird(
            lab,
            "bird",
            bird_conf(
                lab,
                "bird",
                BIRD,
                bird_bgp(lab, BIRD, bport, 65000, TABBY, lab.port, 65000),
                "route 10.41.0.0/24 blackhole;",
            ),
        )
        start_frr(lab, "frr", FRR, fport, frr_conf(lab.port))
        lab.start_tabby(
            tabby_peer(BIRD, bport, 65000, local_address=TABBY, rr_client=True)
            + tabby_peer(FRR, fport, 65000, local_address=TABBY, rr_client=True),
            originate=("10.10.0.0/24",),
        )
        wait_until(lambda: lab.established(BIRD) and lab.established(FRR), 30, "sessions")
        yield lab
    finally:
        lab.close()


def test_bird_route_reflected_to_frr_with_originator_id_and_cluster_list_rfc4456_8(
    lab: Lab,
) -> None:
    wait_until(lambda: bool(frr_route(lab, "frr", "10.41.0.0/24")), 15, "reflected route in FRR")
    p = frr_route(lab, "frr", "10.41.0.0/24")
    assert p["originatorId"] == BIRD
    assert re.findall(r"\d+\.\d+\.\d+\.\d+", json.dumps(p["clusterList"])) == [TABBY]
    assert p["aspath"]["string"] == "Local"  # iBGP reflection adds no AS (FRR shows "Local")
    assert any(nh["ip"] == BIRD for nh in p["nexthops"])  # RFC 4456 §10: next hop unchanged


def test_frr_route_reflected_to_bird_with_originator_id_and_cluster_list(lab: Lab) -> None:
    def shown() -> str:
        return birdc(lab, "bird", "show", "route", "all", "10.43.0.0/24")

    wait_until(lambda: "BGP.originator_id" in shown(), 15, "reflected route in BIRD")
    text = shown()
    assert f"BGP.originator_id: {FRR}" in text
    assert re.search(rf"BGP.cluster_list: {re.escape(TABBY)}\s*$", text, re.M), text
    assert f"BGP.next_hop: {FRR}" in text


def test_tabby_keeps_both_clients_routes_and_its_own_reaches_both(lab: Lab) -> None:
    wait_until(lambda: bool(tabby_route(lab, "10.43.0.0/24")), 15, "FRR's route in Tabby")
    assert tabby_route(lab, "10.41.0.0/24")["source"] != "local"
    wait_until(lambda: "10.10.0.0/24" in birdc(lab, "bird", "show", "route"), 15, "own in BIRD")
    wait_until(lambda: bool(frr_route(lab, "frr", "10.10.0.0/24")), 15, "own route in FRR")
    # Locally originated: no ORIGINATOR_ID toward clients is required, and none is the client's.
    assert frr_route(lab, "frr", "10.10.0.0/24").get("originatorId") != FRR
