"""Transports: TLS with and without client certificates, failover, Unix socket files."""

from __future__ import annotations

import asyncio
import grp
import os
import socket
import stat
from pathlib import Path

import pytest

from ipc import ClientOptions, RPCClient, RPCServer, TLSConfig
from ipc import errors as codes
from ipc.certs import CertificateAuthority
from ipc.endpoints import parse_endpoint
from ipc.errors import RPCError
from ipc.unixsock import SocketInUseError
from tests.ipc.conftest import make_server

FAST_FAIL = ClientOptions(connect_timeout=1.0, connect_deadline=1.0, timeout=2.0)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TLSConfig]:
    d = tmp_path_factory.mktemp("pki")
    good = CertificateAuthority(d / "good", "good-ca")
    rogue = CertificateAuthority(d / "rogue", "rogue-ca")
    srv = good.issue("store-1", ["127.0.0.1", "localhost"])
    cli = good.issue("tabbyctl", server=False)
    bad = rogue.issue("intruder", server=False)
    return {
        "server_mtls": TLSConfig(srv.cert_file, srv.key_file, good.cert_file),
        "server_tls": TLSConfig(srv.cert_file, srv.key_file),
        "client": TLSConfig(cli.cert_file, cli.key_file, good.cert_file),
        "client_nocert": TLSConfig(ca_file=good.cert_file),
        "client_rogue": TLSConfig(bad.cert_file, bad.key_file, good.cert_file),
        "client_wrong_ca": TLSConfig(cli.cert_file, cli.key_file, rogue.cert_file),
    }


async def test_tls_round_trip_with_mutual_authentication(pki: dict[str, TLSConfig]) -> None:
    server = make_server()
    ep = await server.listen("tls://127.0.0.1:0", tls=pki["server_mtls"])
    try:
        async with RPCClient(ep, tls=pki["client"]) as client:
            assert await client.call("add", 40, 2) == 42
    finally:
        await server.close()


@pytest.mark.parametrize("who", ["client_rogue", "client_nocert"])
async def test_tls_refuses_a_wrong_or_missing_client_certificate(
    pki: dict[str, TLSConfig], who: str
) -> None:
    server = make_server()
    ep = await server.listen("tls://127.0.0.1:0", tls=pki["server_mtls"])
    try:
        async with RPCClient(ep, tls=pki[who], options=FAST_FAIL) as client:
            with pytest.raises(RPCError) as info:
                await client.call("add", 1, 2)
            assert info.value.code in (codes.CONNECTION_LOST, codes.UNAVAILABLE)
        assert server.connection_count == 0
    finally:
        await server.close()


async def test_tls_client_refuses_a_server_it_cannot_verify(pki: dict[str, TLSConfig]) -> None:
    server = make_server()
    ep = await server.listen("tls://127.0.0.1:0", tls=pki["server_tls"])
    try:
        async with RPCClient(ep, tls=pki["client_wrong_ca"], options=FAST_FAIL) as client:
            with pytest.raises(RPCError) as info:
                await client.call("add", 1, 2)
            assert info.value.code == codes.UNAVAILABLE
            assert "CERTIFICATE_VERIFY_FAILED" in info.value.message
    finally:
        await server.close()


async def test_plain_tcp(tmp_path: Path) -> None:
    server = make_server()
    ep = await server.listen("tcp://127.0.0.1:0")
    try:
        async with RPCClient(ep) as client:
            assert await client.call("echo", "tcp") == "tcp"
    finally:
        await server.close()


def client_is_connected(client: RPCClient) -> bool:
    return client.connected_endpoint is not None


async def test_failover_to_the_next_endpoint_and_back(tmp_path: Path) -> None:
    a_path, b_path = tmp_path / "a.sock", tmp_path / "b.sock"
    b = make_server()
    await b.listen(f"unix:{b_path}")
    client = RPCClient([f"unix:{a_path}", f"unix:{b_path}"])
    try:
        # a is down: the client lands on b.
        assert await client.call("echo", "x", idempotent=True) == "x"
        assert client.connected_endpoint == parse_endpoint(f"unix:{b_path}")
        # b dies and a comes up: an idempotent call reconnects transparently.
        a = make_server()
        await a.listen(f"unix:{a_path}")
        await b.close()
        for _ in range(100):
            if not client_is_connected(client):
                break
            await asyncio.sleep(0.01)
        assert await client.call("echo", "y", idempotent=True) == "y"
        assert client.connected_endpoint == parse_endpoint(f"unix:{a_path}")
        assert client.reconnects == 1
        await a.close()
    finally:
        await client.close()


async def test_in_flight_non_idempotent_call_fails_when_the_server_dies(tmp_path: Path) -> None:
    server = make_server()
    ep = f"unix:{tmp_path}/s.sock"
    await server.listen(ep)
    async with RPCClient(ep, options=FAST_FAIL) as client:
        call = asyncio.ensure_future(client.call("sleep", 10))
        await asyncio.sleep(0.1)
        await server.close()
        with pytest.raises(RPCError) as info:
            await call
        assert info.value.code in (codes.CONNECTION_LOST, codes.CANCELLED)


async def test_unreachable_endpoints_give_up_with_every_reason(tmp_path: Path) -> None:
    client = RPCClient(
        [f"unix:{tmp_path}/none1.sock", "tcp://127.0.0.1:1"],
        options=ClientOptions(connect_deadline=0.3, backoff_initial=0.01),
    )
    with pytest.raises(RPCError) as info:
        await client.call("echo", 1)
    assert info.value.code == codes.UNAVAILABLE
    assert "none1.sock" in info.value.message and "127.0.0.1:1" in info.value.message
    await client.close()


async def test_socket_file_mode_and_group(tmp_path: Path) -> None:
    server = RPCServer()
    path = tmp_path / "perm.sock"
    group = grp.getgrgid(os.getegid()).gr_name
    await server.listen(f"unix:{path}", mode=0o660, group=group)
    try:
        st = path.stat()
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert st.st_gid == os.getegid()
    finally:
        await server.close()
    assert not path.exists()


async def test_stale_socket_from_a_crashed_daemon_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays; nobody listens: what a SIGKILLed daemon leaves
    assert path.exists()
    server = make_server()
    await server.listen(f"unix:{path}")
    try:
        async with RPCClient(f"unix:{path}") as client:
            assert await client.call("echo", "new") == "new"
    finally:
        await server.close()


async def test_live_socket_is_not_stolen(tmp_path: Path) -> None:
    path = tmp_path / "live.sock"
    first = make_server()
    await first.listen(f"unix:{path}")
    try:
        with pytest.raises(SocketInUseError):
            await make_server().listen(f"unix:{path}")
        async with RPCClient(f"unix:{path}") as client:
            assert await client.call("echo", "first") == "first"
    finally:
        await first.close()


async def test_a_regular_file_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "important"
    path.write_text("data")
    with pytest.raises(SocketInUseError):
        await make_server().listen(f"unix:{path}")
    assert path.read_text() == "data"


def test_endpoint_parsing() -> None:
    assert str(parse_endpoint("unix:/run/tabby/bgpd.sock")) == "unix:/run/tabby/bgpd.sock"
    assert parse_endpoint("/run/x.sock").path == "/run/x.sock"
    ep = parse_endpoint("tls://[::1]:2379")
    assert (ep.scheme, ep.host, ep.port) == ("tls", "::1", 2379)
    for bad in ["http://x:1", "tcp://host", "tcp://h:99999", "unix:", "tcp://h:abc"]:
        with pytest.raises(ValueError):
            parse_endpoint(bad)
