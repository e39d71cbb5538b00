"""Arbitrary bytes on a connection never hurt the server or its other clients.

The server runs in a thread with its own loop for the whole module, so that hypothesis can
drive many examples against one long-lived server, as a hostile client would.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.ipc.conftest import make_server


class ThreadedServer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.loop = asyncio.new_event_loop()
        self.server = make_server()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.listen(f"unix:{self.path}"))
        self.ready.set()
        self.loop.run_forever()

    def start(self) -> None:
        self.thread.start()
        assert self.ready.wait(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def call(sock: socket.socket, msgid: int, method: str, *params: object) -> object:
    sock.sendall(msgpack.packb([0, msgid, method, list(params)]))
    unpacker = msgpack.Unpacker(raw=False)
    while True:
        data = sock.recv(65536)
        assert data, "server closed a well-behaved client's connection"
        unpacker.feed(data)
        for msg in unpacker:
            assert msg[1] == msgid
            return msg[3]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    srv = ThreadedServer(tmp_path_factory.mktemp("fuzz") / "rpc.sock")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def bystander(server: ThreadedServer) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(str(server.path))
    yield sock
    sock.close()


@given(garbage=st.binary(min_size=1, max_size=2048))
def test_garbage_bytes_leave_server_and_other_clients_alive(
    server: ThreadedServer, bystander: socket.socket, garbage: bytes
) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(0.2)
    sock.connect(str(server.path))
    try:
        sock.sendall(garbage)
        # Whatever the server does with it (close, wait for more, or answer a frame that
        # happened to be valid), it must not disturb anyone else.
        try:
            while sock.recv(65536):
                pass
        except (TimeoutError, ConnectionResetError):
            pass
    finally:
        sock.close()
    assert call(bystander, 7, "add", 20, 22) == 42
