"""RFC 4271 §9.2 (and Calico's expectations of BGP convergence): a route announced over the API,
or learned from another peer, is sent to a peer at once, not when that peer's session next has
something of its own to process. With a long hold time (240 s, keepalives every 80 s) BIRD must
see an API announcement within seconds.

Regression: UPDATEs the routing sink queued on an idle peer's session used to be written only
when that peer's task next woke (its next KEEPALIVE, 60-77 s here); fixed in the runner."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.bgpd.interop.lab import TABBY, Lab, free_port, tabby_peer, wait_until
from tests.bgpd.routing_interop.peers import birdc, start_bird

BIRD = "127.0.0.81"

pytestmark = [pytest.mark.debian("bird"), pytest.mark.slow]


def bird_conf(lab: Lab, port: int) -> str:
    return f"""router id {BIRD};
ipv4 table igp4;
protocol device {{}}
protocol static igps4 {{ ipv4 {{ table igp4; }}; route 0.0.0.0/0 via "lo"; }}
protocol bgp tabby {{
  local {BIRD} port {port} as 65081;
  neighbor {TABBY} port {lab.port} as 65000;
  strict bind on;
  multihop;
  hold time 240;
  keepalive time 80;
  connect retry time 1;
  ipv4 {{ import all; export none; igp table igp4; }};
}}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab(tmp_path_factory.mktemp("idle"))
    port = free_port(BIRD)
    try:
        start_bird(lab, "bird", bird_conf(lab, port))
        lab.start_tabby(
            tabby_peer(BIRD, port, 65081, local_address=TABBY).replace(
                "hold_time = 3", "hold_time = 240"
            ),
            originate=(),
        )
        wait_until(lambda: lab.established(BIRD), 30, "session with BIRD")
        yield lab
    finally:
        lab.close()


def test_rfc4271_9_2_api_announcement_reaches_idle_peer_within_seconds(lab: Lab) -> None:
    wait_until(
        lambda: "Established" in birdc(lab, "bird", "show", "protocols", "tabby"), 10, "BIRD up"
    )
    lab.rpc("announce", "10.81.0.0/24")
    wait_until(
        lambda: "10.81.0.0/24" in birdc(lab, "bird", "show", "route"), 5, "announcement in BIRD"
    )
