"""Policy reloads on the routing shell with fake sessions (no sockets), against a from-scratch
oracle: after any sequence of announcements, withdrawals and reloads that change a peer's
import or export policy, what the export peer holds (replaying every UPDATE it was sent) and
the Loc-RIB equal what a fresh speaker with the final configuration gives. The import side
relies on the peer answering our ROUTE-REFRESH (RFC 2918), which the fake peer does."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bgpd.core.negotiation import Negotiated
from bgpd.daemon.config import BgpdConfig
from bgpd.daemon.routing import RoutingSink
from bgpd.daemon.sink import PeerInfo
from bgpd.wire.attributes import AS_SEQUENCE, PathAttributes
from bgpd.wire.context import IPV4_UNICAST, WireContext
from bgpd.wire.messages import Update
from bgpd.wire.prefix import Prefix, make_prefix
from bgpd.wire.update import decode_update
from runtime.config import from_mapping

CTX = WireContext(four_octet_as=True)
SOURCE, TARGET = 1, 2
PREFIXES = [
    make_prefix(p)
    for x in range(3)
    for p in (f"10.244.{x}.0/26", f"10.244.{x}.5/32", f"192.168.{x}.0/24")
]
TAG = 65001 << 16 | 1

POOLS = {"name": "pools", "prefixes": [{"prefix": "10.244.0.0/16", "le": 26}]}
EXPORTS: list[dict[str, Any] | None] = [
    None,
    {"terms": [{"prefix_lists": ["pools"], "action": "accept"}]},
    {
        "terms": [
            {
                "prefix_lists": ["pools"],
                "set_med": 7,
                "add_communities": ["1:1"],
                "action": "accept",
            }
        ]
    },
    {"default": "accept", "terms": [{"communities": ["65001:1"], "action": "reject"}]},
]
IMPORTS: list[dict[str, Any] | None] = [
    None,
    {"default": "accept", "terms": [{"prefix_lists": ["pools"], "set_local_pref": 200}]},
    {"default": "accept", "terms": [{"communities": ["65001:1"], "action": "reject"}]},
    {"default": "accept", "terms": [{"remove_communities": ["65001:1"]}]},
]


def config(imp: int, exp: int) -> BgpdConfig:
    policies = []
    peers: list[dict[str, Any]] = []
    for n, chosen, which in ((SOURCE, IMPORTS[imp], "import"), (TARGET, EXPORTS[exp], "export")):
        entry: dict[str, Any] = {"address": f"127.0.0.{n}", "remote_as": 65000 + n}
        if chosen is not None:
            policies.append({"name": which, **chosen})
            entry[f"{which}_policy"] = which
        peers.append(entry)
    data = {
        "router_id": "127.0.0.100",
        "local_as": 65000,
        "prefix_lists": [POOLS],
        "policies": policies,
        "peers": peers,
    }
    return from_mapping(BgpdConfig, data)


def info(n: int) -> PeerInfo:
    return PeerInfo(
        key=(f"127.0.0.{n}", "", 179),
        name=f"p{n}",
        peer_type="global",
        local_as=65000,
        remote_as=65000 + n,
        local_address="127.0.0.100",
        rr_client=False,
        next_hop="auto",
    )


def negotiated(n: int) -> Negotiated:
    return Negotiated(
        remote_as=65000 + n,
        remote_id=0x7F000000 + n,
        hold_time=90,
        keepalive_time=30.0,
        families=(IPV4_UNICAST,),
        four_octet_as=True,
        route_refresh=True,
        enhanced_route_refresh=False,
        extended_message=False,
        graceful_restart=None,
        context=CTX,
    )


@dataclass
class FakePeer:
    """One peer's end: replays what it is sent into its own table; answers ROUTE-REFRESH by
    re-sending its announcements through `resend`."""

    context: WireContext = CTX
    table: dict[Prefix, PathAttributes] = field(default_factory=dict)
    refreshes: int = 0
    can_refresh: bool = True  # whether the session negotiated route refresh

    def send_update(self, update: Update) -> None:
        self._apply(update)

    def send_encoded(self, data: bytes) -> None:
        self._apply(decode_update(data, self.context))

    def send_route_refresh(self, afi: int, safi: int, subtype: int = 0) -> bool:
        self.refreshes += self.can_refresh
        return self.can_refresh

    def _apply(self, update: Update) -> None:
        for p in update.withdrawn:
            self.table.pop(p, None)
        if update.attributes is not None:
            for p in update.nlri:
                self.table[p] = update.attributes


def announce(sink: RoutingSink, prefix: Prefix, med: int, tagged: bool) -> None:
    attrs = PathAttributes(
        origin=0,
        as_path=((AS_SEQUENCE, (65000 + SOURCE,)),),
        next_hop=socket.inet_aton(f"127.0.0.{SOURCE}"),
        med=med,
        communities=(TAG,) if tagged else (),
    )
    sink.on_update(info(SOURCE), Update(attributes=attrs, nlri=(prefix,)))


def start(cfg: BgpdConfig, can_refresh: bool = True) -> tuple[RoutingSink, FakePeer, FakePeer]:
    sink = RoutingSink(cfg)
    source, target = FakePeer(can_refresh=can_refresh), FakePeer()
    neg = negotiated(SOURCE)
    sink.on_session_up(info(SOURCE), replace(neg, route_refresh=can_refresh), source)
    sink.on_session_up(info(TARGET), negotiated(TARGET), target)
    return sink, source, target


def loc_rib(sink: RoutingSink) -> dict[str, tuple[Any, ...]]:
    routes: list[dict[str, Any]] = sink.rib()["routes"]  # type: ignore[assignment]
    return {
        r["prefix"]: (r["local_pref"], r["med"], tuple(r["communities"]), r["source"])
        for r in routes
    }


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("announce"),
            st.integers(0, len(PREFIXES) - 1),
            st.integers(0, 3),
            st.booleans(),
        ),
        st.tuples(st.just("withdraw"), st.integers(0, len(PREFIXES) - 1)),
        st.tuples(st.just("export"), st.integers(0, len(EXPORTS) - 1)),
        st.tuples(st.just("import"), st.integers(0, len(IMPORTS) - 1)),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, len(IMPORTS) - 1), st.integers(0, len(EXPORTS) - 1), ops)
def test_reloaded_policies_leave_the_same_state_as_a_fresh_start(
    imp: int, exp: int, steps: list[tuple[Any, ...]]
) -> None:
    sink, source, target = start(config(imp, exp))
    held: dict[Prefix, tuple[int, bool]] = {}  # what the source peer announces now
    for step in steps:
        if step[0] == "announce":
            _, i, med, tagged = step
            held[PREFIXES[i]] = (med, tagged)
            announce(sink, PREFIXES[i], med, tagged)
        elif step[0] == "withdraw":
            if held.pop(PREFIXES[step[1]], None) is not None:
                sink.on_update(info(SOURCE), Update(withdrawn=(PREFIXES[step[1]],)))
        else:
            imp, exp = (step[1], exp) if step[0] == "import" else (imp, step[1])
            before = source.refreshes
            sink.reconfigure(config(imp, exp))
            if source.refreshes > before:  # the source peer answers the ROUTE-REFRESH
                for prefix, (med, tagged) in held.items():
                    announce(sink, prefix, med, tagged)

    fresh, _, fresh_target = start(config(imp, exp))
    for prefix, (med, tagged) in held.items():
        announce(fresh, prefix, med, tagged)
    assert loc_rib(sink) == loc_rib(fresh)
    assert target.table == fresh_target.table


@settings(max_examples=40, deadline=None)
@given(ops, st.integers(1, len(IMPORTS) - 1), st.integers(0, 25), st.integers(0, len(EXPORTS) - 1))
def test_without_route_refresh_a_policy_replacing_accept_all_applies_to_held_routes(
    steps: list[tuple[Any, ...]], imp: int, at: int, exp: int
) -> None:
    """No ROUTE-REFRESH to ask for: the Adj-RIB-In, kept as received under accept-all, is
    passed through the new import policy in place."""
    steps = [s for s in steps if s[0] != "import"]
    steps.insert(min(at, len(steps)), ("import", imp))
    sink, source, target = start(config(0, exp), can_refresh=False)
    held: dict[Prefix, tuple[int, bool]] = {}
    current = 0
    for step in steps:
        if step[0] == "announce":
            _, i, med, tagged = step
            held[PREFIXES[i]] = (med, tagged)
            announce(sink, PREFIXES[i], med, tagged)
        elif step[0] == "withdraw":
            if held.pop(PREFIXES[step[1]], None) is not None:
                sink.on_update(info(SOURCE), Update(withdrawn=(PREFIXES[step[1]],)))
        else:
            current, exp = (step[1], exp) if step[0] == "import" else (current, step[1])
            sink.reconfigure(config(current, exp))
    assert source.refreshes == 0
    fresh, _, fresh_target = start(config(current, exp))
    for prefix, (med, tagged) in held.items():
        announce(fresh, prefix, med, tagged)
    assert loc_rib(sink) == loc_rib(fresh)
    assert target.table == fresh_target.table
