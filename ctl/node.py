"""`tabbyctl node ...`: `node status` asks tabby-bgpd for its peers and prints calicoctl's table.

The table matches `calicoctl node status` (PEER ADDRESS | PEER TYPE | STATE | SINCE | INFO, an
IPv4 and an IPv6 section, BIRD's `up`/`start` states); INFO goes further and says why a peer is
not Established (waiting for the peer to connect, connection refused, the last NOTIFICATION with
its RFC 9003 text). `-o json` prints the daemon's answer unchanged for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

from ipc import RPCClient
from ipc.client import ClientOptions
from ipc.errors import RPCError

DEFAULT_SOCKET = "/run/tabby/bgpd.sock"
HEADERS = ("PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO")


def register(sub: Any) -> None:
    node = sub.add_parser("node", help="this node's BGP daemon")
    node_sub = node.add_subparsers(dest="node_command", metavar="SUBCOMMAND")
    status = node_sub.add_parser("status", help="BGP peers and their state")
    status.add_argument(
        "--socket",
        default=os.environ.get("TABBY_BGPD_SOCKET", DEFAULT_SOCKET),
        help=f"tabby-bgpd control socket (default {DEFAULT_SOCKET}, env TABBY_BGPD_SOCKET)",
    )
    status.add_argument("-o", "--output", choices=("table", "json"), default="table")
    status.set_defaults(func=status_command)


async def fetch(socket_path: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    options = ClientOptions(timeout=5.0, connect_timeout=1.0, connect_deadline=2.0)
    async with RPCClient(f"unix:{socket_path}", options=options) as client:
        status = await client.call("status")
        peers = await client.call("neighbors")
    assert isinstance(status, dict) and isinstance(peers, list)
    return status, peers


def status_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        status, peers = asyncio.run(fetch(args.socket))
    except (RPCError, OSError) as exc:
        if args.output == "json":
            print(json.dumps({"running": False, "error": str(exc)}), file=out)
        else:
            print(f"tabby-bgpd is not running ({args.socket}: {exc}).", file=out)
        return 1
    if args.output == "json":
        print(json.dumps({"running": True, "status": status, "peers": peers}, indent=2), file=out)
        return 0
    out.write(render(status, peers))
    return 0


def since_text(ts: float, now: float | None = None) -> str:
    """BIRD's style: the time of day within the last day, the date before that."""
    now = time.time() if now is None else now
    fmt = "%H:%M:%S" if now - ts < 86400 else "%Y-%m-%d"
    return time.strftime(fmt, time.localtime(ts))


def info_text(peer: dict[str, Any]) -> str:
    if peer.get("state") == "Established":
        return "Established"
    state = (
        "Passive"
        if peer.get("passive") and peer.get("state") == "Active"
        else peer.get("state", "")
    )
    reason = peer.get("reason") or ""
    return f"{state} ({reason})" if reason else str(state)


def table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in [HEADERS, *rows]) for i in range(len(HEADERS))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+\n"

    def line(cells: tuple[str, ...]) -> str:
        return "|" + "|".join(f" {c:<{w}} " for c, w in zip(cells, widths, strict=True)) + "|\n"

    return rule + line(HEADERS) + rule + "".join(line(r) for r in rows) + rule


def render(status: dict[str, Any], peers: list[dict[str, Any]], now: float | None = None) -> str:
    text = "tabby-bgpd is running.\n"
    for version, label in ((4, "IPv4"), (6, "IPv6")):
        rows = [
            (
                str(p["address"]) + (f":{p['port']}" if p.get("port", 179) != 179 else ""),
                str(p.get("peer_type", "")),
                str(p.get("bird_state", "")),
                since_text(float(p.get("since", 0.0)), now),
                info_text(p),
            )
            for p in sorted(peers, key=lambda p: str(p["address"]))
            if ipaddress.ip_address(str(p["address"])).version == version
        ]
        text += f"\n{label} BGP status\n"
        text += table(rows) if rows else f"No {label} peers found.\n"
    return text
