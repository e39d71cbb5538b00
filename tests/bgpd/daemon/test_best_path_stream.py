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


async def test_readvertisement_goes_out_without_waiting_for_the_peer(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    """A route learned from one peer reaches another at once, not when that other peer next
    sends something (found by `tabbyctl bgp fuzz`: it waited for the peer's keepalive)."""
    c_addr = "127.0.0.4"
    pa, pb, pc = free_port(A), free_port(B), free_port(c_addr)
    slow = {"hold_time": 90}  # keepalives every 30 s: nothing else wakes the B-C session
    await speakers(
        config(
            tmp_path, A, pa, [peer(B, pb, local_address=A, remote_as=65002, **slow)], local_as=65001
        )
    )
    b = await speakers(
        config(
            tmp_path,
            B,
            pb,
            [
                peer(A, pa, local_address=B, remote_as=65001, passive=True, **slow),
                peer(c_addr, pc, local_address=B, remote_as=65003, **slow),
            ],
            local_as=65002,
        )
    )
    c = await speakers(
        config(
            tmp_path,
            c_addr,
            pc,
            [peer(B, pb, local_address=c_addr, remote_as=65002, passive=True, **slow)],
            local_as=65003,
        )
    )
    await wait_for(lambda: all(r.core.state.value == "Established" for r in b.peers.values()))
    async with RPCClient(f"unix:{tmp_path / f'bgpd-{A}.sock'}") as ctl:
        await ctl.call("announce", "10.9.0.0/24")
    key = next(iter(c.peers.values())).config.key
    await wait_for(lambda: c.sink.prefix_counts(key).get("ipv4") == 1, timeout=10)


async def test_advertised_prefix_carries_its_communities(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    """`advertise` entries are originated with their communities (RFC 1997, RFC 8092)."""
    pa, pb = free_port(A), free_port(B)
    adv = [
        {"prefix": "10.7.0.0/26", "communities": ["65001:100"], "large_communities": ["65001:1:2"]}
    ]
    await speakers(config(tmp_path, A, pa, [peer(B, pb, local_address=A)], advertise=adv))
    b = await speakers(config(tmp_path, B, pb, [peer(A, pa, local_address=B, passive=True)]))
    key = next(iter(b.peers.values())).config.key
    await wait_for(lambda: b.sink.prefix_counts(key).get("ipv4") == 1)
    async with RPCClient(f"unix:{b.config.control_socket}") as client:
        rib = await client.call("rib", "10.7.0.0/26")
    assert isinstance(rib, dict)
    route = rib["routes"][0]
    assert route["communities"] == ["65001:100"]
    assert route["large_communities"] == ["65001:1:2"]
