"""A peer's routes kept as stale until it re-sends them: graceful restart, helper side
(RFC 4724 §4.2, RFC 8538), and enhanced route refresh from the peer (RFC 7313 §4).

A module of its own because both are the same bookkeeping, apart from the rest of the sink:
routes marked stale when the peer goes (or sends BoRR), kept while it re-sends them, and the
ones it did not re-send swept at its End-of-RIB (or EoRR), or by a timer when that never
comes. `RoutingSink` (routing.py) extends `StaleRoutes`; the session-down and End-of-RIB
handling that starts and ends the wait stays there, in the `RouteSink` calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from bgpd.core.effects import DownKind, DownReason
from bgpd.core.negotiation import Negotiated
from bgpd.core.routing.paths import RouteKey
from bgpd.core.routing.table import BestChange, RoutingTable
from bgpd.daemon.rib_rows import family_name
from bgpd.daemon.sink import PeerInfo
from bgpd.daemon.sink_state import SinkSession, SinkStats, peer_id
from bgpd.wire.capabilities import GR_FORWARDING_STATE
from bgpd.wire.context import IPV4_UNICAST, Family
from bgpd.wire.messages import Update
from runtime.log import get_logger

log = get_logger("bgpd.routing")  # the routing sink's logger: these are its events

CEASE = 6
HARD_RESET = 9  # RFC 8538 Cease subcode
# RFC 4724 §4.2: the TCP session ended without a NOTIFICATION. With the RFC 8538 N bit
# also a NOTIFICATION sent or received (a hold timer expiry included), unless a Hard Reset.
KEEP_STALE_ON = {DownKind.SOCKET_ERROR, DownKind.PEER_CLOSED}
KEEP_STALE_WITH_N = {
    DownKind.NOTIFICATION_RECEIVED,
    DownKind.NOTIFICATION_SENT,
    DownKind.HOLD_TIMER_EXPIRED,
    DownKind.ADMIN_DOWN,
    DownKind.ADMIN_RESET,
    DownKind.CONFIG_CHANGED,
    DownKind.FSM_ERROR,
}


# RFC 7313 §4: a peer that sent BoRR and never EoRR has its stale routes removed after this.
REFRESH_STALE_TIME = 300.0
# RFC 4724 §4.2: a restarted peer that is back but never sends End-of-RIB has its stale routes
# removed after this (FRR's stalepath-time default).
STALE_PATH_TIME = 360.0


def keeps_stale(negotiated: Negotiated, reason: DownReason) -> bool:
    """Whether a session that ended for `reason` leaves the peer's routes stale (helper)."""
    if negotiated.graceful_restart is None:
        return False
    if reason.kind in KEEP_STALE_ON:
        return True
    if not negotiated.gr_notification or reason.kind not in KEEP_STALE_WITH_N:
        return False
    # A Hard Reset (its cause unwrapped in the reason, or a malformed one kept as is) flushes.
    return not reason.hard_reset and not (reason.code == CEASE and reason.subcode == HARD_RESET)


