"""msgpack-RPC calls: types, concurrency, errors, limits and timeouts."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipc import ClientOptions, RPCClient, RPCServer, ServerLimits
from ipc import errors as codes
from ipc.errors import RPCError
from tests.ipc.conftest import make_server

# Every msgpack type the daemons exchange: nil, bool, int (64-bit both signs), float,
# str, bin, array, map with string keys.
msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
    | st.binary(max_size=50),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)


async def test_round_trip_of_every_msgpack_type(unix_server: tuple[RPCServer, str]) -> None:
    _, ep = unix_server
    samples = [
        None,
        True,
        False,
        0,
        -1,
        2**63 - 1,
        -(2**63),
        2**64 - 1,
        1.5,
        "",
        "pod-ü",
        b"\x00\xff",
        [],
        [1, [2, [3]]],
        {},
        {"a": {"b": [b"x", None]}},
    ]
    async with RPCClient(ep) as client:
        for value in samples:
            assert await client.call("echo", value) == value


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=msgpack_values)
def test_round_trip_property(tmp_path: Path, value: object) -> None:
    async def main() -> object:
        server = make_server()
        await server.listen(f"unix:{tmp_path}/p.sock")
        try:
            async with RPCClient(f"unix:{tmp_path}/p.sock") as client:
                return await client.call("echo", value)
        finally:
            await server.close()

    assert asyncio.run(main()) == value


async def test_thousand_concurrent_requests_on_one_connection(
    unix_server: tuple[RPCServer, str],
) -> None:
    server, ep = unix_server
    async with RPCClient(ep) as client:
        # Each request sleeps a little so that all 1,000 are in flight together.
        results = await asyncio.gather(*(client.call("sleep", 0.05, i) for i in range(1000)))
        assert results == list(range(1000))
        assert server.connection_count == 1


async def test_responses_come_back_out_of_order(unix_server: tuple[RPCServer, str]) -> None:
    _, ep = unix_server
    async with RPCClient(ep) as client:
        slow = asyncio.ensure_future(client.call("sleep", 0.3, "slow"))
        fast = await client.call("sleep", 0.0, "fast")
        assert fast == "fast" and not slow.done()
        assert await slow == "slow"


async def test_structured_errors_never_carry_a_traceback(
    unix_server: tuple[RPCServer, str],
) -> None:
    _, ep = unix_server
    async with RPCClient(ep) as client:
        with pytest.raises(RPCError) as info:
            await client.call("fail", "conflict")
        assert (info.value.code, info.value.message, info.value.data) == (
            "conflict",
            "asked to fail",
            {"why": "test"},
        )
        with pytest.raises(RPCError) as info:
            await client.call("fail", "crash")
        assert info.value.code == codes.INTERNAL
        assert "Traceback" not in info.value.message
        assert "KeyError" in info.value.message
        with pytest.raises(RPCError) as info:
            await client.call("nope")
        assert info.value.code == codes.METHOD_NOT_FOUND
        with pytest.raises(RPCError) as info:
            await client.call("add", 1)
        assert info.value.code == codes.INVALID_PARAMS
        # The connection survives application errors.
        assert await client.call("add", 2, 3) == 5


async def test_call_timeout(unix_server: tuple[RPCServer, str]) -> None:
    _, ep = unix_server
    async with RPCClient(ep) as client:
        with pytest.raises(RPCError) as info:
            await client.call("sleep", 5, timeout=0.1)
        assert info.value.code == codes.TIMEOUT
        assert await client.call("echo", "still fine") == "still fine"


async def test_in_flight_limit_answers_overloaded(tmp_path: Path) -> None:
    server = make_server(ServerLimits(max_in_flight=10))
    await server.listen(f"unix:{tmp_path}/s.sock")
    try:
        async with RPCClient(f"unix:{tmp_path}/s.sock") as client:
            calls = [client.call("sleep", 0.2, i) for i in range(15)]
            results = await asyncio.gather(*calls, return_exceptions=True)
        overloaded = [r for r in results if isinstance(r, RPCError)]
        assert len(overloaded) == 5
        assert all(r.code == codes.OVERLOADED for r in overloaded)
        assert [r for r in results if not isinstance(r, RPCError)] == list(range(10))
    finally:
        await server.close()


async def test_connection_limit_refuses_extra_clients(tmp_path: Path) -> None:
    server = make_server(ServerLimits(max_connections=2))
    ep = f"unix:{tmp_path}/s.sock"
    await server.listen(ep)
    opts = ClientOptions(connect_deadline=0.5, timeout=1.0)
    try:
        async with RPCClient(ep) as a, RPCClient(ep) as b, RPCClient(ep, options=opts) as c:
            assert await a.call("echo", 1) == 1
            assert await b.call("echo", 2) == 2
            with pytest.raises(RPCError) as info:
                await c.call("echo", 3)
            assert info.value.code == codes.CONNECTION_LOST
            assert server.rejected_connections >= 1
            assert await a.call("echo", 4) == 4
    finally:
        await server.close()


def _raw_connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(path)
    return sock


async def test_oversized_frame_refused_before_it_is_buffered(tmp_path: Path) -> None:
    limit = 64 * 1024
    server = make_server(ServerLimits(max_message_size=limit))
    path = f"{tmp_path}/s.sock"
    await server.listen(f"unix:{path}")
    declared = 10 * 1024 * 1024
    try:
        sock = _raw_connect(path)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        # A request whose single bin argument claims 10 MiB (bin 32 header).
        head = b"\x94\x00\x01\xa4echo\x91\xc6" + struct.pack(">I", declared)
        sent = 0
        chunk = b"\x00" * 16384
        with pytest.raises(OSError):
            await loop.sock_sendall(sock, head)
            for _ in range(declared // len(chunk)):
                await asyncio.wait_for(loop.sock_sendall(sock, chunk), 5)
                sent += len(chunk)
        sock.close()
        # The server cut us off long before the declared size arrived.
        assert sent < declared // 4
        assert server.protocol_errors == 1
        async with RPCClient(f"unix:{path}") as client:
            assert await client.call("echo", "alive") == "alive"
    finally:
        await server.close()


async def test_client_refuses_oversized_response(unix_server: tuple[RPCServer, str]) -> None:
    _, ep = unix_server
    opts = ClientOptions(max_message_size=1024)
    async with RPCClient(ep, options=opts) as client:
        with pytest.raises(RPCError) as info:
            await client.call("echo", b"x" * 4096)
        assert info.value.code == codes.CONNECTION_LOST


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"\xc1", id="never-used-byte"),
        pytest.param(msgpack.packb({"not": "an array"}), id="map-frame"),
        pytest.param(msgpack.packb([]), id="empty-array"),
        pytest.param(msgpack.packb([9, 1, "echo", []]), id="unknown-type"),
        pytest.param(msgpack.packb([0, -1, "echo", []]), id="negative-msgid"),
        pytest.param(msgpack.packb([0, 1, 7, []]), id="method-not-string"),
        pytest.param(msgpack.packb([0, 1, "echo", {}]), id="params-not-array"),
        pytest.param(msgpack.packb([1, 1, None, None]), id="response-from-client"),
        pytest.param(b"\xa3\xff\xfe\xfd", id="invalid-utf8"),
    ],
)
async def test_malformed_frame_closes_only_that_connection(
    unix_server: tuple[RPCServer, str], garbage: bytes
) -> None:
    server, ep = unix_server
    async with RPCClient(ep) as bystander:
        assert await bystander.call("echo", "before") == "before"
        reader, writer = await asyncio.open_unix_connection(ep[5:])
        writer.write(garbage)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
        writer.close()
        assert server.protocol_errors == 1
        assert await bystander.call("echo", "after") == "after"


async def test_many_concurrent_large_calls_through_a_full_write_buffer(
    unix_server: tuple[RPCServer, str],
) -> None:
    """Back-pressure on the client side releases every waiting caller, not just the last."""
    _, ep = unix_server
    blob = b"z" * 65536
    async with RPCClient(ep) as client:
        results = await asyncio.wait_for(
            asyncio.gather(*(client.call("echo", blob, timeout=60) for _ in range(1000))), 120
        )
    assert len(results) == 1000 and all(r == blob for r in results)
