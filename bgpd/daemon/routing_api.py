"""Control API of the routing layer: `rib`, `announce`, `withdraw` and the `subscribe` stream.

`subscribe` first sends the full set of best paths (per prefix, with every ECMP next hop), then
deltas. A subscriber that stops reading is not buffered without bound: once its queue holds
`MAX_BACKLOG` messages, deltas stop and it is sent one `resync` (the whole table again) as soon
as it has caught up. Errors: `invalid_params` for a prefix or community that does not parse.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress

from bgpd.core.routing.policy import PolicyError, parse_community, parse_large_community
from bgpd.daemon.routing import RoutingSink
from ipc import RPCServer, Stream, StreamClosed
from ipc.errors import INVALID_PARAMS, RPCError

MAX_BACKLOG = 64
RESYNC_CHECK = 0.5


def register_routing_api(server: RPCServer, sink: RoutingSink) -> None:
    async def rib(
        prefix: str = "", peer: str = "", offset: int = 0, limit: int = 1000
    ) -> dict[str, object]:
        try:
            return sink.rib(prefix, peer, max(0, offset), max(1, min(limit, 10_000)))
        except ValueError as exc:
            raise RPCError(INVALID_PARAMS, f"prefix: {exc}") from None

    async def announce(
        prefix: str,
        communities: list[str] | None = None,
        large_communities: list[str] | None = None,
    ) -> str:
        try:
            net = ipaddress.ip_network(prefix)
            std = tuple(parse_community(c) for c in communities or [])
            large = tuple(parse_large_community(c) for c in large_communities or [])
        except (ValueError, PolicyError) as exc:
            raise RPCError(INVALID_PARAMS, str(exc)) from None
        sink.announce(str(net), std, large)
        return str(net)

    async def withdraw(prefix: str) -> bool:
        try:
            net = ipaddress.ip_network(prefix)
        except ValueError as exc:
            raise RPCError(INVALID_PARAMS, str(exc)) from None
        return sink.withdraw(str(net))

    async def subscribe(stream: Stream) -> None:
        def push(message: dict[str, object]) -> bool:
            if stream.closed or stream.backlog >= MAX_BACKLOG:
                return False
            try:
                stream.send(message)
            except StreamClosed:
                return False
            return True

        sub = sink.subscribe(push)
        try:
            while not stream.closed:
                await asyncio.sleep(RESYNC_CHECK)
                if sub.needs_resync and stream.backlog == 0:
                    sub.needs_resync = not push({"type": "resync", "routes": sink.snapshot()})
        finally:
            with contextlib.suppress(ValueError):
                sink.unsubscribe(sub)

    server.register("rib", rib)
    server.register("announce", announce)
    server.register("withdraw", withdraw)
    server.register_stream("subscribe", subscribe)
