"""Routes from Tabby to GoBGP, and IPv6 both ways, checked in GoBGP's own RIB.

GoBGP 3.10 treats a classic NEXT_HOP in 127/8 as invalid (treat-as-withdraw), so an IPv4 route
from Tabby on 127.0.0.x never shows up there. These tests run every speaker inside a network
namespace they create, on documentation addresses held by its loopback (192.0.2.0/24,
2001:db8::/32; the kernel here has no dummy interfaces): Tabby, a receiving GoBGP (eBGP, AS
4200000071, one IPv4 and one IPv6 session) and a source GoBGP (eBGP, AS 4200000073) whose route
Tabby re-advertises. Checked at the receiver: an API announcement with communities (RFC 1997)
and large communities (RFC 8092) and a MED set by Tabby's export policy, then its withdrawal; a
learned route with a 4-octet AS_PATH (RFC 6793) with Tabby's AS prepended, communities kept and
the neighbouring AS's MED dropped (RFC 4271 §5.1.4); IPv6 over MP-BGP (RFC 4760) with a global
IPv6 next hop in both directions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.bgpd.interop.lab import Lab, wait_until
from tests.bgpd.routing_interop.peers import tabby_route

TABBY4, GOBGP4, SOURCE4 = "192.0.2.1", "192.0.2.2", "192.0.2.3"
TABBY6, GOBGP6 = "2001:db8::1", "2001:db8::2"
GOBGP_AS, SOURCE_AS = 4200000071, 4200000073
API = 50051

pytestmark = [
    pytest.mark.netns,
    pytest.mark.root,
    pytest.mark.debian("gobgpd"),
    pytest.mark.slow,
]


def gobgp_neighbor(address: str, local: str, family: str) -> str:
    return f"""[[neighbors]]
  [neighbors.config]
    neighbor-address = "{address}"
    peer-as = 65000
  [neighbors.transport.config]
    local-address = "{local}"
  [neighbors.timers.config]
    hold-time = 3
    keepalive-interval = 1
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "{family}"
"""


def gobgp_global(asn: int, router_id: str, addresses: list[str]) -> str:
    return f"""[global.config]
  as = {asn}
  router-id = "{router_id}"
  port = 179
  local-address-list = {json.dumps(addresses)}

"""


def tabby_session(address: str, remote_as: int, local: str, extra: str = "") -> str:
    return f"""[[peers]]
address = "{address}"
remote_as = {remote_as}
local_address = "{local}"
hold_time = 3
connect_retry_time = 1.0
idle_hold_time = 0.5
idle_hold_max = 2.0
{extra}"""


def tabby_conf(lab: Lab) -> str:
    # The export policy marks what the test can tell apart: our own MED only on routes that
    # carry 65000:7, so a learned route must arrive without any MED.
    return f"""router_id = "{TABBY4}"
local_as = 65000
uvloop = false
control_socket = "{lab.socket}"
listen = [{{address = "{TABBY4}", port = 179}}, {{address = "{TABBY6}", port = 179}}]
originate = []

[[policies]]
name = "med-for-7"
default = "accept"
[[policies.terms]]
communities = ["65000:7"]
set_med = 25

{tabby_session(GOBGP4, GOBGP_AS, TABBY4, 'export_policy = "med-for-7"')}
{tabby_session(GOBGP6, GOBGP_AS, TABBY6, 'families = ["ipv6"]')}
{tabby_session(SOURCE4, SOURCE_AS, TABBY4)}"""


class Netns:
    """One namespace whose loopback holds every speaker's addresses (deleted in `close`)."""

    def __init__(self) -> None:
        self.name = f"tabby-gobgp-{os.getpid()}"
        subprocess.run(["ip", "netns", "add", self.name], check=True, timeout=10)
        try:
            self.ip("link", "set", "lo", "up")
            for addr in (TABBY4, GOBGP4, SOURCE4):
                self.ip("addr", "add", f"{addr}/32", "dev", "lo")
            for addr in (TABBY6, GOBGP6):
                self.ip("addr", "add", f"{addr}/128", "dev", "lo", "nodad")
        except BaseException:
            self.close()
            raise

    def ip(self, *args: str) -> None:
        subprocess.run(["ip", "-n", self.name, *args], check=True, timeout=10)

    def argv(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]

    def close(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False, timeout=10)


