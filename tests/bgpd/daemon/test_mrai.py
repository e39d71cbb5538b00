"""MRAI (RFC 4271 §9.2.1.1) in the routing shell, per peer, with a fake clock: announcements
within the interval after the last burst are held and go out together (each prefix with what
the Adj-RIB-Out holds by then); withdrawals are never delayed; a prefix withdrawn while held is
not announced; 0 turns it off; the initial table is never held (End-of-RIB follows it)."""

from __future__ import annotations

import dataclasses

from bgpd.daemon.config import BgpdConfig, PeerConfig
from bgpd.daemon.routing import RoutingSink
from bgpd.wire.messages import Update
from tests.bgpd.routing_interop.test_sink import FakeSender, announcement, negotiated, peer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def setup(mrai: float) -> tuple[RoutingSink, Clock, FakeSender]:
    sink = RoutingSink(BgpdConfig(router_id="127.0.0.100", local_as=65000))
    clock = Clock()
    sink.clock = clock
    sink.on_session_up(peer(1), negotiated(1), FakeSender())
    out = FakeSender()
    sink.on_session_up(dataclasses.replace(peer(2), mrai=mrai), negotiated(2), out)
    out.sent.clear()
    return sink, clock, out


def nlri(out: FakeSender) -> list[bytes]:
    return [p for u in out.decoded() for p in u.nlri]


def withdrawn(out: FakeSender) -> list[bytes]:
    return [p for u in out.decoded() for p in u.withdrawn]


def test_rfc4271_9_2_1_1_announcements_within_the_interval_are_held_and_batched() -> None:
    sink, clock, out = setup(mrai=5.0)
    first = announcement(1, 3)
    sink.on_update(peer(1), Update(attributes=first.attributes, nlri=first.nlri[:1]))
    assert nlri(out) == [first.nlri[0]]  # the first burst goes at once
    out.sent.clear()
    clock.now += 1.0
    sink.on_update(peer(1), Update(attributes=first.attributes, nlri=first.nlri[1:2]))
    clock.now += 1.0
    sink.on_update(peer(1), Update(attributes=first.attributes, nlri=first.nlri[2:3]))
    assert out.sent == []
    clock.now += 2.9  # 4.9 s after the first burst
    sink.mrai_tick()
    assert out.sent == []
    clock.now += 0.1
    sink.mrai_tick()
    ups = out.decoded()
    assert len(ups) == 1 and sorted(ups[0].nlri) == sorted(first.nlri[1:])  # one UPDATE
    out.sent.clear()
    clock.now += 1.0  # the next one waits for 5 s after that burst
    sink.on_update(peer(1), announcement(1, 5))
    assert out.sent == []
    clock.now += 4.0
    sink.mrai_tick()
    assert len(nlri(out)) == 2  # the two prefixes that were new


def test_rfc4271_9_2_1_1_withdrawals_are_not_delayed_and_cancel_a_held_announcement() -> None:
    sink, clock, out = setup(mrai=5.0)
    a = announcement(1, 2)
    sink.on_update(peer(1), Update(attributes=a.attributes, nlri=a.nlri[:1]))
    out.sent.clear()
    clock.now += 1.0
    sink.on_update(peer(1), Update(attributes=a.attributes, nlri=a.nlri[1:]))  # held
    sink.on_update(peer(1), Update(withdrawn=a.nlri))  # both withdrawn at once
    assert sorted(withdrawn(out)) == sorted(a.nlri) and nlri(out) == []
    clock.now += 10.0
    out.sent.clear()
    sink.mrai_tick()
    assert out.sent == []  # the held one was withdrawn meanwhile: nothing to announce


def test_mrai_zero_is_off_and_a_full_table_is_never_held() -> None:
    sink, clock, out = setup(mrai=0.0)
    for n in range(3):
        a = announcement(1, n + 1)
        sink.on_update(peer(1), Update(attributes=a.attributes, nlri=a.nlri[n:]))
        clock.now += 0.1
    assert len(nlri(out)) == 3
    sink2, clock2, _ = setup(mrai=30.0)
    sink2.on_update(peer(1), announcement(1, 1))
    clock2.now += 1.0
    late = FakeSender()
    sink2.on_session_up(dataclasses.replace(peer(3), mrai=30.0), negotiated(3), late)
    assert len(nlri(late)) == 1 and any(u.end_of_rib for u in late.updates)


def test_reload_changes_the_interval_and_releases_what_is_due() -> None:
    sink, clock, out = setup(mrai=60.0)
    a = announcement(1, 2)
    sink.on_update(peer(1), Update(attributes=a.attributes, nlri=a.nlri[:1]))
    clock.now += 1.0
    sink.on_update(peer(1), Update(attributes=a.attributes, nlri=a.nlri[1:]))
    out.sent.clear()
    clock.now += 1.0
    cfg = BgpdConfig(
        router_id="127.0.0.100",
        local_as=65000,
        peers=[PeerConfig(address="127.0.0.2", remote_as=65002, mrai=1.0)],
    )
    sink.reconfigure(cfg)
    assert nlri(out) == [a.nlri[1]]
