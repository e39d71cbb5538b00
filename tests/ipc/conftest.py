"""Fixtures for the IPC tests: a server with a few methods on a Unix socket in tmp_path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ipc import RPCServer, ServerLimits, Stream
from ipc.errors import RPCError


def make_server(limits: ServerLimits | None = None) -> RPCServer:
    server = RPCServer(limits, name="test")

    async def echo(*args: object) -> object:
        return list(args) if len(args) != 1 else args[0]

    async def add(a: int, b: int) -> int:
        return a + b

    async def sleep(seconds: float, value: object = None) -> object:
        await asyncio.sleep(seconds)
        return value

    async def fail(code: str) -> None:
        if code == "crash":
            raise KeyError("secret internal detail")
        raise RPCError(code, "asked to fail", {"why": "test"})

    async def count(stream: Stream, n: int) -> int:
        for i in range(n):
            stream.send(i)
            if i % 64 == 0:
                await asyncio.sleep(0)
        return n

    server.register("echo", echo)
    server.register("add", add)
    server.register("sleep", sleep)
    server.register("fail", fail)
    server.register_stream("count", count)
    return server


@pytest.fixture
async def unix_server(tmp_path: Path) -> AsyncIterator[tuple[RPCServer, str]]:
    server = make_server()
    path = tmp_path / "rpc.sock"
    await server.listen(f"unix:{path}")
    try:
        yield server, f"unix:{path}"
    finally:
        await server.close()
