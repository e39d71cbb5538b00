"""`EtcdClient`'s failure rules against a scripted fake of etcd's JSON gateway (no etcd needed).

The rules are StoreClient's (docs/store.md): fail over on a refused connection or a member
that cannot serve; retry reads on any failure; retry a write only when the failure proves it
never ran; otherwise say the outcome is unknown. Each test scripts what the fake answers.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable

import pytest

from store.backend import backend_of, connect
from store.client import StoreClient, StoreUnavailableError
from store.etcd import EtcdClient
from store.kv import EventType, KVError
from store.kv.errors import ErrorKind

Handler = Callable[[str, dict[str, object], asyncio.StreamWriter], Awaitable[bool]]


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


class FakeGateway:
    """An HTTP/1.1 server on 127.0.0.1 that hands each request to `handler`, which writes the
    answer (or not) and says whether to keep the connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, dict[str, object]]] = []
        self.tokens: list[str | None] = []  # each request's Authorization header
        self.server: asyncio.Server | None = None
        self.port = 0
        self.tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> FakeGateway:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ")[1].decode()
                length = 0
                token = None
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                    if line.lower().startswith(b"authorization:"):
                        token = line.split(b":", 1)[1].strip().decode()
                    if line.lower().startswith(b"grpc-metadata-hasleader:"):
                        assert line.split(b":")[1].strip() == b"true"
                body = json.loads(await reader.readexactly(length))
                self.requests.append((path, body))
                self.tokens.append(token)
                if not await self.handler(path, body, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


def answer(writer: asyncio.StreamWriter, doc: object, status: int = 200) -> None:
    body = json.dumps(doc).encode()
    writer.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))


def answer_chunked(writer: asyncio.StreamWriter, lines: list[object], end: bool = True) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for doc in lines:
        data = json.dumps(doc).encode() + b"\n"
        # Split every line over two chunks: the client must join them.
        for part in (data[:5], data[5:]):
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
    if end:
        writer.write(b"0\r\nGrpc-Trailer-Content-Type: application/grpc\r\n\r\n")


def grpc_error(writer: asyncio.StreamWriter, code: int, message: str) -> None:
    answer(writer, {"error": message, "message": message, "code": code}, status=503)


HEADER = {"header": {"revision": "7"}}
KV = {"key": _b64(b"k"), "create_revision": "5", "mod_revision": "7", "version": "2"}


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there now


async def test_refused_endpoint_fails_over_for_reads_and_writes() -> None:
    async def ok(path: str, body: dict[str, object], w: asyncio.StreamWriter) -> bool:
        answer(w, {**HEADER, "kvs": [KV], "count": "1"} if path.endswith("range") else HEADER)
        return True

    async with FakeGateway(ok) as gw:
        kv = EtcdClient([f"http://127.0.0.1:{_closed_port()}", gw.url], timeout=5)
        try:
            got = await kv.range(b"k")
            assert got.revision == 7 and got.kvs[0].mod_revision == 7 and got.kvs[0].value == b""
            assert (await kv.put(b"k", b"v")).revision == 7
            assert kv.failovers == 1
            assert [p for p, _ in gw.requests] == ["/v3/kv/range", "/v3/kv/put"]
            assert gw.requests[1][1] == {"key": _b64(b"k"), "value": _b64(b"v")}
        finally:
            await kv.close()


async def test_write_whose_answer_is_lost_has_unknown_outcome() -> None:
    """A put that reached etcd and whose connection dropped may have committed: not retried."""

    async def drop(path: str, body: dict[str, object], w: asyncio.StreamWriter) -> bool:
        return False  # read the request, close without answering

    async with FakeGateway(drop) as gw:
        kv = EtcdClient([gw.url, gw.url], timeout=2)
        try:
            with pytest.raises(StoreUnavailableError) as err:
                await kv.put(b"k", b"v")
            assert err.value.outcome_unknown
            assert len(gw.requests) == 1
            with pytest.raises(StoreUnavailableError) as err:
                await kv.txn([], [], [])
            assert err.value.outcome_unknown and len(gw.requests) == 2
        finally:
            await kv.close()


