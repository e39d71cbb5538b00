"""Snapshot files: written atomically with a checksum, chosen at start so they agree with the WAL.

File `<term:016x>-<index:016x>.snap` (etcd's naming):

    magic "TABBYSNP" | version u16 | reserved u16 | index u64 | term u64 | conf_len u64
    | data_len u64 | conf_state | data | crc u32 (CRC-32, zlib, of everything before it)

Atomic write: `<name>.tmp`, fsync, rename over the final name, fsync the directory. A crash
leaves either no file or a whole one (plus perhaps a `.tmp`, removed and ignored at open).

Choosing the snapshot (`load_newest`), given the WAL's recovered state:
- a file whose (index, term) the WAL neither marked nor holds as an entry is an orphan (the
  crash came between writing the file and its WAL marker): skipped, as etcd does;
- a file that fails its checksum is skipped only if an older valid one plus the WAL covers it
  (the WAL holds every entry from the older snapshot's index + 1 up to at least the damaged
  one's index); the damaged file is renamed `*.broken` for inspection. Otherwise SnapshotError.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import zlib
from dataclasses import dataclass
from types import TracebackType
from typing import Final

from runtime.log import get_logger
from store.wal.errors import SnapshotError, StorageError
from store.wal.fsutil import DirLock, ensure_dir, fsync_dir
from store.wal.wal import RecoveredState

SNAP_MAGIC: Final = b"TABBYSNP"
SNAP_VERSION: Final = 1
_HEAD = struct.Struct("<8sHHQQQQ")
_CRC = struct.Struct("<I")
_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.snap$")
DEFAULT_KEEP = 5
_log = get_logger("store.snapshot")


@dataclass(frozen=True, slots=True)
class Snapshot:
    index: int
    term: int
    conf_state: bytes
    data: bytes
    path: str


class _Damaged(Exception):
    pass


def snapshot_name(index: int, term: int) -> str:
    return f"{term:016x}-{index:016x}.snap"


def encode_snapshot_file(index: int, term: int, conf_state: bytes, data: bytes) -> bytes:
    head = _HEAD.pack(SNAP_MAGIC, SNAP_VERSION, 0, index, term, len(conf_state), len(data))
    crc = zlib.crc32(data, zlib.crc32(conf_state, zlib.crc32(head)))
    return b"".join((head, conf_state, data, _CRC.pack(crc)))


def decode_snapshot_file(buf: bytes, path: str) -> Snapshot:
    """The snapshot in `buf`, or _Damaged with the reason."""
    if len(buf) < _HEAD.size + _CRC.size:
        raise _Damaged(f"file is {len(buf)} bytes, shorter than header and checksum")
    magic, version, _reserved, index, term, conf_len, data_len = _HEAD.unpack_from(buf)
    if magic != SNAP_MAGIC:
        raise _Damaged("not a tabby snapshot (bad magic)")
    if version != SNAP_VERSION:
        raise _Damaged(f"snapshot format version {version}, this build reads {SNAP_VERSION}")
    if _HEAD.size + conf_len + data_len + _CRC.size != len(buf):
        raise _Damaged(f"lengths in the header do not add up to the file size {len(buf)}")
    (crc,) = _CRC.unpack_from(buf, len(buf) - _CRC.size)
    if zlib.crc32(memoryview(buf)[: len(buf) - _CRC.size]) != crc:
        raise _Damaged("checksum mismatch")
    conf_end = _HEAD.size + conf_len
    return Snapshot(index, term, buf[_HEAD.size : conf_end], buf[conf_end : -_CRC.size], path)


class SnapshotStore:
    """Snapshot files in one locked directory; keeps the `keep` newest."""

    def __init__(self, directory: str, lock: DirLock, keep: int) -> None:
        self.directory = directory
        self._lock = lock
        self.keep = keep

    @classmethod
    def open(cls, directory: str, *, keep: int = DEFAULT_KEEP) -> SnapshotStore:
        if keep < 1:
            raise ValueError("keep must be at least 1")
        ensure_dir(directory)
        lock = DirLock.acquire(directory)
        removed = False
        for name in os.listdir(directory):
            if name.endswith(".tmp"):
                # A save() that crashed before its rename: never acknowledged, never read.
                os.unlink(os.path.join(directory, name))
                _log.warning("snapshot.temp_removed", path=os.path.join(directory, name))
                removed = True
        if removed:
            fsync_dir(directory)
        return cls(directory, lock, keep)

    def files(self) -> list[tuple[int, int, str]]:
        """(index, term, path) of every snapshot file, newest first."""
        found: list[tuple[int, int, str]] = []
        for name in os.listdir(self.directory):
            match = _NAME.match(name)
            if match is not None:
                term, index = int(match.group(1), 16), int(match.group(2), 16)
                found.append((index, term, os.path.join(self.directory, name)))
        found.sort(reverse=True)
        return found

    def save(self, index: int, term: int, conf_state: bytes, data: bytes) -> str:
        """Write a snapshot atomically and durably, prune old ones; returns its path."""
        self._check_open()
        path = os.path.join(self.directory, snapshot_name(index, term))
        tmp = path + ".tmp"
        blob = encode_snapshot_file(index, term, conf_state, data)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            try:
                view = memoryview(blob)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            # A full disk above all: give the partial file's space back now, not at the next
            # open, so that the member can be restarted on the same disk once it has room.
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        os.rename(tmp, path)
        fsync_dir(self.directory)
        _log.info("snapshot.saved", path=path, index=index, term=term, bytes=len(blob))
        self._prune()
        return path

    def load_newest(self, wal: RecoveredState | None = None) -> Snapshot | None:
        """The newest usable snapshot, None if there is none; SnapshotError if unsafe.

        With `wal` (the WAL's recovered state) orphans are skipped and a damaged newest file
        may be replaced by an older one that the WAL covers; without it, damage is an error.
        """
        self._check_open()
        damaged: list[tuple[int, str, str]] = []
        for index, term, path in self.files():
            if wal is not None and not _agrees(wal, index, term):
                _log.warning("snapshot.orphan_skipped", path=path, index=index, term=term)
                continue
            try:
                with open(path, "rb") as f:
                    snap = decode_snapshot_file(f.read(), path)
                if (snap.index, snap.term) != (index, term):
                    raise _Damaged(f"header says index {snap.index} term {snap.term}")
            except (_Damaged, OSError) as exc:
                damaged.append((index, path, str(exc)))
                continue
            if damaged:
                self._fall_back(snap.index, damaged, wal)
            return snap
        if damaged:
            self._fall_back(0, damaged, wal)
        return None

    def close(self) -> None:
        self._lock.release()

    def __enter__(self) -> SnapshotStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if not self._lock.held:
            raise StorageError(f"snapshot store in {self.directory} is closed")

    def _fall_back(
        self, base: int, damaged: list[tuple[int, str, str]], wal: RecoveredState | None
    ) -> None:
        """Allow an older snapshot at `base` to stand in for damaged newer ones, or raise."""
        newest_index, newest_path, reason = damaged[0]
        what = f"snapshot {newest_path} is damaged ({reason})"
        if wal is None:
            raise SnapshotError(f"{what}; no WAL state given to prove an older one suffices")
        first, last = wal.first_index, wal.last_index
        if first is None or last is None or first > base + 1 or last < newest_index:
            held = "no entries" if first is None else f"entries {first}..{last}"
            raise SnapshotError(
                f"{what}; the WAL holds {held}, which does not cover {base + 1}..{newest_index} "
                f"after the newest usable snapshot (index {base}): restore from a backup "
                "or re-add this member"
            )
        for _index, path, why in damaged:
            with contextlib.suppress(FileNotFoundError):
                os.rename(path, path + ".broken")
            _log.warning("snapshot.damaged_skipped", path=path, reason=why, fallback_index=base)
        fsync_dir(self.directory)

    def _prune(self) -> None:
        old = self.files()[self.keep :]
        for _index, _term, path in old:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        if old:
            fsync_dir(self.directory)


def _agrees(wal: RecoveredState, index: int, term: int) -> bool:
    """The WAL marked this snapshot, or holds its last entry with the same term."""
    return (index, term) in wal.snapshots or wal.term_at(index) == term
