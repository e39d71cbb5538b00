"""CPU cost of the pure Raft core: 3 nodes in one process, a perfect network and no disk.

    .venv/bin/python -m tests.store.raft.bench_core BATCH ROUNDS

Each round proposes BATCH entries of 256 bytes on the leader and pumps every Ready until the
cluster is quiet (every entry committed and applied on all three). Prints entries per second:
the ceiling the core alone puts on a server, before WAL, transport and KV costs. Not collected
by pytest (no test_ prefix) and asserts nothing about speed.
"""

from __future__ import annotations

import random
import sys
import time

from store.raft import Config, RaftNode, bootstrap


def main(argv: list[str]) -> int:
    batch, rounds = int(argv[1]), int(argv[2])
    nodes = {i: RaftNode(Config(id=i), bootstrap([1, 2, 3]), random.Random(i)) for i in (1, 2, 3)}

    def pump() -> None:
        busy = True
        while busy:
            busy = False
            for node in nodes.values():
                if node.has_ready():
                    busy = True
                    rd = node.ready()
                    node.advance(rd)
                    for m in rd.messages:
                        nodes[m.dst].step(m)

    pump()
    nodes[1].campaign()
    pump()
    leader = nodes[1]
    assert leader.is_leader
    start = time.perf_counter()
    for _ in range(rounds):
        leader.propose_batch([b"x" * 256] * batch)
        pump()
    elapsed = time.perf_counter() - start
    applied = min(n.applied_index for n in nodes.values())
    print(
        f"batch={batch}: {batch * rounds / elapsed:,.0f} entries/s on 3 nodes "
        f"({elapsed * 1e6 / rounds:.0f} us per round; applied {applied} everywhere)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