async def test_read_whose_answer_is_lost_is_retried() -> None:
    calls = 0

    async def flaky(path: str, body: dict[str, object], w: asyncio.StreamWriter) -> bool:
        nonlocal calls
        calls += 1
        if calls < 3:
            return False
        answer(w, {**HEADER, "count": "0"})
        return True

    async with FakeGateway(flaky) as gw:
        kv = EtcdClient(gw.url, timeout=5)
        try:
            assert (await kv.range(b"k")).revision == 7 and calls == 3
        finally:
            await kv.close()


async def test_no_leader_is_retried_elsewhere_but_timeout_is_unknown() -> None:
    """ErrNoLeader (require-leader) proves nothing was proposed; ErrTimeout does not."""
    script = [
        "etcdserver: no leader",
        "etcdserver: no leader",
        None,
        "etcdserver: request timed out",
    ]

    async def scripted(path: str, body: dict[str, object], w: asyncio.StreamWriter) -> bool:
        msg = script.pop(0)
        if msg is None:
            answer(w, HEADER)
        else:
            grpc_error(w, 14, msg)
        return True

    async with FakeGateway(scripted) as gw:
        kv = EtcdClient([gw.url, gw.url], timeout=5)
        try:
            assert (await kv.put(b"k", b"v")).revision == 7
            with pytest.raises(StoreUnavailableError) as err:
                await kv.put(b"k", b"v")
            assert err.value.outcome_unknown
        finally:
            await kv.close()


async def test_etcd_errors_become_kv_errors_and_refusals_are_not_retried() -> None:
    script = [
        (11, "etcdserver: mvcc: required revision has been compacted"),
        (7, "etcdserver: permission denied"),
    ]

    async def scripted(path: str, body: dict[str, object], w: asyncio.StreamWriter) -> bool:
        code, msg = script.pop(0)
        grpc_error(w, code, msg)
        return True

    async with FakeGateway(scripted) as gw:
        kv = EtcdClient(gw.url, timeout=5)
        try:
            with pytest.raises(KVError) as kerr:
                await kv.range(b"k", revision=1)
            assert kerr.value.kind is ErrorKind.COMPACTED
            with pytest.raises(StoreUnavailableError) as uerr:
                await kv.range(b"k")
            assert "PermissionDenied" in str(uerr.value) and not uerr.value.outcome_unknown
            assert len(gw.requests) == 2
        finally:
            await kv.close()


async def test_watch_resumes_after_a_broken_stream_without_gap_or_duplicate() -> None:
    """The first stream breaks after one event at revision 5; the watch is re-created at 6
    (on the next endpoint) and the events continue; a compaction cancel ends it."""
    streams = 0

    def ev(rev: int, kind: str | None = None) -> dict[str, object]:
        out: dict[str, object] = {"kv": {**KV, "mod_revision": str(rev)}}
        if kind:
            out["type"] = kind
        return out

    async def watch(path: str, body: dict[str, object], w: asyncio.StreamWriter) -> bool:
        nonlocal streams
        streams += 1
        created = {"result": {"header": {"revision": "4"}, "created": True}}
        if streams == 1:
            answer_chunked(w, [created, {"result": {**HEADER, "events": [ev(5)]}}], end=False)
            await w.drain()
            return False
        answer_chunked(
            w,
            [
                created,
                {"result": {**HEADER, "events": [ev(6, "DELETE"), ev(7)]}},
                {"result": {"header": {}, "canceled": True, "compact_revision": "9"}},
            ],
            end=False,
        )
        await w.drain()
        await asyncio.sleep(30)  # etcd keeps the stream open after a cancel
        return False

    async with FakeGateway(watch) as gw:
        kv = EtcdClient([gw.url, gw.url], timeout=5)
        try:
            got = []
            async for resp in kv.watch(b"k", start_revision=5, prev_kv=True):
                got.append(resp)
            assert [ev.kv.mod_revision for r in got for ev in r.events] == [5, 6, 7]
            assert [ev.type for r in got for ev in r.events] == [
                EventType.PUT,
                EventType.DELETE,
                EventType.PUT,
            ]
            assert got[-1].canceled and got[-1].compact_revision == 9
            starts = [b["create_request"]["start_revision"] for _, b in gw.requests]  # type: ignore[index]
            assert starts == ["5", "6"]
        finally:
            await kv.close()


