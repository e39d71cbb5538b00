"""The msgpack-RPC server every Tabby daemon exposes its control API with.

One `asyncio.Protocol` per connection: frames are unpacked as bytes arrive, each request
runs as its own task (so one slow call never blocks the next), and responses go out in the
order they finish. Limits bound everything a client can make the server hold: the size of
one message (refused before it is buffered whole: msgpack's buffer limit stops at the cap),
requests in flight per connection, connections per server, and items queued per stream.

A malformed or oversized frame closes that connection with a logged reason; nothing else is
affected. Writing back-pressure (a client that does not read) pauses reading from that
client, so it cannot make the server buffer unbounded responses either.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import msgpack

from ipc import errors
from ipc.endpoints import Endpoint, TLSConfig, parse_endpoint
from ipc.errors import RPCError
from ipc.messages import (
    CANCEL,
    NOTIFICATION,
    REQUEST,
    STREAM_ITEM,
    FrameError,
    check_notification,
    check_request,
)
from ipc.unixsock import claim_socket_path, set_socket_permissions
from runtime.log import get_logger

log = get_logger("ipc")

# Handlers take the request's params positionally. `Any` is the honest type at this
# boundary: params are whatever msgpack decoded, and each handler checks its own.
Handler = Callable[..., Awaitable[Any]]
# A one-way handler runs synchronously as its frame is unpacked: no task, no answer.
NotificationHandler = Callable[..., None]


class BadNotification(Exception):
    """Raised by a notification handler for params it cannot use: the sender broke the
    protocol (there is no answer to carry an error), so its connection is closed."""


@dataclass(frozen=True, slots=True)
class ServerLimits:
    max_message_size: int = 4 * 1024 * 1024
    max_in_flight: int = 1024
    max_connections: int = 256
    stream_queue: int = 1024
    write_high_water: int = 1024 * 1024


class StreamClosed(Exception):
    """The subscriber went away, cancelled, or fell behind and was cut off."""


class Stream:
    """The server side of one subscription: `send` pushes an item to the client.

    Items go straight to the socket while the client keeps up. When the client stops
    reading, the transport's buffer fills, items wait in a bounded queue, and once that
    queue is full the subscription is cut off with ``stream_overflow``: a slow subscriber
    costs at most ``stream_queue`` items plus the transport's high-water mark.
    """

    __slots__ = ("_conn", "_pending", "_task", "close_reason", "closed", "msgid")

    def __init__(self, conn: _Connection, msgid: int) -> None:
        self._conn = conn
        self.msgid = msgid
        self._pending: deque[bytes] = deque()
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        self.close_reason: RPCError | None = None

    def send(self, item: object) -> None:
        """Queue one item for the client; raises StreamClosed once the stream is over."""
        if self.closed:
            raise StreamClosed(self.close_reason.message if self.close_reason else "closed")
        frame = self._conn.packer.pack([NOTIFICATION, STREAM_ITEM, [self.msgid, item]])
        if not self._conn.paused and not self._pending:
            self._conn.write(frame)
            return
        if len(self._pending) >= self._conn.limits.stream_queue:
            self.abort(
                RPCError(
                    errors.STREAM_OVERFLOW,
                    f"subscriber fell behind by more than {self._conn.limits.stream_queue} items",
                )
            )
            raise StreamClosed("subscriber fell behind and was cut off")
        self._pending.append(frame)

    @property
    def backlog(self) -> int:
        """Items waiting for the client to read; a producer may use it to coalesce."""
        return len(self._pending)

    def flush(self) -> None:
        while self._pending and not self._conn.paused:
            self._conn.write(self._pending.popleft())

    def abort(self, reason: RPCError) -> None:
        """End the stream from the server side; the handler task is cancelled."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._pending.clear()
        log.warning("stream.cut", msgid=self.msgid, code=reason.code, reason=reason.message)
        if self._task is not None:
            self._task.cancel()


@dataclass(frozen=True, slots=True)
class _Method:
    handler: Handler
    streaming: bool
    min_args: int
    max_args: int | None  # None: *args accepted


