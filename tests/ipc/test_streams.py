"""Server-push streams: delivery, cancellation, and the slow subscriber that gets cut off."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import msgpack
import pytest

from ipc import RPCClient, RPCServer, ServerLimits, Stream, StreamClosed
from ipc import errors as codes
from ipc.errors import RPCError


async def test_stream_delivers_items_in_order_then_result(
    unix_server: tuple[RPCServer, str],
) -> None:
    _, ep = unix_server
    async with RPCClient(ep) as client, client.stream("count", 500) as sub:
        items = [item async for item in sub]
        assert items == list(range(500))
        assert sub.result == 500


async def test_stream_and_calls_share_a_connection(unix_server: tuple[RPCServer, str]) -> None:
    _, ep = unix_server
    async with RPCClient(ep) as client, client.stream("count", 50) as sub:
        assert await client.call("add", 1, 1) == 2
        assert [i async for i in sub] == list(range(50))


async def test_client_cancel_stops_the_handler(tmp_path: Path) -> None:
    server = RPCServer(name="t")
    cancelled = asyncio.Event()

    async def forever(stream: Stream) -> None:
        try:
            while True:
                stream.send("tick")
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    server.register_stream("forever", forever)
    ep = f"unix:{tmp_path}/s.sock"
    await server.listen(ep)
    try:
        async with RPCClient(ep) as client:
            async with client.stream("forever") as sub:
                assert await sub.next(2) == "tick"
            await asyncio.wait_for(cancelled.wait(), 5)
    finally:
        await server.close()


async def test_slow_subscriber_is_cut_off_and_server_memory_stays_bounded(
    tmp_path: Path,
) -> None:
    limits = ServerLimits(stream_queue=100, write_high_water=64 * 1024)
    server = RPCServer(limits, name="t")
    outcome: dict[str, object] = {}
    payload = b"x" * 1024
    total = 200_000  # 200 MB if it were all buffered

    async def firehose(stream: Stream) -> None:
        sent = 0
        try:
            for _ in range(total):
                stream.send(payload)
                sent += 1
                assert stream.backlog <= limits.stream_queue
                if sent % 50 == 0:
                    await asyncio.sleep(0)
        except StreamClosed:
            outcome["closed_after"] = sent
            conns = list(server._connections)
            transport = conns[0].transport
            assert transport is not None
            outcome["write_buffer"] = transport.get_write_buffer_size()
            raise

    server.register_stream("firehose", firehose)
    path = f"{tmp_path}/s.sock"
    await server.listen(f"unix:{path}")
    try:
        # A subscriber that sends its request and then never reads.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.connect(path)
        sock.sendall(msgpack.packb([0, 1, "firehose", []]))
        for _ in range(500):
            if "closed_after" in outcome:
                break
            await asyncio.sleep(0.01)
        assert "closed_after" in outcome, "the slow subscriber was never cut off"
        assert isinstance(outcome["closed_after"], int) and outcome["closed_after"] < total
        assert isinstance(outcome["write_buffer"], int)
        assert outcome["write_buffer"] <= limits.write_high_water + 2 * len(payload) + 64
        # The subscriber finally reads: the items it was owed, then the overflow error.
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        unpacker = msgpack.Unpacker(raw=False)
        final = None
        while final is None:
            data = await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), 5)
            assert data
            unpacker.feed(data)
            for msg in unpacker:
                if msg[0] == 1:
                    final = msg
        sock.close()
        assert final[2]["code"] == codes.STREAM_OVERFLOW
        # And the server still serves others.
        async with RPCClient(f"unix:{path}") as client:
            with pytest.raises(RPCError):
                await client.call("nothing")
    finally:
        await server.close()


async def test_client_stream_backpressure_pauses_reading(tmp_path: Path) -> None:
    """A slow consumer behind RPCClient is cut off by the server, not buffered by the client."""
    limits = ServerLimits(stream_queue=50, write_high_water=32 * 1024)
    server = RPCServer(limits, name="t")

    async def firehose(stream: Stream) -> None:
        for _ in range(1_000_000):
            stream.send(b"y" * 512)
            await asyncio.sleep(0)

    server.register_stream("firehose", firehose)
    ep = f"unix:{tmp_path}/s.sock"
    await server.listen(ep)
    from ipc import ClientOptions

    try:
        async with (
            RPCClient(ep, options=ClientOptions(stream_high_water=100)) as client,
            client.stream("firehose") as sub,
        ):
            await sub.next(5)
            await asyncio.sleep(1.0)  # the consumer stalls
            with pytest.raises(RPCError) as info:
                for _ in range(10_000):
                    await sub.next(5)
            assert info.value.code == codes.STREAM_OVERFLOW
    finally:
        await server.close()
