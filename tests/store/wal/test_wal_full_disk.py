"""The WAL on a real, small tmpfs that fills up (the unit tests inject ENOSPC with mocks; here
the kernel writes what fits and then fails, as it does in production).

- With preallocation, ENOSPC comes from posix_fallocate when a segment is created: nothing of
  the batch is written, the WAL stays usable, and the same batch saves once there is room.
- Without preallocation (filesystems that do not support it), the batch's write runs out of
  space halfway: the WAL refuses further use, and recovery cuts the partial batch as a torn
  tail, keeping every batch whose save() returned.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.wal import WAL, WALFailedError
from tests.store.wal.util import entries

pytestmark = pytest.mark.root

SEGMENT = 1 << 20
DATA = 60_000  # bytes per entry: a few entries per batch, many batches per segment


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tabby-test", where], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", where], check=False)


def _fill(wal: WAL, start: int) -> tuple[int, Exception]:
    """Save batches of 4 entries until the disk is full; the last index saved, the error."""
    index = start
    for _ in range(1000):
        try:
            wal.save((1, 1, index), entries(index + 1, index + 4, 1, DATA))
        except (OSError, WALFailedError) as exc:
            return index, exc
        index += 4
    raise AssertionError("the 4 MiB disk never filled")


def test_preallocated_segment_meets_enospc_and_wal_stays_usable(disk: Path) -> None:
    wal, _ = WAL.open(str(disk / "wal"), segment_size=SEGMENT)
    last, exc = _fill(wal, 0)
    assert not isinstance(exc, WALFailedError) and "No space left" in str(exc)
    assert last >= 8 and wal.last_index == last
    for path in Path(disk / "wal").glob("*.wal"):  # the segment that failed was removed
        assert path.stat().st_size == SEGMENT
    # Make room (drop the oldest segments as a snapshot would allow), then go on.
    assert wal.release_to(last - 4) >= 1
    wal.save((1, 1, last + 4), entries(last + 1, last + 4, 1, DATA))
    wal.close()
    again, rec = WAL.open(str(disk / "wal"), segment_size=SEGMENT)
    try:
        assert rec.repairs == () and rec.last_index == last + 4
        assert rec.hard_state == (1, 1, last + 4)
        assert rec.entries[-1] == entries(last + 4, last + 4, 1, DATA)[0]
    finally:
        again.close()


def test_unpreallocated_write_runs_out_halfway_and_recovery_keeps_saved_batches(
    disk: Path,
) -> None:
    wal, _ = WAL.open(str(disk / "wal"), segment_size=SEGMENT, preallocate=False)
    last, exc = _fill(wal, 0)
    assert isinstance(exc, WALFailedError) and "No space left" in str(exc)
    with pytest.raises(WALFailedError):
        wal.save((1, 1, last), [])
    wal.close()
    # Recovery needs no space: cutting the partial batch only shrinks a file.
    again, rec = WAL.open(str(disk / "wal"), segment_size=SEGMENT, preallocate=False)
    try:
        assert rec.last_index == last and rec.hard_state == (1, 1, last - 4)
        assert rec.entries == entries(1, last, 1, DATA)
        again.save((1, 1, last), [])
    finally:
        again.close()
