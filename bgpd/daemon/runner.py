"""`PeerRunner`: the asyncio task that owns one peer's `PeerCore` (one owner per core).

Everything that touches the core goes through the runner's inbox, in order: bytes read from a
connection, a connection made, accepted or lost, a dial that failed, and commands from the
control API. The task consumes the inbox in bounded slices (`SLICE` octets of BGP input per
turn) and yields to the event loop between slices, and it checks the core's timer before every
slice, so keepalives and hold-timer expiry are never delayed by a peer flooding UPDATEs
(the failure ExaBGP issues #533 and #652 describe). Input is bounded per peer: above
`HIGH_WATER` buffered octets the connections stop reading (TCP backpressure reaches the peer),
below `LOW_WATER` they read again.

The shell re-arms exactly one timer per peer: `loop.call_at(core.get_timer(), wake)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from bgpd.core.effects import (
    Connect,
    Disconnect,
    DownKind,
    DownReason,
    Effect,
    Received,
    RefreshRequested,
    SessionDown,
    SessionUp,
    Transmit,
)
from bgpd.core.events import State
from bgpd.core.fsm import Session
from bgpd.core.peer import PeerCore
from bgpd.daemon.config import PeerConfig
from bgpd.daemon.sink import PeerInfo, RouteSink
from bgpd.daemon.sockets import connecting_socket, set_min_ttl
from bgpd.wire.codec import encode_message
from bgpd.wire.context import DEFAULT, WireContext
from bgpd.wire.errors import CEASE, CONNECTION_REJECTED
from bgpd.wire.messages import REFRESH_BORR, REFRESH_EORR, Notification, Update
from runtime.log import get_logger

if TYPE_CHECKING:
    from bgpd.core.negotiation import SessionParams

log = get_logger("bgpd")

SLICE = 16 * 1024
HIGH_WATER = 1 << 20
LOW_WATER = 256 * 1024


class Connection(asyncio.Protocol):
    """One TCP connection; forwards everything to its runner's inbox."""

    def __init__(
        self,
        runner: PeerRunner | None,
        session: Session | None = None,
        on_made: Callable[[Connection], None] | None = None,
    ) -> None:
        self.runner = runner
        self.session = session
        self.on_made = on_made
        self.transport: asyncio.Transport | None = None
        self.peer_address = ""
        self.local_address = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop transports implement asyncio.Transport without subclassing it.
        transport = cast("asyncio.Transport", transport)
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("", 0)
        local = transport.get_extra_info("sockname") or ("", 0)
        self.peer_address, self.local_address = str(peer[0]), str(local[0])
        # A dual-stack listener reports IPv4 peers as IPv4-mapped IPv6 addresses.
        if self.peer_address.startswith("::ffff:"):
            self.peer_address = self.peer_address[7:]
        if self.local_address.startswith("::ffff:"):
            self.local_address = self.local_address[7:]
        if self.runner is not None and self.session is not None:
            self.runner.post(("dialed", self.session, self))
        elif self.on_made is not None:
            self.on_made(self)

    def data_received(self, data: bytes) -> None:
        if self.runner is not None:
            self.runner.post_data(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.runner is not None:
            self.runner.post(("lost", self, str(exc) if exc else ""))

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class _Sender:
    """The Established session as an `UpdateSender` for the sink.

    The sink often writes to a session while handling another peer's event (a route learned
    from one peer re-advertised to the others). `wake` makes the owning runner apply those
    effects on the next loop turn, instead of when its own peer next sends something.
    """

    def __init__(self, session: Session, wake: Callable[[], None] | None = None) -> None:
        self.session = session
        self.wake = wake

    @property
    def context(self) -> WireContext:
        return self.session.framer.context

    def send_update(self, update: Update) -> None:
        # Effects are applied after the whole input slice, so the session may have gone down
        # since the event the sink is answering; what it sends then has nowhere to go.
        if self.session.state is State.ESTABLISHED:
            self.session.send_update(update)
            if self.wake is not None:
                self.wake()

    def send_encoded(self, data: bytes) -> None:
        if self.session.state is State.ESTABLISHED:
            self.session.send_encoded(data)
            if self.wake is not None:
                self.wake()

    def send_route_refresh(self, afi: int, safi: int, subtype: int = 0) -> bool:
        """Ask the peer to re-send a family (RFC 2918), or with subtype 1/2 send BoRR/EoRR
        (RFC 7313); False if the peer did not negotiate that."""
        sent = self.session.send_route_refresh(afi, safi, subtype)
        if sent and self.wake is not None:
            self.wake()
        return sent


Item = tuple[object, ...]


class PeerRunner:
    def __init__(
        self, config: PeerConfig, params: SessionParams, local_as: int, sink: RouteSink
    ) -> None:
        self.config = config
        self.local_as = local_as
        self.sink = sink
        self.core = PeerCore(params, config.display_name)
        self.conns: dict[Session, Connection] = {}
        self.dialing: dict[Session, asyncio.Task[None]] = {}
        self.inbox: deque[Item] = deque()
        self.buffered = 0
        self.paused: set[Connection] = set()
        self.wake = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self._apply_pending = False
        self.task: asyncio.Task[None] | None = None
        self.state = State.IDLE
        self.since = time.time()
        self.established_since: float | None = None
        self.local_address = config.local_address
        self.rejected = 0
        self.pauses = 0  # times backpressure stopped reading
        self.last_down: DownReason | None = None  # why the last Established session ended
        self.updates_received = 0

    @property
    def info(self) -> PeerInfo:
        c = self.config
        return PeerInfo(
            key=c.key,
            name=c.display_name,
            peer_type=c.peer_type,
            local_as=self.local_as,
            remote_as=c.remote_as,
            local_address=self.local_address or "0.0.0.0",
            rr_client=c.rr_client,
            next_hop=c.next_hop,
            mrai=c.mrai,
        )

    # --- life cycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.task = self.loop.create_task(
            self._guarded(), name=f"bgp-peer-{self.config.display_name}"
        )
        self.post(("call", self.core.start, None))

    async def _guarded(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug in the core must be loud; `Speaker.healthy` turns false and the watchdog
            # stops, so systemd restarts the daemon.
            log.exception("peer.task_failed", peer=self.config.display_name, error=str(exc))
            raise

    async def call(self, fn: Callable[[float], object]) -> object:
        """Run `fn(now)` inside the owning task; returns its result."""
        fut: asyncio.Future[object] = self.loop.create_future()
        self.post(("call", fn, fut))
        return await fut

    async def close(self, notification: Notification | None, kind: DownKind) -> None:
        """Stop the peer (sending `notification`), flush, and end the task. With None the
        connections are closed without a NOTIFICATION: a peer with Graceful Restart then keeps
        our routes as stale (RFC 4724 §4.2), as for a crash."""
        if notification is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.call(lambda now: self.core.stop(now, notification, kind)), 2.0
                )
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        for task in self.dialing.values():
            task.cancel()
        for conn in list(self.conns.values()):
            conn.runner = None
            conn.close()
        self.conns.clear()

    # --- inbox --------------------------------------------------------------------------------
    def post(self, item: Item) -> None:
        self.inbox.append(item)
        self.wake.set()

    def post_data(self, conn: Connection, data: bytes) -> None:
        self.inbox.append(("data", conn, data))
        self.buffered += len(data)
        if self.buffered > HIGH_WATER and conn not in self.paused and conn.transport is not None:
            # Backpressure: stop reading; TCP's window closes toward the peer.
            conn.transport.pause_reading()
            self.paused.add(conn)
            self.pauses += 1
        self.wake.set()

    def accept(self, conn: Connection) -> None:
        conn.runner = self
        self.post(("accept", conn))

    # --- the owning task ----------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            self._timers()
            budget = SLICE
            while self.inbox and budget > 0:
                item = self.inbox.popleft()
                if item[0] == "data":
                    _, conn, data = item
                    assert isinstance(conn, Connection) and isinstance(data, bytes)
                    if len(data) > budget:
                        self.inbox.appendleft(("data", conn, data[budget:]))
                        data = data[:budget]
                    budget -= len(data)
                    self.buffered -= len(data)
                    s = conn.session
                    if s is not None and self.conns.get(s) is conn:
                        self.core.receive_data(s, data, self.loop.time())
                else:
                    self._handle(item)
                self._apply()
                self._timers()
            if self.paused and self.buffered < LOW_WATER:
                for conn in self.paused:
                    if conn.transport is not None and not conn.transport.is_closing():
                        conn.transport.resume_reading()
                self.paused.clear()
            if self.inbox:
                await asyncio.sleep(0)  # a slice is done: let the other peers and timers run
                continue
            self.wake.clear()
            deadline = self.core.get_timer()
            handle = None if deadline is None else self.loop.call_at(deadline, self.wake.set)
            try:
                await self.wake.wait()
            finally:
                if handle is not None:
                    handle.cancel()

    def _timers(self) -> None:
        deadline = self.core.get_timer()
        now = self.loop.time()
        if deadline is not None and deadline <= now:
            self.core.handle_timer(now)
            self._apply()

    def _handle(self, item: Item) -> None:
        now = self.loop.time()
        kind = item[0]
        if kind == "call":
            _, fn, fut = item
            assert callable(fn)
            try:
                result = fn(now)
            except Exception as exc:
                if isinstance(fut, asyncio.Future) and not fut.done():
                    fut.set_exception(exc)
            else:
                if isinstance(fut, asyncio.Future) and not fut.done():
                    fut.set_result(result)
        elif kind == "accept":
            conn = item[1]
            assert isinstance(conn, Connection)
            session = self.core.accept(now)
            if session is None:
                # RFC 4486 §4: Cease / Connection Rejected, then close.
                self.rejected += 1
                conn.write(encode_message(Notification(CEASE, CONNECTION_REJECTED), DEFAULT))
                conn.runner = None
                conn.close()
                log.info(
                    "peer.connection_rejected",
                    peer=self.config.display_name,
                    state=self.core.state.value,
                )
                return
            dial = self.dialing.pop(session, None)
            if dial is not None:
                dial.cancel()  # the inbound connection overtook our own attempt
            conn.session = session
            self.conns[session] = conn
            self.local_address = self.config.local_address or conn.local_address
        elif kind == "dialed":
            _, dsession, dconn = item
            assert isinstance(dsession, Session) and isinstance(dconn, Connection)
            self.dialing.pop(dsession, None)
            if (
                dsession not in self.core.sessions()
                or dsession.connected
                or dsession.state
                not in (
                    State.CONNECT,
                    State.ACTIVE,
                )
            ):
                dconn.runner = None
                dconn.close()
                return
            self.conns[dsession] = dconn
            self.local_address = self.config.local_address or dconn.local_address
            self.core.tcp_connected(dsession, now)
        elif kind == "dial_failed":
            _, fsession, reason = item
            assert isinstance(fsession, Session) and isinstance(reason, str)
            self.dialing.pop(fsession, None)
            if fsession in self.core.sessions() and not fsession.connected:
                self.core.tcp_failed(fsession, now, reason, outbound_attempt=True)
        elif kind == "lost":
            _, conn, reason = item
            assert isinstance(conn, Connection) and isinstance(reason, str)
            self.paused.discard(conn)
            s = conn.session
            if s is not None and self.conns.get(s) is conn:
                del self.conns[s]
                self.core.tcp_failed(s, now, reason)

    def schedule_apply(self) -> None:
        """Apply queued effects on the next loop turn (coalesced): output the sink queued on
        this session from another peer's task goes out now."""
        if not self._apply_pending:
            self._apply_pending = True
            self.loop.call_soon(self._scheduled_apply)

    def _scheduled_apply(self) -> None:
        self._apply_pending = False
        self._apply()

    def _apply(self) -> None:
        for _ in range(64):
            effects = self.core.take_effects()
            if not effects:
                break
            for session, e in effects:
                try:
                    self._effect(session, e)
                except Exception as exc:
                    # A faulty sink must not take the session task (and its timers) down.
                    log.exception("peer.sink_failed", peer=self.config.display_name, error=str(exc))
        if self.core.state is not self.state:
            log.info(
                "peer.state",
                peer=self.config.display_name,
                old=self.state.value,
                new=self.core.state.value,
            )
            self.state = self.core.state
            self.since = time.time()

    def _effect(self, session: Session, e: Effect) -> None:
        if isinstance(e, Transmit):
            conn = self.conns.get(session)
            if conn is not None:
                conn.write(e.data)
        elif isinstance(e, Received):
            self.updates_received += 1
            self.sink.on_update(self.info, e.update)
        elif isinstance(e, Connect):
            self._dial(session)
        elif isinstance(e, Disconnect):
            conn = self.conns.pop(session, None)
            if conn is not None:
                conn.runner = None
                self.paused.discard(conn)
                conn.close()
            dial = self.dialing.pop(session, None)
            if dial is not None:
                dial.cancel()
        elif isinstance(e, SessionUp):
            neg = session.negotiated
            assert neg is not None
            self.established_since = time.time()
            log.info(
                "peer.established",
                peer=self.config.display_name,
                hold_time=neg.hold_time,
                capabilities=",".join(neg.capability_names()),
            )
            self.sink.on_session_up(self.info, neg, _Sender(session, self.schedule_apply))
        elif isinstance(e, SessionDown):
            self.established_since = None
            self.last_down = e.reason
            log.info("peer.down", peer=self.config.display_name, reason=e.reason.describe())
            self.sink.on_session_down(self.info, e.reason)
        elif isinstance(e, RefreshRequested):
            if e.subtype == REFRESH_BORR:
                self.sink.on_refresh_begin(self.info, e.afi, e.safi)
            elif e.subtype == REFRESH_EORR:
                self.sink.on_refresh_end(self.info, e.afi, e.safi)
            else:
                self.sink.on_route_refresh(
                    self.info, e.afi, e.safi, _Sender(session, self.schedule_apply)
                )

    def _dial(self, session: Session) -> None:
        old = self.dialing.pop(session, None)
        if old is not None:
            old.cancel()
        self.dialing[session] = self.loop.create_task(self._connect(session))

    async def _connect(self, session: Session) -> None:
        c = self.config
        sock = None
        try:
            sock = connecting_socket(c.address, c.local_address, c.password, c.ttl_security)
            # Give up a little before ConnectRetry fires, so the failure is recorded as the reason.
            limit = c.connect_retry_time * 0.9
            await asyncio.wait_for(self.loop.sock_connect(sock, (c.address, c.port)), limit)
            if c.ttl_security:
                set_min_ttl(sock)  # RFC 5082 §3: from now on only TTL 255 gets through
            await self.loop.create_connection(lambda: Connection(self, session), sock=sock)
        except asyncio.CancelledError:
            if sock is not None:
                sock.close()
            raise
        except (OSError, TimeoutError) as exc:
            if sock is not None:
                sock.close()
            if isinstance(exc, TimeoutError):
                reason = "connection timed out"
            elif exc.errno:
                reason = os.strerror(exc.errno).lower()
            else:
                reason = exc.strerror or type(exc).__name__
            self.post(("dial_failed", session, reason.lower() if reason else "error"))
