"""`tabbyctl bgp refresh PEER`: ask a peer to re-send its routes (RFC 2918 ROUTE-REFRESH; with
RFC 7313 enhanced route refresh the peer brackets them with BoRR/EoRR and tabby-bgpd sweeps
what it did not re-send), or re-send ours (`--direction out`), through tabby-bgpd's control API
(`neighbor.refresh`). Added to the `bgp` group by `ctl.fuzz.register`.

Exit status: 0 done, 1 no such peer or tabby-bgpd not reachable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any, TextIO

from ipc import RPCClient
from ipc.client import ClientOptions
from ipc.errors import RPCError

DEFAULT_SOCKET = "/run/tabby/bgpd.sock"


def add_commands(bgp_sub: Any) -> None:
    p = bgp_sub.add_parser("refresh", help="route refresh with a peer (RFC 2918, RFC 7313)")
    p.add_argument("peer", help="the peer's address")
    p.add_argument(
        "--direction",
        choices=("in", "out", "both"),
        default="in",
        help="in: ask the peer to re-send (default); out: re-send ours; both",
    )
    p.add_argument(
        "--socket",
        default=os.environ.get("TABBY_BGPD_SOCKET", DEFAULT_SOCKET),
        help=f"tabby-bgpd control socket (default {DEFAULT_SOCKET}, env TABBY_BGPD_SOCKET)",
    )
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
