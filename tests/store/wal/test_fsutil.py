"""File-system helpers: reading a segment without copying its reserved, unwritten tail."""

from __future__ import annotations

import os
from pathlib import Path

from store.wal.fsutil import preallocate, read_data


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
