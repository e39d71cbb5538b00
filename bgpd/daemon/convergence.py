"""Holding back what a (re)started bgpd sends until its peers have re-sent their routes.

A module of its own because it is a state machine of its own (`bgpd.core.restart.Deferral`,
twice) with timers and held-back subscribers, touching the rest of the sink only at session
up, End-of-RIB and `subscribe`. `RoutingSink` (routing.py) extends `ConvergenceWait`.

Graceful restart as the restarting speaker (RFC 4724 §4.1, `begin_restart`): after bgpd died
and came back, route selection is deferred (`bgpd.core.restart.Deferral`): routes are learned
but nothing is advertised to peers and nothing is streamed to subscribers until End-of-RIB came
from every peer we wait for, each with its own bounded wait, under one upper bound. Then every
Established peer gets the whole table and End-of-RIB, and subscribers that connected meanwhile
(felixd, whose kernel routes stayed while bgpd was away) get their first snapshot: a snapshot
taken earlier would lack the routes not yet re-learned, and felixd would remove them.

The same holds after a cold start (`begin_convergence`: a clean stop, then a start; no restart
marker, so no deferral): felixd still has the kernel routes it kept (stale) when our stream
ended, and it replaces them with our first snapshot. Sent before the sessions are up, that
snapshot is nearly empty and felixd would delete the node's remote routes only to add them back
seconds later. So the first snapshot waits for initial convergence: End-of-RIB from each
configured peer (each with its own bounded wait from its session coming up), under one upper
bound (`startup_convergence_time`) for peers that never come up. Only the stream waits:
advertisements to peers go out as usual, so no peer waits for us (a restarting peer waits for
our End-of-RIB before it sends its own).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from bgpd.core.restart import Deferral
from bgpd.core.routing.table import RoutingTable
from bgpd.core.routing.update_groups import Outgoing
from bgpd.daemon.config import PeerKey
from bgpd.daemon.sink_state import SinkSession, Subscriber, peer_id
from bgpd.wire.messages import end_of_rib
from runtime.log import get_logger

log = get_logger("bgpd.routing")  # the routing sink's logger: these are its events


class ConvergenceWait:
    """The deferral (restart) and the convergence wait (cold start) of a `RoutingSink`, which
    sets the attributes below (`__init__`) and calls in at session up, End-of-RIB and
    `subscribe`."""

    # Its own state.
    deferral: Deferral | None
    _deferral_timer: asyncio.TimerHandle | None
    _held: list[Subscriber]
    _restart_done: bool
    on_restart_done: Callable[[], None] | None
    convergence: Deferral | None
    _convergence_timer: asyncio.TimerHandle | None
    # The sink's.
    table: RoutingTable
    sessions: dict[str, SinkSession]
    names: dict[str, str]
    subscribers: list[Subscriber]
    clock: Callable[[], float]

    if TYPE_CHECKING:

        def _send(self, session: SinkSession, work: Outgoing, paced: bool = True) -> None: ...

        def snapshot(self) -> list[dict[str, object]]: ...

    # -- graceful restart, restarting side (RFC 4724 §4.1) ---------------------------------
    @property
    def deferring(self) -> bool:
        return self.deferral is not None and not self.deferral.finished

    @property
    def converging(self) -> bool:
        return self.convergence is not None and not self.convergence.finished

    def begin_restart(self, waits: dict[PeerKey, float], limit: float) -> None:
        """Defer selection until End-of-RIB from each peer in `waits` (key -> its own bound)
        or `limit` seconds, whichever comes first per peer."""
        now = self.clock()
        self.deferral = Deferral(now, limit, {peer_id(k): w for k, w in waits.items()})
        log.info("gr.restarting", waiting=len(waits), limit=limit, finished=self.deferral.finished)
        self._check_deferral()

    def restart_tick(self, now: float | None = None) -> None:
        """The deferral's timer (also callable by tests with their own clock)."""
        if self.deferral is not None:
            self.deferral.handle_timer(self.clock() if now is None else now)
        self._check_deferral()

    def restart_forget(self, key: PeerKey) -> None:
        """The peer was removed from the configuration while we defer (or converge after a
        cold start): stop waiting for it."""
        if self.deferring:
            assert self.deferral is not None
            self.deferral.forget(peer_id(key), self.clock())
            self._check_deferral()
        if self.converging:
            assert self.convergence is not None
            self.convergence.forget(peer_id(key), self.clock())
            self._check_convergence()

    def restart_status(self) -> dict[str, object] | None:
        d = self.deferral
        if d is None:
            return None
        return {
            "deferring": not d.finished,
            "waiting": [self.names.get(p, p) for p in d.waiting()],
            "released": {self.names.get(p, p): how for p, how in d.released.items()},
            "started": d.started,
            "ended": d.ended_at,
        }

    def _check_deferral(self) -> None:
        d = self.deferral
        if d is None:
            return
        if self._deferral_timer is not None:
            self._deferral_timer.cancel()
            self._deferral_timer = None
        if not d.finished:
            when = d.get_timer()
            if when is not None:
                with contextlib.suppress(RuntimeError):  # no loop: a test drives restart_tick
                    loop = asyncio.get_running_loop()
                    self._deferral_timer = loop.call_at(when, self.restart_tick)
            return
        if not self._restart_done:
            self._end_deferral()

    def _end_deferral(self) -> None:
        """§4.1: selection is done; every peer gets its table and End-of-RIB, and subscribers
        that waited get their first snapshot."""
        self._restart_done = True
        d = self.deferral
        assert d is not None
        log.info(
            "gr.selection_done",
            released=",".join(f"{self.names.get(p, p)}:{h}" for p, h in d.released.items()),
        )
        for session in list(self.sessions.values()):
            self._send(session, self.table.full_table(session.role.id), paced=False)
            for afi, safi in session.negotiated.families:
                session.out.send_update(end_of_rib(afi, safi))
        self._release_held()
        if self.on_restart_done is not None:
            self.on_restart_done()

    # -- initial convergence after a cold start (module doc) ------------------------------
    def begin_convergence(self, waits: dict[PeerKey, float], limit: float) -> None:
        """Hold the subscribers' first snapshot until End-of-RIB from each peer in `waits`
        (key -> its own bound from its session coming up) or `limit` seconds overall."""
        now = self.clock()
        self.convergence = Deferral(now, limit, {peer_id(k): w for k, w in waits.items()})
        log.info("convergence.begin", waiting=len(waits), limit=limit)
        self._check_convergence()

    def convergence_tick(self, now: float | None = None) -> None:
        """The convergence timer (also callable by tests with their own clock)."""
        if self.convergence is not None:
            self.convergence.handle_timer(self.clock() if now is None else now)
        self._check_convergence()

    def convergence_status(self) -> dict[str, object] | None:
        d = self.convergence
        if d is None:
            return None
        return {
            "converging": not d.finished,
            "waiting": [self.names.get(p, p) for p in d.waiting()],
            "released": {self.names.get(p, p): how for p, how in d.released.items()},
            "started": d.started,
            "ended": d.ended_at,
        }

    def _check_convergence(self) -> None:
        d = self.convergence
        if d is None:
            return
        if self._convergence_timer is not None:
            self._convergence_timer.cancel()
            self._convergence_timer = None
        if not d.finished:
            when = d.get_timer()
            if when is not None:
                with contextlib.suppress(RuntimeError):  # no loop: a test drives the tick
                    loop = asyncio.get_running_loop()
                    self._convergence_timer = loop.call_at(when, self.convergence_tick)
            return
        if self._held and not self.deferring:
            log.info(
                "convergence.done",
                released=",".join(f"{self.names.get(p, p)}:{h}" for p, h in d.released.items()),
                subscribers=len(self._held),
            )
            self._release_held()

    def _release_held(self) -> None:
        """Subscribers that waited get their first snapshot; deltas follow from now on."""
        held, self._held = self._held, []
        for sub in held:
            self.subscribers.append(sub)
            sub.needs_resync = not sub.push({"type": "snapshot", "routes": self.snapshot()})
