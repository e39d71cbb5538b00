"""OPEN negotiation (RFC 4271 §4.2, §6.2; RFC 5492; RFC 6286; RFC 6793; RFC 4760 §8).

`SessionParams` is what the configuration says about one peer; `local_open` builds our OPEN;
`check_open` validates the peer's OPEN against the parameters and returns the `Negotiated`
result, or raises `OpenMessageError` carrying the exact NOTIFICATION.

Invariants: negotiated hold time is min(ours, theirs) and is 0 or >= 3 (RFC 4271 §4.2; the codec
already refuses 1 and 2); the negotiated families are the intersection of both sides' Multiprotocol
capabilities (a peer that sends none is taken to speak IPv4 unicast only); a capability that is
configured as required and missing refuses the session with Unsupported Capability (RFC 5492 §5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bgpd.wire.attributes import AS_TRANS
from bgpd.wire.capabilities import (
    GR_FORWARDING_STATE,
    AddPath,
    Capability,
    EnhancedRouteRefresh,
    ExtendedMessage,
    FourOctetAs,
    GracefulRestart,
    Multiprotocol,
    RouteRefreshCapability,
    encode_capability,
    negotiate,
)
from bgpd.wire.context import AFI_NAMES, IPV4_UNICAST, IPV6_UNICAST, SAFI_NAMES, Family, WireContext
from bgpd.wire.errors import (
    BAD_BGP_IDENTIFIER,
    BAD_PEER_AS,
    UNSUPPORTED_CAPABILITY,
    OpenMessageError,
)
from bgpd.wire.messages import Open

FAMILY_NAMES: dict[str, Family] = {"ipv4": IPV4_UNICAST, "ipv6": IPV6_UNICAST}


def family_name(f: Family) -> str:
    return f"{AFI_NAMES.get(f[0], str(f[0]))}-{SAFI_NAMES.get(f[1], str(f[1]))}"


@dataclass(frozen=True, slots=True)
class SessionParams:
    """Per-peer session settings (seconds for all times)."""

    local_as: int
    remote_as: int
    local_id: int  # our BGP Identifier (router id) as an integer
    hold_time: int = 90
    keepalive_time: int = 0  # 0: a third of the negotiated hold time (RFC 4271 §10)
    connect_retry_time: float = 5.0
    delay_open_time: float = 0.0  # 0: DelayOpen off (RFC 4271 §8.1.1 optional attribute)
    idle_hold_time: float = 5.0  # first IdleHold after a flap (DampPeerOscillations)
    idle_hold_max: float = 60.0  # doubling stops here
    stable_time: float = 60.0  # Established this long resets the IdleHold back-off
    open_hold_time: float = 240.0  # RFC 4271 §8.2.2: "large value", 4 minutes suggested
    passive: bool = False
    families: tuple[Family, ...] = (IPV4_UNICAST,)
    required_capabilities: frozenset[str] = frozenset()
    graceful_restart_time: int = 0  # 0: do not send the Graceful Restart capability
    route_refresh: bool = True
    extended_message: bool = False
    # Graceful Restart flags (RFC 4724 §3, RFC 8538 §2); see bgpd.core.restart for R and F.
    gr_restarting: bool = False
    gr_forwarding: bool = True
    gr_notification: bool = True
    enhanced_route_refresh: bool = False


@dataclass(frozen=True, slots=True)
class Negotiated:
    remote_as: int
    remote_id: int
    hold_time: int
    keepalive_time: float
    families: tuple[Family, ...]
    four_octet_as: bool
    route_refresh: bool
    enhanced_route_refresh: bool
    extended_message: bool
    graceful_restart: GracefulRestart | None
    context: WireContext
    # RFC 8538 §2: both sides sent the N bit; a NOTIFICATION other than Hard Reset (and a
    # hold timer expiry) then keeps the routes as for a graceful restart.
    gr_notification: bool = False

    @property
    def peer_restarting(self) -> bool:
        """The peer set the Restart State bit (RFC 4724 §4.2): it restarted and waits for
        our End-of-RIB before it selects routes."""
        return self.graceful_restart is not None and self.graceful_restart.restart_state

    def capability_names(self) -> list[str]:
        names = [family_name(f) for f in self.families]
        for flag, name in (
            (self.four_octet_as, "4-octet-as"),
            (self.route_refresh, "route-refresh"),
            (self.enhanced_route_refresh, "enhanced-route-refresh"),
            (self.extended_message, "extended-message"),
            (self.graceful_restart is not None, "graceful-restart"),
            (bool(self.context.add_path_rx or self.context.add_path_tx), "add-path"),
        ):
            if flag:
                names.append(name)
        return names


def local_capabilities(p: SessionParams) -> tuple[Capability, ...]:
    caps: list[Capability] = [Multiprotocol(afi, safi) for afi, safi in p.families]
    if p.route_refresh:
        caps.append(RouteRefreshCapability())
    if p.extended_message:
        caps.append(ExtendedMessage())
    if p.enhanced_route_refresh:
        caps.append(EnhancedRouteRefresh())
    if p.graceful_restart_time:
        fflags = GR_FORWARDING_STATE if p.gr_forwarding else 0
        caps.append(
            GracefulRestart(
                restart_state=p.gr_restarting,
                notification=p.gr_notification,
                restart_time=min(p.graceful_restart_time, 0xFFF),
                families=tuple((afi, safi, fflags) for afi, safi in p.families),
            )
        )
    caps.append(FourOctetAs(p.local_as))
    return tuple(caps)


def local_open(p: SessionParams) -> Open:
    """Our OPEN (RFC 4271 §4.2): My AS is AS_TRANS for a 4-octet AS (RFC 6793 §4.1)."""
    return Open.build(p.local_as, p.hold_time, p.local_id, local_capabilities(p))


def _has(cls: type) -> Callable[[tuple[Capability, ...]], bool]:
    return lambda caps: any(isinstance(c, cls) for c in caps)


def _has_family(f: Family) -> Callable[[tuple[Capability, ...]], bool]:
    return lambda caps: f in _families(caps)


# Capabilities an operator can require, with the test on the peer's OPEN and the capability we
# put in the NOTIFICATION data (RFC 5492 §5: the data lists the capabilities that caused it).
REQUIRABLE: dict[str, tuple[Callable[[tuple[Capability, ...]], bool], Capability]] = {
    "route-refresh": (_has(RouteRefreshCapability), RouteRefreshCapability()),
    "4-octet-as": (_has(FourOctetAs), FourOctetAs(0)),
    "graceful-restart": (_has(GracefulRestart), GracefulRestart()),
    "extended-message": (_has(ExtendedMessage), ExtendedMessage()),
    "enhanced-route-refresh": (_has(EnhancedRouteRefresh), EnhancedRouteRefresh()),
    "add-path": (_has(AddPath), AddPath(())),
    "ipv4-unicast": (_has_family(IPV4_UNICAST), Multiprotocol(*IPV4_UNICAST)),
    "ipv6-unicast": (_has_family(IPV6_UNICAST), Multiprotocol(*IPV6_UNICAST)),
}


def _families(caps: tuple[Capability, ...]) -> set[Family]:
    mp = {(c.afi, c.safi) for c in caps if isinstance(c, Multiprotocol)}
    # RFC 4760 §8 / RFC 5492 §3: a speaker without Multiprotocol capabilities speaks IPv4 unicast.
    return mp or {IPV4_UNICAST}


def check_open(p: SessionParams, local: Open, remote: Open) -> Negotiated:
    """Validate the peer's OPEN (RFC 4271 §6.2) and negotiate; raises `OpenMessageError`."""
    caps = remote.capabilities
    four = any(isinstance(c, FourOctetAs) for c in caps)
    asn = remote.asn
    if four and remote.my_as not in (AS_TRANS, asn):
        # RFC 6793 §4.1: My AS is the AS itself or AS_TRANS; anything else is inconsistent.
        raise OpenMessageError(BAD_PEER_AS, b"", f"My AS {remote.my_as} but 4-octet AS {asn}")
    if asn != p.remote_as:
        # RFC 4271 §6.2: the peer's AS is not the one configured.
        raise OpenMessageError(BAD_PEER_AS, b"", f"peer AS {asn}, expected {p.remote_as}")
    if p.remote_as == p.local_as and remote.bgp_id == p.local_id:
        # RFC 6286 §2.2: within an AS the BGP Identifiers must differ (iBGP only).
        raise OpenMessageError(BAD_BGP_IDENTIFIER, b"", "peer uses our BGP Identifier")
    missing = [name for name in sorted(p.required_capabilities) if not REQUIRABLE[name][0](caps)]
    if missing:
        data = b"".join(encode_capability(REQUIRABLE[name][1]) for name in missing)
        raise OpenMessageError(UNSUPPORTED_CAPABILITY, data, "missing " + ", ".join(missing))
    families = tuple(f for f in p.families if f in _families(caps))
    if not families:
        # No address family in common: nothing could be exchanged (RFC 5492 §5).
        data = b"".join(encode_capability(Multiprotocol(*f)) for f in p.families)
        raise OpenMessageError(UNSUPPORTED_CAPABILITY, data, "no address family in common")
    hold = min(p.hold_time, remote.hold_time)
    if hold == 0:
        keepalive = 0.0
    else:
        keepalive = hold / 3
        if p.keepalive_time:
            keepalive = min(float(p.keepalive_time), keepalive)
    gr = next((c for c in caps if isinstance(c, GracefulRestart)), None)
    ctx = negotiate(local.capabilities, caps)
    return Negotiated(
        remote_as=asn,
        remote_id=remote.bgp_id,
        hold_time=hold,
        keepalive_time=keepalive,
        families=families,
        four_octet_as=ctx.four_octet_as,
        route_refresh=p.route_refresh and any(isinstance(c, RouteRefreshCapability) for c in caps),
        enhanced_route_refresh=p.enhanced_route_refresh
        and p.route_refresh
        and any(isinstance(c, EnhancedRouteRefresh) for c in caps),
        extended_message=ctx.extended_message,
        graceful_restart=gr if p.graceful_restart_time else None,
        context=ctx,
        gr_notification=bool(
            p.graceful_restart_time and p.gr_notification and gr and gr.notification
        ),
    )
