"""What a best path becomes when advertised to one peer (RFC 4271 §9.1.3, RFC 4456 §6-8).

`export_path` answers two questions for (best path, peer): may it be advertised at all, and
with which attributes and next hop. The rules:
- never back to the peer it came from;
- iBGP split horizon (RFC 4271 §9.2): a path learned over iBGP goes to another iBGP peer only
  when this speaker reflects: from a client to everyone, from a non-client to clients only
  (RFC 4456 §6); a reflected path gets ORIGINATOR_ID (if absent) and our cluster id prepended
  to CLUSTER_LIST (§8), and never goes back to its originator;
- eBGP: our AS prepended, next hop self unless configured to keep, LOCAL_PREF and the
  non-transitive ORIGINATOR_ID / CLUSTER_LIST removed, and a MED received from another AS not
  passed on (§5.1.4); a MED set by our own policy or origination is kept;
- iBGP: LOCAL_PREF present (100 unless set), next hop unchanged except for locally originated
  paths and `next_hop = "self"`;
- IPv6 (RFC 2545 §3): a next hop passed on unchanged loses its link-local half; next hop self
  over an IPv4 session is the IPv4-mapped address. An IPv4 route needs an IPv4 next hop
  (RFC 8950 extended next hop is not supported), so without one it is not advertised.
- well-known communities (RFC 1997) on the best path: NO_ADVERTISE goes to no peer,
  NO_EXPORT and NO_EXPORT_SUBCONFED to no eBGP peer (there are no confederations, so every
  eBGP peer is outside ours); iBGP peers and reflector clients still get them. Only the
  iBGP/eBGP role decides, which is part of the update-group key.
The result is interned by the caller, so peers that share a role share attribute objects and
UPDATE packing groups prefixes by identity.
"""

from __future__ import annotations

from typing import NamedTuple

from bgpd.core.routing.decision import DEFAULT_LOCAL_PREF
from bgpd.core.routing.paths import Path, RoutingPeer
from bgpd.wire.attributes import (
    AS_SEQUENCE,
    NO_ADVERTISE,
    NO_EXPORT,
    NO_EXPORT_SUBCONFED,
    PathAttributes,
    Segment,
)
from bgpd.wire.context import AFI_IPV4, Family


class Exported(NamedTuple):
    attrs: PathAttributes
    next_hop: bytes


def _prepend(path: tuple[Segment, ...] | None, asn: int) -> tuple[Segment, ...]:
    segs = path or ()
    if segs and segs[0][0] == AS_SEQUENCE and len(segs[0][1]) < 255:
        return ((AS_SEQUENCE, (asn, *segs[0][1])), *segs[1:])
    return ((AS_SEQUENCE, (asn,)), *segs)


def export_path(
    path: Path,
    peer: RoutingPeer,
    family: Family,
    *,
    router_id: int,
    cluster_id: int,
) -> Exported | None:
    """None when the path must not be advertised to `peer`."""
    if excluded(path, peer):
        return None
    return export_shared(path, peer, family, router_id=router_id, cluster_id=cluster_id)


def excluded(path: Path, peer: RoutingPeer) -> bool:
    """The rules that name one peer: never back to the peer the path came from, and a
    reflected path never back to its originator (RFC 4456 §8). The rest of the export depends
    only on properties that peers of one update group share (`export_shared`)."""
    if path.source == peer.id:
        return True
    return (
        peer.ibgp
        and path.ibgp
        and path.attrs.originator_id is not None
        and path.attrs.originator_id == peer.router_id
    )


def export_shared(
    path: Path,
    peer: RoutingPeer,
    family: Family,
    *,
    router_id: int,
    cluster_id: int,
) -> Exported | None:
    """`export_path` without the per-peer rules of `excluded`: the same for every peer with
    `peer`'s iBGP/eBGP role, route-reflector client flag, ASes, next-hop mode, local address."""
    attrs = path.attrs
    if attrs.communities and withheld_by_community(attrs.communities, peer.ibgp):
        return None
    next_hop = path.next_hop
    if peer.ibgp:
        if path.ibgp:
            # Reflection (RFC 4456 §6): client routes to all, non-client routes to clients.
            if not (path.from_client or peer.rr_client):
                return None
            attrs = attrs._replace(
                originator_id=attrs.originator_id
                if attrs.originator_id is not None
                else path.router_id,
                cluster_list=(cluster_id, *attrs.cluster_list),
            )
        if attrs.local_pref is None:
            attrs = attrs._replace(local_pref=DEFAULT_LOCAL_PREF)
        if path.local or peer.next_hop == "self":
            next_hop = peer.local_address
    else:
        attrs = attrs._replace(
            as_path=_prepend(attrs.as_path, peer.local_as),
            local_pref=None,
            originator_id=None,
            cluster_list=(),
            # §5.1.4: a MED that came from a neighbouring AS (even via iBGP) is not
            # propagated to another AS; our own (originated or export policy) is.
            med=attrs.med if path.local else None,
        )
        if peer.next_hop != "keep" or path.local:
            next_hop = peer.local_address
    if len(next_hop) == 32:
        # RFC 2545 §3: a link-local next hop is only meaningful to a peer on the link it
        # belongs to; a next hop passed on unchanged keeps its global address only.
        next_hop = next_hop[:16]
    if family[0] == AFI_IPV4:
        if len(next_hop) != 4:
            return None  # no IPv4 next hop for an IPv4 route on this session
        attrs = attrs._replace(next_hop=next_hop)
    else:
        attrs = attrs._replace(next_hop=None)
        if len(next_hop) == 4:
            # An IPv6 route over an IPv4 session: the IPv4-mapped form (RFC 4291 §2.5.5.2).
            next_hop = b"\x00" * 10 + b"\xff\xff" + next_hop
    return Exported(attrs, next_hop)


def withheld_by_community(communities: tuple[int, ...], ibgp: bool) -> bool:
    """RFC 1997: whether a well-known community forbids advertising to a peer of this role.
    Checked on the best path's own communities, before export policy: a community added by
    an export policy is sent, not obeyed by this speaker."""
    if NO_ADVERTISE in communities:
        return True
    return not ibgp and (NO_EXPORT in communities or NO_EXPORT_SUBCONFED in communities)


def import_loop(
    path_attrs: PathAttributes, peer: RoutingPeer, router_id: int, cluster_id: int
) -> str | None:
    """Why a received path must be ignored (RFC 4271 §9.1.2, RFC 4456 §8), or None."""
    if not peer.ibgp:
        own = sum(asns.count(peer.local_as) for _, asns in path_attrs.as_path or ())
        if own > peer.allow_own_as:
            return "own AS in AS_PATH"
    if path_attrs.originator_id == router_id:
        return "own router id as ORIGINATOR_ID"
    if cluster_id in path_attrs.cluster_list:
        return "own cluster id in CLUSTER_LIST"
    return None
