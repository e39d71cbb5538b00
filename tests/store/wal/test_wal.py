"""WAL writing: round trips, group commit, overwritten suffixes, segments and release."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.wal import WAL, StorageError, WALFailedError
from tests.store.wal.util import LogModel, entries, payload, reopen


def _open(tmp_path: Path, **kwargs: int | bool) -> WAL:
    wal, recovered = WAL.open(str(tmp_path / "wal"), **kwargs)  # type: ignore[arg-type]
    assert recovered.entries == [] and recovered.hard_state is None
    return wal


def test_round_trip_entries_and_hard_state(tmp_path: Path) -> None:
    wal = _open(tmp_path)
    wal.save((1, 2, 0), entries(1, 3, 1))
    wal.save((1, 2, 3), entries(4, 4, 1, size=1000))
    wal.save((2, 0, 3), [])
    wal, rec = reopen(wal)
    assert rec.hard_state == (2, 0, 3)
    assert rec.entries == entries(1, 3, 1) + entries(4, 4, 1, size=1000)
    assert rec.repairs == ()
    wal.close()


def test_overwritten_suffix_is_replayed_as_truncation(tmp_path: Path) -> None:
    """etcd-io/raft Ready contract: when writing index i, discard persisted entries >= i."""
    wal = _open(tmp_path)
    wal.save((1, 1, 2), entries(1, 10, 1))
    wal.save((2, 2, 2), entries(4, 5, 2))  # Raft replaced the uncommitted suffix 4..10
    wal, rec = reopen(wal)
    assert rec.entries == entries(1, 3, 1) + entries(4, 5, 2)
    wal.save((3, 3, 2), entries(5, 6, 3))  # again after a restart
    wal, rec = reopen(wal)
    assert rec.entries == entries(1, 3, 1) + entries(4, 4, 2) + entries(5, 6, 3)
    wal.close()


def test_gap_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    wal = _open(tmp_path)
    wal.save(None, entries(1, 3, 1))
    with pytest.raises(ValueError, match="gap"):
        wal.save((1, 0, 0), entries(5, 5, 1))
    with pytest.raises(ValueError, match="consecutive"):
        wal.save(None, [(4, 1, 0, b""), (6, 1, 0, b"")])
    wal, rec = reopen(wal)
    assert rec.entries == entries(1, 3, 1) and rec.hard_state is None
    wal.close()


def _count_calls(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    calls: list[int] = []
    real: Callable[[int], None] = getattr(os, name)

    def counted(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, name, counted)
    return calls


def test_group_commit_one_fdatasync_per_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 6 Storage: one fdatasync per Ready batch, whatever the number of records."""
    wal = _open(tmp_path)
    wal.save((1, 1, 0), entries(1, 1, 1))  # creates the first segment
    syncs = _count_calls(monkeypatch, "fdatasync")
    fsyncs = _count_calls(monkeypatch, "fsync")
    index = 2
    for size in (1, 64, 7, 64):
        wal.save((1, 1, index - 1), entries(index, index + size - 1, 1, size=256))
        index += size
    assert len(syncs) == 4 and fsyncs == []
    wal.save(None, [])  # an empty batch has nothing to make durable
    assert len(syncs) == 4
    wal.close()


