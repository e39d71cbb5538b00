"""Recorded concurrent histories against a 3-member cluster, checked for linearizability
(issue 6 "Tests": histories checked by a Porcupine-style checker, operations with unknown
outcome allowed; CI runs a bounded number of schedules, `TABBY_STORE_SCHEDULES=N` hunts more).

Each schedule: 6 clients, each bound to the members in a different order (so reads go through
followers and writes are forwarded), do seeded random puts and linearizable gets on 3 keys while
the leader is killed with SIGKILL once and restarted."""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from collections.abc import Callable

import pytest

from store.client import StoreUnavailableError
from tests.store.server.cluster import Cluster
from tests.store.server.lincheck import Op, check_history

pytestmark = pytest.mark.slow

SCHEDULES = int(os.environ.get("TABBY_STORE_SCHEDULES", "1"))
KEYS = [b"/lin/a", b"/lin/b", b"/lin/c"]


async def _schedule(c: Cluster, seed: int) -> list[Op]:
    rng = random.Random(seed)
    history: list[Op] = []
    leader = await c.wait_leader()
    done = 0
    kill_at = rng.randrange(60, 120)
    killed = False

    async def worker(client_id: int) -> None:
        nonlocal done, killed
        order = c.ids[client_id % 3 :] + c.ids[: client_id % 3]
        kv = c.client(order, timeout=8.0)
        wrng = random.Random(seed * 100 + client_id)
        try:
            for n in range(40):
                key = wrng.choice(KEYS)
                start = time.monotonic()
                if wrng.random() < 0.5:
                    value = b"%d-%d" % (client_id, n)
                    try:
                        await kv.put(key, value)
                        history.append(Op(client_id, key, "put", value, start, time.monotonic()))
                    except StoreUnavailableError:
                        history.append(Op(client_id, key, "put", value, start, math.inf))
                else:
                    try:
                        r = await kv.range(key)
                    except StoreUnavailableError:
                        continue  # a failed read has no effect
                    got = r.kvs[0].value if r.kvs else None
                    history.append(Op(client_id, key, "get", got, start, time.monotonic()))
                done += 1
                if done >= kill_at and not killed:
                    killed = True
                    c.kill(leader)
                    c.start(leader)
        finally:
            await kv.close()

    await asyncio.gather(*(worker(i) for i in range(6)))
    assert killed
    return history


@pytest.mark.parametrize("seed", range(SCHEDULES))
async def test_history_with_leader_crash_is_linearizable(
    make_cluster: Callable[..., Cluster], seed: int
) -> None:
    c = make_cluster(3)
    c.start_all()
    history = await _schedule(c, seed)
    acknowledged = [op for op in history if op.ret != math.inf]
    assert len(acknowledged) > 100
    assert check_history(history) == []
