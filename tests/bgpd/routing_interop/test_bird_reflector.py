"""Tabby as a route-reflector client (RFC 4456) of a BIRD 2 reflector, with FRR bgpd as the other
client: FRR's route reaches Tabby with ORIGINATOR_ID = FRR's router id and BIRD's cluster id in
CLUSTER_LIST (§8), and Tabby's own route reaches FRR through BIRD with ORIGINATOR_ID = Tabby."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.bgpd.interop.lab import TABBY, Lab, free_port, tabby_peer, wait_until
from tests.bgpd.routing_interop.peers import (
    BGPD,
    TIMERS,
    bird_conf,
    frr_route,
    start_bird,
    start_frr,
    tabby_route,
)

BIRD, FRR = "127.0.0.91", "127.0.0.93"
CLUSTER = "10.0.0.91"

pytestmark = [pytest.mark.debian("bird"), pytest.mark.debian(BGPD), pytest.mark.slow]


def bird_rr(lab: Lab, port: int, fport: int) -> str:
    def client(name: str, address: str, peer_port: int) -> str:
        return f"""protocol bgp {name} {{
  local {BIRD} port {port} as 65000;
  neighbor {address} port {peer_port} as 65000;
  strict bind on;
  multihop;
  rr client;
  rr cluster id {CLUSTER};
{TIMERS}  ipv4 {{ import all; export all; igp table igp4; }};
}}
"""

    return client("tabby", TABBY, lab.port) + client("frr", FRR, fport)


def frr_conf(bport: int) -> str:
    n = BIRD
    return f"""frr defaults traditional
hostname frr93
!
router bgp 65000
 bgp router-id {FRR}
 no bgp network import-check
 bgp allow-martian-nexthop
 neighbor {n} remote-as 65000
 neighbor {n} port {bport}
 neighbor {n} timers 1 3
 neighbor {n} timers connect 1
 neighbor {n} update-source {FRR}
 neighbor {n} advertisement-interval 0
 !
 address-family ipv4 unicast
  network 10.93.0.0/24
 exit-address-family
!
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("bird_rr"))
    bport, fport = free_port(BIRD), free_port(FRR)
    try:
        start_bird(lab, "bird", bird_conf(lab, "bird", BIRD, bird_rr(lab, bport, fport), ""))
        start_frr(lab, "frr", FRR, fport, frr_conf(bport))
        lab.start_tabby(
            tabby_peer(BIRD, bport, 65000, local_address=TABBY), originate=("10.10.0.0/24",)
        )
        wait_until(lambda: lab.established(BIRD), 30, "session with the BIRD reflector")
        yield lab
    finally:
        lab.close()


def test_rfc4456_8_reflected_route_in_tabby_has_originator_id_and_cluster_list(lab: Lab) -> None:
    wait_until(lambda: bool(tabby_route(lab, "10.93.0.0/24")), 20, "FRR's route via BIRD")
    r = tabby_route(lab, "10.93.0.0/24")
    assert r["originator_id"] == FRR
    assert r["cluster_list"] == [CLUSTER]
    assert r["next_hops"] == [FRR]  # RFC 4456 §10: the reflector keeps the next hop


def test_rfc4456_tabby_route_reflected_to_frr_with_tabby_as_originator(lab: Lab) -> None:
    wait_until(lambda: bool(frr_route(lab, "frr", "10.10.0.0/24")), 20, "our route via BIRD")
    p = frr_route(lab, "frr", "10.10.0.0/24")
    assert p["originatorId"] == TABBY
    assert CLUSTER in str(p["clusterList"])