async def test_keep_alive_of_an_unknown_lease_is_lease_not_found() -> None:
    async def keepalive(path: str, body: dict[str, object], w: asyncio.StreamWriter) -> bool:
        ttl = {} if body["ID"] == "9" else {"TTL": "30"}
        answer_chunked(w, [{"result": {**HEADER, "ID": body["ID"], **ttl}}])
        return True

    async with FakeGateway(keepalive) as gw:
        kv = EtcdClient(gw.url, timeout=5)
        try:
            assert await kv.lease_keep_alive(3) == 30
            with pytest.raises(KVError) as err:
                await kv.lease_keep_alive(9)
            assert err.value.kind is ErrorKind.LEASE_NOT_FOUND
        finally:
            await kv.close()


async def test_backend_is_chosen_by_endpoint_scheme() -> None:
    assert backend_of(["http://127.0.0.1:2379", "https://10.0.0.1:2379"]) == "etcd"
    assert backend_of(["unix:/run/tabby/store.sock", "tls://10.0.0.1:2379"]) == "tabby-store"
    with pytest.raises(ValueError, match="cannot be mixed"):
        backend_of(["http://127.0.0.1:2379", "unix:/run/tabby/store.sock"])
    with pytest.raises(ValueError):
        backend_of([])
    etcd = connect(["http://127.0.0.1:2379"])
    tabby = connect("unix:/tmp/none.sock")
    assert isinstance(etcd, EtcdClient) and isinstance(tabby, StoreClient)
    await etcd.close()
    await tabby.close()
    with pytest.raises(ValueError, match="no path"):
        EtcdClient("http://127.0.0.1:2379/v3")


async def test_an_etcd_without_the_v3_gateway_is_named() -> None:
    """etcd 3.3 and older answer 404 on /v3/...: a clear refusal, not a retry loop."""

    async def old(path: str, body: dict[str, object], w: asyncio.StreamWriter) -> bool:
        w.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nNot Found")
        return True

    async with FakeGateway(old) as gw:
        kv = EtcdClient(gw.url, timeout=5)
        try:
            with pytest.raises(StoreUnavailableError, match=r"etcd 3\.4 or later") as err:
                await kv.put(b"k", b"v")
            assert not err.value.outcome_unknown and len(gw.requests) == 1
        finally:
            await kv.close()


async def test_an_answer_without_etcds_shape_is_a_clear_error() -> None:
    async def garbled(path: str, body: dict[str, object], w: asyncio.StreamWriter) -> bool:
        bad_kv = {"key": "not base64!", "mod_revision": "x"}
        answer(w, {**HEADER, "kvs": [bad_kv]} if path.endswith("range") else {"prev_kv": bad_kv})
        return True

    async with FakeGateway(garbled) as gw:
        kv = EtcdClient(gw.url, timeout=2)
        try:
            with pytest.raises(StoreUnavailableError, match="does not decode") as err:
                await kv.range(b"k")
            assert not err.value.outcome_unknown
            with pytest.raises(StoreUnavailableError, match="does not decode") as err:
                await kv.put(b"k", b"v", prev_kv=True)
            assert err.value.outcome_unknown
        finally:
            await kv.close()


async def test_watch_stream_sockets_use_tcp_keepalive() -> None:
    """A watch stream to a member that vanished without a reset must end (and resume
    elsewhere) rather than wait for ever: its socket has TCP keepalive on (found in review)."""
    import socket

    from store.etcd_http import GatewayConn

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        reader, writer = await asyncio.open_connection(*listener.getsockname())
        conn = GatewayConn(reader, writer)
        conn.keep_alive(idle=7, interval=3, count=2)
        sock = writer.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 7
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 2
        conn.close()
    finally:
        listener.close()
