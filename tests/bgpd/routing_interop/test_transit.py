"""Routes exchanged both ways with BIRD 2 and FRR bgpd, with Tabby as the eBGP transit between
them (RFC 4271 §9.1.3, §5.1.2): communities (RFC 1997), large communities (RFC 8092), MED and a
4-octet-AS AS_PATH (RFC 6793) arrive intact (IPv4, and IPv6 over MP-BGP with FRR) in Tabby's RIB and at the other daemon; Tabby
prepends its own AS and does not carry MED across ASes; an API announcement with communities
reaches both daemons and its withdrawal removes it from both."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

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
    vtysh,
)

BIRD, BIRD_AS = "127.0.0.31", 4200000031
FRR, FRR_AS = "127.0.0.33", 4200000033

pytestmark = [pytest.mark.debian("bird"), pytest.mark.debian(BGPD), pytest.mark.slow]

BIRD_EXPORT = """filter {
    bgp_community.add((65031,7));
    bgp_large_community.add((4200000031,1,2));
    bgp_med = 50;
    bgp_path.prepend(4200000099);
    accept;
  }"""


def frr_conf(tabby_port: int) -> str:
    n = TABBY
    return f"""frr defaults traditional
hostname frr33
!
router bgp {FRR_AS}
 bgp router-id {FRR}
 no bgp ebgp-requires-policy
 no bgp network import-check
 bgp allow-martian-nexthop
 neighbor {n} remote-as 65000
 neighbor {n} port {tabby_port}
 neighbor {n} timers 1 3
 neighbor {n} timers connect 1
 neighbor {n} update-source {FRR}
 neighbor {n} disable-connected-check
 neighbor {n} advertisement-interval 0
 !
 address-family ipv4 unicast
  network 10.33.0.0/24 route-map SET
  neighbor {n} send-community all
 exit-address-family
 !
 address-family ipv6 unicast
  network fd33::/64 route-map SET
  neighbor {n} activate
  neighbor {n} send-community all
 exit-address-family
!
route-map SET permit 10
 set community 65033:9
 set large-community 4200000033:3:4
 set metric 70
 set as-path prepend 4200000098
!
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("transit"))
    bport, fport = free_port(BIRD), free_port(FRR)
    try:
        start_bird(
            lab,
            "bird",
            bird_conf(
                lab,
                "bird",
                BIRD,
                bird_bgp(lab, BIRD, bport, BIRD_AS, TABBY, lab.port, 65000, BIRD_EXPORT),
                "route 10.31.0.0/24 blackhole;",
            ),
        )
        start_frr(lab, "frr", FRR, fport, frr_conf(lab.port))
        lab.start_tabby(
            tabby_peer(BIRD, bport, BIRD_AS, local_address=TABBY)
            + tabby_peer(FRR, fport, FRR_AS, local_address=TABBY, families=["ipv4", "ipv6"]),
            originate=("10.10.0.0/24",),
        )
        wait_until(lambda: lab.established(BIRD) and lab.established(FRR), 30, "sessions")
        yield lab
    finally:
        lab.close()


def test_bird_route_attributes_intact_in_tabby_rib_rfc1997_rfc8092_rfc6793(lab: Lab) -> None:
    wait_until(lambda: bool(tabby_route(lab, "10.31.0.0/24")), 15, "BIRD's route in Tabby")
    r = tabby_route(lab, "10.31.0.0/24")
    assert r["as_path"] == [[BIRD_AS, 4200000099]]
    assert r["communities"] == ["65031:7"]
    assert r["large_communities"] == ["4200000031:1:2"]
    assert r["med"] == 50
    assert r["next_hops"] == [BIRD]


def test_bird_route_reaches_frr_with_prepend_and_without_med_rfc4271_5_1_2(lab: Lab) -> None:
    wait_until(lambda: bool(frr_route(lab, "frr", "10.31.0.0/24")), 15, "BIRD's route in FRR")
    p = frr_route(lab, "frr", "10.31.0.0/24")
    assert p["aspath"]["string"] == f"65000 {BIRD_AS} 4200000099"
    assert p["community"]["string"] == "65031:7"
    assert p["largeCommunity"]["string"] == "4200000031:1:2"
    assert "metric" not in p  # RFC 4271 §5.1.4: MED is not propagated to other ASes


