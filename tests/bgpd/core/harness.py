"""Two `PeerCore`s over a fake transport and a fake clock: no sockets, no sleeps.

`Net.advance(seconds)` moves the clock from timer to timer, pumping effects between the two
peers in FIFO order. Outgoing connections complete in batches (all `tcp_connected`, then all
`accept`), which is how crossing SYNs produce a §6.8 collision.
"""

from __future__ import annotations

from collections import deque

from bgpd.core.effects import (
    Connect,
    Disconnect,
    Effect,
    Received,
    SessionDown,
    SessionUp,
    Transmit,
)
from bgpd.core.events import State
from bgpd.core.fsm import Session
from bgpd.core.negotiation import SessionParams
from bgpd.core.peer import PeerCore

CLOSE = b""


def params(
    local_id: int, local_as: int = 65000, remote_as: int = 65000, **kw: object
) -> SessionParams:
    return SessionParams(local_as=local_as, remote_as=remote_as, local_id=local_id, **kw)  # type: ignore[arg-type]


class Net:
    def __init__(self, a: PeerCore, b: PeerCore) -> None:
        self.now = 0.0
        self.a, self.b = a, b
        self.link: dict[Session, tuple[PeerCore, Session]] = {}
        self.unlinked: dict[Session, list[bytes]] = {}
        self.wire: deque[tuple[PeerCore, Session, bytes]] = deque()
        self.connecting: list[tuple[PeerCore, Session]] = []
        self.events: dict[str, list[tuple[float, Effect]]] = {"a": [], "b": []}
        self.blackhole = False
        self.refuse = False

    def other(self, core: PeerCore) -> PeerCore:
        return self.b if core is self.a else self.a

    def _effects(self, core: PeerCore) -> bool:
        effects = core.take_effects()
        tag = "a" if core is self.a else "b"
        for session, e in effects:
            self.events[tag].append((self.now, e))
            if isinstance(e, Transmit):
                end = self.link.get(session)
                if end is None:
                    self.unlinked.setdefault(session, []).append(e.data)
                elif not self.blackhole:
                    self.wire.append((end[0], end[1], e.data))
            elif isinstance(e, Connect):
                self.connecting.append((core, session))
            elif isinstance(e, Disconnect):
                end = self.link.pop(session, None)
                self.unlinked.pop(session, None)
                if end is not None:
                    self.link.pop(end[1], None)
                    self.wire.append((end[0], end[1], CLOSE))
        return bool(effects)

    def _connect_all(self) -> None:
        batch, self.connecting = self.connecting, []
        accepted: list[tuple[PeerCore, Session]] = []
        for core, s in batch:
            if s.connected or s not in core.sessions():
                continue  # the attempt was overtaken by an inbound connection
            if self.refuse or self.other(core).primary.state in (State.IDLE, State.ESTABLISHED):
                # A connection refused: the SYN is answered by RST, nothing was connected.
                core.tcp_failed(s, self.now, "connection refused", outbound_attempt=True)
                continue
            core.tcp_connected(s, self.now)
            accepted.append((core, s))
        for core, s in accepted:
            dst = self.other(core)
            t = None if self.refuse else dst.accept(self.now)
            if t is None:
                self.unlinked.pop(s, None)
                core.tcp_failed(s, self.now, "connection refused")
                continue
            self.link[s] = (dst, t)
            self.link[t] = (core, s)
            for data in self.unlinked.pop(s, []):
                self.wire.append((dst, t, data))
            for data in self.unlinked.pop(t, []):
                self.wire.append((core, s, data))

    def pump(self) -> None:
        for _ in range(100_000):
            moved = self._effects(self.a) | self._effects(self.b)
            if self.connecting:
                self._connect_all()
                moved = True
            if self.wire:
                core, s, data = self.wire.popleft()
                if s in core.sessions():
                    if data == CLOSE:
                        core.tcp_failed(s, self.now)
                    else:
                        core.receive_data(s, data, self.now)
                moved = True
            if not moved:
                return
        raise AssertionError("pump did not settle")

    def advance(self, seconds: float) -> None:
        until = self.now + seconds
        self.pump()
        for _ in range(100_000):
            times = [t for c in (self.a, self.b) if (t := c.get_timer()) is not None]
            nxt = min(times, default=None)
            if nxt is None or nxt > until:
                self.now = until
                return
            self.now = max(self.now, nxt)
            self.a.handle_timer(self.now)
            self.b.handle_timer(self.now)
            self.pump()
        raise AssertionError("timers did not settle")

    def count(self, tag: str, kind: type) -> int:
        return sum(1 for _, e in self.events[tag] if isinstance(e, kind))

    def downs(self, tag: str) -> list[SessionDown]:
        return [e for _, e in self.events[tag] if isinstance(e, SessionDown)]

    def ups(self, tag: str) -> int:
        return self.count(tag, SessionUp)

    def received(self, tag: str) -> list[Received]:
        return [e for _, e in self.events[tag] if isinstance(e, Received)]


def pair(pa: SessionParams, pb: SessionParams) -> tuple[Net, PeerCore, PeerCore]:
    a, b = PeerCore(pa, "a"), PeerCore(pb, "b")
    return Net(a, b), a, b
