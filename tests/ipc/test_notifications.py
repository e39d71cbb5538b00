"""One-way notifications ``[2, method, params]``: run on arrival, never answered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgpack
import pytest

from ipc import BadNotification, RPCClient, RPCServer
from tests.ipc.conftest import make_server


@pytest.fixture
async def noted(tmp_path: Path) -> tuple[RPCServer, str, list[tuple[object, ...]]]:
    server = make_server()
    got: list[tuple[object, ...]] = []

    def note(a: object, b: object = None) -> None:
        if a == "bad":
            raise BadNotification("asked to refuse")
        if a == "crash":
            raise KeyError("handler bug")
        got.append((a, b))

    server.register_notification("note", note)
    ep = f"unix:{tmp_path}/n.sock"
    await server.listen(ep)
    return server, ep, got


async def test_a_notification_runs_its_handler_in_order_and_gets_no_answer(
    noted: tuple[RPCServer, str, list[tuple[object, ...]]],
) -> None:
    server, ep, got = noted
    try:
        reader, writer = await asyncio.open_unix_connection(ep[5:])
        for i in range(5):
            writer.write(msgpack.packb([2, "note", [i, b"x"]]))
        writer.write(msgpack.packb([2, "nobody-serves-this", [1]]))  # ignored, per the spec
        writer.write(msgpack.packb([0, 7, "echo", ["after"]]))
        await writer.drain()
        answer = msgpack.Unpacker(raw=False)
        answer.feed(await asyncio.wait_for(reader.read(4096), 5))
        # The only frame back is the echo's answer: nothing for the six notifications.
        assert list(answer) == [[1, 7, None, "after"]]
        assert got == [(i, b"x") for i in range(5)]
        writer.close()
        async with RPCClient(ep) as client:  # the client's notify reaches the same handler
            await client.notify("note", "via-client")
            assert await client.call("echo", "sync") == "sync"
        assert got[-1] == ("via-client", None)
        assert server.protocol_errors == 0
    finally:
        await server.close()


@pytest.mark.parametrize(
    "frame",
    [
        pytest.param([2, "note", []], id="too-few-params"),
        pytest.param([2, "note", [1, 2, 3]], id="too-many-params"),
        pytest.param([2, "note", ["bad"]], id="handler-refuses"),
        pytest.param([2, "note", ["crash"]], id="handler-bug"),
        pytest.param([2, "note", "not-an-array"], id="params-not-array"),
    ],
)
async def test_a_bad_notification_closes_only_that_connection(
    noted: tuple[RPCServer, str, list[tuple[object, ...]]], frame: list[object]
) -> None:
    """No answer can carry the error, so the sender's connection is closed; others go on."""
    server, ep, got = noted
    try:
        async with RPCClient(ep) as bystander:
            reader, writer = await asyncio.open_unix_connection(ep[5:])
            writer.write(msgpack.packb(frame))
            await writer.drain()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
            writer.close()
            assert server.protocol_errors == 1
            await bystander.notify("note", "still-served")
            assert await bystander.call("echo", "after") == "after"
            assert got == [("still-served", None)]
    finally:
        await server.close()
