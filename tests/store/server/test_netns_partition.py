"""Network partitions made by the kernel: each member in its own network namespace, peers over
TCP on a bridge, nftables drop rules cutting members apart (issue 6 "Tests": "a partitioned
minority and a partitioned leader (network namespaces with nftables drops ...)").

Unlike test_partition.py (the peer transport's drop hook), nothing in tabby-store knows about
the partition: packets vanish in the kernel, established TCP connections stall rather than
break, and healing relies on TCP retransmission. Clients reach every member through its Unix
socket (a path crosses namespaces), so a client can still talk to a cut-off member.

Checked while clients keep writing and reading: the majority elects a new leader and goes on,
the cut-off leader steps down (check-quorum) and can neither commit nor answer a linearizable
read, a cut-off follower cannot raise its term (pre-vote), every acknowledged write is on
every member after healing, and the recorded history is linearizable (lincheck.py).

Addresses are 192.0.2.0/24 (TEST-NET-1) inside namespaces the test creates and deletes.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from store.client import StoreClient, StoreUnavailableError, prefix_end
from tests.store.netns_bridge import Bridge
from tests.store.server.cluster import Cluster
from tests.store.server.lincheck import Op, check_history

pytestmark = [
    pytest.mark.slow,
    pytest.mark.root,
    pytest.mark.netns,
    pytest.mark.debian("nft"),
]

KEYS = [b"/np/a", b"/np/b", b"/np/c"]
# More leader-cut schedules (seeds) with TABBY_STORE_SCHEDULES=N, the hunt mode.
SCHEDULES = int(os.environ.get("TABBY_STORE_SCHEDULES", "1"))
PEER_PORT = 2380


class NetnsCluster(Cluster):
    """A Cluster whose member i runs in namespace i of a `Bridge`, peers over TCP."""

    def __init__(self, root: Path, n: int, tag: str, **settings: object) -> None:
        super().__init__(root, n, **settings)
        self.net = Bridge(tag, list(self.ids))
        self.peer = {i: f"tcp://{Bridge.address(i)}:{PEER_PORT}" for i in self.ids}

    def start(self, i: int, state: str = "new", cluster: list[int] | None = None) -> None:
        """As Cluster.start, inside member i's namespace (`ip netns exec` execs, so the PID
        is the member's own)."""
        cfg = self.write_config(i, state, cluster)
        log = open(self.root / f"m{i}.log", "ab")  # noqa: SIM115 - owned by the process
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("NOTIFY_SOCKET", None)
        self.procs[i] = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                self.net.ns[i],
                sys.executable,
                "-m",
                "store.main",
                "-c",
                str(cfg),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(Path(__file__).resolve().parents[3]),
        )
        log.close()

    def cut(self, isolated: list[int]) -> None:
        self.net.cut(isolated, self.ids)

    def heal(self) -> None:
        self.net.heal()

    def teardown(self) -> None:
        self.close()
        self.net.delete()


@pytest.fixture
def make_netns_cluster() -> Iterator[Callable[[int], NetnsCluster]]:
    made: list[tuple[NetnsCluster, Path]] = []

    def make(n: int) -> NetnsCluster:
        root = Path("/tmp") / f"tabby-np-{os.getpid() % 100000}-{random.randrange(10**6)}"
        root.mkdir()
        c = NetnsCluster(root, n, f"tbn{os.getpid() % 10000}{random.randrange(100)}")
        made.append((c, root))
        c.net.wire()
        c.start_all()
        return c

    yield make
    for c, root in made:
        c.teardown()
        subprocess.run(["rm", "-rf", str(root)], check=False)


class Load:
    """Clients writing and reading the registers in KEYS (recorded for lincheck) and unique
    keys (every acknowledged one must survive), until stopped; bounded in count."""

    def __init__(self, c: Cluster, clients: dict[int, list[int]], seed: int) -> None:
        self.c = c
        self.clients = clients  # client id -> the members it may use, in order
        self.seed = seed
        self.history: list[Op] = []
        self.acked_unique: dict[bytes, bytes] = {}
        self.acked = 0
        self.stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._worker(cid, ms)) for cid, ms in self.clients.items()]

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self._tasks), 60)

    async def wait_acked(self, more: int, timeout: float = 60.0) -> None:
        target = self.acked + more
        deadline = time.monotonic() + timeout
        while self.acked < target:
            assert time.monotonic() < deadline, f"only {self.acked} of {target} writes acked"
            await asyncio.sleep(0.05)

    async def _worker(self, cid: int, members: list[int]) -> None:
        kv = self.c.client(members, timeout=3.0)
        rng = random.Random(self.seed * 100 + cid)
        try:
            for n in range(2000):
                if self.stop.is_set():
                    return
                start = time.monotonic()
                roll = rng.random()
                if roll < 0.35:
                    key, value = rng.choice(KEYS), b"%d-%d" % (cid, n)
                    try:
                        await kv.put(key, value)
                    except StoreUnavailableError:
                        self.history.append(Op(cid, key, "put", value, start, math.inf))
                        continue
                    self.history.append(Op(cid, key, "put", value, start, time.monotonic()))
                    self.acked += 1
                elif roll < 0.7:
                    key = rng.choice(KEYS)
                    try:
                        r = await kv.range(key)
                    except StoreUnavailableError:
                        continue  # a failed read has no effect
                    got = r.kvs[0].value if r.kvs else None
                    self.history.append(Op(cid, key, "get", got, start, time.monotonic()))
                else:
                    key = b"/np/u/%d-%d" % (cid, n)
                    try:
                        await kv.put(key, b"%d" % n)
                    except StoreUnavailableError:
                        continue
                    self.acked_unique[key] = b"%d" % n
                    self.acked += 1
        finally:
            await kv.close()


