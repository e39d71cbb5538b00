"""ExaBGP as the receiver of Tabby's routes, read from the JSON its API process is sent.

One ExaBGP process holds four sessions with Tabby: on 127.0.0.x a source (iBGP, non-client)
whose routes Tabby passes on, an iBGP route-reflector client and an eBGP peer in AS 4200000064,
and an iBGP client over IPv6 on ::1. An API process (`receive { parsed; update; }`, JSON)
appends every UPDATE to a file, and the tests replay it into each receiving session's table.
Checked there: an API announcement with communities (RFC 1997) and large communities
(RFC 8092), next hop self, then its withdrawal; the source's route reflected to the client
(RFC 4456) with MED, a 4-octet AS_PATH (RFC 6793), communities, next hop, ORIGINATOR_ID and
CLUSTER_LIST intact; the same route at the eBGP peer with our AS prepended and no MED
(RFC 4271 §5.1.4); over MP-BGP (RFC 4760) an IPv6 route with a global IPv6 next hop reflected
unchanged, and an IPv6 announcement of our own with next hop self: ::1 over the IPv6 session,
the IPv4-mapped address over the IPv4 ones (RFC 4291 §2.5.5.2). ExaBGP takes 127/8 next hops
as they are, so this stays on the loopback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.bgpd.interop.lab import TABBY, Lab, tabby_peer, wait_until
from tests.bgpd.routing_interop.peers import tabby_route

SOURCE, CLIENT, EBGP = "127.0.0.66", "127.0.0.67", "127.0.0.68"
EBGP_AS = 4200000064
V6_NEXT_HOP = "2001:db8::62"
V6_ID = "127.0.0.69"  # router id of the IPv6 session on ::1

pytestmark = [pytest.mark.debian("exabgp"), pytest.mark.slow]


def neighbor(
    lab: Lab,
    local: str,
    local_as: int,
    static: str = "",
    peer: str = TABBY,
    port: int = 0,
    router_id: str = "",
) -> str:
    return f"""neighbor {peer} {{
  api {{
    processes [ recorder ];
    receive {{ parsed; update; }}
  }}
  router-id {router_id or local};
  local-address {local};
  local-as {local_as};
  peer-as 65000;
  hold-time 3;
  connect {port or lab.port};
  family {{
    ipv4 unicast;
    ipv6 unicast;
  }}
{static}}}
"""


def exabgp_conf(lab: Lab) -> str:
    recorder = lab.tmp / "recorder.py"
    recorder.write_text(
        "import sys\n"
        f"with open({str(lab.tmp / 'updates.jsonl')!r}, 'a') as out:\n"
        "    for line in sys.stdin:\n"
        "        out.write(line)\n"
        "        out.flush()\n"
    )
    static = f"""  static {{
    route 10.62.0.0/24 next-hop {SOURCE} community [65062:1 65062:2] large-community [4200000062:7:8] med 30 as-path [4200000061 4200000062];
    route fd62::/64 next-hop {V6_NEXT_HOP} community [65062:6] med 31 as-path [4200000061];
  }}