class GoBGP:
    def __init__(self, lab: Lab, ns: Netns, name: str, conf: str, api_host: str) -> None:
        path = lab.tmp / f"{name}.toml"
        path.write_text(conf)
        self.ns, self.api_host = ns, api_host
        lab.spawn(
            ns.argv("gobgpd", "-f", str(path), "-t", "toml", "-p",
                    f"--api-hosts={api_host}:{API}", "--pprof-disable"),
            f"{name}.log",
        )  # fmt: skip

    def cli(self, *args: str) -> str:
        argv = self.ns.argv("gobgp", "-u", self.api_host, "-p", str(API), *args)
        out = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
        return out.stdout

    def established(self, neighbor: str) -> bool:
        data = json.loads(self.cli("neighbor", neighbor, "-j") or "{}")
        return bool(data.get("state", {}).get("session_state") == 6)  # ESTABLISHED

    def route(self, prefix: str, family: str = "ipv4") -> dict[int, dict[str, Any]]:
        """GoBGP's best path for `prefix`: its attributes keyed by type code (empty: none)."""
        text = self.cli("global", "rib", "-a", family, prefix, "-j")
        try:
            data = json.loads(text or "{}")
        except json.JSONDecodeError:
            return {}
        for path in data.get(prefix, []):
            if path.get("best"):
                return {a["type"]: a for a in path["attrs"]}
        return {}


def as_path(attrs: dict[int, dict[str, Any]]) -> list[int]:
    return [asn for seg in attrs[2]["as_paths"] for asn in seg["asns"]]


def communities(attrs: dict[int, dict[str, Any]]) -> list[str]:
    return [f"{c >> 16}:{c & 0xFFFF}" for c in attrs.get(8, {}).get("communities", [])]


def large_communities(attrs: dict[int, dict[str, Any]]) -> list[str]:
    rows = attrs.get(32, {}).get("value", [])
    return [f"{r['ASN']}:{r['LocalData1']}:{r['LocalData2']}" for r in rows]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, GoBGP, GoBGP]]:
    lab = Lab(tmp_path_factory.mktemp("gobgp-netns"))
    ns = Netns()
    try:
        receiver = GoBGP(
            lab,
            ns,
            "receiver",
            gobgp_global(GOBGP_AS, GOBGP4, [GOBGP4, GOBGP6])
            + gobgp_neighbor(TABBY4, GOBGP4, "ipv4-unicast")
            + gobgp_neighbor(TABBY6, GOBGP6, "ipv6-unicast"),
            GOBGP4,
        )
        source = GoBGP(
            lab,
            ns,
            "source",
            gobgp_global(SOURCE_AS, SOURCE4, [SOURCE4])
            + gobgp_neighbor(TABBY4, SOURCE4, "ipv4-unicast"),
            SOURCE4,
        )
        conf = lab.tmp / "tabby.toml"
        conf.write_text(tabby_conf(lab))
        lab.tabby = lab.spawn(
            ns.argv(sys.executable, "-m", "bgpd.main", "-c", str(conf)), "tabby.log"
        )
        wait_until(lab.socket.exists, 10, "tabby control socket")
        wait_until(
            lambda: all(lab.established(a) for a in (GOBGP4, GOBGP6, SOURCE4)), 30, "sessions"
        )
        wait_until(lambda: receiver.established(TABBY4), 15, "GoBGP's session")
        wait_until(lambda: source.established(TABBY4), 15, "the source's session")
        yield lab, receiver, source
    finally:
        lab.close()
        ns.close()


