"""The async msgpack-RPC client: calls, streams, timeouts, reconnect and failover.

A client is given one or more endpoints. It connects lazily, trying them in turn from the
last one that worked, backing off between rounds, until its connect deadline. Many calls
share one connection (msgids tie answers to calls). A call whose connection drops fails with
``connection_lost``; it is retried on the next endpoint only when the caller says the call
is idempotent, because the server may have carried it out already.

Streams apply back-pressure end to end: when the consumer falls behind, the client stops
reading the socket, so the server's bounded per-subscriber queue decides, not our memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import cast

import msgpack

from ipc import errors
from ipc.endpoints import Endpoint, TLSConfig, parse_endpoint
from ipc.errors import RPCError
from ipc.messages import (
    CANCEL,
    NOTIFICATION,
    REQUEST,
    RESPONSE,
    STREAM_ITEM,
    FrameError,
    check_notification,
    check_response,
)
from runtime.log import get_logger

log = get_logger("ipc.client")


@dataclass(frozen=True, slots=True)
class ClientOptions:
    timeout: float = 10.0  # per call, unless the call gives its own
    connect_timeout: float = 2.0  # per connection attempt
    connect_deadline: float = 10.0  # all attempts of one (re)connect together
    backoff_initial: float = 0.05
    backoff_max: float = 2.0
    max_message_size: int = 16 * 1024 * 1024
    stream_high_water: int = 4096  # items buffered per stream before we stop reading


class _StreamState:
    __slots__ = ("done", "error", "items", "result", "waiter")

    def __init__(self) -> None:
        self.items: deque[object] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.done = False
        self.error: RPCError | None = None
        self.result: object = None

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)


class _ClientConnection(asyncio.Protocol):
    def __init__(self, client: RPCClient, endpoint: Endpoint) -> None:
        self.client = client
        self.endpoint = endpoint
        self.unpacker = msgpack.Unpacker(
            raw=False, use_list=True, max_buffer_size=client.options.max_message_size
        )
        self.packer = msgpack.Packer(use_bin_type=True)
        self.transport: asyncio.Transport | None = None
        self.pending: dict[int, asyncio.Future[object]] = {}
        self.streams: dict[int, _StreamState] = {}
        self.lost = False
        self.reading_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        why = f"connection to {self.endpoint} lost" + (f": {exc}" if exc else "")
        err = RPCError(errors.CONNECTION_LOST, why)
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(err)
        self.pending.clear()
        for st in self.streams.values():
            if not st.done:
                st.done = True
                st.error = err
                st.wake()
        self.streams.clear()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self.client._connection_gone(self)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is over its high-water mark.

        Every caller waits on the same future, so any number of concurrent calls are all
        released when the buffer drains (or the connection is lost).
        """
        if self._write_paused and not self.lost:
            if self._drain is None or self._drain.done():
                self._drain = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._drain)

    def data_received(self, data: bytes) -> None:
        try:
            self.unpacker.feed(data)
            for msg in self.unpacker:
                self.handle(msg)
        except (FrameError, ValueError, msgpack.UnpackException, msgpack.BufferFull) as exc:
            log.warning("conn.protocol_error", endpoint=str(self.endpoint), reason=str(exc))
            if self.transport is not None:
                self.transport.abort()

    def handle(self, msg: object) -> None:
        if type(msg) is not list or not msg:
            raise FrameError("frame is not a non-empty array")
        if msg[0] == RESPONSE:
            msgid, error, result = check_response(msg)
            st = self.streams.pop(msgid, None)
            if st is not None:
                st.done = True
                st.result = result
                st.error = None if error is None else RPCError.from_wire(error)
                st.wake()
                return
            fut = self.pending.pop(msgid, None)
            if fut is None or fut.done():
                return  # the caller timed out or cancelled; the late answer is dropped
            if error is None:
                fut.set_result(result)
            else:
                fut.set_exception(RPCError.from_wire(error))
        elif msg[0] == NOTIFICATION:
            method, params = check_notification(msg)
            if method == STREAM_ITEM and len(params) == 2 and type(params[0]) is int:
                stream = self.streams.get(params[0])
                if stream is not None:
                    stream.items.append(params[1])
                    stream.wake()
                    if (
                        len(stream.items) >= self.client.options.stream_high_water
                        and not self.reading_paused
                        and self.transport is not None
                    ):
                        self.reading_paused = True
                        self.transport.pause_reading()
            else:
                self.client._notification(method, params)
        else:
            raise FrameError(f"unexpected message type {msg[0]!r} from a server")

    def maybe_resume(self) -> None:
        if not self.reading_paused or self.transport is None or self.lost:
            return
        low = self.client.options.stream_high_water // 2
        if all(len(st.items) <= low for st in self.streams.values()):
            self.reading_paused = False
            self.transport.resume_reading()

    def send(self, frame: bytes) -> None:
        if self.transport is None or self.lost:
            raise RPCError(errors.CONNECTION_LOST, f"not connected to {self.endpoint}")
        self.transport.write(frame)


