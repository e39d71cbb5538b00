"""Paths and peers as the routing core sees them.

A `Path` is one candidate route for one prefix: the interned attribute set it arrived with
(after import policy), its next hop, and what the decision process needs to know about where
it came from. Paths are NamedTuples: a full table is millions of them, and tuple construction,
hashing and equality run in C. A `RoutingPeer` is the static description of a session's role
(iBGP or eBGP, route-reflector client, next-hop mode) that export rules depend on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

from bgpd.wire.attributes import AS_SEQUENCE, PathAttributes
from bgpd.wire.context import Family
from bgpd.wire.prefix import Prefix

LOCAL = ""  # the source id of locally originated paths

RouteKey = tuple[Family, Prefix]


class Path(NamedTuple):
    source: str  # peer id, LOCAL for originated
    attrs: PathAttributes
    next_hop: bytes  # 4 octets (IPv4) or 16/32 (IPv6, global [+ link-local])
    ibgp: bool = False
    router_id: int = 0  # the peer's BGP identifier
    peer_address: bytes = b""  # packed, for the last tie-break
    from_client: bool = False  # learned from a route-reflector client
    stale: bool = False  # RFC 4724: kept while the peer restarts

    @property
    def local(self) -> bool:
        return self.source == LOCAL

    def neighbor_as(self) -> int:
        """The AS the path was received from (first AS of the AS_PATH), 0 if none."""
        for seg_type, asns in self.attrs.as_path or ():
            if seg_type == AS_SEQUENCE and asns:
                return asns[0]
            return 0
        return 0


@dataclass(frozen=True, slots=True)
class RoutingPeer:
    """A peer's role, fixed for the life of a session."""

    id: str
    name: str
    local_as: int
    remote_as: int
    router_id: int  # the peer's BGP identifier, from its OPEN
    address: bytes  # packed peer address
    local_address: bytes  # packed address of our end: next hop self
    rr_client: bool = False
    next_hop: Literal["auto", "self", "keep"] = "auto"
    allow_own_as: int = 0
    families: tuple[Family, ...] = ()

    @property
    def ibgp(self) -> bool:
        return self.local_as == self.remote_as
