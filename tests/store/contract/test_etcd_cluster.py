"""EtcdClient against a real 3-member etcd 3.4 cluster whose leader is SIGKILLed under load.

The same promises StoreClient keeps against tabby-store (test_cluster.py there): every
acknowledged write is present afterwards, writes whose outcome is unknown are reported as
such (never silently retried), and a watch that loses its member resumes on another one
without a gap or a duplicate.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest

from store.client import StoreUnavailableError, prefix_end
from store.etcd import EtcdClient
from store.kv import EventType
from tests.store.contract.conftest import ETCD, start_etcd_cluster

pytestmark = [pytest.mark.slow, pytest.mark.debian(ETCD)]

WRITERS = 64
PUTS_PER_WRITER = 8


async def test_leader_sigkill_under_load_loses_no_acknowledged_write() -> None:
    root = Path(tempfile.mkdtemp(prefix="tabby-etcd3-", dir="/tmp"))
    members = start_etcd_cluster(root, 3)
    try:
        probe = EtcdClient([m.url for m in members], timeout=20)
        st = await probe.status()
        await probe.close()
        ids = [await _member_id(m.url) for m in members]
        leader = members[ids.index(st.leader)]
        # The leader first: the client starts on the member that will die.
        order = [leader] + [m for m in members if m is not leader]
        kv = EtcdClient([m.url for m in order], timeout=15)
        watcher = EtcdClient([m.url for m in order], timeout=15)
        prefix = b"/etcd3/load/"
        start = (await kv.put(b"/etcd3/start", b"")).revision + 1
        acked: dict[bytes, int] = {}
        unknown: set[bytes] = set()
        seen: list[tuple[int, bytes]] = []
        progress = asyncio.Event()

        async def writer(w: int) -> None:
            for i in range(PUTS_PER_WRITER):
                key = prefix + b"%02d-%02d" % (w, i)
                try:
                    acked[key] = (await kv.put(key, b"v")).revision
                except StoreUnavailableError as exc:
                    assert exc.outcome_unknown, exc
                    unknown.add(key)
                if len(acked) >= WRITERS:
                    progress.set()

        async def watch() -> None:
            async for resp in watcher.watch(prefix, prefix_end(prefix), start_revision=start):
                assert not resp.canceled
                for ev in resp.events:
                    assert ev.type is EventType.PUT
                    seen.append((ev.kv.mod_revision, ev.kv.key))

        watch_task = asyncio.ensure_future(watch())
        writers = asyncio.gather(*(writer(w) for w in range(WRITERS)))
        await asyncio.wait_for(progress.wait(), 60)
        leader.kill()
        await asyncio.wait_for(writers, 120)
        final = await kv.range(prefix, prefix_end(prefix))
        present = {x.key: x.mod_revision for x in final.kvs}
        # Every acknowledged write is there, at the revision it was acknowledged with.
        assert all(present.get(k) == rev for k, rev in acked.items())
        assert set(present) <= set(acked) | unknown
        assert kv.failovers >= 1
        # The watch saw exactly the writes that happened: no gap, no duplicate, in order.
        for _ in range(200):
            if len(seen) >= len(present):
                break
            await asyncio.sleep(0.05)
        watch_task.cancel()
        await asyncio.gather(watch_task, return_exceptions=True)
        assert [r for r, _ in seen] == sorted(present.values())
        assert {k: r for r, k in seen} == present
        await kv.close()
        await watcher.close()
    finally:
        for m in members:
            m.kill()
        shutil.rmtree(root, ignore_errors=True)


async def _member_id(url: str) -> int:
    one = EtcdClient(url, timeout=5)
    try:
        return (await one.status()).member_id
    finally:
        await one.close()
