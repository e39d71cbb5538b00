"""A simulated network of routing cores: speakers exchange their Outgoing work directly.

No sessions, sockets or clock: a link delivers what one core exports to the other's
`receive`. Enough to check propagation rules (mesh, route reflection, eBGP) end to end.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, field

from bgpd.core.routing.paths import RoutingPeer
from bgpd.core.routing.table import BestChange, RoutingTable
from bgpd.core.routing.update_groups import Outgoing
from bgpd.wire.attributes import PathAttributes
from bgpd.wire.context import IPV4_UNICAST, Family
from bgpd.wire.prefix import Prefix, format_prefix, make_prefix


def rid(text: str) -> int:
    return int(ipaddress.IPv4Address(text))


@dataclass
class Speaker:
    name: str
    address: str
    asn: int
    table: RoutingTable
    links: dict[str, RoutingPeer] = field(default_factory=dict)  # peer id (= other's name) -> role

    def routes(self) -> dict[str, str]:
        """prefix -> source of the best path ('' = local)."""
        return {
            format_prefix(k[1]): d.best.source
            for k, d in self.table.decisions.items()
            if d.best is not None
        }


class Network:
    def __init__(self) -> None:
        self.speakers: dict[str, Speaker] = {}
        self.queue: deque[tuple[str, str, Outgoing]] = deque()
        self.delivered = 0

    def add(
        self, name: str, address: str, asn: int = 64512, cluster_id: str | None = None
    ) -> Speaker:
        table = RoutingTable(rid(address), asn, rid(cluster_id) if cluster_id else None)
        sp = Speaker(name, address, asn, table)
        self.speakers[name] = sp
        return sp

    def link(
        self,
        a: str,
        b: str,
        *,
        a_reflects_b: bool = False,
        b_reflects_a: bool = False,
        allow_own_as: dict[str, int] | None = None,
    ) -> None:
        """A session: `a_reflects_b` makes b a route-reflector client of a;
        `allow_own_as={"b": 1}` lets b accept paths with its own AS once (on this session)."""
        sa, sb = self.speakers[a], self.speakers[b]
        allow = allow_own_as or {}
        self._half(sa, sb, rr_client=a_reflects_b, allow_own_as=allow.get(a, 0))
        self._half(sb, sa, rr_client=b_reflects_a, allow_own_as=allow.get(b, 0))
        self.queue.append((a, b, sa.table.full_table(b)))
        self.queue.append((b, a, sb.table.full_table(a)))

    def _half(self, me: Speaker, other: Speaker, rr_client: bool, allow_own_as: int = 0) -> None:
        role = RoutingPeer(
            id=other.name,
            name=other.name,
            local_as=me.asn,
            remote_as=other.asn,
            router_id=rid(other.address),
            address=ipaddress.IPv4Address(other.address).packed,
            local_address=ipaddress.IPv4Address(me.address).packed,
            rr_client=rr_client,
            allow_own_as=allow_own_as,
            families=(IPV4_UNICAST,),
        )
        me.links[other.name] = role
        me.table.add_peer(role)

    def unlink(self, a: str, b: str) -> None:
        for x, y in ((a, b), (b, a)):
            sx = self.speakers[x]
            sx.links.pop(y, None)
            self.propagate(x, sx.table.remove_peer(y))

    def kill(self, name: str) -> None:
        for other in list(self.speakers[name].links):
            self.unlink(name, other)
        del self.speakers[name]

    def originate(self, name: str, prefix: str, med: int | None = None) -> None:
        sp = self.speakers[name]
        attrs = PathAttributes(origin=0, as_path=(), med=med)
        self.propagate(
            name,
            sp.table.originate(
                IPV4_UNICAST, make_prefix(prefix), attrs, ipaddress.IPv4Address(sp.address).packed
            ),
        )

    def withdraw(self, name: str, prefix: str) -> None:
        sp = self.speakers[name]
        self.propagate(name, sp.table.withdraw_local(IPV4_UNICAST, make_prefix(prefix)))

    def propagate(self, name: str, changes: list[BestChange]) -> None:
        sp = self.speakers[name]
        keys = [c.key for c in changes]
        for peer in sp.links:
            work = sp.table.outgoing(peer, keys)
            if work:
                self.queue.append((name, peer, work))

    def run(self, limit: int = 100_000) -> None:
        while self.queue:
            self.delivered += 1
            assert self.delivered < limit, "routing did not converge (a loop?)"
            src, dst, work = self.queue.popleft()
            if dst not in self.speakers or src not in self.speakers[dst].links:
                continue
            table = self.speakers[dst].table
            changes: list[BestChange] = []
            family: Family
            for family, prefixes in work.withdraw.items():
                changes += table.receive(src, family, (), None, b"", prefixes)
            for (family, exported), prefixes in work.announce.items():
                changes += table.receive(src, family, prefixes, exported.attrs, exported.next_hop)
            self.propagate(dst, changes)


def prefixes(*texts: str) -> list[Prefix]:
    return [make_prefix(t) for t in texts]
