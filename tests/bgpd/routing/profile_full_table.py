"""By hand, not a test: RoutingTable cost for a full table (issue 5's 1M-prefix shape).

One eBGP tester peer announces N IPv4 /24s sharing one attribute set, in
batches as UPDATE packing would deliver them; each batch is decided and re-advertised to one
eBGP monitor peer (receive + outgoing), then everything is withdrawn the same way; then
the table is learned again and the tester's session goes down.

    .venv/bin/python -m tests.bgpd.routing.profile_full_table [N] [--profile]
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time

from bgpd.core.routing.paths import RoutingPeer
from bgpd.core.routing.table import RoutingTable
from bgpd.wire.attributes import AS_SEQUENCE, PathAttributes
from bgpd.wire.context import IPV4_UNICAST
from bgpd.wire.prefix import Prefix

BATCH = 800  # about what one 4096-octet UPDATE carries for /24s


def prefixes(n: int) -> list[Prefix]:
    return [bytes((24, 1 + (i >> 16), (i >> 8) & 0xFF, i & 0xFF)) for i in range(n)]


def run(n: int) -> None:
    table = RoutingTable(0x7F000001, 65000)
    for pid, asn, last in (("tester", 65001, 2), ("monitor", 65002, 3)):
        table.add_peer(
            RoutingPeer(
                id=pid,
                name=pid,
                local_as=65000,
                remote_as=asn,
                router_id=last,
                address=bytes((127, 0, 0, last)),
                local_address=bytes((127, 0, 0, 1)),
                families=(IPV4_UNICAST,),
            )
        )
    attrs = PathAttributes(origin=0, as_path=((AS_SEQUENCE, (65001,)),), next_hop=bytes(4))
    nlri = prefixes(n)
    nh = bytes((127, 0, 0, 2))
    t0, c0 = time.perf_counter(), time.process_time()
    sent = 0
    for i in range(0, n, BATCH):
        changes = table.receive("tester", IPV4_UNICAST, nlri[i : i + BATCH], attrs, nh)
        work = table.outgoing("monitor", [c.key for c in changes])
        sent += sum(len(v) for v in work.announce.values())
    t1, c1 = time.perf_counter(), time.process_time()
    gone = 0
    for i in range(0, n, BATCH):
        changes = table.receive("tester", IPV4_UNICAST, (), None, b"", nlri[i : i + BATCH])
        work = table.outgoing("monitor", [c.key for c in changes])
        gone += sum(len(v) for v in work.withdraw.values())
    t2, c2 = time.perf_counter(), time.process_time()
    assert sent == n and gone == n, (sent, gone)
    # The tester's session drops with the table in place (no graceful restart).
    for i in range(0, n, BATCH):
        changes = table.receive("tester", IPV4_UNICAST, nlri[i : i + BATCH], attrs, nh)
        table.outgoing("monitor", [c.key for c in changes])
    t3, c3 = time.perf_counter(), time.process_time()
    changes = table.remove_peer("tester")
    work = table.outgoing("monitor", [c.key for c in changes])
    t4, c4 = time.perf_counter(), time.process_time()
    assert sum(len(v) for v in work.withdraw.values()) == n
    print(f"N={n}: session down {t4 - t3:.2f} s ({c4 - c3:.2f} s CPU)")
    print(
        f"N={n}: announce+re-advertise {t1 - t0:.2f} s ({c1 - c0:.2f} s CPU), "
        f"withdraw {t2 - t1:.2f} s ({c2 - c1:.2f} s CPU)"
    )


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 1_000_000
    if "--profile" in sys.argv:
        cProfile.run("run(count)", "/tmp/routing_profile.out")
        pstats.Stats("/tmp/routing_profile.out").sort_stats("tottime").print_stats(12)
    else:
        run(count)
