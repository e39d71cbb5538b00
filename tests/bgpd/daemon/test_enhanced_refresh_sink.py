"""RFC 7313 §4 in the routing shell, both directions, with fake sessions:
- answering a ROUTE-REFRESH from a peer that negotiated enhanced route refresh: BoRR, the
  table, EoRR (no End-of-RIB); without it: the table and End-of-RIB (RFC 2918 as before);
- the peer's BoRR makes its routes of the family stale: what it re-sends before EoRR stays
  (without a flap toward other peers), the rest is withdrawn at EoRR, or when the bounded
  stale timer runs out."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field

from bgpd.core.effects import DownKind, DownReason
from bgpd.daemon.routing import RoutingSink
from bgpd.wire.context import IPV4_UNICAST
from bgpd.wire.messages import REFRESH_BORR, REFRESH_EORR, Update
from tests.bgpd.routing_interop.test_sink import (
    FakeSender,
    announcement,
    negotiated,
    peer,
    sink_with_peers,
)


@dataclass
class RefreshSender(FakeSender):
    """A fake session that can send ROUTE-REFRESH too; `log` keeps the order of everything."""

    log: list[str] = field(default_factory=list)

    def send_encoded(self, data: bytes) -> None:
        super().send_encoded(data)
        self.log.append("update")

    def send_update(self, update: Update) -> None:
        super().send_update(update)
        self.log.append("eor" if update.end_of_rib is not None else "update")

    def send_route_refresh(self, afi: int, safi: int, subtype: int = 0) -> bool:
        self.log.append({REFRESH_BORR: "borr", REFRESH_EORR: "eorr"}.get(subtype, "refresh"))
        return True


def _up(sink: RoutingSink, n: int, err: bool) -> RefreshSender:
    out = RefreshSender()
    neg = dataclasses.replace(negotiated(n), enhanced_route_refresh=err)
    sink.on_session_up(peer(n), neg, out)
    out.log.clear()
    out.sent.clear()
    return out


def test_rfc7313_4_refresh_answer_is_bracketed_by_borr_and_eorr() -> None:
    sink, _ = sink_with_peers()
    sink.announce("10.100.0.0/24")
    out = _up(sink, 1, err=True)
    sink.on_route_refresh(peer(1), 1, 1, out)
    assert out.log == ["borr", "update", "eorr"]
    assert [p for u in out.decoded() for p in u.nlri] == [b"\x18\x0a\x64\x00"]


def test_rfc2918_refresh_answer_without_enhanced_ends_with_end_of_rib() -> None:
    sink, _ = sink_with_peers()
    sink.announce("10.100.0.0/24")
    out = _up(sink, 1, err=False)
    sink.on_route_refresh(peer(1), 1, 1, out)
    assert out.log == ["update", "eor"]


def test_rfc7313_4_borr_marks_stale_eorr_sweeps_what_was_not_resent() -> None:
    sink, senders = sink_with_peers(2)
    _up(sink, 1, err=True)
    first = announcement(1, 5)
    sink.on_update(peer(1), first)
    senders[2].sent.clear()
    sink.on_refresh_begin(peer(1), 1, 1)
    # The peer re-sends three of its five prefixes (same attributes): nothing changes for
    # peer 2 yet, the routes are not withdrawn and re-announced (no flap).
    sink.on_update(peer(1), first._replace(nlri=first.nlri[:3]))
    assert senders[2].sent == []
    assert sink.rib()["total"] == 5
    sink.on_refresh_end(peer(1), 1, 1)
    assert sink.rib()["total"] == 3
    withdrawn = {p for u in senders[2].decoded() for p in u.withdrawn}
    assert withdrawn == set(first.nlri[3:])
    assert sink.stats.refreshes_in == 1


async def test_rfc7313_4_stale_routes_go_when_eorr_never_comes() -> None:
    sink, _ = sink_with_peers()
    sink.refresh_stale_time = 30.0
    _up(sink, 1, err=True)
    sink.on_update(peer(1), announcement(1, 4))
    sink.on_refresh_begin(peer(1), 1, 1)
    key = (next(iter(sink.sessions)), IPV4_UNICAST)
    timer = sink._refresh_timers[key]
    assert abs(timer.when() - asyncio.get_running_loop().time() - 30.0) < 1.0
    sink._end_refresh(*key, "timeout")  # what the timer calls
    assert sink.rib()["total"] == 0
    assert not sink._refresh_timers and not sink._refreshing


def test_rfc7313_4_session_down_forgets_the_refresh() -> None:
    sink, _ = sink_with_peers()
    _up(sink, 1, err=True)
    sink.on_update(peer(1), announcement(1, 2))
    sink.on_refresh_begin(peer(1), 1, 1)
    sink.on_session_down(peer(1), DownReason(DownKind.PEER_CLOSED, 0.0))
    assert not sink._refreshing
    sink.on_refresh_end(peer(1), 1, 1)  # late: nothing to do