def _arity(handler: Callable[..., object], skip: int) -> tuple[int, int | None]:
    params = list(inspect.signature(handler).parameters.values())[skip:]
    positional = [
        p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    required = sum(1 for p in positional if p.default is inspect.Parameter.empty)
    varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    return required, None if varargs else len(positional)


class RPCServer:
    """A registry of methods served on any number of endpoints."""

    def __init__(self, limits: ServerLimits | None = None, name: str = "rpc") -> None:
        self.limits = limits or ServerLimits()
        self.name = name
        self._methods: dict[str, _Method] = {}
        self._notifications: dict[str, tuple[NotificationHandler, int, int | None]] = {}
        self._servers: list[asyncio.Server] = []
        self._unix_paths: list[Path] = []
        self._connections: set[_Connection] = set()
        self.rejected_connections = 0
        self.protocol_errors = 0

    # -- registry -------------------------------------------------------------------
    def register(self, method: str, handler: Handler) -> None:
        """Serve `method` with ``async def handler(*params) -> result``."""
        low, high = _arity(handler, 0)
        self._methods[method] = _Method(handler, False, low, high)

    def register_stream(self, method: str, handler: Handler) -> None:
        """Serve a subscription: ``async def handler(stream, *params) -> final result``."""
        low, high = _arity(handler, 1)
        self._methods[method] = _Method(handler, True, low, high)

    def register_notification(self, method: str, handler: NotificationHandler) -> None:
        """Serve the one-way `method` (msgpack-RPC notification ``[2, method, params]``) with
        a plain ``def handler(*params) -> None``, called as the frame is unpacked.

        For high-rate fire-and-forget traffic (Raft messages): a request would cost a task
        and an answer frame that wakes the sender just to be dropped. Notifications to a
        method nobody registered are ignored, as the msgpack-RPC spec has it; a handler
        that raises BadNotification (or gets the wrong number of params) closes the
        connection, since no answer can carry the error."""
        low, high = _arity(handler, 0)
        self._notifications[method] = (handler, low, high)

    @property
    def methods(self) -> list[str]:
        return sorted(self._methods)

    # -- listening ------------------------------------------------------------------
    async def listen(
        self,
        endpoint: str | Endpoint,
        *,
        tls: TLSConfig | None = None,
        mode: int = 0o660,
        group: str | None = None,
    ) -> Endpoint:
        """Start listening; returns the endpoint (with the real port when 0 was asked)."""
        ep = parse_endpoint(endpoint) if isinstance(endpoint, str) else endpoint
        loop = asyncio.get_running_loop()
        if ep.scheme == "unix":
            path = Path(ep.path)
            claim_socket_path(path)
            server = await loop.create_unix_server(self._make_connection, str(path))
            set_socket_permissions(path, mode, group)
            self._unix_paths.append(path)
            self._servers.append(server)
            log.info("listen", server=self.name, endpoint=str(ep))
            return ep
        ssl_ctx: ssl.SSLContext | None = None
        if ep.scheme == "tls":
            if tls is None:
                raise ValueError(f"{ep}: a tls endpoint needs a TLSConfig")
            ssl_ctx = tls.server_context()
        server = await loop.create_server(
            self._make_connection, ep.host, ep.port, ssl=ssl_ctx, reuse_address=True
        )
        port = server.sockets[0].getsockname()[1]
        self._servers.append(server)
        bound = Endpoint(ep.scheme, host=ep.host, port=port)
        log.info("listen", server=self.name, endpoint=str(bound))
        return bound

    def _make_connection(self) -> _Connection:
        return _Connection(self)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def close(self) -> None:
        """Stop accepting, cancel running handlers, close every connection."""
        for server in self._servers:
            server.close()
        for conn in list(self._connections):
            conn.close("server shutting down")
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()
        for path in self._unix_paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._unix_paths.clear()


class _Connection(asyncio.Protocol):
    """One client connection: unpacks frames, runs handlers, writes responses."""

    def __init__(self, server: RPCServer) -> None:
        self.server = server
        self.limits = server.limits
        self.packer = msgpack.Packer(use_bin_type=True)
        self.unpacker = msgpack.Unpacker(
            raw=False, use_list=True, max_buffer_size=server.limits.max_message_size
        )
        self.transport: asyncio.Transport | None = None
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.streams: dict[int, Stream] = {}
        self.paused = False
        self.peer = "?"

    # -- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        peer = self.transport.get_extra_info("peername")
        self.peer = str(peer) if peer else "unix"
        if len(self.server._connections) >= self.limits.max_connections:
            self.server.rejected_connections += 1
            log.warning(
                "conn.rejected", server=self.server.name, peer=self.peer, reason="max_connections"
            )
            self.transport.abort()
            return
        self.transport.set_write_buffer_limits(high=self.limits.write_high_water)
        self.server._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)
        for task in self.tasks.values():
            task.cancel()
        for stream in self.streams.values():
            stream.closed = True
        self.tasks.clear()
        self.streams.clear()

    def pause_writing(self) -> None:
        # The client is not reading: stop reading its requests until it catches up.
        self.paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        for stream in list(self.streams.values()):
            stream.flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        try:
            self.unpacker.feed(data)
        except msgpack.BufferFull:
            self.protocol_error(f"message larger than {self.limits.max_message_size} bytes")
            return
        try:
            for msg in self.unpacker:
                self.dispatch(msg)
                if self.transport is None or self.transport.is_closing():
                    return
        except FrameError as exc:
            self.protocol_error(str(exc))
        except (ValueError, msgpack.UnpackException) as exc:
            self.protocol_error(f"undecodable msgpack: {exc}")

    # -- dispatch ---------------------------------------------------------------------
    def dispatch(self, msg: object) -> None:
        if type(msg) is not list or not msg:
            raise FrameError("frame is not a non-empty array")
        kind = msg[0]
        if kind == REQUEST:
            msgid, method, params = check_request(msg)
            self.start_request(msgid, method, params)
        elif kind == NOTIFICATION:
            name, params = check_notification(msg)
            if name == CANCEL and params and type(params[0]) is int:
                task = self.tasks.get(params[0])
                if task is not None:
                    task.cancel()
                return
            one_way = self.server._notifications.get(name)
            if one_way is None:
                return
            handler, low, high = one_way
            n = len(params)
            if n < low or (high is not None and n > high):
                raise FrameError(f"notification {name} with {n} params")
            try:
                handler(*params)
            except BadNotification as exc:
                raise FrameError(f"notification {name}: {exc}") from None
            except Exception as exc:  # a handler bug: drop this peer, keep serving others
                log.exception("notification.failed", server=self.server.name, method=name)
                raise FrameError(f"notification {name} failed: {type(exc).__name__}") from None
        else:
            raise FrameError(f"unexpected message type {kind!r} from a client")

    def start_request(self, msgid: int, name: str, params: list[object]) -> None:
        if msgid in self.tasks:
            self.respond_error(msgid, RPCError(errors.INVALID_REQUEST, "msgid already in flight"))
            return
        if len(self.tasks) >= self.limits.max_in_flight:
            self.respond_error(
                msgid,
                RPCError(errors.OVERLOADED, f"more than {self.limits.max_in_flight} in flight"),
            )
            return
        method = self.server._methods.get(name)
        if method is None:
            self.respond_error(msgid, RPCError(errors.METHOD_NOT_FOUND, f"no method {name!r}"))
            return
        n = len(params)
        if n < method.min_args or (method.max_args is not None and n > method.max_args):
            expected = (
                f"{method.min_args}"
                if method.max_args == method.min_args
                else f"{method.min_args} to {method.max_args if method.max_args is not None else 'any'}"
            )
            self.respond_error(
                msgid,
                RPCError(errors.INVALID_PARAMS, f"{name} takes {expected} params, got {n}"),
            )
            return
        loop = asyncio.get_running_loop()
        if method.streaming:
            stream = Stream(self, msgid)
            self.streams[msgid] = stream
            task = loop.create_task(self.run(msgid, name, method.handler(stream, *params), stream))
            stream._task = task
        else:
            task = loop.create_task(self.run(msgid, name, method.handler(*params), None))
        self.tasks[msgid] = task

    async def run(
        self, msgid: int, name: str, call: Awaitable[object], stream: Stream | None
    ) -> None:
        try:
            result = await call
        except asyncio.CancelledError:
            if stream is not None and stream.close_reason is not None:
                self.respond_error(msgid, stream.close_reason)
            else:
                self.respond_error(msgid, RPCError(errors.CANCELLED, "cancelled"))
            return
        except RPCError as exc:
            self.respond_error(msgid, exc)
            return
        except StreamClosed:
            reason = stream.close_reason if stream is not None else None
            self.respond_error(msgid, reason or RPCError(errors.CANCELLED, "stream closed"))
            return
        except Exception as exc:
            log.exception("handler.failed", server=self.server.name, method=name)
            self.respond_error(msgid, RPCError(errors.INTERNAL, f"{type(exc).__name__}: {exc}"))
            return
        finally:
            self.tasks.pop(msgid, None)
            if stream is not None:
                stream.closed = True
                self.streams.pop(msgid, None)
        try:
            frame = self.packer.pack([1, msgid, None, result])
        except (TypeError, ValueError, OverflowError) as exc:
            self.packer.reset()
            log.error("result.unpackable", method=name, error=str(exc))
            self.respond_error(msgid, RPCError(errors.INTERNAL, f"result not serialisable: {exc}"))
            return
        self.write(frame)

    # -- output -----------------------------------------------------------------------
    def write(self, frame: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame)

    def respond_error(self, msgid: int, error: RPCError) -> None:
        try:
            frame = self.packer.pack([1, msgid, error.to_wire(), None])
        except (TypeError, ValueError, OverflowError):
            self.packer.reset()
            frame = self.packer.pack(
                [1, msgid, {"code": error.code, "message": error.message}, None]
            )
        self.write(frame)

    def protocol_error(self, reason: str) -> None:
        self.server.protocol_errors += 1
        log.warning("conn.protocol_error", server=self.server.name, peer=self.peer, reason=reason)
        self.close(reason)

    def close(self, reason: str) -> None:
        for task in self.tasks.values():
            task.cancel()
        if self.transport is not None:
            self.transport.abort()
