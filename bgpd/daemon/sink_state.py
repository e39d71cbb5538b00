"""The records the routing sink keeps: one per Established session, one per best-path
subscriber, its counters, and the routing core's id for a session.

A module of their own because the sink's parts (convergence.py, stale_routes.py, mrai.py)
use them too, and routing.py imports those parts: from here, nothing imports in a circle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from bgpd.core.negotiation import Negotiated
from bgpd.core.routing.paths import RouteKey, RoutingPeer
from bgpd.daemon.config import PeerKey
from bgpd.daemon.sink import PeerInfo, UpdateSender


def peer_id(key: PeerKey) -> str:
    address, local, port = key
    return f"{address}|{local}|{port}"


@dataclass
class SinkSession:
    info: PeerInfo
    role: RoutingPeer
    out: UpdateSender
    negotiated: Negotiated
    # MRAI (RFC 4271 §9.2.1.1): announcements held until `mrai` seconds after the last burst.
    mrai: float = 0.0
    last_announce: float | None = None
    mrai_held: dict[RouteKey, None] = field(default_factory=dict)
    mrai_timer: asyncio.TimerHandle | None = None


@dataclass
class Subscriber:
    """One best-path stream: `push` gets dicts; falling behind turns deltas into a resync."""

    push: Callable[[dict[str, object]], bool]  # False: the subscriber fell behind
    needs_resync: bool = False
    sent: int = 0


@dataclass
class SinkStats:
    updates_in: int = 0
    updates_out: int = 0
    stale_sweeps: int = 0
    refreshes_in: int = 0  # BoRR received (RFC 7313)
    refreshes_out: int = 0  # re-sends answering a ROUTE-REFRESH
    best_changes: int = 0
    extra: dict[str, int] = field(default_factory=dict)
