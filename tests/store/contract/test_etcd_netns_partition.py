"""EtcdClient against a 3-member etcd whose leader is cut off by nftables in network namespaces.

The client runs in a fourth namespace on the same bridge (a thread that entered it runs its
event loop), so it can still reach the cut-off leader: the case clientv3's require-leader
metadata exists for. Checked: the majority goes on serving the client's writes after etcd's
check-quorum makes the old leader step down; writes are either acknowledged and present, or
reported with an unknown outcome; the client's watch loses nothing and repeats nothing.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from felixd.netlink.netns import enter_netns
from store.client import StoreUnavailableError, prefix_end
from store.etcd import EtcdClient
from tests.store.contract.conftest import ETCD
from tests.store.netns_bridge import Bridge

pytestmark = [
    pytest.mark.slow,
    pytest.mark.root,
    pytest.mark.netns,
    pytest.mark.debian(ETCD),
    pytest.mark.debian("nft"),
]

MEMBERS = [1, 2, 3]
CLIENT = 100
WRITERS = 16


def _start_etcd(net: Bridge, root: Path) -> dict[int, subprocess.Popen[bytes]]:
    cluster = ",".join(f"e{i}=http://{net.address(i)}:2380" for i in MEMBERS)
    procs = {}
    for i in MEMBERS:
        me = net.address(i)
        log = open(root / f"e{i}.log", "ab")  # noqa: SIM115 - owned by the process
        procs[i] = subprocess.Popen(
            [
                "ip", "netns", "exec", net.ns[i], ETCD,
                "--name", f"e{i}",
                "--data-dir", str(root / f"e{i}.data"),
                "--listen-client-urls", f"http://{me}:2379",
                "--advertise-client-urls", f"http://{me}:2379",
                "--listen-peer-urls", f"http://{me}:2380",
                "--initial-advertise-peer-urls", f"http://{me}:2380",
                "--initial-cluster", cluster,
                "--initial-cluster-state", "new",
                "--log-level", "warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
    return procs


async def _scenario(net: Bridge) -> dict[str, int]:
    urls = {i: f"http://{net.address(i)}:2379" for i in MEMBERS}
    ids: dict[int, int] = {}
    deadline = time.monotonic() + 60
    leader_id = 0
    while not leader_id or len(ids) < len(MEMBERS):
        assert time.monotonic() < deadline, "etcd cluster did not come up"
        for i in MEMBERS:
            one = EtcdClient(urls[i], timeout=2)
            try:
                st = await one.status()
                ids[i], leader_id = st.member_id, st.leader
            except StoreUnavailableError:
                await asyncio.sleep(0.2)
            finally:
                await one.close()
    old = next(i for i in MEMBERS if ids[i] == leader_id)
    order = [urls[old]] + [urls[i] for i in MEMBERS if i != old]
    kv = EtcdClient(order, timeout=15)
    watcher = EtcdClient(order, timeout=15)
    prefix = b"/netns/"
    start = (await kv.put(b"/netns-start", b"")).revision + 1
    acked: dict[bytes, int] = {}
    unknown: set[bytes] = set()
    seen: list[tuple[int, bytes]] = []
    stop = asyncio.Event()

    async def writer(w: int) -> None:
        for n in range(2000):
            if stop.is_set():
                return
            key = prefix + b"%02d-%04d" % (w, n)
            try:
                acked[key] = (await kv.put(key, b"v")).revision
            except StoreUnavailableError as exc:
                assert exc.outcome_unknown, exc
                unknown.add(key)

    async def watch() -> None:
        async for resp in watcher.watch(prefix, prefix_end(prefix), start_revision=start):
            assert not resp.canceled
            seen.extend((ev.kv.mod_revision, ev.kv.key) for ev in resp.events)

    async def acked_grows(more: int) -> None:
        target = len(acked) + more
        limit = time.monotonic() + 60
        while len(acked) < target:
            assert time.monotonic() < limit, f"{len(acked)} of {target} writes acknowledged"
            await asyncio.sleep(0.05)

    watching = asyncio.ensure_future(watch())
    writers = asyncio.gather(*(writer(w) for w in range(WRITERS)))
    try:
        await acked_grows(50)
        net.cut([old], MEMBERS)
        await acked_grows(100)  # the majority serves the client
        lone = EtcdClient(urls[old], timeout=15)
        try:
            limit = time.monotonic() + 30
            while (await lone.status()).leader == ids[old]:
                assert time.monotonic() < limit, "the cut-off etcd leader never stepped down"
                await asyncio.sleep(0.2)
        finally:
            await lone.close()
        net.heal()
        await acked_grows(50)
    finally:
        stop.set()
        await asyncio.wait_for(writers, 60)
    final = await kv.range(prefix, prefix_end(prefix))
    present = {x.key: x.mod_revision for x in final.kvs}
    assert all(present.get(k) == rev for k, rev in acked.items()), "an acknowledged write is lost"
    assert set(present) <= set(acked) | unknown
    for _ in range(300):
        if len(seen) >= len(present):
            break
        await asyncio.sleep(0.05)
    watching.cancel()
    await asyncio.gather(watching, return_exceptions=True)
    assert [r for r, _ in seen] == sorted(present.values()), "watch gap or duplicate"
    assert {k: r for r, k in seen} == present
    stats = {"acked": len(acked), "unknown": len(unknown), "failovers": kv.failovers}
    await kv.close()
    await watcher.close()
    return stats


async def test_etcd_leader_cut_off_by_nftables_client_fails_over() -> None:
    root = Path(tempfile.mkdtemp(prefix="tabby-etcd-netns-", dir="/tmp"))
    net = Bridge(f"tbe{os.getpid() % 10000}{random.randrange(100)}", [*MEMBERS, CLIENT])
    procs: dict[int, subprocess.Popen[bytes]] = {}
    try:
        net.wire()
        procs = _start_etcd(net, root)
        with ThreadPoolExecutor(1, initializer=enter_netns, initargs=(net.ns[CLIENT],)) as pool:
            loop = asyncio.get_running_loop()
            stats = await loop.run_in_executor(pool, lambda: asyncio.run(_scenario(net)))
        assert stats["acked"] >= 200 and stats["failovers"] >= 1, stats
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
        net.delete()
        shutil.rmtree(root, ignore_errors=True)