async def _status(c: Cluster, i: int) -> dict[str, object]:
    st = await c.status(i)
    assert st is not None, f"member {i} does not answer status"
    return st


async def _converged(c: Cluster, load: Load) -> None:
    """After healing: every member holds every acknowledged unique key (serializable reads of
    its own state, retried until it caught up), and final linearizable reads of the registers
    through every member go into the history, so a lost write shows up in lincheck."""
    for i in c.ids:
        kv = StoreClient(c.client_endpoint(i), timeout=5.0)
        try:
            deadline = time.monotonic() + 60
            while True:
                r = await kv.range(b"/np/u/", prefix_end(b"/np/u/"), serializable=True)
                have = {x.key: x.value for x in r.kvs}
                missing = [k for k, v in load.acked_unique.items() if have.get(k) != v]
                if not missing:
                    break
                assert time.monotonic() < deadline, f"member {i} lacks {missing[:5]}"
                await asyncio.sleep(0.2)
            for key in KEYS:
                start = time.monotonic()
                got = await kv.range(key)
                value = got.kvs[0].value if got.kvs else None
                load.history.append(Op(100 + i, key, "get", value, start, time.monotonic()))
        finally:
            await kv.close()


@pytest.mark.parametrize(
    ("members", "seed"), [(3, 1), (5, 2), *((3, 100 + s) for s in range(SCHEDULES - 1))]
)
async def test_netns_partitioned_leader_steps_down_majority_elects(
    make_netns_cluster: Callable[[int], NetnsCluster], members: int, seed: int
) -> None:
    """With 5 members the leader is cut off together with a follower: a minority of two."""
    c = make_netns_cluster(members)
    old = await c.wait_leader()
    minority = [old, *[i for i in c.ids if i != old][: (members - 1) // 2 - 1]]
    majority = [i for i in c.ids if i not in minority]
    # Clients on the majority in both orders, and one stuck with the old leader.
    load = Load(c, {0: majority, 1: majority[::-1], 2: majority, 3: [old]}, seed=seed)
    load.start()
    await load.wait_acked(30)
    c.cut(minority)
    new = await c.wait_leader(majority, timeout=60)
    assert new not in minority
    # Check-quorum: the old leader notices it lost the majority and steps down by itself.
    deadline = time.monotonic() + 30
    while (await _status(c, old))["leader"] == old:
        assert time.monotonic() < deadline, "the cut-off leader never stepped down"
        await asyncio.sleep(0.1)
    await load.wait_acked(60)  # the majority goes on
    lone = StoreClient(c.client_endpoint(old), timeout=2.0)
    try:
        with pytest.raises(StoreUnavailableError):
            await lone.put(b"/np/lost", b"x")
        with pytest.raises(StoreUnavailableError):
            await lone.range(KEYS[0])  # no linearizable read without a quorum
    finally:
        await lone.close()
    c.heal()
    await load.wait_acked(30)
    await load.finish()
    await _converged(c, load)
    assert await c.wait_leader(timeout=60) in c.ids
    acknowledged = [op for op in load.history if op.kind == "put" and op.ret != math.inf]
    assert len(acknowledged) > 20
    assert check_history(load.history) == []


async def test_netns_partitioned_follower_cannot_disrupt(
    make_netns_cluster: Callable[[int], NetnsCluster],
) -> None:
    c = make_netns_cluster(3)
    leader = await c.wait_leader()
    cut = next(i for i in c.ids if i != leader)
    majority = [i for i in c.ids if i != cut]
    load = Load(c, {0: majority, 1: majority[::-1], 2: [cut, *majority]}, seed=2)
    load.start()
    await load.wait_acked(30)
    c.cut([cut])
    term = (await _status(c, cut))["raft_term"]
    await load.wait_acked(60)  # the majority does not notice
    # Pre-vote: however many election timeouts pass, the cut-off follower's pre-campaigns
    # never win a pre-vote, so its term stays where it was.
    await asyncio.sleep(3.0)
    assert (await _status(c, cut))["raft_term"] == term
    c.heal()
    await load.wait_acked(30)
    await load.finish()
    await _converged(c, load)
    assert check_history(load.history) == []
