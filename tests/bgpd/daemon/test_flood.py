"""Keepalives are never delayed by a flooding peer (issue 4; ExaBGP #533/#652 failure mode).

One peer floods 500,000 IPv4 prefixes (many per UPDATE, a new AS_PATH every 1,000) while a second
session with hold time 3 s must stay Established: input is consumed in bounded slices with the
loop yielding between them, and per-peer input is bounded with TCP backpressure.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from pathlib import Path

import pytest

from bgpd.core.events import State
from bgpd.daemon.sink import CountingSink, PeerInfo
from bgpd.wire.attributes import PathAttributes
from bgpd.wire.capabilities import Multiprotocol
from bgpd.wire.codec import encode_message
from bgpd.wire.context import AFI_IPV4, DEFAULT, SAFI_UNICAST, WireContext
from bgpd.wire.framer import Framer
from bgpd.wire.messages import KEEPALIVE_MESSAGE, Open, Update
from bgpd.wire.prefix import Prefix
from bgpd.wire.update import pack_updates
from tests.bgpd.daemon.conftest import SpeakerFactory, config, free_port, peer, wait_for

A, B, FLOODER = "127.0.0.2", "127.0.0.3", "127.0.0.5"
PREFIXES = 500_000
PER_PATH = 1_000


def flood_messages(ctx: WireContext) -> list[bytes]:
    base = int(ipaddress.IPv4Address("11.0.0.0")) >> 8
    out: list[bytes] = []
    for start in range(0, PREFIXES, PER_PATH):
        prefixes: list[Prefix] = [
            bytes((24,)) + ((base + i) << 8).to_bytes(4, "big")[:3]
            for i in range(start, start + PER_PATH)
        ]
        attrs = PathAttributes(
            origin=0,
            as_path=((2, (65010, 4200000000 + start // PER_PATH)),),  # never our AS
            next_hop=ipaddress.IPv4Address(FLOODER).packed,
        )
        out.extend(pack_updates(attrs, prefixes, ctx, afi=AFI_IPV4, safi=SAFI_UNICAST))
    out.append(encode_message(Update(), ctx))  # End-of-RIB (RFC 4724 §2)
    return out


async def flooder(address: str, port: int, flood: list[bytes], done: asyncio.Event) -> None:
    reader, writer = await asyncio.open_connection(address, port, local_addr=(FLOODER, 0))
    try:
        my_open = Open.build(65010, 90, int(ipaddress.IPv4Address(FLOODER)), (Multiprotocol(1, 1),))
        writer.write(encode_message(my_open, DEFAULT))
        framer = Framer(DEFAULT)
        while True:
            framer.feed(await reader.read(4096))
            msgs = list(framer)
            if any(isinstance(m, Open) for m in msgs):
                break
        ctx = WireContext(four_octet_as=True)
        writer.write(encode_message(KEEPALIVE_MESSAGE, ctx))
        for data in flood:
            writer.write(data)
            if writer.transport.get_write_buffer_size() > 1 << 20:
                await writer.drain()
        await writer.drain()

        async def keepalives() -> None:
            while True:
                writer.write(encode_message(KEEPALIVE_MESSAGE, ctx))
                await asyncio.sleep(10)

        ka = asyncio.create_task(keepalives())
        try:
            while not done.is_set():
                if not await reader.read(65536):
                    break
        finally:
            ka.cancel()
    finally:
        writer.close()


PER_PREFIX = 50e-6  # seconds of sink work per prefix: a 256 KiB read costs > 3 s unsliced


class SlowSink(CountingSink):
    """Counts like the default sink but spends per-prefix time like a busy RIB would, so that
    processing one socket read without yielding would outlast a 3 s hold time."""

    def on_update(self, peer: PeerInfo, update: Update) -> None:
        super().on_update(peer, update)
        end = time.perf_counter() + PER_PREFIX * len(update.nlri)
        while time.perf_counter() < end:
            pass


@pytest.mark.slow
async def test_flood_of_500k_prefixes_does_not_starve_a_hold_time_3_session(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    pa, pb = free_port(A), free_port(B)
    a = await speakers(
        config(
            tmp_path,
            A,
            pa,
            [
                peer(B, pb, local_address=A, hold_time=3),
                peer(FLOODER, 179, local_address=A, remote_as=65010, hold_time=90, passive=True),
            ],
        ),
        sink=SlowSink(),
    )
    b = await speakers(config(tmp_path, B, pb, [peer(A, pa, local_address=B, hold_time=3)]))
    rab = a.peers[(B, A, pb)]
    rflood = a.peers[(FLOODER, A, 179)]
    (rba,) = b.peers.values()
    await wait_for(
        lambda: rab.core.state is State.ESTABLISHED and rba.core.state is State.ESTABLISHED
    )
    flood = flood_messages(WireContext(four_octet_as=True))  # built before the clock starts
    done = asyncio.Event()
    started = time.monotonic()
    task = asyncio.create_task(flooder(A, pa, flood, done))
    try:
        await wait_for(
            lambda: a.sink.prefix_counts(rflood.config.key).get("ipv4", 0) >= PREFIXES,
            timeout=80,  # ~28 s on an idle machine; generous for a loaded CI host
        )
        elapsed = time.monotonic() - started
        await asyncio.sleep(1.0)  # one more keepalive interval after the flood
    finally:
        done.set()
        task.cancel()
    assert a.sink.prefix_counts(rflood.config.key)["ipv4"] == PREFIXES
    # The hold-time-3 session never went down during the flood, on either side.
    assert rab.core.state is State.ESTABLISHED and rba.core.state is State.ESTABLISHED
    assert rab.core.primary.established_count == 1 and rba.core.primary.established_count == 1
    assert rab.last_down is None and rba.last_down is None
    print(
        f"\nflood: {PREFIXES} prefixes in {rflood.updates_received} UPDATEs took {elapsed:.2f}s "
        f"({PREFIXES / elapsed:,.0f} prefixes/s); backpressure pauses: {rflood.pauses}"
    )
