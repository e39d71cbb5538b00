"""GoBGP announces routes to Tabby over eBGP with communities, large communities, MED and a
4-octet AS_PATH; they arrive intact in Tabby's RIB (RFC 1997, RFC 8092, RFC 6793). The other
direction, and IPv6 both ways, is in test_gobgp_netns.py: GoBGP 3.10 rejects a classic NEXT_HOP
in 127/8, so those tests run inside a network namespace on 192.0.2.0/24."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.bgpd.interop.lab import TABBY, Lab, free_port, gobgp_conf, tabby_peer, wait_until
from tests.bgpd.routing_interop.peers import tabby_route

GOBGP, GOBGP_AS = "127.0.0.71", 4200000071

pytestmark = [pytest.mark.debian("gobgpd"), pytest.mark.slow]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("gobgp"))
    port, api = free_port(GOBGP), free_port(GOBGP)
    try:
        conf = lab.tmp / "gobgpd.toml"
        conf.write_text(gobgp_conf(GOBGP, GOBGP_AS, port, lab.port))
        lab.spawn(
            ["gobgpd", "-f", str(conf), "-t", "toml", "-p", f"--api-hosts={GOBGP}:{api}",
             "--pprof-disable"],
            "gobgpd.log",
        )  # fmt: skip

        def cli(*args: str) -> str:
            argv = ["gobgp", "-u", GOBGP, "-p", str(api), *args]
            return subprocess.run(
                argv, capture_output=True, text=True, timeout=15, check=False
            ).stdout

        wait_until(lambda: cli("global").strip() != "", 15, "gobgpd API")
        cli(
            "global", "rib", "add", "10.71.0.0/24", "community", "65071:1",
            "large-community", "4200000071:5:6", "med", "40", "aspath", "4200000072", "-a", "ipv4",
        )  # fmt: skip
        lab.start_tabby(tabby_peer(GOBGP, port, GOBGP_AS, local_address=TABBY))
        wait_until(lambda: lab.established(GOBGP), 30, "session with GoBGP")
        yield lab
    finally:
        lab.close()


def test_gobgp_route_attributes_intact_in_tabby_rib(lab: Lab) -> None:
    wait_until(lambda: bool(tabby_route(lab, "10.71.0.0/24")), 15, "GoBGP's route")
    r = tabby_route(lab, "10.71.0.0/24")
    assert r["as_path"] == [[GOBGP_AS, 4200000072]]
    assert r["communities"] == ["65071:1"]
    assert r["large_communities"] == ["4200000071:5:6"]
    assert r["med"] == 40
