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
DEFAULT_FELIXD_SOCKET = "/run/tabby/felixd.sock"
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
    status.add_argument(
        "--felixd-socket",
        default=os.environ.get("TABBY_FELIXD_SOCKET", DEFAULT_FELIXD_SOCKET),
        help=f"tabby-felixd control socket for the dataplane section (default {DEFAULT_FELIXD_SOCKET})",
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


async def fetch_dataplane(socket_path: str) -> dict[str, Any] | str:
    """felixd's `status`, or why it could not be had (felixd is optional on a node)."""
    options = ClientOptions(timeout=5.0, connect_timeout=0.5, connect_deadline=0.2)
    try:
        async with RPCClient(f"unix:{socket_path}", options=options) as client:
            status = await client.call("status")
    except (RPCError, OSError) as exc:
        return str(exc)
    return status if isinstance(status, dict) else "unexpected answer"


def render_dataplane(dp: dict[str, Any] | str, now: float | None = None) -> str:
    """The dataplane section: routes per kind, pod MTU, tunnels, how long since the resync."""
    if isinstance(dp, str):
        return f"\nDataplane: tabby-felixd is not running ({dp}).\n"
    now = time.time() if now is None else now
    routes = dp.get("routes") or {}
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(routes.items())) or "none"
    lines = ["", "Dataplane (tabby-felixd)"]
    lines.append(f"  routes: {kinds}; stale {dp.get('stale_routes', 0)}")
    lines.append(f"  pod MTU: {dp.get('pod_mtu') or '-'}")
    tunnels = dp.get("tunnels") or {}
    for name, t in sorted(tunnels.items()):
        if t.get("vni") is not None:
            detail = f"VNI {t.get('vni')}, port {t.get('port')}, MTU {t.get('mtu')}"
        else:  # an IPIP device has no VNI or port: its MTU and tunnel address
            detail = f"MTU {t.get('mtu')}" + (
                f", address {t['address']}" if t.get("address") else ""
            )
        lines.append(f"  tunnel {name}: {detail}")
    if not tunnels:
        lines.append("  tunnels: none")
    last = dp.get("last_resync") or 0
    ago = f"{now - float(last):.0f} s ago" if last else "never"
    state = "converged" if dp.get("converged") else "not converged"
    lines.append(
        f"  last resync: {ago} ({state}); errors {dp.get('errors', 0)}; "
        f"last error: {dp.get('last_error') or 'none'}"
    )
    for problem in dp.get("problems") or []:
        lines.append(f"  problem: {problem}")
    return "\n".join(lines) + "\n"


def status_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    felixd_socket = getattr(args, "felixd_socket", DEFAULT_FELIXD_SOCKET)
    dataplane = asyncio.run(fetch_dataplane(felixd_socket))
    try:
        status, peers = asyncio.run(fetch(args.socket))
    except (RPCError, OSError) as exc:
        if args.output == "json":
            print(
                json.dumps({"running": False, "error": str(exc), "dataplane": dataplane}), file=out
            )
        else:
            print(f"tabby-bgpd is not running ({args.socket}: {exc}).", file=out)
            out.write(render_dataplane(dataplane))
        return 1
    if args.output == "json":
        body = {"running": True, "status": status, "peers": peers, "dataplane": dataplane}
        print(json.dumps(body, indent=2), file=out)
        return 0
    out.write(render(status, peers))
    out.write(render_dataplane(dataplane))
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


def table(rows: Sequence[tuple[str, ...]], headers: tuple[str, ...] = HEADERS) -> str:
    """calicoctl's boxed table; `tabbyctl bgp rib` uses it with its own headers."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+\n"

    def line(cells: tuple[str, ...]) -> str:
        return "|" + "|".join(f" {c:<{w}} " for c, w in zip(cells, widths, strict=True)) + "|\n"

    return rule + line(headers) + rule + "".join(line(r) for r in rows) + rule


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
