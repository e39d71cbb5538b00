"""MRAI, the Minimum Route Advertisement Interval (RFC 4271 §9.2.1.1), per session.

A module of its own because it is the one part of sending with a timer per session: within
`mrai` seconds of a session's last burst of announcements, `RoutingSink._send` holds new ones
(their keys: the Adj-RIB-Out already says what to send) and the timer sends them together
when the interval is over. Withdrawals are never held, nor is a full table (End-of-RIB
follows it). `RoutingSink` (routing.py) extends `MraiPacing`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from bgpd.core.routing.table import RoutingTable
from bgpd.core.routing.update_groups import Outgoing
from bgpd.daemon.sink_state import SinkSession


class MraiPacing:
    """The MRAI timers of a `RoutingSink` (the held keys are on each `SinkSession`)."""

    # The sink's.
    table: RoutingTable
    sessions: dict[str, SinkSession]
    clock: Callable[[], float]

    if TYPE_CHECKING:

        def _announce(self, session: SinkSession, work: Outgoing) -> None: ...

    # -- MRAI (RFC 4271 §9.2.1.1) --------------------------------------------------------------
    def mrai_tick(self, now: float | None = None) -> None:
        """Send every held batch whose interval is over (the timers call this; tests too)."""
        now = self.clock() if now is None else now
        for session in list(self.sessions.values()):
            if not session.mrai_held:
                continue
            last = session.last_announce
            if last is not None and now < last + session.mrai:
                self._mrai_arm(session, last + session.mrai)
                continue
            held = session.mrai_held
            self._mrai_cancel(session)
            adj_out = self.table.peers[session.role.id].adj_out
            work = Outgoing()
            for key in held:
                exported = adj_out.get(key)
                if exported is not None:  # else withdrawn meanwhile, and that went out at once
                    work.announce.setdefault((key[0], exported), []).append(key[1])
            session.last_announce = now
            self._announce(session, work)

    def _mrai_arm(self, session: SinkSession, when: float) -> None:
        if session.mrai_timer is not None:
            return
        with contextlib.suppress(RuntimeError):  # no loop: a test drives mrai_tick
            loop = asyncio.get_running_loop()
            session.mrai_timer = loop.call_at(
                loop.time() + max(0.0, when - self.clock()), self._mrai_fired, session
            )

    def _mrai_fired(self, session: SinkSession) -> None:
        session.mrai_timer = None
        self.mrai_tick()

    def _mrai_cancel(self, session: SinkSession) -> None:
        session.mrai_held = {}
        if session.mrai_timer is not None:
            session.mrai_timer.cancel()
            session.mrai_timer = None
