"""The daemons run on uvloop: the same calls and streams must work there."""

from __future__ import annotations

from pathlib import Path

import uvloop

from ipc import RPCClient
from tests.ipc.conftest import make_server


def test_calls_and_streams_on_uvloop(tmp_path: Path) -> None:
    async def main() -> tuple[object, list[object]]:
        server = make_server()
        ep = f"unix:{tmp_path}/uv.sock"
        await server.listen(ep)
        try:
            async with RPCClient(ep) as client:
                total = await client.call("add", 20, 22)
                async with client.stream("count", 100) as sub:
                    items = [i async for i in sub]
                return total, items
        finally:
            await server.close()

    total, items = uvloop.run(main())
    assert total == 42
    assert items == list(range(100))
