"""`tabbyctl node status` rendering: calicoctl's table, IPv4/IPv6 sections, why not Established."""

from __future__ import annotations

import time

from ctl.main import build_parser
from ctl.node import info_text, render, since_text

NOW = time.mktime((2026, 11, 30, 12, 0, 0, 0, 0, -1))


def row(address: str, state: str, **kw: object) -> dict[str, object]:
    return {
        "address": address,
        "port": 179,
        "peer_type": "node-to-node mesh",
        "state": state,
        "bird_state": "up" if state == "Established" else "start",
        "since": NOW - 3600,
        "passive": False,
        "reason": "",
        **kw,
    }


def test_calicoctl_table_with_ipv4_and_ipv6_sections() -> None:
    text = render(
        {},
        [
            row("10.0.0.2", "Established"),
            row(
                "2001:db8::3",
                "Active",
                passive=True,
                peer_type="global",
                reason="passive: waiting for the peer to connect",
            ),
        ],
        now=NOW,
    )
    lines = text.splitlines()
    assert lines[0] == "tabby-bgpd is running."
    assert "IPv4 BGP status" in lines and "IPv6 BGP status" in lines
    header = "| PEER ADDRESS | PEER TYPE         | STATE | SINCE    | INFO        |"
    assert header in lines
    assert "| 10.0.0.2     | node-to-node mesh | up    | 11:00:00 | Established |" in lines
    assert any(
        "2001:db8::3" in ln and "Passive (passive: waiting for the peer to connect)" in ln
        for ln in lines
    )


def test_empty_sections_say_no_peers() -> None:
    text = render({}, [], now=NOW)
    assert "No IPv4 peers found." in text and "No IPv6 peers found." in text


def test_info_says_why_not_established() -> None:
    r = row(
        "10.0.0.2",
        "Idle",
        reason='restarting in 3s after: NOTIFICATION received: Cease / Administrative Shutdown "bye"',
    )
    assert info_text(r).startswith("Idle (restarting in 3s after: NOTIFICATION received")
    assert info_text(row("10.0.0.2", "Established")) == "Established"


def test_since_is_a_time_today_and_a_date_before() -> None:
    assert since_text(NOW - 60, NOW) == "11:59:00"
    assert since_text(NOW - 3 * 86400, NOW) == "2026-11-27"


def test_parser_has_node_status_with_json_output() -> None:
    args = build_parser().parse_args(["node", "status", "-o", "json", "--socket", "/tmp/x.sock"])
    assert args.output == "json" and args.socket == "/tmp/x.sock" and callable(args.func)


def test_dataplane_section_from_felixd_status() -> None:
    """Issue 10: `node status` gains routes per kind, pod MTU, tunnels and the last resync."""
    from ctl.node import render_dataplane

    text = render_dataplane(
        {
            "routes": {"workload": 2, "blackhole": 1, "remote-vxlan": 4},
            "stale_routes": 0,
            "pod_mtu": 1450,
            "tunnels": {"vxlan.calico": {"vni": 4096, "port": 4789, "mtu": 1450}},
            "last_resync": NOW - 12,
            "converged": True,
            "errors": 0,
            "last_error": "",
            "problems": ["WorkloadEndpoint x: address 10.9.9.9 is in no pool"],
        },
        now=NOW,
    )
    assert "routes: blackhole 1, remote-vxlan 4, workload 2; stale 0" in text
    assert "pod MTU: 1450" in text
    assert "tunnel vxlan.calico: VNI 4096, port 4789, MTU 1450" in text
    assert "last resync: 12 s ago (converged); errors 0; last error: none" in text
    assert "problem: WorkloadEndpoint x: address 10.9.9.9 is in no pool" in text
    assert "not running (no such socket)" in render_dataplane("no such socket")


def test_dataplane_section_shows_an_ipip_tunnel_without_vni() -> None:
    from ctl.node import render_dataplane

    text = render_dataplane(
        {
            "routes": {"remote-ipip": 2},
            "tunnels": {"tunl0": {"mtu": 1480, "address": "10.244.1.1/32"}},
        },
        now=NOW,
    )
    assert "  tunnel tunl0: MTU 1480, address 10.244.1.1/32" in text
    assert "VNI" not in text and "last resync: never (not converged)" in text
