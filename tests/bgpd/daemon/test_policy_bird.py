"""Policies against BIRD 2 over eBGP, tabby-bgpd as a real process: RFC 8212 default deny
with named policies lifting it, an export policy that sends BIRD the pool block but not the /32
inside it, an import policy that sets LOCAL_PREF on BIRD's tagged route, and `config.reload`
applying changed policies to the live session (a ROUTE-REFRESH to BIRD for the import side;
the difference only, withdrawal included, for the export side) without a reset."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.bgpd.interop.lab import TABBY, Lab, free_port, tabby_peer, wait_until
from tests.bgpd.routing_interop.peers import (
    bird_bgp,
    bird_conf,
    birdc,
    start_bird,
    tabby_route,
)

BIRD, BIRD_AS = "127.0.0.34", 4200000034

pytestmark = [pytest.mark.debian("bird"), pytest.mark.slow]

BIRD_EXPORT = "filter { bgp_community.add((65034,200)); accept; }"
ORIGINATE = ("10.244.1.0/26", "10.244.1.5/32", "192.168.7.0/24")


def policies(local_pref: int, export_lists: list[str]) -> str:
    return f"""ebgp_default_deny = true

[[prefix_lists]]
name = "pools"
prefixes = [{{prefix = "10.244.0.0/16", le = 26}}]

[[prefix_lists]]
name = "extra"
prefixes = [{{prefix = "192.168.7.0/24"}}]

[[policies]]
name = "to-bird"
[[policies.terms]]
prefix_lists = {export_lists!r}
add_communities = ["65000:1"]
action = "accept"

[[policies]]
name = "from-bird"
default = "accept"
[[policies.terms]]
communities = ["65034:200"]
set_local_pref = {local_pref}

""".replace("'", '"')


def bird_routes(lab: Lab) -> set[str]:
    out = birdc(lab, "bird", "show route protocol tabby")
    return set(re.findall(r"^(\d+\.\d+\.\d+\.\d+/\d+)", out, re.MULTILINE))


@pytest.fixture
def policy_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, str]]:
    """The lab and Tabby's peer table for BIRD (written again by each reload)."""
    lab = Lab(tmp_path_factory.mktemp("policy"))
    bport = free_port(BIRD)
    try:
        start_bird(
            lab,
            "bird",
            bird_conf(
                lab,
                "bird",
                BIRD,
                bird_bgp(lab, BIRD, bport, BIRD_AS, TABBY, lab.port, 65000, BIRD_EXPORT),
                "route 10.34.0.0/24 blackhole;",
            ),
        )
        peer = tabby_peer(
            BIRD,
            bport,
            BIRD_AS,
            local_address=TABBY,
            import_policy="from-bird",
            export_policy="to-bird",
        )
        lab.start_tabby(policies(150, ["pools"]) + peer, originate=ORIGINATE)
        wait_until(lambda: lab.established(BIRD), 30, "session with BIRD")
        yield lab, peer
    finally:
        lab.close()


def reload(lab: Lab, peer: str, local_pref: int, export_lists: list[str]) -> None:
    conf = lab.tmp / "tabby.toml"
    text = conf.read_text()
    head = text[: text.index("ebgp_default_deny")]
    conf.write_text(head + policies(local_pref, export_lists) + peer)
    lab.rpc("config.reload")


def test_policies_with_bird_and_reload_without_reset(policy_lab: tuple[Lab, str]) -> None:
    lab, peer = policy_lab
    wait_until(lambda: bool(tabby_route(lab, "10.34.0.0/24")), 15, "BIRD's route in Tabby")
    assert tabby_route(lab, "10.34.0.0/24")["local_pref"] == 150
    wait_until(lambda: "10.244.1.0/26" in bird_routes(lab), 15, "the block at BIRD")
    assert bird_routes(lab) == {"10.244.1.0/26"}  # not the /32, not the non-pool prefix
    assert "(65000,1)" in birdc(lab, "bird", "show route 10.244.1.0/26 all")
    before = lab.neighbor(BIRD)
    refreshes = before["messages_out"].get("ROUTEREFRESH", 0)

    # Import side: Tabby asks BIRD for a route refresh and the new LOCAL_PREF applies.
    reload(lab, peer, 250, ["pools"])
    wait_until(lambda: tabby_route(lab, "10.34.0.0/24").get("local_pref") == 250, 15, "lp 250")
    assert lab.neighbor(BIRD)["messages_out"].get("ROUTEREFRESH", 0) > refreshes

    # Export side, wider then narrower: BIRD gets the new prefix, then its withdrawal.
    reload(lab, peer, 250, ["pools", "extra"])
    wait_until(lambda: "192.168.7.0/24" in bird_routes(lab), 15, "the extra prefix at BIRD")
    reload(lab, peer, 250, ["pools"])
    wait_until(lambda: "192.168.7.0/24" not in bird_routes(lab), 15, "its withdrawal at BIRD")
    assert bird_routes(lab) == {"10.244.1.0/26"}

    after = lab.neighbor(BIRD)
    assert after["state"] == "Established"
    assert after["established_count"] == before["established_count"]
