"""`tabbyctl bgp ...`: the routing table and route refresh through tabby-bgpd's control API, and
(with the optional `fuzz` extra, which brings hypothesis) `tabbyctl bgp fuzz`.

- `bgp rib [PREFIX] [--peer P]`: the Loc-RIB's best paths (the `rib` call), one row per prefix
  with every ECMP next hop, where the best path came from, its AS_PATH, LOCAL_PREF, MED,
  communities and why it won; `--detail` adds ORIGINATOR_ID, CLUSTER_LIST and the number of
  candidate paths. PREFIX matches the prefix itself and every prefix inside it, as BIRD's
  `show route for`/`in` would.
- `bgp refresh PEER`: ask a peer to re-send its routes (RFC 2918 ROUTE-REFRESH; with RFC 7313
  enhanced route refresh the peer brackets them with BoRR/EoRR and tabby-bgpd sweeps what it did
  not re-send), or re-send ours (`--direction out`), through `neighbor.refresh`.

Exit status: 0 done, 1 no such peer / bad prefix / tabby-bgpd not reachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any, TextIO

from ipc import RPCClient
from ipc.client import ClientOptions
from ipc.errors import RPCError

DEFAULT_SOCKET = "/run/tabby/bgpd.sock"


RIB_HEADERS = (
    "PREFIX",
    "NEXT HOPS",
    "FROM",
    "AS PATH",
    "LOCPREF",
    "MED",
    "COMMUNITIES",
    "WHY BEST",
)
PAGE = 1000  # rows per `rib` call; the daemon caps a page at 10,000


def register(sub: Any) -> None:
    bgp = sub.add_parser("bgp", help="BGP routing table, route refresh, fuzzing")
    bgp_sub = bgp.add_subparsers(dest="bgp_command", metavar="SUBCOMMAND")
    add_commands(bgp_sub)
    try:  # `tabbyctl bgp fuzz` needs hypothesis, the package's optional `fuzz` extra
        from ctl import fuzz
    except ModuleNotFoundError as exc:
        if exc.name != "hypothesis":
            raise
    else:
        fuzz.add_commands(bgp_sub)


def _socket_arg(p: Any) -> None:
    p.add_argument(
        "--socket",
        default=os.environ.get("TABBY_BGPD_SOCKET", DEFAULT_SOCKET),
        help=f"tabby-bgpd control socket (default {DEFAULT_SOCKET}, env TABBY_BGPD_SOCKET)",
    )


def add_commands(bgp_sub: Any) -> None:
    r = bgp_sub.add_parser("rib", help="best paths in tabby-bgpd's Loc-RIB")
    r.add_argument("prefix", nargs="?", default="", help="this prefix and every prefix inside it")
    r.add_argument("--peer", default="", help="only best paths learned from this peer (or 'local')")
    r.add_argument(
        "--limit", type=int, default=10_000, help="at most this many rows (default 10000)"
    )
    r.add_argument("--detail", action="store_true", help="one block per route, every attribute")
    r.add_argument("-o", "--output", choices=("table", "json"), default="table")
    _socket_arg(r)
    r.set_defaults(func=rib_command)

    p = bgp_sub.add_parser("refresh", help="route refresh with a peer (RFC 2918, RFC 7313)")
    p.add_argument("peer", help="the peer's address")
    p.add_argument(
        "--direction",
        choices=("in", "out", "both"),
        default="in",
        help="in: ask the peer to re-send (default); out: re-send ours; both",
    )
    _socket_arg(p)
    p.set_defaults(func=refresh_command)


async def _refresh(socket_path: str, peer: str, direction: str) -> dict[str, Any]:
    options = ClientOptions(timeout=5.0, connect_timeout=1.0, connect_deadline=2.0)
    async with RPCClient(f"unix:{socket_path}", options=options) as client:
        answer = await client.call("neighbor.refresh", peer, direction)
    assert isinstance(answer, dict)
    return answer


def refresh_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        answer = asyncio.run(_refresh(args.socket, args.peer, args.direction))
    except (RPCError, OSError) as exc:
        print(f"tabbyctl bgp refresh: {exc}", file=sys.stderr)
        return 1
    asked = answer.get("requested") or []
    if args.direction in ("in", "both"):
        text = (
            ", ".join(asked) if asked else "nothing (the session is not up or has no route refresh)"
        )
        print(f"{args.peer}: route refresh requested for {text}", file=out)
    if args.direction in ("out", "both"):
        print(f"{args.peer}: our routes re-sent", file=out)
    return 0


async def fetch_rib(socket_path: str, prefix: str, peer: str, limit: int) -> dict[str, Any]:
    """Pages through `rib` until `limit` rows or the end; the count of pages is bounded by it."""
    options = ClientOptions(timeout=10.0, connect_timeout=1.0, connect_deadline=2.0)
    routes: list[dict[str, Any]] = []
    total = 0
    async with RPCClient(f"unix:{socket_path}", options=options) as client:
        offset: int | None = 0
        while offset is not None and len(routes) < limit:
            page = await client.call("rib", prefix, peer, offset, min(PAGE, limit - len(routes)))
            assert isinstance(page, dict)
            routes.extend(page["routes"])
            total = int(page["total"])
            offset = page.get("next_offset")
    return {"total": total, "routes": routes}


def _as_path(segments: list[list[int]]) -> str:
    return " ".join(" ".join(map(str, seg)) for seg in segments)


def _none(value: object) -> str:
    return "" if value is None else str(value)


def rib_row(route: dict[str, Any]) -> tuple[str, ...]:
    """One table row; a stale path (graceful restart, enhanced refresh) says so in FROM."""
    source = str(route.get("source", ""))
    if route.get("stale"):
        source += " (stale)"
    communities = [*route.get("communities", []), *route.get("large_communities", [])]
    return (
        str(route["prefix"]),
        ", ".join(route.get("next_hops") or []) or ("self" if route.get("local") else ""),
        source,
        _as_path(route.get("as_path") or []),
        _none(route.get("local_pref")),
        _none(route.get("med")),
        " ".join(communities),
        str(route.get("reason", "")),
    )


def render_rib(answer: dict[str, Any], *, detail: bool = False) -> str:
    from ctl.node import table

    routes = answer["routes"]
    shown = f"{len(routes)} of {answer['total']}" if len(routes) < answer["total"] else None
    if not routes:
        return "No routes.\n"
    if detail:
        text = ""
        for route in routes:
            text += f"{route['prefix']} ({route.get('family', '')})\n"
            for label, value in (
                ("next hops", ", ".join(route.get("next_hops") or []) or "self"),
                ("from", rib_row(route)[2]),
                ("as path", _as_path(route.get("as_path") or []) or "(empty)"),
                ("origin", {0: "IGP", 1: "EGP", 2: "incomplete"}.get(route.get("origin", 0))),
                ("local pref", _none(route.get("local_pref"))),
                ("med", _none(route.get("med"))),
                ("communities", " ".join(route.get("communities", []))),
                ("large communities", " ".join(route.get("large_communities", []))),
                ("originator id", _none(route.get("originator_id"))),
                ("cluster list", " ".join(route.get("cluster_list", []))),
                ("candidates", _none(route.get("candidates"))),
                ("why best", str(route.get("reason", ""))),
            ):
                if value:
                    text += f"    {label + ':':<19}{value}\n"
        return text + (f"({shown} routes shown)\n" if shown else "")
    text = table([rib_row(r) for r in routes], RIB_HEADERS)
    return text + (f"({shown} routes shown; --limit for more)\n" if shown else "")


def rib_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        answer = asyncio.run(fetch_rib(args.socket, args.prefix, args.peer, max(1, args.limit)))
    except (RPCError, OSError) as exc:
        print(f"tabbyctl bgp rib: {exc}", file=sys.stderr)
        return 1
    if args.output == "json":
        json.dump(answer, out, indent=2)
        out.write("\n")
    else:
        out.write(render_rib(answer, detail=args.detail))
    return 0
