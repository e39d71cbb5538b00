"""Where a session's received routes and up/down events go: the `RouteSink` protocol.

The routing layer (Adj-RIB-In, decision process, Adj-RIB-Out) implements `RouteSink`; until then
`CountingSink` keeps the prefixes each peer announced (one set per family, so the count is exact
under re-announcements and withdrawals) and announces the configured originated prefixes when a
session comes up. Calls are synchronous and come from the task that owns the peer, so a sink
must not block; a slow one should queue and apply backpressure itself.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol

from bgpd.core.effects import DownReason
from bgpd.core.negotiation import Negotiated
from bgpd.daemon.config import PeerKey
from bgpd.daemon.rib_rows import family_name
from bgpd.wire.attributes import PathAttributes, Segment
from bgpd.wire.context import AFI_IPV4, AFI_IPV6, IPV4_UNICAST, SAFI_UNICAST, Family, WireContext
from bgpd.wire.messages import Update, end_of_rib
from bgpd.wire.prefix import Prefix, make_prefix
from bgpd.wire.update import pack_updates


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """What a sink needs to know about the peer an event came from."""

    key: PeerKey
    name: str
    peer_type: str
    local_as: int
    remote_as: int
    local_address: str  # the source address of the connection (next hop self)
    rr_client: bool
    next_hop: str
    mrai: float = 0.0  # Minimum Route Advertisement Interval (RFC 4271 §9.2.1.1)

    @property
    def ibgp(self) -> bool:
        return self.local_as == self.remote_as


class UpdateSender(Protocol):
    """The Established session, as seen by a sink."""

    @property
    def context(self) -> WireContext: ...

    def send_update(self, update: Update) -> None: ...

    def send_encoded(self, data: bytes) -> None: ...


class RouteSink(Protocol):
    def on_session_up(self, peer: PeerInfo, negotiated: Negotiated, out: UpdateSender) -> None: ...

    def on_session_down(self, peer: PeerInfo, reason: DownReason) -> None: ...

    def on_update(self, peer: PeerInfo, update: Update) -> None: ...

    def on_route_refresh(self, peer: PeerInfo, afi: int, safi: int, out: UpdateSender) -> None: ...

    def on_refresh_begin(self, peer: PeerInfo, afi: int, safi: int) -> None:
        """BoRR (RFC 7313 §4): the peer starts re-sending a family."""

    def on_refresh_end(self, peer: PeerInfo, afi: int, safi: int) -> None:
        """EoRR (RFC 7313 §4): the peer's re-send of a family is complete."""

    def prefix_counts(self, key: PeerKey) -> dict[str, int]: ...


class CountingSink:
    """Default sink: exact per-peer prefix counts and announcement of originated prefixes."""

    def __init__(self, originate: list[str] | None = None) -> None:
        self.originate = list(originate or [])
        self.rib_in: dict[PeerKey, dict[Family, set[Prefix]]] = {}
        self.updates: dict[PeerKey, int] = {}

    def on_session_up(self, peer: PeerInfo, negotiated: Negotiated, out: UpdateSender) -> None:
        self.rib_in[peer.key] = {f: set() for f in negotiated.families}
        self._announce(peer, negotiated.families, out)

    def on_session_down(self, peer: PeerInfo, reason: DownReason) -> None:
        self.rib_in.pop(peer.key, None)

    def on_route_refresh(self, peer: PeerInfo, afi: int, safi: int, out: UpdateSender) -> None:
        self._announce(peer, ((afi, safi),), out)

    def on_refresh_begin(self, peer: PeerInfo, afi: int, safi: int) -> None:
        pass

    def on_refresh_end(self, peer: PeerInfo, afi: int, safi: int) -> None:
        pass

    def on_update(self, peer: PeerInfo, update: Update) -> None:
        tables = self.rib_in.setdefault(peer.key, {})
        self.updates[peer.key] = self.updates.get(peer.key, 0) + 1
        v4 = tables.setdefault(IPV4_UNICAST, set())
        if update.withdrawn:
            v4.difference_update(update.withdrawn)
        mu = update.mp_unreach
        if mu is not None and mu.withdrawn:
            tables.setdefault((mu.afi, mu.safi), set()).difference_update(mu.withdrawn)
        mr = update.mp_reach
        attrs = update.attributes
        looped = (
            attrs is not None
            and attrs.as_path is not None
            and any(peer.local_as in asns for _, asns in attrs.as_path)
        )
        if update.treat_as_withdraw or looped:
            # RFC 7606 §2: the announced prefixes are handled as withdrawn; so are routes whose
            # AS_PATH holds our own AS (RFC 4271 §9.1.2: such a route is not accepted).
            v4.difference_update(update.nlri)
            if mr is not None:
                tables.setdefault((mr.afi, mr.safi), set()).difference_update(mr.nlri)
            return
        if update.nlri:
            v4.update(update.nlri)
        if mr is not None and mr.nlri:
            tables.setdefault((mr.afi, mr.safi), set()).update(mr.nlri)

    def prefix_counts(self, key: PeerKey) -> dict[str, int]:
        return {family_name(f): len(s) for f, s in self.rib_in.get(key, {}).items()}

    def _announce(self, peer: PeerInfo, families: tuple[Family, ...], out: UpdateSender) -> None:
        """Originated prefixes with ORIGIN IGP, our AS on eBGP, next hop self (RFC 4271 §5.1)."""
        for afi, safi in families:
            nets = [
                n
                for n in (ipaddress.ip_network(p) for p in self.originate)
                if (n.version == 6) == (afi == AFI_IPV6)
            ]
            if nets and safi == SAFI_UNICAST:
                prefixes = tuple(make_prefix(str(n)) for n in nets)
                for data in _originated(peer, afi, prefixes, out.context):
                    out.send_encoded(data)
            out.send_update(end_of_rib(afi, safi))


def _originated(
    peer: PeerInfo, afi: int, prefixes: tuple[Prefix, ...], ctx: WireContext
) -> list[bytes]:
    as_path: tuple[Segment, ...] = () if peer.ibgp else ((2, (peer.local_as,)),)
    local = ipaddress.ip_address(peer.local_address)
    attrs = PathAttributes(
        origin=0,
        as_path=as_path,
        next_hop=local.packed if afi == AFI_IPV4 else None,
        local_pref=100 if peer.ibgp else None,
    )
    next_hop = local.packed
    if afi == AFI_IPV6 and local.version == 4:
        # IPv6 routes over an IPv4 session: the IPv4-mapped address as next hop (RFC 4291 §2.5.5.2).
        next_hop = ipaddress.IPv6Address(f"::ffff:{local}").packed
    return pack_updates(attrs, prefixes, ctx, afi=afi, next_hop=next_hop)