class RPCClient:
    """A client of one service reachable at one or more endpoints."""

    def __init__(
        self,
        endpoints: str | Endpoint | Sequence[str | Endpoint],
        *,
        tls: TLSConfig | None = None,
        options: ClientOptions | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if isinstance(endpoints, (str, Endpoint)):
            endpoints = [endpoints]
        self.endpoints = [parse_endpoint(e) if isinstance(e, str) else e for e in endpoints]
        if not self.endpoints:
            raise ValueError("a client needs at least one endpoint")
        self.tls = tls
        self.options = options or ClientOptions()
        self._rng = rng or random.Random()
        self._conn: _ClientConnection | None = None
        self._connecting: asyncio.Task[_ClientConnection] | None = None
        self._next_id = 0
        self._preferred = 0
        self._closed = False
        self._ever_connected = False
        self.reconnects = 0
        self.notifications: asyncio.Queue[tuple[str, list[object]]] | None = None

    @property
    def connected_endpoint(self) -> Endpoint | None:
        return self._conn.endpoint if self._conn is not None and not self._conn.lost else None

    # -- connection management --------------------------------------------------------
    async def connect(self) -> Endpoint:
        conn = await self._connection()
        return conn.endpoint

    async def _connection(self) -> _ClientConnection:
        if self._closed:
            raise RPCError(errors.UNAVAILABLE, "client is closed")
        conn = self._conn
        if conn is not None and not conn.lost:
            return conn
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.get_running_loop().create_task(self._dial())
        return await asyncio.shield(self._connecting)

    async def _dial(self) -> _ClientConnection:
        opts = self.options
        loop = asyncio.get_running_loop()
        deadline = loop.time() + opts.connect_deadline
        delay = opts.backoff_initial
        failures: dict[str, str] = {}
        n = len(self.endpoints)
        while True:
            for i in range(n):
                index = (self._preferred + i) % n
                ep = self.endpoints[index]
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    conn = await asyncio.wait_for(
                        self._open(ep), timeout=min(opts.connect_timeout, remaining)
                    )
                except (OSError, TimeoutError) as exc:
                    failures[str(ep)] = str(exc) or type(exc).__name__
                    continue
                if self._ever_connected:
                    self.reconnects += 1
                self._ever_connected = True
                self._preferred = index
                self._conn = conn
                return conn
            remaining = deadline - loop.time()
            if remaining <= 0:
                detail = "; ".join(f"{k}: {v}" for k, v in failures.items())
                raise RPCError(errors.UNAVAILABLE, f"no endpoint reachable ({detail})")
            # Jittered exponential back-off so that many clients do not retry in step.
            await asyncio.sleep(min(delay * (0.5 + self._rng.random()), remaining))
            delay = min(delay * 2, opts.backoff_max)

    async def _open(self, ep: Endpoint) -> _ClientConnection:
        loop = asyncio.get_running_loop()
        conn = _ClientConnection(self, ep)
        if ep.scheme == "unix":
            await loop.create_unix_connection(lambda: conn, ep.path)
        else:
            ssl_ctx = None
            server_hostname = None
            if ep.scheme == "tls":
                tls = self.tls or TLSConfig()
                ssl_ctx = tls.client_context()
                server_hostname = tls.server_hostname or ep.host
            await loop.create_connection(
                lambda: conn, ep.host, ep.port, ssl=ssl_ctx, server_hostname=server_hostname
            )
        return conn

    def _connection_gone(self, conn: _ClientConnection) -> None:
        if self._conn is conn:
            self._conn = None

    def _notification(self, method: str, params: list[object]) -> None:
        if self.notifications is not None:
            with contextlib.suppress(asyncio.QueueFull):
                self.notifications.put_nowait((method, params))

    def _msgid(self) -> int:
        self._next_id = (self._next_id + 1) & 0xFFFFFFFF
        return self._next_id

    # -- calls --------------------------------------------------------------------------
    async def call(
        self, method: str, *params: object, timeout: float | None = None, idempotent: bool = False
    ) -> object:
        """Call `method` and return its result; raises RPCError (with ``timeout`` on expiry)."""
        limit = self.options.timeout if timeout is None else timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while True:
            try:
                return await self._call_once(method, params, deadline)
            except RPCError as exc:
                retryable = exc.code in (errors.CONNECTION_LOST, errors.UNAVAILABLE)
                if not (idempotent and retryable) or loop.time() >= deadline or self._closed:
                    raise

    async def _call_once(self, method: str, params: tuple[object, ...], deadline: float) -> object:
        loop = asyncio.get_running_loop()
        conn = self._conn
        if conn is None or conn.lost or self._closed:
            # Only (re)connecting needs a task; a live connection is used on the caller's stack,
            # so the request is on the wire before the first await.
            remaining = deadline - loop.time()
            try:
                conn = await asyncio.wait_for(self._connection(), timeout=max(remaining, 0.001))
            except TimeoutError:
                raise RPCError(
                    errors.TIMEOUT, f"{method}: not connected within the timeout"
                ) from None
        msgid = self._msgid()
        fut: asyncio.Future[object] = loop.create_future()
        conn.pending[msgid] = fut
        try:
            conn.send(conn.packer.pack([REQUEST, msgid, method, list(params)]))
        except (TypeError, ValueError, OverflowError) as exc:
            conn.pending.pop(msgid, None)
            conn.packer.reset()
            raise RPCError(
                errors.INVALID_PARAMS, f"{method}: params not serialisable: {exc}"
            ) from exc
        try:
            # Back-pressure and the answer share the call's one deadline (asyncio.timeout:
            # a timer, not a task per wait).
            async with asyncio.timeout_at(deadline):
                if conn._write_paused:
                    await conn.drain()
                return await fut
        except TimeoutError:
            conn.pending.pop(msgid, None)
            raise RPCError(errors.TIMEOUT, f"{method}: no answer within the timeout") from None
        finally:
            conn.pending.pop(msgid, None)

    async def notify(self, method: str, *params: object) -> None:
        conn = await self._connection()
        conn.send(conn.packer.pack([NOTIFICATION, method, list(params)]))

    @contextlib.asynccontextmanager
    async def stream(self, method: str, *params: object) -> AsyncIterator[Subscription]:
        """Open a server-push stream; iterate the yielded Subscription for its items."""
        conn = await self._connection()
        msgid = self._msgid()
        state = _StreamState()
        conn.streams[msgid] = state
        conn.send(conn.packer.pack([REQUEST, msgid, method, list(params)]))
        sub = Subscription(conn, msgid, state)
        try:
            yield sub
        finally:
            if not state.done and not conn.lost:
                conn.streams.pop(msgid, None)
                with contextlib.suppress(RPCError):
                    conn.send(conn.packer.pack([NOTIFICATION, CANCEL, [msgid]]))

    async def close(self) -> None:
        self._closed = True
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(BaseException):
                await self._connecting
        conn = self._conn
        self._conn = None
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    async def __aenter__(self) -> RPCClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class Subscription:
    """The client side of a stream: ``async for item in sub``; `result` once it ended."""

    def __init__(self, conn: _ClientConnection, msgid: int, state: _StreamState) -> None:
        self._conn = conn
        self.msgid = msgid
        self._state = state

    @property
    def result(self) -> object:
        return self._state.result

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> object:
        st = self._state
        while not st.items:
            if st.done:
                if st.error is not None:
                    raise st.error
                raise StopAsyncIteration
            st.waiter = asyncio.get_running_loop().create_future()
            await st.waiter
            st.waiter = None
        item = st.items.popleft()
        if self._conn.reading_paused:
            self._conn.maybe_resume()
        return item

    async def next(self, timeout: float) -> object:
        """The next item, or RPCError(timeout) if none arrives in time."""
        try:
            return await asyncio.wait_for(self.__anext__(), timeout)
        except TimeoutError:
            raise RPCError(errors.TIMEOUT, "no stream item within the timeout") from None
