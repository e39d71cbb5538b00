"""What `neighbors` reports for one peer, and the operator's answer to "why not Established".

Nothing here walks routes: prefix counts come from the sink's per-family counters.
The BIRD-style `state` column (`up`, `start`, `down`) and `info` text match what calicoctl users
read in `calicoctl node status`; `reason` says why in words (waiting for the peer to connect,
connection refused, the last NOTIFICATION with its RFC 9003 text).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from bgpd.core.events import State, Timer
from bgpd.core.negotiation import family_name
from bgpd.wire.capabilities import GR_FORWARDING_STATE

if TYPE_CHECKING:
    from bgpd.core.negotiation import Negotiated, SessionParams
    from bgpd.daemon.runner import PeerRunner
    from bgpd.daemon.sink import RouteSink


def why_not_established(runner: PeerRunner) -> str:
    why = _why(runner)
    down = runner.last_down
    s = runner.core.primary
    if why and down is not None and down != s.last_error:
        # The attempts since may have failed for other reasons; keep why it went down.
        why += f"; went down: {down.describe()}"
    return why


def _why(runner: PeerRunner) -> str:
    core = runner.core
    s = core.primary
    last = s.last_error.describe() if s.last_error is not None else ""
    since_last = f"; last error: {last}" if last else ""
    state = core.state
    if state is State.ESTABLISHED:
        return ""
    if state is State.IDLE:
        if not s.auto_restart:
            return "administratively down" + since_last
        hold = s.timers.get(Timer.IDLE_HOLD)
        wait = f" in {max(0.0, hold - runner.loop.time()):.0f}s" if hold is not None else ""
        return f"restarting{wait} after: {last or 'start'}"
    if state is State.ACTIVE and core.params.passive:
        return "passive: waiting for the peer to connect" + since_last
    if state in (State.CONNECT, State.ACTIVE):
        return ("connecting" if state is State.CONNECT else "will retry") + since_last
    if state is State.OPEN_SENT:
        return "OPEN sent, waiting for the peer's OPEN"
    return "OPEN accepted, waiting for the peer's KEEPALIVE"


def bird_state(runner: PeerRunner) -> str:
    core = runner.core
    if core.state is State.ESTABLISHED:
        return "up"
    if core.state is State.IDLE and not core.primary.auto_restart:
        return "down"
    return "start"


def _graceful_restart(neg: Negotiated, ours: SessionParams) -> dict[str, object] | None:
    """Both sides' Graceful Restart flags (RFC 4724 §3, RFC 8538 §2) for this session."""
    gr = neg.graceful_restart
    if gr is None:
        return None
    return {
        "peer_restart_time": gr.restart_time,
        "peer_restarting": gr.restart_state,  # R: the peer restarted and waits for our EoR
        "peer_forwarding": [
            family_name((afi, safi))
            for afi, safi, flags in gr.families
            if flags & GR_FORWARDING_STATE
        ],
        "notification": neg.gr_notification,  # N negotiated by both sides
        "our_restarting": ours.gr_restarting,  # R in the OPEN we send now
        "our_forwarding": ours.gr_forwarding,
    }


def neighbor_status(runner: PeerRunner, sink: RouteSink) -> dict[str, object]:
    core = runner.core
    s = core.primary
    c = runner.config
    neg = s.negotiated if core.state is State.ESTABLISHED else None
    info = core.state.value
    why = why_not_established(runner)
    if core.state is State.ACTIVE and core.params.passive:
        info = "Passive"
    if why:
        info += f" ({why})"
    now = time.time()
    return {
        "address": c.address,
        "port": c.port,
        "local_address": c.local_address or runner.local_address,
        "name": c.display_name,
        "description": c.description,
        "peer_type": c.peer_type,
        "remote_as": c.remote_as,
        "local_as": runner.local_as,
        "passive": core.params.passive,
        "state": core.state.value,
        "bird_state": bird_state(runner),
        "since": runner.since,
        "uptime": (now - runner.established_since) if runner.established_since else None,
        "info": info,
        "reason": why,
        "last_error": s.last_error.to_dict() if s.last_error is not None else None,
        "last_down": runner.last_down.to_dict() if runner.last_down is not None else None,
        "hold_time": neg.hold_time if neg else None,
        "keepalive_time": neg.keepalive_time if neg else None,
        "remote_id": neg.remote_id if neg else None,
        "capabilities": neg.capability_names() if neg else [],
        "graceful_restart": _graceful_restart(neg, core.params) if neg else None,
        "messages_in": dict(s.messages_in),
        "messages_out": dict(s.messages_out),
        "updates_received": runner.updates_received,
        "prefixes": sink.prefix_counts(c.key),
        "established_count": s.established_count,
        "connections_rejected": runner.rejected,
        "collisions": core.collisions,
        "backpressure_pauses": runner.pauses,
    }
