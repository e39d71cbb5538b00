"""The HTTP/1.1 subset etcd's JSON gateway speaks, for `store.etcd.EtcdClient`: one connection
and its framing (a POST with a Content-Length body; answers with Content-Length or chunked;
streams of one JSON object per line), and the three ways a call can fail below the KV layer.

Kept apart from the client because none of it knows about KV requests, retries or tokens: it
is the wire, and `EtcdClient` decides what a failure means for a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import cast

from store.etcd_json import Json

MAX_HEAD = 64 << 10  # status line and headers of one answer
MAX_LINE = 64 << 20  # one JSON object of a stream (one watch response)
GRPC_NAMES = {
    1: "Canceled",
    2: "Unknown",
    3: "InvalidArgument",
    4: "DeadlineExceeded",
    5: "NotFound",
    6: "AlreadyExists",
    7: "PermissionDenied",
    8: "ResourceExhausted",
    9: "FailedPrecondition",
    10: "Aborted",
    11: "OutOfRange",
    12: "Unimplemented",
    13: "Internal",
    14: "Unavailable",
    15: "DataLoss",
    16: "Unauthenticated",
}


class ConnectError(Exception):
    """No connection could be made: nothing was sent."""


class LostError(Exception):
    """The request was (or may have been) sent and no complete answer came back."""


class GRPCError(Exception):
    """etcd answered with a gRPC status other than OK."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{GRPC_NAMES.get(code, str(code))}: {message}")
        self.code = code
        self.message = message


class GatewayConn:
    """One HTTP/1.1 connection to an etcd member; one request at a time."""

    __slots__ = ("fresh", "reader", "reusable", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reusable = True
        self.fresh = True  # no answer read on it yet

    @property
    def alive(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.reusable = False
        self.writer.close()

    def keep_alive(self, idle: int = 10, interval: int = 5, count: int = 3) -> None:
        """TCP keepalive for a long-lived watch stream: a member that vanished without a reset
        (host down, a partition on our side) surfaces as a read error after about
        idle + interval * count seconds, and the watch resumes on another endpoint, instead
        of a stream that waits for ever. etcd's own client uses gRPC keepalive for this."""
        sock = self.writer.get_extra_info("socket")
        if sock is None:
            return
        with contextlib.suppress(OSError, AttributeError):  # AttributeError: not Linux
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count)

    def send(
        self,
        host: str,
        path: str,
        body: bytes,
        require_leader: bool = True,
        token: str | None = None,
    ) -> None:
        # clientv3.WithRequireLeader: the gateway passes Grpc-Metadata-* on as gRPC metadata.
        leader = b"Grpc-Metadata-hasleader: true\r\n" if require_leader else b""
        # etcd reads the token from the "authorization" metadata, which the gateway fills from
        # this header (etcd's auth guide: curl -H "Authorization: $token").
        auth = b"Authorization: %s\r\n" % token.encode() if token else b""
        self.writer.write(
            b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"%s%sContent-Length: %d\r\n\r\n%s"
            % (path.encode(), host.encode(), leader, auth, len(body), body)
        )

    async def read_head(self) -> tuple[int, dict[bytes, bytes]]:
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise LostError("answer headers too long") from None
        if len(head) > MAX_HEAD:
            raise LostError("answer headers too long")
        lines = head.split(b"\r\n")
        status = lines[0].split(b" ", 2)
        if len(status) < 2 or not status[0].startswith(b"HTTP/1.") or not status[1].isdigit():
            raise LostError(f"not an HTTP answer: {lines[0][:80]!r}")
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if headers.get(b"connection", b"").lower() == b"close" or status[0] == b"HTTP/1.0":
            self.reusable = False
        return int(status[1]), headers

    async def read_chunks(self, limit: int) -> AsyncIterator[bytes]:
        """The chunks of a chunked body, then its trailers are consumed."""
        total = 0
        while True:
            line = await self.reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise LostError(f"bad chunk size {line[:40]!r}") from None
            if size == 0:
                for _ in range(64):  # trailers (etcd sends Grpc-Trailer-*), then a blank line
                    if (await self.reader.readuntil(b"\r\n")) == b"\r\n":
                        return
                raise LostError("too many trailer lines")
            total += size
            if total > limit:
                raise LostError(f"answer larger than {limit} bytes")
            chunk = await self.reader.readexactly(size + 2)
            yield chunk[:-2]

    async def read_body(self, headers: dict[bytes, bytes], limit: int) -> bytes:
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            return b"".join([c async for c in self.read_chunks(limit)])
        length = headers.get(b"content-length")
        if length is None or not length.isdigit():
            raise LostError("answer without a length")
        if int(length) > limit:
            raise LostError(f"answer larger than {limit} bytes")
        return await self.reader.readexactly(int(length))


async def json_lines(conn: GatewayConn) -> AsyncIterator[Json]:
    """The objects of a gateway stream: one JSON object per line, lines split across chunks."""
    buf = b""
    async for chunk in conn.read_chunks(1 << 62):
        buf += chunk
        if len(buf) > MAX_LINE:
            raise LostError("stream line too long")
        while b"\n" in buf:
            line, _, buf = buf.partition(b"\n")
            if line.strip():
                doc = json.loads(line)
                if isinstance(doc, dict):
                    yield cast(Json, doc)
    with contextlib.suppress(ValueError):
        if buf.strip():
            doc = json.loads(buf)
            if isinstance(doc, dict):
                yield cast(Json, doc)
