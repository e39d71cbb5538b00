"""A tabby-store member whose data directory fills up (issue 6, "Tests": "a full disk").

The member's data dir lives on a small tmpfs mounted for the test. Writes go on until the disk
is full, in two places where that happens:
- the WAL needs its next segment (preallocated with posix_fallocate, so ENOSPC arrives before
  any byte of the batch is written);
- a snapshot file does not fit (snapshot_count small).

Checked: the write that met the full disk fails with a clear error ("No space left on
device", outcome unknown: the client cannot know), later writes are refused with the same
reason (`member_unavailable`: not proposed), nothing half-written is left behind (no snapshot `.tmp`), and after the disk has room
again (tmpfs grown, or a filler file deleted) the restarted member recovers its WAL without
complaint, holds every acknowledged write byte for byte, and accepts writes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from store.client import StoreClient, StoreUnavailableError
from tests.store.server.cluster import Cluster

pytestmark = [pytest.mark.slow, pytest.mark.root]

VALUE_SIZE = 512 << 10
MAX_PUTS = 200  # 100 MiB: more than the disk holds, so the loop always ends in ENOSPC


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """mount(size_mib) -> a fresh tmpfs of that size; unmounted at the end of the test."""
    mounted: list[Path] = []

    def mount(size_mib: int) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mib}m,mode=0700", "tabby-test", where],
            check=True,
        )
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", where], check=False)


def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _leave_free(filler: Path, free: int) -> None:
    with open(filler, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, _free_bytes(filler.parent) - free)


def _grow(disk: Path, size_mib: int) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size_mib}m", disk], check=True)


def _value(i: int) -> bytes:
    """Distinct, incompressible-looking content per key, cheap to check again."""
    seed = hashlib.sha256(b"%d" % i).digest()
    return (seed * (VALUE_SIZE // len(seed) + 1))[:VALUE_SIZE]


async def _fill(kv: StoreClient) -> tuple[list[int], StoreUnavailableError]:
    acked: list[int] = []
    for i in range(MAX_PUTS):
        try:
            await kv.put(b"/full/%03d" % i, _value(i))
        except StoreUnavailableError as exc:
            return acked, exc
        acked.append(i)
    raise AssertionError(f"{MAX_PUTS} puts of {VALUE_SIZE} bytes fitted on the small disk")


async def _check_recovered(c: Cluster, acked: list[int]) -> None:
    c.start(1)
    await c.wait_leader()
    kv = c.client()
    try:
        got = await kv.range(b"/full/", b"/full0")
        values = {kv_.key: kv_.value for kv_ in got.kvs}
        for i in acked:
            assert values.get(b"/full/%03d" % i) == _value(i), f"acknowledged put {i} lost"
        # Unacknowledged puts may be there or not; nothing else may be.
        assert len(values) <= len(acked) + 1
        after = await kv.put(b"/full/after", b"room again")
        assert (await kv.range(b"/full/after")).kvs[0].mod_revision == after.revision
    finally:
        await kv.close()
    assert "CorruptWAL" not in c.log(1)


@pytest.mark.parametrize("where", ["wal-segment", "snapshot"])
async def test_full_disk_refuses_writes_loses_nothing_and_recovers(
    make_cluster: Callable[..., Cluster], small_disk: Callable[[int], Path], where: str
) -> None:
    if where == "wal-segment":
        # One 64 MiB segment is preallocated at bootstrap; the second does not fit.
        disk = small_disk(72)
        c = make_cluster(1)
    else:
        # Room for the first segment; a filler leaves ~8 MiB, less than one snapshot of
        # 20 puts (10 MiB) needs.
        disk = small_disk(96)
        c = make_cluster(1, snapshot_count=20)
    data = disk / "data"
    data.mkdir()
    os.symlink(data, c.root / "m1.data")
    c.start(1)
    await c.wait_leader()
    filler = disk / "filler"
    if where == "snapshot":
        _leave_free(filler, 8 << 20)
    kv = c.client(timeout=10)
    try:
        acked, first = await _fill(kv)
        if where == "wal-segment":
            assert first.outcome_unknown  # its entry met the full disk: it may be there
        # else: the put after the one whose snapshot failed was never proposed; the member
        # answers `member_unavailable` at once and the client tries until its deadline.
        assert "No space left on device" in str(first)
        with pytest.raises(StoreUnavailableError) as later:
            await kv.put(b"/full/later", b"x")
        assert "No space left on device" in str(later.value)
    finally:
        await kv.close()
    assert len(acked) >= 10
    assert "No space left on device" in c.log(1)
    assert not list((data / "snap").glob("*.tmp")), "a partial snapshot kept its space"
    c.kill(1)

    # Room again: grow the tmpfs (its files stay), or delete the filler.
    if where == "wal-segment":
        _grow(disk, 200)
    else:
        filler.unlink()
    await _check_recovered(c, acked)


@pytest.mark.parametrize("role", ["leader", "follower"])
async def test_member_whose_disk_fills_leaves_the_cluster_working(
    make_cluster: Callable[..., Cluster], small_disk: Callable[[int], Path], role: str
) -> None:
    """Three members, member 1's data dir on a 72 MiB tmpfs, member 1 leading or following:
    when its disk fills it stops, the other two go on (a client that used it
    moves on, after outcome-unknown writes if it led), and once restarted with room it catches up with
    every acknowledged write."""
    disk = small_disk(72)
    c = make_cluster(3)
    data = disk / "data"
    data.mkdir()
    os.symlink(data, c.root / "m1.data")
    c.start_all()
    leader = await c.wait_leader()
    kv = c.client([1, 2, 3], timeout=15)
    if (role == "leader") != (leader == 1):
        await kv.move_leader(1 if role == "leader" else 2)
        leader = await c.wait_leader()
    assert (leader == 1) == (role == "leader")
    acked: list[int] = []
    unknown: list[int] = []
    try:
        for i in range(MAX_PUTS):
            try:
                await kv.put(b"/full/%03d" % i, _value(i))
                acked.append(i)
            except StoreUnavailableError as exc:
                assert exc.outcome_unknown, exc
                unknown.append(i)
                # A caller backs off before its next write (Calico does), which gives the
                # others time to elect a leader if member 1 was leading.
                await asyncio.sleep(0.2)
        assert "No space left on device" in c.log(1)
        if role == "leader":
            # The write whose entry met the full disk may have committed.
            assert unknown and acked[-1] > unknown[0], "no write succeeded after member 1 failed"
        else:
            # A follower proposes nothing: after it failed it answered `member_unavailable`
            # and the client moved on, so no write needs an unknown outcome. The disk holds
            # fewer than MAX_PUTS values, so the last put came after the failure.
            assert acked and acked[-1] == MAX_PUTS - 1, "the last write did not succeed"
            assert kv.failovers >= 1
        got = await kv.range(b"/full/", b"/full0", keys_only=True)
        assert {b"/full/%03d" % i for i in acked} <= {x.key for x in got.kvs}
    finally:
        await kv.close()
    c.kill(1)
    _grow(disk, 400)
    c.start(1)
    one = StoreClient(c.client_endpoint(1), timeout=5)
    try:
        for _ in range(600):
            try:
                r = await one.range(b"/full/", b"/full0", serializable=True, count_only=True)
                if r.count >= len(acked):
                    break
            except StoreUnavailableError:
                pass
            await asyncio.sleep(0.1)
        r2 = await one.range(b"/full/", b"/full0", serializable=True)
        values = {x.key: x.value for x in r2.kvs}
        for i in acked:
            assert values.get(b"/full/%03d" % i) == _value(i), f"member 1 lacks put {i}"
    finally:
        await one.close()
    assert "CorruptWAL" not in c.log(1)
