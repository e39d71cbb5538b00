"""Graceful restart as the restarting speaker (RFC 4724 §4.1), sans-IO.

Two decisions live here, both pure so that tests can state them as tables:

`restart_bits` says what our Graceful Restart capability carries toward one peer after bgpd
starts. The shell tells it how long bgpd was away (`downtime`: from a marker file that bgpd
touches while it runs and removes on a clean stop; None when there is no marker). Restart State
(R) is set when bgpd died without a clean stop and came back within the restart time it had
advertised to that peer: only then does the peer (the helper) still hold our routes as stale
(§4.2), and only then must it wait for our End-of-RIB before it sweeps them. Forwarding State
(F, per AFI/SAFI) says the dataplane kept forwarding while we were away (§3): felixd keeps the
kernel routes for its own hold time after bgpd's stream ends, so F is cleared when we were away
longer than that; a helper then flushes our stale routes at once (§4.2 "MUST delete").

`Deferral` is the §4.1 wait: while restarting, route selection and advertisement are deferred
until End-of-RIB came from every peer we wait for, each with its own bounded wait (a peer that
never sends End-of-RIB, or never comes back, is dropped from the wait when its own deadline
passes; it does not hold up the others beyond it), and all of it under one upper bound, the
selection deferral timer §4.1 requires. Time enters as `now`; `get_timer`/`handle_timer` follow
the aioquic pattern of the session core.

Invariants: once `finished` is true it stays true and no peer is waited for; a peer is released
at most once, and `released` records how (End-of-RIB, its own timeout, no GR, removed, the upper
bound).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bgpd.wire.context import Family


@dataclass(frozen=True, slots=True)
class RestartBits:
    restarting: bool  # R: we restarted and the peer should still hold our routes (§4.1)
    forwarding: bool  # F: our forwarding state survived the restart (§3)


def restart_bits(
    *, enabled: bool, downtime: float | None, restart_time: float, forwarding_hold: float
) -> RestartBits:
    """The R and F bits toward one peer (see the module comment for the rules).

    `restart_time` is the Restart Time we advertise to this peer (0: no GR with it);
    `forwarding_hold` is how long the dataplane keeps our routes once we are gone.
    """
    if not enabled or restart_time <= 0 or downtime is None:
        # Cold start (or GR off): nothing of ours is stale at the peer. F stays set so that a
        # later flap of this one session (our forwarding untouched) is a graceful one.
        return RestartBits(restarting=False, forwarding=True)
    if downtime > restart_time:
        # The peer's restart timer ran out: it already flushed our routes (§4.2).
        return RestartBits(restarting=False, forwarding=downtime <= forwarding_hold)
    return RestartBits(restarting=True, forwarding=downtime <= forwarding_hold)


@dataclass
class _Wait:
    deadline: float
    families: set[Family] = field(default_factory=set)  # End-of-RIB still missing
    established: bool = False
    came_up: bool = False  # its own wait restarts once, when it first comes back


class Deferral:
    """Which peers a restarting speaker still waits for (RFC 4724 §4.1)."""

    def __init__(self, now: float, limit: float, waits: dict[str, float]) -> None:
        """`limit`: the upper bound on the whole deferral; `waits`: peer id -> that peer's own
        bound (from now until it connects, then from its session coming up)."""
        self.started = now
        self.deadline = now + max(0.0, limit)
        self.wait_for = dict(waits)
        self.pending: dict[str, _Wait] = {
            pid: _Wait(min(now + max(0.0, w), self.deadline)) for pid, w in waits.items()
        }
        self.released: dict[str, str] = {}
        self.finished = False
        self.ended_at: float | None = None
        if not self.pending:
            self._finish(now)
        elif limit <= 0:
            self.handle_timer(now)  # no deferral at all: everyone is released at once

    def session_up(
        self,
        pid: str,
        now: float,
        families: tuple[Family, ...],
        gr: bool,
        peer_restarting: bool = False,
    ) -> None:
        """A waited-for peer is Established. Without GR negotiated (§4.1 waits for GR peers
        only) it is released, and so is a peer that set R itself (§3: it restarted too and
        waits for our End-of-RIB; waiting for its own would deadlock); otherwise its own wait
        for End-of-RIB starts now."""
        w = self.pending.get(pid)
        if w is None or self.finished:
            return
        if not gr or not families:
            self._release(pid, "no graceful restart", now)
            return
        if peer_restarting:
            self._release(pid, "peer restarting", now)
            return
        if not w.came_up:
            w.came_up = True
            w.deadline = min(now + max(0.0, self.wait_for[pid]), self.deadline)
        w.established = True
        w.families = set(families)

    def end_of_rib(self, pid: str, family: Family, now: float) -> None:
        w = self.pending.get(pid)
        if w is None or not w.established or self.finished:
            return
        w.families.discard(family)
        if not w.families:
            self._release(pid, "end-of-rib", now)

    def session_down(self, pid: str) -> None:
        """The peer went away again: its End-of-RIB count starts over when it is back (its
        deadline is kept, so a flapping peer cannot stretch its own wait)."""
        w = self.pending.get(pid)
        if w is not None:
            w.established = False
            w.families = set()

    def forget(self, pid: str, now: float) -> None:
        """The peer was removed from the configuration."""
        if pid in self.pending:
            self._release(pid, "removed", now)

    def get_timer(self) -> float | None:
        if self.finished:
            return None
        return min([self.deadline, *(w.deadline for w in self.pending.values())])

    def handle_timer(self, now: float) -> None:
        if self.finished:
            return
        if now >= self.deadline:
            for pid in list(self.pending):
                self._release(pid, "deferral limit", now)
            self._finish(now)
            return
        for pid, w in list(self.pending.items()):
            if now >= w.deadline:
                self._release(pid, "timeout", now)

    def waiting(self) -> list[str]:
        return sorted(self.pending)

    def _release(self, pid: str, how: str, now: float) -> None:
        self.pending.pop(pid, None)
        self.released.setdefault(pid, how)
        if not self.pending:
            self._finish(now)

    def _finish(self, now: float) -> None:
        if not self.finished:
            self.finished = True
            self.ended_at = now