def test_api_announcement_reaches_gobgp_with_communities_and_policy_med_then_withdrawn(
    lab: tuple[Lab, GoBGP, GoBGP],
) -> None:
    tabby, receiver, _ = lab
    assert tabby.rpc("announce", "10.10.7.0/24", ["65000:7"], ["65000:1:2"]) == "10.10.7.0/24"
    wait_until(lambda: bool(receiver.route("10.10.7.0/24")), 15, "announcement in GoBGP")
    attrs = receiver.route("10.10.7.0/24")
    assert as_path(attrs) == [65000]
    assert attrs[3]["nexthop"] == TABBY4
    assert communities(attrs) == ["65000:7"]
    assert large_communities(attrs) == ["65000:1:2"]
    assert attrs[4]["metric"] == 25
    assert tabby.rpc("withdraw", "10.10.7.0/24") is True
    wait_until(lambda: not receiver.route("10.10.7.0/24"), 15, "withdrawal in GoBGP")


def test_learned_route_reaches_gobgp_with_4_octet_as_path_and_without_med(
    lab: tuple[Lab, GoBGP, GoBGP],
) -> None:
    tabby, receiver, source = lab
    source.cli(
        "global", "rib", "add", "10.73.0.0/24", "community", "65073:1",
        "large-community", "4200000073:3:4", "med", "60", "aspath", "4200000074", "-a", "ipv4",
    )  # fmt: skip
    wait_until(lambda: bool(tabby_route(tabby, "10.73.0.0/24")), 15, "source's route in Tabby")
    assert tabby_route(tabby, "10.73.0.0/24")["med"] == 60
    wait_until(lambda: bool(receiver.route("10.73.0.0/24")), 15, "source's route in GoBGP")
    attrs = receiver.route("10.73.0.0/24")
    assert as_path(attrs) == [65000, SOURCE_AS, 4200000074]
    assert attrs[3]["nexthop"] == TABBY4
    assert communities(attrs) == ["65073:1"]
    assert large_communities(attrs) == ["4200000073:3:4"]
    assert 4 not in attrs  # RFC 4271 §5.1.4: a neighbouring AS's MED stays there
    source.cli("global", "rib", "del", "10.73.0.0/24", "-a", "ipv4")
    wait_until(lambda: not receiver.route("10.73.0.0/24"), 15, "withdrawal in GoBGP")


def test_ipv6_api_announcement_reaches_gobgp_with_ipv6_next_hop_then_withdrawn(
    lab: tuple[Lab, GoBGP, GoBGP],
) -> None:
    tabby, receiver, _ = lab
    assert tabby.rpc("announce", "fd10:7::/64", ["65000:8"], ["65000:3:4"]) == "fd10:7::/64"
    wait_until(lambda: bool(receiver.route("fd10:7::/64", "ipv6")), 15, "IPv6 route in GoBGP")
    attrs = receiver.route("fd10:7::/64", "ipv6")
    assert attrs[14]["nexthop"] == TABBY6  # MP_REACH_NLRI (RFC 4760, RFC 2545)
    assert as_path(attrs) == [65000]
    assert communities(attrs) == ["65000:8"]
    assert large_communities(attrs) == ["65000:3:4"]
    assert tabby.rpc("withdraw", "fd10:7::/64") is True
    wait_until(lambda: not receiver.route("fd10:7::/64", "ipv6"), 15, "IPv6 withdrawal")


def test_ipv6_route_from_gobgp_in_tabby_rib_with_attributes_and_ipv6_next_hop(
    lab: tuple[Lab, GoBGP, GoBGP],
) -> None:
    tabby, receiver, _ = lab
    receiver.cli(
        "global", "rib", "add", "fd71::/64", "community", "65071:2",
        "large-community", "4200000071:7:8", "med", "41", "aspath", "4200000072", "-a", "ipv6",
    )  # fmt: skip
    wait_until(lambda: bool(tabby_route(tabby, "fd71::/64")), 15, "GoBGP's IPv6 route in Tabby")
    r = tabby_route(tabby, "fd71::/64")
    assert r["family"] == "ipv6"
    assert r["next_hops"] == [GOBGP6]
    assert r["as_path"] == [[GOBGP_AS, 4200000072]]
    assert r["communities"] == ["65071:2"]
    assert r["large_communities"] == ["4200000071:7:8"]
    assert r["med"] == 41
