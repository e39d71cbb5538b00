"""The data-directory lock: one opener at a time, released when its holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from store.wal import WAL, DataDirLockedError, SnapshotStore

ROOT = str(Path(__file__).resolve().parents[3])


def test_second_open_in_the_same_process_fails(tmp_path: Path) -> None:
    wal, _ = WAL.open(str(tmp_path / "wal"))
    with pytest.raises(DataDirLockedError, match=f"locked by pid {os.getpid()}"):
        WAL.open(str(tmp_path / "wal"))
    wal.close()
    wal, _ = WAL.open(str(tmp_path / "wal"))  # released by close()
    wal.close()


def test_snapshot_directory_is_locked_too(tmp_path: Path) -> None:
    store = SnapshotStore.open(str(tmp_path / "snap"))
    with pytest.raises(DataDirLockedError):
        SnapshotStore.open(str(tmp_path / "snap"))
    store.close()


def test_another_process_cannot_open_and_a_killed_holder_releases(tmp_path: Path) -> None:
    """Two servers on one WAL would interleave batches; flock dies with its holder."""
    wal_dir = str(tmp_path / "wal")
    code = (
        f"import sys; sys.path.insert(0, {ROOT!r})\n"
        "from store.wal import WAL\n"
        f"wal, _ = WAL.open({wal_dir!r})\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(DataDirLockedError, match=f"pid {child.pid}") as info:
            WAL.open(wal_dir)
        assert wal_dir in str(info.value)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        if child.stdin is not None:
            child.stdin.close()
        if child.stdout is not None:
            child.stdout.close()
    wal, _ = WAL.open(wal_dir)
    wal.close()
