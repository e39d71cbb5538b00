"""The restarting speaker end to end in one process, two tabby-bgpd speakers on loopback (no
Debian daemon needed): a run marker left by a "crashed" A makes A start as restarting (RFC 4724
§4.1): its OPEN carries R and F, it defers until B's End-of-RIB, then sends B its table and
End-of-RIB, and later OPENs carry R = 0; a clean stop removes the marker, `graceful_stop` keeps
it. B, the helper, sees A's R bit and keeps A's routes stale while A is away."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bgpd.core.events import State
from bgpd.core.negotiation import local_open
from bgpd.daemon.routing import RoutingSink
from bgpd.daemon.speaker import Speaker
from bgpd.wire.capabilities import GracefulRestart
from tests.bgpd.daemon.conftest import SpeakerFactory, config, free_port, peer, wait_for

A, B = "127.0.0.4", "127.0.0.5"


def gr_cap(sp: Speaker) -> GracefulRestart:
    (r,) = sp.peers.values()
    caps = local_open(r.core.params).capabilities
    return next(c for c in caps if isinstance(c, GracefulRestart))


def up(sp: Speaker) -> bool:
    return all(r.core.state is State.ESTABLISHED for r in sp.peers.values())


async def test_rfc4724_4_1_marker_left_by_a_crash_makes_the_next_start_a_restart(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    pa, pb = free_port(A), free_port(B)
    a_cfg = config(
        tmp_path,
        A,
        pa,
        [peer(B, pb, local_address=A, graceful_restart_time=60)],
        originate=["10.4.0.0/24"],
    )
    marker = a_cfg.marker_path()
    marker.write_text("left by a crashed bgpd\n")
    os.utime(marker, (time.time() - 3, time.time() - 3))  # it died 3 s ago
    b = await speakers(
        config(
            tmp_path,
            B,
            pb,
            [peer(A, pa, local_address=B, graceful_restart_time=60, passive=True)],
            originate=["10.5.0.0/24"],
        )
    )
    a = await speakers(a_cfg)
    assert a.restarting and a.downtime is not None and 3 <= a.downtime < 10
    cap = gr_cap(a)
    assert cap.restart_state and all(flags & 0x80 for _, _, flags in cap.families)
    await wait_for(lambda: up(a) and up(b))
    (rb,) = b.peers.values()
    neg = rb.core.primary.negotiated
    assert neg is not None and neg.peer_restarting  # B saw A's R bit
    sink = a.sink
    assert isinstance(sink, RoutingSink)
    await wait_for(lambda: not sink.deferring)
    status = a.restart_status()
    deferral = status["deferral"]
    assert isinstance(deferral, dict) and list(deferral["released"].values()) == ["end-of-rib"]
    bsink = b.sink
    assert isinstance(bsink, RoutingSink)
    await wait_for(lambda: bsink.rib(prefix="10.4.0.0/24")["total"] == 1)
    assert not gr_cap(a).restart_state  # later OPENs: R = 0
    (row,) = b.neighbors()  # B's view of A: A restarted, kept forwarding, N negotiated
    assert row["graceful_restart"] == {
        "peer_restart_time": 60,
        "peer_restarting": True,
        "peer_forwarding": ["ipv4-unicast"],
        "notification": True,
        "our_restarting": False,
        "our_forwarding": True,
    }
    assert marker.exists()
    await a.stop()
    assert not marker.exists()  # a clean stop: the next start is cold


async def test_graceful_stop_keeps_the_marker_and_the_helper_keeps_our_routes(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    pa, pb = free_port(A), free_port(B)
    a = await speakers(
        config(
            tmp_path,
            A,
            pa,
            [peer(B, pb, local_address=A, graceful_restart_time=60)],
            originate=["10.4.0.0/24"],
            graceful_stop=True,
        )
    )
    assert not a.restarting  # no marker before: a cold start
    b = await speakers(
        config(
            tmp_path,
            B,
            pb,
            [peer(A, pa, local_address=B, graceful_restart_time=60, passive=True)],
        )
    )
    bsink = b.sink
    assert isinstance(bsink, RoutingSink)
    await wait_for(lambda: up(a) and up(b) and bsink.rib(prefix="10.4.0.0/24")["total"] == 1)
    await a.stop()
    assert a.config.marker_path().exists()
    await wait_for(lambda: not up(b))
    route = bsink.rib(prefix="10.4.0.0/24")["routes"]
    assert isinstance(route, list) and route[0]["stale"] is True  # RFC 4724 §4.2 at B
    for timer in bsink.stale_timers.values():
        timer.cancel()
