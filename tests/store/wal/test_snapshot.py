"""Snapshot files: atomic writes with a checksum, pruning, and the choice made at start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from store.wal import WAL, SnapshotError, SnapshotStore, StorageError, open_storage
from store.wal.snapshot import snapshot_name
from tests.store.wal.util import entries


def _store(tmp_path: Path, keep: int = 5) -> SnapshotStore:
    return SnapshotStore.open(str(tmp_path / "snap"), keep=keep)


def _damage(path: str) -> None:
    """Flip one byte of the data, just before the trailing checksum."""
    with open(path, "r+b") as f:
        f.seek(-5, os.SEEK_END)
        byte = f.read(1)
        f.seek(-5, os.SEEK_END)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_snapshot_round_trip(tmp_path: Path) -> None:
    store = _store(tmp_path)
    path = store.save(10, 2, b"conf", b"data" * 1000)
    assert os.path.basename(path) == snapshot_name(10, 2)
    snap = store.load_newest()
    assert snap is not None
    assert (snap.index, snap.term, snap.conf_state, snap.data) == (10, 2, b"conf", b"data" * 1000)
    store.close()


def test_leftover_temp_file_is_ignored_and_removed(tmp_path: Path) -> None:
    """Atomic write: a crash before the rename leaves only `.tmp`, which is never read."""
    store = _store(tmp_path)
    store.save(10, 2, b"c", b"old")
    store.close()
    tmp = tmp_path / "snap" / (snapshot_name(20, 3) + ".tmp")
    tmp.write_bytes(b"half a snapshot")
    store = _store(tmp_path)
    assert not tmp.exists()
    snap = store.load_newest()
    assert snap is not None and snap.index == 10
    store.close()


def test_checksum_catches_damage_without_wal_evidence(tmp_path: Path) -> None:
    store = _store(tmp_path)
    path = store.save(10, 2, b"c", b"x" * 200)
    _damage(path)
    with pytest.raises(SnapshotError, match="checksum") as info:
        store.load_newest()
    assert path in str(info.value)
    store.close()


def test_keeps_the_n_newest(tmp_path: Path) -> None:
    store = _store(tmp_path, keep=3)
    for index in range(10, 70, 10):
        store.save(index, 1, b"", b"d")
    assert [index for index, _term, _path in store.files()] == [60, 50, 40]
    store.close()


def _wal_with(tmp_path: Path, first: int, last: int, markers: list[int]) -> WAL:
    wal, _ = WAL.open(str(tmp_path / "wal"), preallocate=False)
    wal.save((1, 1, first - 1), entries(first, first, 1))
    for index in range(first + 1, last + 1):
        wal.save((1, 1, index - 1), entries(index, index, 1))
        if index in markers:
            wal.save_snapshot(index, 1, b"c")
    return wal


def test_damaged_newest_falls_back_when_older_snapshot_and_wal_cover_it(tmp_path: Path) -> None:
    """Issue brief: skip a corrupt newest snapshot only if an older one plus the WAL covers it."""
    store = _store(tmp_path)
    store.save(20, 1, b"c", b"at-20")
    newest = store.save(40, 1, b"c", b"at-40")
    _damage(newest)
    wal = _wal_with(tmp_path, 1, 50, [20, 40])
    wal.close()
    wal, rec = WAL.open(str(tmp_path / "wal"), preallocate=False)
    snap = store.load_newest(rec)
    assert snap is not None and snap.index == 20 and snap.data == b"at-20"
    assert os.path.exists(newest + ".broken") and not os.path.exists(newest)
    wal.close()
    store.close()


def test_damaged_newest_refuses_when_the_wal_was_released_past_the_older_one(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    store.save(20, 1, b"c", b"at-20")
    newest = store.save(40, 1, b"c", b"at-40")
    _damage(newest)
    wal, _ = WAL.open(str(tmp_path / "wal"), segment_size=4096, preallocate=False)
    for index in range(1, 80):
        wal.save((1, 1, index - 1), entries(index, index, 1, size=200))
        if index in (20, 40):
            wal.save_snapshot(index, 1, b"c")
    assert wal.release_to(40) > 0
    wal.close()
    wal, rec = WAL.open(str(tmp_path / "wal"), preallocate=False)
    assert rec.first_index is not None and rec.first_index > 21
    with pytest.raises(SnapshotError, match="does not cover") as info:
        store.load_newest(rec)
    assert newest in str(info.value)
    wal.close()
    store.close()


def test_orphan_snapshot_without_wal_marker_is_skipped(tmp_path: Path) -> None:
    """A crash between writing the file and its WAL marker leaves an orphan, as in etcd."""
    store = _store(tmp_path)
    store.save(10, 1, b"c", b"at-10")
    store.save(30, 5, b"c", b"orphan")  # term 5 never reached this WAL
    wal = _wal_with(tmp_path, 1, 20, [10])
    wal.close()
    wal, rec = WAL.open(str(tmp_path / "wal"), preallocate=False)
    snap = store.load_newest(rec)
    assert snap is not None and snap.index == 10
    wal.close()
    store.close()


def test_open_storage_returns_entries_after_the_snapshot(tmp_path: Path) -> None:
    data_dir = str(tmp_path)
    wal, snaps, restored = open_storage(data_dir, preallocate=False)
    assert restored.snapshot is None and restored.entries == []
    wal.save((2, 1, 0), entries(1, 30, 2))
    snaps.save(25, 2, b"members", b"state-25")
    wal.save_snapshot(25, 2, b"members")
    wal.save((2, 1, 28), [])
    wal.close()
    snaps.close()
    wal, snaps, restored = open_storage(data_dir, preallocate=False)
    assert restored.snapshot is not None and restored.snapshot.index == 25
    assert restored.entries == entries(26, 30, 2)
    assert restored.hard_state == (2, 1, 28)
    wal.close()
    snaps.close()


def test_open_storage_refuses_a_gap_between_snapshot_and_wal(tmp_path: Path) -> None:
    data_dir = str(tmp_path)
    wal, snaps, _ = open_storage(data_dir, preallocate=False)
    wal.save((1, 1, 0), [], (100, 1, b""))  # marker: the log resumes at 101
    wal.save((1, 1, 100), entries(101, 105, 1))
    wal.close()
    snaps.close()  # ... but the snapshot file at 100 was never written
    with pytest.raises(StorageError, match="missing"):
        open_storage(data_dir, preallocate=False)


def test_open_storage_refuses_a_commit_index_beyond_the_log(tmp_path: Path) -> None:
    data_dir = str(tmp_path)
    wal, snaps, _ = open_storage(data_dir, preallocate=False)
    wal.save((1, 1, 9), entries(1, 5, 1))
    wal.close()
    snaps.close()
    with pytest.raises(StorageError, match="committed"):
        open_storage(data_dir, preallocate=False)


def test_damaged_only_snapshot_falls_back_to_the_full_log(tmp_path: Path) -> None:
    """With no older snapshot, the WAL itself must reach back to entry 1."""
    store = _store(tmp_path)
    only = store.save(10, 1, b"c", b"at-10")
    _damage(only)
    wal = _wal_with(tmp_path, 1, 20, [10])
    wal.close()
    wal, rec = WAL.open(str(tmp_path / "wal"), preallocate=False)
    assert store.load_newest(rec) is None
    wal.close()
    store.close()


def test_server_cycle_restore_append_snapshot_release_restart(tmp_path: Path) -> None:
    """The call sequence docs/storage.md prescribes, across restarts: a restored data dir
    (snapshot at 1 + marker), appends, periodic snapshots (file, then marker, then release to
    the oldest kept), and a restart that resumes from the newest snapshot."""
    data_dir = str(tmp_path)
    wal, snaps, _ = open_storage(data_dir, segment_size=4096, preallocate=False, keep_snapshots=3)
    snaps.save(1, 1, b"conf", b"state-1")
    wal.save((1, 0, 1), [], (1, 1, b"conf"))
    kept: list[int] = [1]
    for index in range(2, 400):
        wal.save((2, 1, index - 1), entries(index, index, 2, size=64))
        if index % 50 == 0:
            snaps.save(index, 2, b"conf", f"state-{index}".encode())
            wal.save_snapshot(index, 2, b"conf")
            kept = [*kept, index][-3:]
            wal.release_to(kept[0])
    wal.close()
    snaps.close()
    wal, snaps, restored = open_storage(data_dir, segment_size=4096, preallocate=False)
    assert restored.snapshot is not None and restored.snapshot.index == 350
    assert restored.snapshot.data == b"state-350"
    assert restored.entries == entries(351, 399, 2, size=64)
    assert restored.hard_state == (2, 1, 398)
    assert [index for index, _term, _path in snaps.files()] == [350, 300, 250]
    newest = snaps.files()[0][2]
    wal.close()
    snaps.close()
    # Releasing only to the oldest kept snapshot is what makes a damaged newest one survivable.
    _damage(newest)
    wal, snaps, restored = open_storage(data_dir, segment_size=4096, preallocate=False)
    assert restored.snapshot is not None and restored.snapshot.index == 300
    assert restored.entries == entries(301, 399, 2, size=64)
    wal.close()
    snaps.close()
