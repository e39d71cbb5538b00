"""A captured exchange with Debian's BIRD 2 on loopback: our OPEN (made by this codec) goes out
on a plain socket, BIRD's OPEN, KEEPALIVE and UPDATE bytes come back and are decoded
(RFC 4271 §4.2-4.4, §8: OpenSent -> OpenConfirm -> Established). BIRD also accepts an UPDATE
encoded by us, checked with `birdc show route`.

Addresses: BIRD on 127.0.3.1, the test on 127.0.3.2, a free high port. See
/work/shared/reference/peers-on-loopback.md for the BIRD settings (multihop, strict bind, the
IGP table that makes 127/8 next hops resolvable).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bgpd.wire import (
    KEEPALIVE_MESSAGE,
    Framer,
    Keepalive,
    Message,
    Notification,
    Open,
    PathAttributes,
    Update,
    decode_message,
    encode_message,
    format_prefix,
    make_prefix,
    negotiate,
)
from bgpd.wire.capabilities import FourOctetAs, Multiprotocol, RouteRefreshCapability
from bgpd.wire.context import DEFAULT

BIRD_ADDR = "127.0.3.1"
OUR_ADDR = "127.0.3.2"
BIRD_AS = 65001
OUR_AS = 4_200_000_002  # a 4-octet AS: exercises AS_TRANS in the OPEN (RFC 6793 §4.1)
DEADLINE = 20.0

CONFIG = """
log stderr all;
router id {bird};
ipv4 table igptab;
protocol device {{ }}
protocol static igp_default {{
    ipv4 {{ table igptab; }};
    route 0.0.0.0/0 via "lo";
}}
protocol static announced {{
    ipv4;
    route 10.99.0.0/24 blackhole;
    route 10.99.1.0/24 blackhole;
}}
protocol bgp tabby {{
    local {bird} port {port} as {bird_as};
    neighbor {ours} as {our_as};
    strict bind yes;
    multihop;
    passive on;
    hold time 90;
    ipv4 {{
        import all;
        export where proto = "announced";
        igp table igptab;
    }};
}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((BIRD_ADDR, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def bird(tmp: Path) -> Iterator[tuple[int, Path]]:
    port = _free_port()
    conf = tmp / "bird.conf"
    sock = tmp / "bird.ctl"
    conf.write_text(
        CONFIG.format(bird=BIRD_ADDR, ours=OUR_ADDR, port=port, bird_as=BIRD_AS, our_as=OUR_AS)
    )
    log = (tmp / "bird.log").open("wb")
    proc = subprocess.Popen(
        ["bird", "-f", "-c", str(conf), "-s", str(sock), "-P", str(tmp / "bird.pid")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield port, sock
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        log.close()


def _connect(port: int) -> socket.socket:
    """Connect from OUR_ADDR; BIRD needs a moment to bind, so retry until the deadline."""
    end = time.monotonic() + DEADLINE
    while True:
        try:
            return socket.create_connection(
                (BIRD_ADDR, port), timeout=2, source_address=(OUR_ADDR, 0)
            )
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def _read_until(conn: socket.socket, framer: Framer, want: int, frames: list[bytes]) -> None:
    end = time.monotonic() + DEADLINE
    while len(frames) < want and time.monotonic() < end:
        while (f := framer.next_frame()) is not None:
            frames.append(f)
        if len(frames) >= want:
            break
        try:
            data = conn.recv(65536)
        except TimeoutError:
            continue
        assert data, "BIRD closed the connection"
        framer.feed(data)


@pytest.mark.debian("bird")
def test_bird2_exchange_decodes(tmp_path: Path) -> None:
    with bird(tmp_path) as (port, ctl):
        conn = _connect(port)
        try:
            ours = Open.build(
                OUR_AS,
                90,
                int(ipaddress.IPv4Address(OUR_ADDR)),
                (Multiprotocol(1, 1), RouteRefreshCapability(), FourOctetAs(OUR_AS)),
            )
            conn.sendall(encode_message(ours, DEFAULT))
            framer = Framer(DEFAULT)
            frames: list[bytes] = []
            _read_until(conn, framer, 1, frames)
            theirs = decode_message(frames[0], DEFAULT)
            assert isinstance(theirs, Open), theirs
            assert (theirs.asn, theirs.bgp_id, theirs.hold_time) == (
                BIRD_AS,
                int(ipaddress.IPv4Address(BIRD_ADDR)),
                90,
            )
            assert FourOctetAs(BIRD_AS) in theirs.capabilities
            assert Multiprotocol(1, 1) in theirs.capabilities
            ctx = negotiate(ours.capabilities, theirs.capabilities)
            assert ctx.four_octet_as
            framer.context = ctx
            conn.sendall(encode_message(KEEPALIVE_MESSAGE, ctx))

            # Read until both static routes arrived.
            seen: set[bytes] = set()
            msgs: list[Message] = []
            end = time.monotonic() + DEADLINE
            done = 1  # frames[0] was the OPEN
            while len(seen) < 2 and time.monotonic() < end:
                if done == len(frames):
                    _read_until(conn, framer, len(frames) + 1, frames)
                msg = decode_message(frames[done], ctx)
                done += 1
                msgs.append(msg)
                if isinstance(msg, Update):
                    seen.update(msg.nlri)
                    # The captured bytes decode back to themselves through our encoder.
                    assert decode_message(encode_message(msg, ctx), ctx) == msg
            assert any(isinstance(m, Keepalive) for m in msgs)
            assert seen == {make_prefix("10.99.0.0/24"), make_prefix("10.99.1.0/24")}
            update = next(m for m in msgs if isinstance(m, Update) and m.nlri)
            attrs = update.attributes
            assert attrs is not None and update.malformations == ()
            assert attrs.as_path == ((2, (BIRD_AS,)),)
            assert attrs.next_hop == ipaddress.IPv4Address(BIRD_ADDR).packed

            # And BIRD accepts an UPDATE encoded by us (4-octet AS path, communities).
            ours_update = Update(
                attributes=PathAttributes(
                    origin=0,
                    as_path=((2, (OUR_AS, 64512)),),
                    next_hop=ipaddress.IPv4Address(OUR_ADDR).packed,
                    communities=((65000 << 16) | 42,),
                ),
                nlri=(make_prefix("10.98.0.0/24"),),
            )
            conn.sendall(encode_message(ours_update, ctx))
            route = format_prefix(make_prefix("10.98.0.0/24"))
            end = time.monotonic() + DEADLINE
            out = ""
            while time.monotonic() < end:
                out = subprocess.run(
                    ["birdc", "-s", str(ctl), "show", "route", route, "all"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                    check=False,
                ).stdout
                if "4200000002 64512" in out:
                    break
                conn.sendall(encode_message(KEEPALIVE_MESSAGE, ctx))
                time.sleep(0.2)
            assert "4200000002 64512" in out, out
            assert "(65000,42)" in out, out
            conn.sendall(encode_message(Notification.shutdown("test done"), ctx))
        finally:
            conn.close()
