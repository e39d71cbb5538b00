"""The connections of one peer: connection collision detection (RFC 4271 §6.8, RFC 6286 §2.3).

`PeerCore` owns the peer's main `Session` and, while that session is in OpenSent or
OpenConfirm, at most one more session for a connection the peer opened toward us. When either
receives an OPEN, `resolve_collision` decides which connection survives; the loser sends a
Cease / Connection Collision Resolution NOTIFICATION (OpenCollisionDump, Event 23) and is
discarded, and a surviving second session becomes the main one.

Also here: the Calico mesh convention (`mesh_passive`): a node is passive toward every peer whose
address compares greater than its own as text, so of each pair only the greater address connects.

Invariants: at most two sessions per peer; the second one exists only while the main one is
in OpenSent/OpenConfirm; a connection is never accepted in Idle or Established.
"""

from __future__ import annotations

from bgpd.core.effects import DownKind, Effect
from bgpd.core.events import Event, State
from bgpd.core.fsm import Session
from bgpd.core.negotiation import SessionParams
from bgpd.core.reload import Apply
from bgpd.wire.errors import CEASE, OTHER_CONFIGURATION_CHANGE
from bgpd.wire.messages import Notification, Open


def mesh_passive(local_address: str, peer_address: str) -> bool:
    """Calico: passive toward a peer whose address string is greater than ours."""
    return peer_address > local_address


def resolve_collision(local_id: int, local_as: int, remote_id: int, remote_as: int) -> bool:
    """True if the connection the peer initiated survives (RFC 4271 §6.8, RFC 6286 §2.3).

    The connection initiated by the speaker with the higher BGP Identifier is kept; with equal
    Identifiers (possible only in eBGP) the one initiated by the larger AS number.
    """
    if local_id != remote_id:
        return local_id < remote_id
    return local_as < remote_as


class PeerCore:
    """One peer's sessions; the shell calls it and drains `take_effects()`."""

    def __init__(self, params: SessionParams, name: str = "") -> None:
        self.params = params
        self.name = name
        self.primary = self._new_session()
        self.secondary: Session | None = None
        self.collisions = 0
        self._loser: Session | None = None
        self._pending: list[tuple[Session, Effect]] = []

    def _new_session(self) -> Session:
        s = Session(self.params, self.name)
        s.on_open = self._collision
        return s

    def set_params(self, params: SessionParams) -> None:
        """New settings; the OPEN is rebuilt on the next start, so callers that change what
        the OPEN carries must also reset the session (see `bgpd.core.reload`)."""
        self.params = params
        for s in self.sessions():
            s.params = params

    def reconfigure(self, params: SessionParams, how: Apply, now: float) -> bool:
        """Apply new settings per the reload matrix (`bgpd.core.reload`).

        HOT and SOFT keep the session (SOFT's re-send of the Adj-RIB-Out is the caller's);
        RESET closes it with Cease / Other Configuration Change (RFC 4486) and restarts it with
        the new OPEN. Returns True if the session was reset.
        """
        self.set_params(params)
        if how is not Apply.RESET:
            return False
        if not self.primary.auto_restart and self.state is State.IDLE:
            return False  # administratively down: the new settings apply at the next start
        self.stop(
            now,
            Notification(CEASE, OTHER_CONFIGURATION_CHANGE),
            DownKind.CONFIG_CHANGED,
            restart=True,
        )
        return True

    def sessions(self) -> list[Session]:
        return [self.primary] if self.secondary is None else [self.primary, self.secondary]

    @property
    def state(self) -> State:
        return self.primary.state

    # --- calls from the shell ---------------------------------------------------------------------
    def start(self, now: float) -> None:
        self.primary.start(now)
        self._reap()

    def stop(
        self,
        now: float,
        notification: Notification | None = None,
        kind: DownKind = DownKind.ADMIN_DOWN,
        restart: bool = False,
        graceful: bool = False,
    ) -> None:
        if self.secondary is not None:
            self.secondary.stop(now, notification, kind)
            self._drop_secondary()
        self.primary.stop(now, notification, kind, restart, graceful)
        self._reap()

    def accept(self, now: float) -> Session | None:
        """A connection from the peer arrived; the session that takes it, or None to refuse."""
        p = self.primary
        taken: Session | None = None
        if p.state in (State.CONNECT, State.ACTIVE):
            p.tcp_connected(now, outbound=False)
            taken = p
        elif p.state in (State.OPEN_SENT, State.OPEN_CONFIRM) and self.secondary is None:
            # §6.8: track the second connection until its OPEN arrives.
            s = self._new_session()
            s.handle_event(Event.MANUAL_START_WITH_PASSIVE_TCP_ESTABLISHMENT, now)
            s.tcp_connected(now, outbound=False)
            self.secondary = s
            taken = s
        self._reap()
        return taken

    def get_timer(self) -> float | None:
        times = [t for s in self.sessions() if (t := s.get_timer()) is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        for s in self.sessions():
            s.handle_timer(now)
        self._reap()

    def receive_data(self, session: Session, data: bytes, now: float) -> None:
        session.receive_data(data, now)
        self._reap()

    def tcp_connected(self, session: Session, now: float) -> None:
        session.tcp_connected(now, outbound=True)
        self._reap()

    def tcp_failed(
        self, session: Session, now: float, detail: str = "", outbound_attempt: bool = False
    ) -> None:
        session.tcp_failed(now, detail, outbound_attempt)
        self._reap()

    def take_effects(self) -> list[tuple[Session, Effect]]:
        out = self._pending
        self._pending = []
        for s in self.sessions():
            out.extend((s, e) for e in s.take_effects())
        return out

    # --- collision detection --------------------------------------------------------------------
    def _collision(self, session: Session, remote: Open) -> bool:
        other = self.secondary if session is self.primary else self.primary
        if other is None or other.state not in (State.OPEN_SENT, State.OPEN_CONFIRM):
            return False
        self.collisions += 1
        p = self.params
        if session.outbound == other.outbound:
            loser = session if session is self.secondary else other
        else:
            keep_inbound = resolve_collision(p.local_id, p.local_as, remote.bgp_id, remote.asn)
            loser = session if session.outbound == keep_inbound else other
        loser.auto_restart = False
        self._loser = loser
        if loser is session:
            return True
        loser.handle_event(Event.OPEN_COLLISION_DUMP, session._now)
        return False

    def _drop_secondary(self) -> None:
        s = self.secondary
        if s is not None:
            self._pending.extend((s, e) for e in s.take_effects())
            self.secondary = None

    def _reap(self) -> None:
        loser, self._loser = self._loser, None
        if loser is not None and loser is self.primary and self.secondary is not None:
            self._pending.extend((loser, e) for e in loser.take_effects())
            winner = self.secondary
            winner.auto_restart = True
            winner.last_error = loser.last_error
            self.primary, self.secondary = winner, None
            return
        if self.secondary is not None and self.secondary.state is State.IDLE:
            self._drop_secondary()
        elif loser is not None and loser is self.primary:
            loser.auto_restart = True