class StaleRoutes:
    """The stale-route timers of a `RoutingSink`, which sets the attributes below."""

    # Its own state.
    stale_timers: dict[str, asyncio.TimerHandle]
    stale_path_time: float
    _refreshing: dict[tuple[str, Family], set[RouteKey]]
    _refresh_timers: dict[tuple[str, Family], asyncio.TimerHandle]
    refresh_stale_time: float
    # The sink's.
    table: RoutingTable
    sessions: dict[str, SinkSession]
    names: dict[str, str]
    stats: SinkStats

    if TYPE_CHECKING:

        def _flush(self, changes: list[BestChange]) -> None: ...

    def _stale_on_return(self, pid: str, negotiated: Negotiated) -> None:
        """The peer is back while we keep its routes stale (RFC 4724 §4.2): families its new
        OPEN does not keep forwarding for (no GR capability, F bit clear, family gone) are
        swept at once; the rest wait for its End-of-RIB, bounded by `stale_path_time`."""
        tables = self.table.peers.get(pid)
        if tables is None:
            return
        gr = negotiated.graceful_restart
        kept = set()
        if gr is not None:
            kept = {(a, s) for a, s, flags in gr.families if flags & GR_FORWARDING_STATE}
        kept &= set(negotiated.families)
        stale = {key[0] for key, path in tables.adj_in.items() if path.stale}
        changes: list[BestChange] = []
        for family in sorted(stale - kept):
            changes += self.table.sweep_stale(pid, family)
        if changes:
            self.stats.stale_sweeps += 1
            log.info("gr.forwarding_not_kept", peer=self.names.get(pid, pid), swept=len(changes))
            self._flush(changes)
        if stale & kept:
            with contextlib.suppress(RuntimeError):  # no loop: a test sweeps by hand
                loop = asyncio.get_running_loop()
                self.stale_timers[pid] = loop.call_later(
                    self.stale_path_time, self._restart_expired, pid
                )

    def _restart_expired(self, pid: str) -> None:
        self.stale_timers.pop(pid, None)
        if pid in self.sessions and not any(p.stale for p in self.table.peers[pid].adj_in.values()):
            return
        self.stats.stale_sweeps += 1
        log.info("gr.restart_time_expired", peer=self.names.get(pid, pid))
        self._flush(self.table.sweep_stale(pid))

    # -- enhanced route refresh from the peer (RFC 7313 §4) ------------------------------------
    def on_refresh_begin(self, peer: PeerInfo, afi: int, safi: int) -> None:
        """BoRR: the peer's routes of the family become stale; what it re-sends before EoRR
        (or `refresh_stale_time`) is kept, the rest is removed then."""
        pid = peer_id(peer.key)
        tables = self.table.peers.get(pid)
        if pid not in self.sessions or tables is None:
            return
        family = (afi, safi)
        self._end_refresh_timer(pid, family)
        stale = {k for k in tables.adj_in if k[0] == family}
        self._refreshing[(pid, family)] = stale
        with contextlib.suppress(RuntimeError):  # no loop: a test ends it with EoRR
            loop = asyncio.get_running_loop()
            self._refresh_timers[(pid, family)] = loop.call_later(
                self.refresh_stale_time, self._end_refresh, pid, family, "timeout"
            )
        self.stats.refreshes_in += 1
        log.info("refresh.begin", peer=peer.name, family=family_name(family), stale=len(stale))

    def on_refresh_end(self, peer: PeerInfo, afi: int, safi: int) -> None:
        self._end_refresh(peer_id(peer.key), (afi, safi), "eorr")

    def _end_refresh(self, pid: str, family: Family, how: str) -> None:
        self._end_refresh_timer(pid, family)
        stale = self._refreshing.pop((pid, family), None)
        if stale is None:
            return
        if stale and pid in self.table.peers:
            prefixes = [k[1] for k in stale]
            self._flush(self.table.receive(pid, family, (), None, b"", prefixes))
        log.info(
            "refresh.end",
            peer=self.names.get(pid, pid),
            family=family_name(family),
            swept=len(stale),
            how=how,
        )

    def _end_refresh_timer(self, pid: str, family: Family) -> None:
        timer = self._refresh_timers.pop((pid, family), None)
        if timer is not None:
            timer.cancel()

    def _refreshed(self, pid: str, update: Update) -> None:
        """Prefixes the peer sent (or withdrew) since its BoRR are no longer stale."""
        v4 = self._refreshing.get((pid, IPV4_UNICAST))
        if v4 is not None:
            v4.difference_update((IPV4_UNICAST, p) for p in update.nlri)
            v4.difference_update((IPV4_UNICAST, p) for p in update.withdrawn)
        mr, mu = update.mp_reach, update.mp_unreach
        for family, prefixes in (
            ((mr.afi, mr.safi) if mr is not None else None, mr.nlri if mr is not None else ()),
            ((mu.afi, mu.safi) if mu is not None else None, mu.withdrawn if mu is not None else ()),
        ):
            stale = self._refreshing.get((pid, family)) if family is not None else None
            if stale is not None and family is not None:
                stale.difference_update((family, p) for p in prefixes)
