"""A minimal BGP client speaker on Tabby's codec, for the fuzzer and monitor roles.

Not a BGP implementation: it opens one TCP connection from a chosen 127.0.0.x address,
exchanges OPEN/KEEPALIVE (RFC 4271 §8: Connect → OpenSent → OpenConfirm → Established),
answers with KEEPALIVEs every hold_time/3 (§10), records every NOTIFICATION, and keeps an
Adj-RIB-In of IPv4 unicast routes (with the raw attribute flags the target sent, so the
verdict can see the Partial bit). It sends whatever bytes it is given, malformed or not.

Invariant: anything the target sends that Tabby's codec cannot decode is kept in
`undecodable` (a finding about the target, not a harness error).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from itertools import pairwise

from bgpd.fuzz.verdict import Route
from bgpd.wire import (
    BGPError,
    Framer,
    Keepalive,
    Notification,
    Open,
    Update,
    WireContext,
    decode_message,
    encode_message,
    negotiate,
)
from bgpd.wire.capabilities import AddPath, Capability, Multiprotocol, RouteRefreshCapability
from bgpd.wire.context import IPV4_UNICAST, IPV6_UNICAST

Prefix = bytes


class HarnessError(Exception):
    """The harness could not bring a session up (not a finding about the target)."""


def raw_flags(frame: bytes) -> dict[int, int]:
    """Flags of each path attribute of an UPDATE frame as sent (RFC 4271 §4.3)."""
    out: dict[int, int] = {}
    if len(frame) < 23:
        return out
    wlen = int.from_bytes(frame[19:21], "big")
    pos = 21 + wlen
    if pos + 2 > len(frame):
        return out
    end = pos + 2 + int.from_bytes(frame[pos : pos + 2], "big")
    pos += 2
    while pos + 3 <= min(end, len(frame)):
        flags, code = frame[pos], frame[pos + 1]
        if flags & 0x10:
            if pos + 4 > len(frame):
                break
            length = int.from_bytes(frame[pos + 2 : pos + 4], "big")
            pos += 4 + length
        else:
            length = frame[pos + 2]
            pos += 3 + length
        out[code] = flags
    return out


@dataclass
class Speaker:
    """One client session toward the target."""

    target: str
    port: int
    local: str
    asn: int
    router_id: int
    four_octet_as: bool = True
    hold_time: int = 30
    route_refresh: bool = True
    ipv6: bool = False  # also negotiate IPv6 unicast (RFC 4760 §8)
    add_path: int = 0  # RFC 7911 §4 Send/Receive for IPv4 unicast: 1 receive, 2 send, 3 both
    context: WireContext = field(default_factory=WireContext)
    routes: dict[Prefix, Route] = field(default_factory=dict)
    received: int = 0  # UPDATE announcements received, for "fresh since" checks
    announced_at: dict[Prefix, int] = field(default_factory=dict)
    routes6: dict[Prefix, Route] = field(default_factory=dict)  # IPv6 unicast Adj-RIB-In
    # ADD-PATH (RFC 7911): the path identifiers held per IPv4 prefix; a prefix stays in
    # `routes` until its last path is withdrawn.
    path_ids: dict[Prefix, set[int]] = field(default_factory=dict)
    announced_at6: dict[Prefix, int] = field(default_factory=dict)
    notifications: list[Notification] = field(default_factory=list)
    undecodable: list[tuple[bytes, BGPError]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    peer_open: Open | None = None
    # Liveness (RFC 4271 §4.4, §10): loop times of what the target sent once Established.
    negotiated_hold: int = 0
    established_at: float | None = None
    ended_at: float | None = None
    keepalive_times: list[float] = field(default_factory=list)
    hold_restart_times: list[float] = field(default_factory=list)  # KEEPALIVE or UPDATE
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def _open(self) -> Open:
        caps: tuple[Capability, ...] = (Multiprotocol(*IPV4_UNICAST),)
        if self.ipv6:
            caps = (*caps, Multiprotocol(*IPV6_UNICAST))
        if self.route_refresh:
            caps = (*caps, RouteRefreshCapability())
        if self.add_path:
            caps = (*caps, AddPath(((*IPV4_UNICAST, self.add_path),)))
        if self.four_octet_as:
            return Open.build(self.asn, self.hold_time, self.router_id, caps)
        return Open(self.asn, self.hold_time, self.router_id, caps)

    async def connect(self, timeout: float = 10.0, open_bytes: bytes | None = None) -> None:
        """Connect and, unless `open_bytes` replaces our OPEN, reach Established."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.target, self.port, local_addr=(self.local, 0)),
                timeout,
            )
        except (OSError, TimeoutError) as err:
            raise HarnessError(f"connect {self.local} -> {self.target}:{self.port}: {err}") from err
        self._reader, self._writer = reader, writer
        self.context = WireContext(four_octet_as=self.four_octet_as)
        if open_bytes is not None:
            writer.write(open_bytes)
            self._tasks.append(asyncio.create_task(self._read_loop(Framer(self.context))))
            return
        writer.write(encode_message(self._open(), self.context))
        framer = Framer(self.context)
        try:
            await asyncio.wait_for(self._handshake(framer), timeout)
        except (TimeoutError, OSError, BGPError) as err:
            self.abort()
            raise HarnessError(f"no session with {self.target}:{self.port}: {err!r}") from err
        self._tasks.append(asyncio.create_task(self._read_loop(framer)))
        self._tasks.append(asyncio.create_task(self._keepalive_loop()))

    async def _handshake(self, framer: Framer) -> None:
        assert self._reader is not None and self._writer is not None
        got_open = False
        while True:
            msg = framer.next_message()
            if msg is None:
                data = await self._reader.read(65536)
                if not data:
                    raise HarnessError(
                        f"target closed during OPEN exchange ({self.notifications or 'no NOTIFICATION'})"
                    )
                try:
                    framer.feed(data)
                except BGPError as err:
                    raise HarnessError(f"target sent undecodable bytes: {err}") from err
                continue
            if isinstance(msg, Notification):
                self.notifications.append(msg)
                raise HarnessError(f"target refused the session: {msg}")
            if isinstance(msg, Open):
                self.peer_open = msg
                got_open = True
                # RFC 6793 §4 (4-octet AS_PATHs), RFC 7911 §5 (path identifiers): what both
                # sides sent.
                self.context = negotiate(self._open().capabilities, msg.capabilities)
                framer.context = self.context
                self._writer.write(encode_message(Keepalive(), self.context))
            elif isinstance(msg, Keepalive) and got_open:
                assert self.peer_open is not None
                # RFC 4271 §4.2: the smaller of the two Hold Times; 0 means no keepalives.
                self.negotiated_hold = min(self.hold_time, self.peer_open.hold_time)
                self.established_at = asyncio.get_running_loop().time()
                return

    async def _read_loop(self, framer: Framer) -> None:
        assert self._reader is not None
        data = b""
        try:
            while True:
                # Frames that came with the handshake's last read are already in the
                # framer: handle them before waiting for more bytes.
                while True:
                    try:
                        frame = framer.next_frame()
                    except BGPError as err:
                        self.undecodable.append((bytes(data[:64]), err))
                        return
                    if frame is None:
                        break
                    self._receive(frame)
                data = await self._reader.read(65536)
                if not data:
                    break
                try:
                    framer.feed(data)
                except BGPError as err:
                    self.undecodable.append((bytes(data[:64]), err))
                    return
        except OSError:
            pass
        finally:
            self._end()
            self.changed.set()

    def _receive(self, frame: bytes) -> None:
        try:
            msg = decode_message(frame, self.context)
        except BGPError as err:
            self.undecodable.append((frame, err))
            return
        if isinstance(msg, (Keepalive, Update)):
            now = asyncio.get_running_loop().time()
            self.hold_restart_times.append(now)  # RFC 4271 §8.2.2: Events 26 and 27
            if isinstance(msg, Keepalive):
                self.keepalive_times.append(now)
        if isinstance(msg, Notification):
            self.notifications.append(msg)
        elif isinstance(msg, Open):
            self.peer_open = msg
        elif isinstance(msg, Update):
            self._apply(msg, frame)
        self.changed.set()

    def _drop(self, prefixes: tuple[Prefix, ...], ids: tuple[int, ...]) -> None:
        if not ids:
            for p in prefixes:
                self.routes.pop(p, None)
                self.path_ids.pop(p, None)
            return
        for p, pid in zip(prefixes, ids, strict=False):
            held = self.path_ids.get(p)
            if held is not None:
                held.discard(pid)
            if not held:
                self.routes.pop(p, None)
                self.path_ids.pop(p, None)

    def _apply(self, msg: Update, frame: bytes) -> None:
        self._drop(msg.withdrawn, msg.withdrawn_path_ids)
        un = msg.mp_unreach
        if un is not None and (un.afi, un.safi) == IPV6_UNICAST:
            for p in un.withdrawn:
                self.routes6.pop(p, None)
        reach = msg.mp_reach
        if reach is not None and (reach.afi, reach.safi) != IPV6_UNICAST:
            reach = None
        if msg.treat_as_withdraw or msg.attributes is None:
            self._drop(msg.nlri, msg.nlri_path_ids)
            for p in reach.nlri if reach is not None else ():
                self.routes6.pop(p, None)
            return
        route = Route(msg.attributes, raw_flags(frame), reach.next_hop if reach else b"")
        self.received += 1
        for p in msg.nlri:
            self.routes[p] = route
            self.announced_at[p] = self.received
        for p, pid in zip(msg.nlri, msg.nlri_path_ids, strict=False):
            self.path_ids.setdefault(p, set()).add(pid)
        for p in reach.nlri if reach is not None else ():
            self.routes6[p] = route
            self.announced_at6[p] = self.received

    async def _keepalive_loop(self) -> None:
        if self.negotiated_hold == 0:
            return  # RFC 4271 §4.4: with a zero Hold Time no KEEPALIVEs are sent
        interval = max(self.negotiated_hold / 3, 0.5)
        while not self.closed.is_set():
            await asyncio.sleep(interval)
            self.send(encode_message(Keepalive(), self.context))

    def send(self, data: bytes) -> None:
        if self._writer is not None and not self.closed.is_set():
            with contextlib.suppress(OSError, RuntimeError):
                self._writer.write(data)

    async def wait_for(self, cond: object, timeout: float) -> bool:
        """Wait until `cond()` holds or the session closes; True if it holds."""
        assert callable(cond)
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while True:
            if cond():
                return True
            left = end - loop.time()
            if left <= 0 or self.closed.is_set():
                return bool(cond())
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    def _end(self) -> None:
        if self.ended_at is None:
            with contextlib.suppress(RuntimeError):
                self.ended_at = asyncio.get_running_loop().time()
        self.closed.set()

    def gaps(self, now: float) -> tuple[float, float] | None:
        """The longest silences of the target on this session once Established: between
        KEEPALIVEs, and between messages that restart the hold timer (KEEPALIVE or UPDATE),
        each counted from Established to the session's end (or `now`). None when no hold
        time was negotiated (RFC 4271 §4.2: zero means no keepalives at all)."""
        if self.established_at is None or self.negotiated_hold == 0:
            return None
        end = self.ended_at if self.ended_at is not None else now

        def widest(times: list[float]) -> float:
            marks = [self.established_at or 0.0, *(t for t in times if t <= end), end]
            return max(b - a for a, b in pairwise(marks))

        return widest(self.keepalive_times), widest(self.hold_restart_times)

    def abort(self) -> None:
        for t in self._tasks:
            t.cancel()
        self._tasks.clear()
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.transport.abort()
        self._end()

    async def close(self) -> None:
        tasks = list(self._tasks)
        self.abort()
        await asyncio.gather(*tasks, return_exceptions=True)