def test_frr_route_attributes_intact_in_tabby_rib(lab: Lab) -> None:
    wait_until(lambda: bool(tabby_route(lab, "10.33.0.0/24")), 15, "FRR's route in Tabby")
    r = tabby_route(lab, "10.33.0.0/24")
    assert r["as_path"] == [[FRR_AS, 4200000098]]
    assert r["communities"] == ["65033:9"]
    assert r["large_communities"] == ["4200000033:3:4"]
    assert r["med"] == 70


def test_frr_route_reaches_bird_with_prepend_and_without_med(lab: Lab) -> None:
    def shown() -> str:
        return birdc(lab, "bird", "show", "route", "all", "10.33.0.0/24")

    wait_until(lambda: "BGP.as_path" in shown(), 15, "FRR's route in BIRD")
    text = shown()
    assert re.search(rf"BGP.as_path: 65000 {FRR_AS} 4200000098\b", text), text
    assert "BGP.community: (65033,9)" in text
    assert "BGP.large_community: (4200000033, 3, 4)" in text
    assert "BGP.med" not in text


def test_api_announce_with_communities_reaches_both_then_withdraw_removes_it(lab: Lab) -> None:
    assert lab.rpc("announce", "10.10.5.0/24", ["65000:5"], ["65000:1:2"]) == "10.10.5.0/24"

    def in_bird() -> str:
        return birdc(lab, "bird", "show", "route", "all", "10.10.5.0/24")

    wait_until(lambda: "BGP.community" in in_bird(), 15, "announcement in BIRD")
    text = in_bird()
    assert "BGP.community: (65000,5)" in text
    assert "BGP.large_community: (65000, 1, 2)" in text
    assert re.search(r"BGP.as_path: 65000\s*$", text, re.M), text
    wait_until(lambda: bool(frr_route(lab, "frr", "10.10.5.0/24")), 15, "announcement in FRR")
    p = frr_route(lab, "frr", "10.10.5.0/24")
    assert p["community"]["string"] == "65000:5"
    assert p["largeCommunity"]["string"] == "65000:1:2"
    assert p["aspath"]["string"] == "65000"
    assert lab.rpc("withdraw", "10.10.5.0/24") is True
    wait_until(lambda: "10.10.5.0" not in in_bird(), 15, "withdrawal in BIRD")
    wait_until(lambda: not frr_route(lab, "frr", "10.10.5.0/24"), 15, "withdrawal in FRR")


def frr_route6(lab: Lab, prefix: str) -> dict[str, Any]:
    data = json.loads(vtysh(lab, "frr", f"show bgp ipv6 unicast {prefix} json") or "{}")
    for path in data.get("paths", []):
        if path.get("bestpath", {}).get("overall"):
            return dict(path)
    return {}


def test_rfc4760_ipv6_route_from_frr_with_attributes_and_ipv6_next_hop(lab: Lab) -> None:
    wait_until(lambda: bool(tabby_route(lab, "fd33::/64")), 15, "FRR's IPv6 route in Tabby")
    r = tabby_route(lab, "fd33::/64")
    assert r["family"] == "ipv6"
    assert r["as_path"] == [[FRR_AS, 4200000098]]
    assert r["communities"] == ["65033:9"] and r["large_communities"] == ["4200000033:3:4"]
    assert len(r["next_hops"]) == 1 and ":" in r["next_hops"][0]  # an IPv6 (mapped) address


def test_rfc4760_ipv6_api_announcement_reaches_frr_with_communities(lab: Lab) -> None:
    assert lab.rpc("announce", "fd10:5::/64", ["65000:6"], []) == "fd10:5::/64"
    wait_until(lambda: bool(frr_route6(lab, "fd10:5::/64")), 15, "IPv6 announcement in FRR")
    p = frr_route6(lab, "fd10:5::/64")
    assert p["community"]["string"] == "65000:6"
    assert p["aspath"]["string"] == "65000"
    assert any(":" in nh.get("ip", "") for nh in p["nexthops"]), p["nexthops"]
    assert lab.rpc("withdraw", "fd10:5::/64") is True
    wait_until(lambda: not frr_route6(lab, "fd10:5::/64"), 15, "IPv6 withdrawal in FRR")
