"""bgpd's best-path stream (`subscribe`), as felixd consumes it: snapshot, then deltas; and
a bgpd that stops must not stream the withdrawal of every route it is about to lose, or
felixd would drop kernel routes that graceful restart is meant to keep."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ipc import RPCClient
from ipc.errors import RPCError
from tests.bgpd.daemon.conftest import SpeakerFactory, config, free_port, peer, wait_for

A, B = "127.0.0.2", "127.0.0.3"
PREFIX = "10.2.0.0/24"


async def pair(tmp: Path, speakers: SpeakerFactory):  # type: ignore[no-untyped-def]
    pa, pb = free_port(A), free_port(B)
    a = await speakers(config(tmp, A, pa, [peer(B, pb, local_address=A)], originate=[PREFIX]))
    b = await speakers(config(tmp, B, pb, [peer(A, pa, local_address=B, passive=True)]))
    return a, b


async def test_snapshot_then_deltas(tmp_path: Path, speakers: SpeakerFactory) -> None:
    a, b = await pair(tmp_path, speakers)
    sock_a, sock_b = a.config.control_socket, b.config.control_socket
    async with RPCClient(f"unix:{sock_b}") as client, client.stream("subscribe") as sub:
        first = await sub.next(10)
        assert isinstance(first, dict) and first["type"] == "snapshot"
        routes = {r["prefix"]: r for r in first["routes"]}
        if PREFIX not in routes:
            delta = await sub.next(10)
            assert isinstance(delta, dict) and delta["type"] == "delta"
            routes = {r["prefix"]: r for r in delta["routes"]}
        assert routes[PREFIX]["next_hops"] == [A]
        async with RPCClient(f"unix:{sock_a}") as ctl:
            assert await ctl.call("withdraw", PREFIX) is True
        delta = await sub.next(10)
        assert isinstance(delta, dict) and delta["withdrawn"] == [PREFIX]


async def test_a_stopping_bgpd_does_not_stream_withdrawals(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    _a, b = await pair(tmp_path, speakers)
    await wait_for(
        lambda: bool(b.sink.prefix_counts(next(iter(b.peers.values())).config.key).get("ipv4"))
    )
    seen: list[object] = []

    async def follow() -> None:
        async with (
            RPCClient(f"unix:{b.config.control_socket}") as client,
            client.stream("subscribe") as sub,
        ):
            try:
                async for item in sub:
                    seen.append(item)
            except RPCError:
                pass  # the stream ends with the connection: that is the signal felixd needs

    task = asyncio.ensure_future(follow())
    await wait_for(lambda: bool(seen))
    await b.stop()
    await asyncio.wait_for(task, 10)
    withdrawn = [w for item in seen if isinstance(item, dict) for w in item.get("withdrawn", [])]
    assert PREFIX not in withdrawn
