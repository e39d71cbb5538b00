"""Unit tests of the routing shell `RoutingSink` with fake sessions (no sockets): UPDATE
propagation between eBGP peers (RFC 4271 §9.2: the best path goes to every other peer, never
back to the one it came from; AS_PATH prepend and next hop self, §5.1.2/§5.1.3), packing many
prefixes per UPDATE, full withdrawal, and RFC 4724 §4.2 stale marks
visible in the `rib` API while a restarting peer is away."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field

from bgpd.core.effects import DownKind, DownReason
from bgpd.core.negotiation import Negotiated
from bgpd.daemon.config import BgpdConfig
from bgpd.daemon.routing import RoutingSink
from bgpd.daemon.sink import PeerInfo
from bgpd.wire.attributes import AS_SEQUENCE, PathAttributes
from bgpd.wire.capabilities import GracefulRestart
from bgpd.wire.context import IPV4_UNICAST, WireContext
from bgpd.wire.messages import Update
from bgpd.wire.update import decode_update

CTX = WireContext(four_octet_as=True)


@dataclass
class FakeSender:
    context: WireContext = CTX
    sent: list[bytes] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)

    def send_update(self, update: Update) -> None:
        self.updates.append(update)

    def send_encoded(self, data: bytes) -> None:
        self.sent.append(data)

    def decoded(self) -> list[Update]:
        return [decode_update(d, self.context) for d in self.sent]


def peer(n: int) -> PeerInfo:
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


def negotiated(n: int, gr: bool = False) -> Negotiated:
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
        graceful_restart=GracefulRestart(restart_time=60) if gr else None,
        context=CTX,
    )


def announcement(n: int, count: int) -> Update:
    attrs = PathAttributes(
        origin=0,
        as_path=((AS_SEQUENCE, (65000 + n,)),),
        next_hop=socket.inet_aton(f"127.0.0.{n}"),
    )
    nlri = tuple(b"\x18" + (0x0A0000 + i).to_bytes(3, "big") for i in range(count))
    return Update(attributes=attrs, nlri=nlri)


def sink_with_peers(*ns: int, gr: bool = False) -> tuple[RoutingSink, dict[int, FakeSender]]:
    sink = RoutingSink(BgpdConfig(router_id="127.0.0.100", local_as=65000))
    senders = {}
    for n in ns:
        senders[n] = FakeSender()
        sink.on_session_up(peer(n), negotiated(n, gr), senders[n])
        senders[n].sent.clear()
    return sink, senders


def test_rfc4271_9_2_batch_goes_to_other_peers_packed_never_back_to_source() -> None:
    sink, out = sink_with_peers(1, 2, 3)
    sink.on_update(peer(1), announcement(1, 1000))
    assert out[1].sent == []  # not back to the peer it came from
    for n in (2, 3):
        ups = out[n].decoded()
        assert len(ups) in (1, 2)  # 1000 /24s fit in one or two 4,096-octet UPDATEs
        assert sum(len(u.nlri) for u in ups) == 1000
        a = ups[0].attributes
        assert a is not None and a.as_path == ((AS_SEQUENCE, (65000, 65001)),)  # §5.1.2
        assert a.next_hop == socket.inet_aton("127.0.0.100")  # §5.1.3 next hop self


def test_rfc4271_full_withdrawal_reaches_other_peers_and_nothing_goes_to_source() -> None:
    sink, out = sink_with_peers(1, 2)
    ann = announcement(1, 600)
    sink.on_update(peer(1), ann)
    out[2].sent.clear()
    sink.on_update(peer(1), Update(withdrawn=ann.nlri))
    assert out[1].sent == []
    assert sorted(p for u in out[2].decoded() for p in u.withdrawn) == sorted(ann.nlri)
    assert sink.rib()["total"] == 0


def test_rfc4271_9_1_better_path_from_second_peer_withdraws_from_it_and_updates_third() -> None:
    sink, out = sink_with_peers(1, 2, 3)
    sink.on_update(peer(1), announcement(1, 5))
    for s in out.values():
        s.sent.clear()
    # Peer 2 announces the same prefixes with a longer AS_PATH: peer 1's stay best, and
    # peer 2 now receives nothing new (it already has them from peer 1).
    longer = announcement(2, 5)
    assert longer.attributes is not None
    longer = longer._replace(
        attributes=longer.attributes._replace(as_path=((AS_SEQUENCE, (65002, 65009)),))
    )
    sink.on_update(peer(2), longer)
    assert all(s.sent == [] for s in out.values())
    # Peer 1 withdraws: peer 2's paths become best; peer 1 and 3 get them, peer 2 gets a
    # withdrawal of what it had been sent from peer 1.
    sink.on_update(peer(1), Update(withdrawn=longer.nlri))
    to2 = out[2].decoded()
    assert sorted(p for u in to2 for p in u.withdrawn) == sorted(longer.nlri)
    for n in (1, 3):
        ups = out[n].decoded()
        assert sorted(p for u in ups for p in u.nlri) == sorted(longer.nlri)
        a = ups[0].attributes
        assert a is not None and a.as_path == ((AS_SEQUENCE, (65000, 65002, 65009)),)


def test_rfc4724_4_2_stale_paths_are_marked_in_rib_while_peer_restarts() -> None:
    async def scenario() -> None:
        sink, _ = sink_with_peers(1, 2, gr=True)
        sink.on_update(peer(1), announcement(1, 3))
        sink.on_session_down(peer(1), DownReason(DownKind.PEER_CLOSED, at=0.0))
        rows = sink.rib()["routes"]
        assert isinstance(rows, list) and len(rows) == 3
        assert all(r["stale"] is True for r in rows)
        assert sink.stale_timers  # the restart timer runs
        for timer in sink.stale_timers.values():
            timer.cancel()

    asyncio.run(scenario())


def test_subscribe_snapshot_then_delta_rows_per_prefix_with_shared_attributes() -> None:
    sink, _ = sink_with_peers(1, 2)
    sink.on_update(peer(1), announcement(1, 3))
    got: list[dict[str, object]] = []

    def push(message: dict[str, object]) -> bool:
        got.append(message)
        return True

    sink.subscribe(push)
    assert got[0]["type"] == "snapshot"
    snap = got[0]["routes"]
    assert isinstance(snap, list) and len(snap) == 3
    ann = announcement(1, 500)
    sink.on_update(peer(1), Update(attributes=ann.attributes, nlri=ann.nlri[3:]))
    delta = got[1]
    assert delta["type"] == "delta" and delta["withdrawn"] == []
    rows = delta["routes"]
    assert isinstance(rows, list)
    assert sorted(r["prefix"] for r in rows) == sorted(
        f"10.{(i >> 8) & 255}.{i & 255}.0/24" for i in range(3, 500)
    )
    assert all(r["as_path"] == [[65001]] and r["next_hops"] == ["127.0.0.1"] for r in rows)
    sink.on_update(peer(1), Update(withdrawn=ann.nlri[:2]))
    gone = got[2]["withdrawn"]
    assert isinstance(gone, list) and sorted(gone) == ["10.0.0.0/24", "10.0.1.0/24"]


def test_rfc4271_9_2_mixed_batch_some_fall_back_to_other_peer_some_withdrawn() -> None:
    sink, out = sink_with_peers(1, 2, 3)
    sink.on_update(peer(1), announcement(1, 5))
    two = announcement(2, 3)
    assert two.attributes is not None
    longer = two._replace(
        attributes=two.attributes._replace(as_path=((AS_SEQUENCE, (65002, 65009)),))
    )
    sink.on_update(peer(2), longer)
    for s in out.values():
        s.sent.clear()
    everything = announcement(1, 5).nlri
    sink.on_update(peer(1), Update(withdrawn=everything))
    # Peer 3: three prefixes now via peer 2, two withdrawn. Peer 2: its three withdrawn (they
    # are its own now) and the other two withdrawn. Peer 1: gets peer 2's three.
    to3 = out[3].decoded()
    assert sorted(p for u in to3 for p in u.nlri) == sorted(longer.nlri)
    assert sorted(p for u in to3 for p in u.withdrawn) == sorted(everything[3:])
    to2 = out[2].decoded()
    assert sorted(p for u in to2 for p in u.withdrawn) == sorted(everything)
    assert not any(u.nlri for u in to2)
    to1 = out[1].decoded()
    assert sorted(p for u in to1 for p in u.nlri) == sorted(longer.nlri)


def test_rfc4271_9_2_api_announcement_and_withdrawal_reach_every_peer() -> None:
    sink, out = sink_with_peers(1, 2)
    sink.announce("10.99.0.0/24", (65000 << 16 | 7,))
    for n in (1, 2):
        (u,) = out[n].decoded()
        assert u.nlri == (b"\x18\x0a\x63\x00",)
        assert u.attributes is not None and u.attributes.communities == (65000 << 16 | 7,)
        out[n].sent.clear()
    assert sink.withdraw("10.99.0.0/24") is True
    for n in (1, 2):
        (u,) = out[n].decoded()
        assert u.withdrawn == (b"\x18\x0a\x63\x00",)


def test_rib_filter_exact_or_containing_prefix_source_and_pages() -> None:
    sink, _ = sink_with_peers(1, 2)
    sink.on_update(peer(1), announcement(1, 600))  # 10.0.0.0/24 .. 10.2.87.0/24
    sink.announce("10.1.0.0/16")
    sink.announce("fd00::/64")

    def prefixes(**kw: object) -> list[str]:
        rows = sink.rib(**kw)["routes"]  # type: ignore[arg-type]
        assert isinstance(rows, list)
        return [r["prefix"] for r in rows]

    assert prefixes(prefix="10.0.3.0/24") == ["10.0.3.0/24"]
    within = prefixes(prefix="10.1.0.0/16", limit=10_000)
    assert within[0] == "10.1.0.0/16" and len(within) == 1 + 256
    assert all(p.startswith("10.1.") for p in within)
    assert prefixes(prefix="10.0.0.0/8", limit=10_000).__len__() == 601
    assert prefixes(prefix="fd00::/16") == ["fd00::/64"]
    assert prefixes(prefix="11.0.0.0/8") == []
    assert prefixes(peer="local") == ["10.1.0.0/16", "fd00::/64"]
    assert len(prefixes(peer="p1", limit=10_000)) == 600
    page1 = sink.rib(limit=500)
    assert page1["total"] == 602 and page1["next_offset"] == 500
    page2 = sink.rib(offset=500, limit=500)
    assert page2["next_offset"] is None
    rows = [*page1["routes"], *page2["routes"]]  # type: ignore[misc]
    assert len({r["prefix"] for r in rows}) == 602
    # The cached order follows changes: a withdrawal is not listed any more.
    assert sink.withdraw("10.1.0.0/16") is True
    assert prefixes(prefix="10.1.0.0/16", limit=10_000)[0] == "10.1.0.0/24"
