"""`tabbyctl bgp rib` against a live pair of speakers: the rows come from the `rib` call, paged,
filtered by prefix (the prefix and what lies inside it) and by peer, and rendered as a table."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctl import bgp
from ctl.main import build_parser
from ipc import RPCClient
from tests.bgpd.daemon.conftest import SpeakerFactory, config, free_port, peer, wait_for

A, B = "127.0.0.2", "127.0.0.3"
BLOCKS = [f"10.7.{i}.0/26" for i in range(5)]


async def test_rib_pages_filters_and_renders(
    tmp_path: Path, speakers: SpeakerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pa, pb = free_port(A), free_port(B)
    await speakers(config(tmp_path, A, pa, [peer(B, pb, local_address=A)]))
    b = await speakers(config(tmp_path, B, pb, [peer(A, pa, local_address=B, passive=True)]))
    async with RPCClient(f"unix:{tmp_path / f'bgpd-{A}.sock'}") as ctl:
        for prefix in BLOCKS:
            await ctl.call("announce", prefix, ["65000:100"])
        await ctl.call("announce", "10.99.0.0/24")
    learned = next(iter(b.peers.values())).config.key
    await wait_for(lambda: b.sink.prefix_counts(learned).get("ipv4") == len(BLOCKS) + 1)
    sock = str(b.config.control_socket)

    monkeypatch.setattr(bgp, "PAGE", 2)  # five blocks and one more: three pages
    everything = await bgp.fetch_rib(sock, "", "", 100)
    assert everything["total"] == 6
    assert sorted(r["prefix"] for r in everything["routes"]) == sorted([*BLOCKS, "10.99.0.0/24"])

    inside = await bgp.fetch_rib(sock, "10.7.0.0/16", "", 100)
    assert sorted(r["prefix"] for r in inside["routes"]) == BLOCKS
    assert (await bgp.fetch_rib(sock, "", "local", 100))["total"] == 0
    assert (await bgp.fetch_rib(sock, "", A, 100))["total"] == 6

    limited = await bgp.fetch_rib(sock, "", "", 3)
    assert len(limited["routes"]) == 3 and limited["total"] == 6
    text = bgp.render_rib(limited)
    assert "(3 of 6 routes shown; --limit for more)" in text

    lines = bgp.render_rib(inside).splitlines()
    assert lines[1].split("|")[1].strip() == "PREFIX"
    row = next(ln for ln in lines if "10.7.0.0/26" in ln)
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[1] == A  # the next hop
    assert cells[3] == ""  # iBGP: empty AS_PATH
    assert cells[4] == "100"  # LOCAL_PREF
    assert cells[6] == "65000:100"
    assert cells[7]  # why it won

    detail = bgp.render_rib(inside, detail=True)
    assert "10.7.1.0/26 (ipv4)" in detail and "candidates:" in detail


def test_render_marks_stale_and_local_paths() -> None:
    routes = [
        {"prefix": "10.1.0.0/26", "next_hops": [], "local": True, "source": "local"},
        {
            "prefix": "10.2.0.0/26",
            "next_hops": ["192.0.2.1"],
            "source": "n2",
            "stale": True,
            "as_path": [[65001, 65002]],
            "med": 5,
            "reason": "only candidate",
        },
    ]
    text = bgp.render_rib({"total": 2, "routes": routes})
    assert "| 10.1.0.0/26 | self" in text
    assert "n2 (stale)" in text and "65001 65002" in text
    assert bgp.render_rib({"total": 0, "routes": []}) == "No routes.\n"


def test_bgp_group_has_rib_and_refresh_without_the_fuzz_extra() -> None:
    args = build_parser().parse_args(["bgp", "rib", "10.0.0.0/8", "--peer", "n2", "-o", "json"])
    assert args.func is bgp.rib_command and args.prefix == "10.0.0.0/8" and args.peer == "n2"
    assert build_parser().parse_args(["bgp", "refresh", "10.0.0.2"]).func is bgp.refresh_command
