"""The storage quota, on both backends started with a 1 MiB quota (etcd
--quota-backend-bytes, tabby-store quota_bytes): the NOSPACE alarm and etcd's capped applier
(writes, lease grants and writing txns refused; reads, read-only txns, deletes and compaction
allowed; the alarm stays until an operator disarms it)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from store.backend import connect
from store.client import KVClient
from store.kv import AlarmType, KVError, PutRequest, RangeRequest
from store.kv.errors import ErrorKind
from tests.store.contract.conftest import ETCD, EtcdProcess
from tests.store.server.cluster import Cluster

pytestmark = pytest.mark.slow

QUOTA = 1 << 20


@pytest.fixture(
    scope="module",
    params=["tabby-store", pytest.param("etcd", marks=pytest.mark.debian(ETCD))],
)
def quota_endpoints(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    root = Path(tempfile.mkdtemp(prefix="tabby-quota-", dir="/tmp"))
    try:
        if request.param == "etcd":
            etcd = EtcdProcess(root, extra_args=["--quota-backend-bytes", str(QUOTA)])
            try:
                etcd.start()
                etcd.wait_ready()
                yield [etcd.url]
            finally:
                etcd.kill()
        else:
            cluster = Cluster(root / "c", 1, quota_bytes=QUOTA)
            cluster.root.mkdir()
            try:
                cluster.start_all()
                asyncio.run(cluster.wait_leader())
                yield [cluster.client_endpoint(1)]
            finally:
                cluster.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def kv(quota_endpoints: list[str]) -> AsyncIterator[KVClient]:
    client = connect(quota_endpoints, timeout=10)
    try:
        yield client
    finally:
        await client.close()


async def test_quota_alarm_caps_writes_but_not_reads_deletes_or_compaction(kv: KVClient) -> None:
    value = b"q" * 100_000
    with pytest.raises(KVError) as err:
        for i in range(100):  # 10 MB: ten times the quota
            await kv.put(b"/quota/%02d" % i, value)
    assert err.value.kind is ErrorKind.NO_SPACE
    assert (await kv.status()).alarms == (AlarmType.NOSPACE,)
    listed = await kv.range(b"/quota/", b"/quota0", keys_only=True)
    assert listed.count >= 1
    for refused in (
        kv.put(b"/quota/tiny", b"x"),
        kv.lease_grant(60),
        kv.txn([], [PutRequest(b"/quota/tiny", b"x")], []),
    ):
        with pytest.raises(KVError) as err:
            await refused
        assert err.value.kind is ErrorKind.NO_SPACE
    reads = await kv.txn([], [RangeRequest(b"/quota/00")], [])
    assert reads.succeeded and len(reads.responses) == 1
    gone = await kv.delete(b"/quota/", b"/quota0")
    assert gone.deleted == listed.count
    await kv.compact(gone.revision)
    with pytest.raises(KVError) as err:
        await kv.put(b"/quota/tiny", b"x")  # the alarm stays until disarmed
    assert err.value.kind is ErrorKind.NO_SPACE