"""
    return (
        f"process recorder {{\n  run /usr/bin/python3 -u {recorder};\n  encoder json;\n}}\n"
        + neighbor(lab, SOURCE, 65000, static)
        + neighbor(lab, CLIENT, 65000)
        + neighbor(lab, EBGP, EBGP_AS)
        + neighbor(lab, "::1", 65000, peer="::1", port=lab.port6, router_id=V6_ID)
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("exabgp-receive"))
    families = ["ipv4", "ipv6"]
    try:
        lab.start_tabby(
            tabby_peer(SOURCE, 179, 65000, local_address=TABBY, passive=True, families=families)
            + tabby_peer(
                CLIENT, 179, 65000, local_address=TABBY, passive=True, families=families,
                rr_client=True,
            )
            + tabby_peer(EBGP, 179, EBGP_AS, local_address=TABBY, passive=True, families=families)
            + tabby_peer("::1", 179, 65000, local_address="::1", passive=True, rr_client=True),
            originate=(),
        )  # fmt: skip
        conf = lab.tmp / "exabgp.conf"
        conf.write_text(exabgp_conf(lab))
        lab.spawn_exabgp(conf)
        wait_until(
            lambda: all(lab.established(a) for a in (SOURCE, CLIENT, EBGP, "::1")), 30, "sessions"
        )
        wait_until(lambda: bool(tabby_route(lab, "10.62.0.0/24")), 15, "the source's route")
        wait_until(lambda: bool(tabby_route(lab, "fd62::/64")), 15, "the source's IPv6 route")
        yield lab
    finally:
        lab.close()


def received(lab: Lab, local: str) -> dict[str, dict[str, Any]]:
    """What ExaBGP's session from `local` holds now: prefix -> attributes plus `next-hop`,
    replayed from the UPDATEs in arrival order (a withdrawal removes the prefix)."""
    table: dict[str, dict[str, Any]] = {}
    for line in lab.log("updates.jsonl").splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line still being written
        if msg.get("type") != "update" or msg["neighbor"]["address"]["local"] != local:
            continue
        update = msg["neighbor"]["message"].get("update", {})
        for nlris in update.get("withdraw", {}).values():
            for nlri in nlris:
                table.pop(nlri["nlri"], None)
        for by_next_hop in update.get("announce", {}).values():
            for next_hop, nlris in by_next_hop.items():
                for nlri in nlris:
                    table[nlri["nlri"]] = {**update.get("attribute", {}), "next-hop": next_hop}
    return table


def wait_for(lab: Lab, local: str, prefix: str) -> dict[str, Any]:
    wait_until(lambda: prefix in received(lab, local), 15, f"{prefix} at ExaBGP {local}")
    return received(lab, local)[prefix]


def wait_gone(lab: Lab, local: str, prefix: str) -> None:
    wait_until(lambda: prefix not in received(lab, local), 15, f"{prefix} withdrawn at {local}")


def test_api_announcement_reaches_exabgp_with_communities_then_withdrawn(lab: Lab) -> None:
    assert lab.rpc("announce", "10.10.8.0/24", ["65000:8"], ["65000:8:9"]) == "10.10.8.0/24"
    ibgp = wait_for(lab, CLIENT, "10.10.8.0/24")
    assert ibgp["next-hop"] == TABBY
    assert ibgp.get("as-path", []) == [] and ibgp["local-preference"] == 100  # empty: omitted
    assert ibgp["community"] == [[65000, 8]]
    assert ibgp["large-community"] == [[65000, 8, 9]]
    ebgp = wait_for(lab, EBGP, "10.10.8.0/24")
    assert ebgp["next-hop"] == TABBY and ebgp["as-path"] == [65000]
    assert ebgp["community"] == [[65000, 8]] and ebgp["large-community"] == [[65000, 8, 9]]
    assert "local-preference" not in ebgp
    assert lab.rpc("withdraw", "10.10.8.0/24") is True
    for local in (CLIENT, EBGP):
        wait_gone(lab, local, "10.10.8.0/24")


def test_reflected_route_keeps_med_4_octet_as_path_communities_and_next_hop(lab: Lab) -> None:
    r = wait_for(lab, CLIENT, "10.62.0.0/24")
    assert r["next-hop"] == SOURCE
    assert r["as-path"] == [4200000061, 4200000062]
    assert r["med"] == 30
    assert r["community"] == [[65062, 1], [65062, 2]]
    assert r["large-community"] == [[4200000062, 7, 8]]
    assert r["originator-id"] == SOURCE  # RFC 4456 §8: set from the source's router id
    assert r["cluster-list"] == [TABBY]  # our router id, as no cluster_id is configured
    assert "10.62.0.0/24" not in received(lab, SOURCE)  # never back to where it came from


def test_learned_route_at_ebgp_peer_prepended_without_med(lab: Lab) -> None:
    r = wait_for(lab, EBGP, "10.62.0.0/24")
    assert r["next-hop"] == TABBY
    assert r["as-path"] == [65000, 4200000061, 4200000062]
    assert "med" not in r  # RFC 4271 §5.1.4
    assert r["community"] == [[65062, 1], [65062, 2]]
    assert r["large-community"] == [[4200000062, 7, 8]]
    assert "originator-id" not in r and "cluster-list" not in r


def test_ipv6_route_from_exabgp_in_tabby_rib_with_ipv6_next_hop(lab: Lab) -> None:
    r = tabby_route(lab, "fd62::/64")
    assert r["family"] == "ipv6" and r["next_hops"] == [V6_NEXT_HOP]
    assert r["as_path"] == [[4200000061]] and r["med"] == 31
    assert r["communities"] == ["65062:6"]


def test_ipv6_routes_reach_exabgp_with_ipv6_next_hops_then_withdrawn(lab: Lab) -> None:
    for local in (CLIENT, "::1"):
        reflected = wait_for(lab, local, "fd62::/64")
        assert reflected["next-hop"] == V6_NEXT_HOP  # iBGP: passed on unchanged
        assert reflected["as-path"] == [4200000061] and reflected["med"] == 31
        assert reflected["community"] == [[65062, 6]]
    assert lab.rpc("announce", "fd10:8::/64", ["65000:6"], ["65000:6:7"]) == "fd10:8::/64"
    # Next hop self: the IPv4-mapped address over an IPv4 session, our address over IPv6.
    for local, next_hop in ((CLIENT, f"::ffff:{TABBY}"), (EBGP, f"::ffff:{TABBY}"), ("::1", "::1")):
        own = wait_for(lab, local, "fd10:8::/64")
        assert own["next-hop"] == next_hop
        assert own["community"] == [[65000, 6]] and own["large-community"] == [[65000, 6, 7]]
    assert lab.rpc("withdraw", "fd10:8::/64") is True
    for local in (CLIENT, EBGP, "::1"):
        wait_gone(lab, local, "fd10:8::/64")