def test_new_segment_fsyncs_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 6 Storage: directory fsync after creating a file (etcd issue #6368)."""
    wal = _open(tmp_path, segment_size=4096)
    syncs = _count_calls(monkeypatch, "fdatasync")
    fsyncs = _count_calls(monkeypatch, "fsync")
    for i in range(1, 80):
        wal.save((1, 1, i - 1), entries(i, i, 1, size=200))
    segments = len(wal.segment_paths)
    assert segments > 3
    assert len(syncs) == 79
    assert len(fsyncs) == segments  # one directory fsync per created segment
    wal.close()


def test_segment_rollover_and_release_keep_state(tmp_path: Path) -> None:
    """release_to(N) deletes only segments wholly at or below N; carried state survives."""
    wal = _open(tmp_path, segment_size=4096)
    wal.save(None, [], (0, 0, b"conf-0"))
    for i in range(1, 200):
        wal.save((3, 2, i - 1), entries(i, i, 3, size=100))
    wal.save_snapshot(150, 3, b"conf-150")
    before = wal.segment_paths
    assert len(before) > 5
    removed = wal.release_to(150)
    assert removed > 0 and wal.segment_paths == before[removed:]
    wal, rec = reopen(wal, segment_size=4096)
    first = rec.first_index
    assert first is not None and first <= 151
    assert rec.entries == entries(first, 199, 3, size=100)
    assert rec.hard_state == (3, 2, 198)
    assert rec.snapshot_meta == (150, 3, b"conf-150")
    # The log goes on after a release, across another rollover and restart.
    for i in range(200, 260):
        wal.save((3, 2, i - 1), entries(i, i, 3, size=100))
    wal, rec = reopen(wal, segment_size=4096)
    assert rec.last_index == 259 and rec.entries[-1] == (259, 3, 0, payload(259, 3, 100))
    wal.close()


def test_release_never_deletes_the_current_segment(tmp_path: Path) -> None:
    wal = _open(tmp_path)
    wal.save((1, 1, 5), entries(1, 5, 1))
    assert wal.release_to(1000) == 0
    wal, rec = reopen(wal)
    assert rec.last_index == 5
    wal.close()


def test_installed_snapshot_marker_resets_the_log(tmp_path: Path) -> None:
    """Raft §7: a snapshot that conflicts with the log discards it; entries resume after it."""
    wal = _open(tmp_path)
    wal.save((1, 1, 2), entries(1, 5, 1))
    wal.save((4, 2, 40), entries(41, 42, 4), snapshot=(40, 3, b"members"))
    wal, rec = reopen(wal)
    assert rec.entries == entries(41, 42, 4)
    assert rec.snapshot_meta == (40, 3, b"members") and rec.snapshots == ((40, 3),)
    wal.close()


def test_failed_fdatasync_poisons_the_wal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a failed fsync the page cache may lie ("fsyncgate"): no retry, restart only."""
    wal = _open(tmp_path)
    wal.save((1, 1, 0), entries(1, 1, 1))

    def fail(fd: int) -> None:
        raise OSError(errno.EIO, "injected")

    monkeypatch.setattr(os, "fdatasync", fail)
    with pytest.raises(WALFailedError, match="injected"):
        wal.save((1, 1, 1), entries(2, 2, 1))
    monkeypatch.undo()
    with pytest.raises(WALFailedError):
        wal.save((1, 1, 1), entries(2, 2, 1))
    wal, rec = reopen(wal)
    assert rec.entries[0] == entries(1, 1, 1)[0]
    wal.close()


def test_full_disk_at_segment_creation_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Preallocation surfaces ENOSPC before any byte of the batch is written."""
    wal = _open(tmp_path, segment_size=4096)
    wal.save((1, 1, 0), entries(1, 1, 1, size=3000))

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(OSError, match="No space"):
        wal.save((1, 1, 1), entries(2, 2, 1, size=3000))
    monkeypatch.undo()
    assert len(os.listdir(tmp_path / "wal")) == 2  # LOCK and the first segment only
    wal.save((1, 1, 1), entries(2, 2, 1, size=3000))  # still usable
    wal, rec = reopen(wal, segment_size=4096)
    assert rec.entries == entries(1, 2, 1, size=3000)
    wal.close()


def test_closed_wal_refuses(tmp_path: Path) -> None:
    wal = _open(tmp_path)
    wal.close()
    with pytest.raises(StorageError, match="closed"):
        wal.save((1, 1, 0), [])


def _no_flush(fd: object) -> None:
    """Stands in for fdatasync/fsync in tests of replay logic."""


ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 4), st.integers(1, 6)),
        st.tuples(st.just("reopen"), st.just(0), st.just(0)),
        st.tuples(st.just("release"), st.integers(0, 30), st.just(0)),
    ),
    max_size=25,
)


