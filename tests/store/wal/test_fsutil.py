"""File-system helpers: reading a segment without copying its reserved, unwritten tail."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from store.wal.fsutil import ensure_dir, preallocate, read_data


def test_read_data_skips_the_reserved_tail_but_keeps_every_written_byte(tmp_path: Path) -> None:
    path = tmp_path / "seg"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        reserved = preallocate(fd, 8 << 20)
        os.pwrite(fd, b"x" * 10_000, 0)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    data = read_data(str(path))
    assert data[:10_000] == b"x" * 10_000
    assert not any(data[10_000:])
    if reserved:
        assert len(data) < 8 << 20  # the unwritten reservation is not copied


def test_read_data_reads_explicit_zeros_in_full(tmp_path: Path) -> None:
    path = tmp_path / "seg"
    path.write_bytes(b"y" * 100 + bytes(50_000))
    assert read_data(str(path)) == b"y" * 100 + bytes(50_000)


def test_ensure_dir_fsyncs_the_parent_of_every_level_it_creates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    monkeypatch.setattr("store.wal.fsutil.fsync_dir", synced.append)
    ensure_dir(str(tmp_path / "a" / "b" / "c"))
    assert (tmp_path / "a" / "b" / "c").is_dir()
    assert synced == [str(tmp_path), str(tmp_path / "a"), str(tmp_path / "a" / "b")]
    synced.clear()
    ensure_dir(str(tmp_path / "a" / "b"))
    assert synced == []