@given(ops, st.booleans())
def test_random_histories_recover_exactly(
    history: list[tuple[str, int, int]], prealloc: bool
) -> None:
    """Differential: any history of saves, overwrites, releases and restarts recovers to the
    dict model's log (restricted to what release kept)."""
    # Replay logic is the subject here; flushes would only cost time (durability has its own
    # tests: group commit counts, torn tails, SIGKILL).
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.object(os, "fdatasync", _no_flush),
        mock.patch.object(os, "fsync", _no_flush),
    ):
        wal, _ = WAL.open(os.path.join(tmp, "wal"), segment_size=4096, preallocate=prealloc)
        model = LogModel()
        term = 1
        hard: tuple[int, int, int] | None = None
        for op, a, b in history:
            if op == "append":
                last = max(model.log, default=0)
                start = max(1, last + 1 - a)
                term += 1 if start <= last else 0
                batch = entries(start, start + b - 1, term, size=150)
                hard = (term, 1, max(0, start - 1))
                wal.save(hard, batch)
                model.save(batch)
            elif op == "reopen":
                wal, rec = reopen(wal, segment_size=4096, preallocate=prealloc)
                first = rec.first_index or 1
                assert rec.entries == [e for e in model.ordered() if e[0] >= first]
                assert rec.hard_state == hard
            else:
                wal.release_to(max(0, max(model.log, default=0) - 5 - a))
        wal, rec = reopen(wal, segment_size=4096, preallocate=prealloc)
        first = rec.first_index or 1
        assert rec.entries == [e for e in model.ordered() if e[0] >= first]
        wal.close()


def test_recent_snapshot_markers_survive_release_of_their_segment(tmp_path: Path) -> None:
    """Carried markers keep older kept snapshots recognisable as this WAL's own."""
    wal = _open(tmp_path, segment_size=4096, preallocate=False)
    for i in range(1, 200):
        wal.save((1, 1, i - 1), entries(i, i, 1, size=100))
        if i in (20, 40):
            wal.save_snapshot(i, 1, f"conf-{i}".encode())
    assert wal.release_to(150) > 0
    wal, rec = reopen(wal, segment_size=4096, preallocate=False)
    first = rec.first_index
    assert first is not None and first > 40
    assert rec.snapshots == ((20, 1), (40, 1))
    assert rec.snapshot_meta == (40, 1, b"conf-40")
    wal.close()


def test_hard_state_saved_once_survives_release_via_carried_copy(tmp_path: Path) -> None:
    """Each new segment restates the hard state, so deleting the one that held it loses nothing."""
    wal = _open(tmp_path, segment_size=4096, preallocate=False)
    wal.save((9, 3, 0), entries(1, 1, 9, size=100))
    for i in range(2, 120):
        wal.save(None, entries(i, i, 9, size=100))
    assert wal.release_to(100) > 0
    wal, rec = reopen(wal, segment_size=4096, preallocate=False)
    assert rec.hard_state == (9, 3, 0)
    assert rec.first_index is not None and rec.first_index > 1
    wal.close()


def test_full_disk_does_not_stop_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A member on a full disk still starts (to serve reads and deletes) with its log intact."""
    wal = _open(tmp_path, segment_size=4096)
    wal.save((1, 1, 0), entries(1, 3, 1))
    wal.close()

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    wal, rec = WAL.open(str(tmp_path / "wal"), segment_size=8192)
    assert rec.entries == entries(1, 3, 1)
    wal.save((1, 1, 3), entries(4, 4, 1))  # fits in the existing file's space
    wal.close()


def test_stats_count_saves_and_slow_fdatasync_is_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like etcd's "slow fdatasync" warning: a slow disk is named in the log, not guessed at."""
    import logging

    wal = _open(tmp_path, segment_size=4096, preallocate=False)
    monkeypatch.setattr("store.wal.wal.SLOW_SYNC_SECONDS", -1.0)  # every sync counts as slow
    # Count with a handler of our own: independent of what earlier tests did to logging.
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    wal_log = logging.getLogger("tabby.store.wal")
    handler = Collect(logging.WARNING)
    old_level = wal_log.level
    wal_log.addHandler(handler)
    wal_log.setLevel(logging.WARNING)
    try:
        for i in range(1, 40):
            wal.save((1, 1, i - 1), entries(i, i, 1, size=200))
    finally:
        wal_log.removeHandler(handler)
        wal_log.setLevel(old_level)
    assert wal.stats.saves == 39
    assert wal.stats.segments_created == len(wal.segment_paths)
    assert wal.stats.bytes_written == sum(os.path.getsize(p) for p in wal.segment_paths)
    assert sum("wal.slow_fdatasync" in r.getMessage() for r in seen) == 39
    wal.release_to(30)
    assert wal.stats.segments_released == wal.stats.segments_created - len(wal.segment_paths)
    wal.close()
