"""File-system helpers for the storage layer: directory fsync, the data-directory lock, preallocation.

Why a directory fsync: creating, renaming or deleting a file changes the directory, and POSIX
does not promise that change is durable until the directory itself is fsynced (etcd issue #6368
was exactly this). Why flock: two servers appending to one WAL would interleave batches; an
advisory lock on a LOCK file is dropped by the kernel when its holder dies, so a SIGKILLed
server never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os

from store.wal.errors import DataDirLockedError

LOCK_NAME = "LOCK"


def fsync_dir(path: str) -> None:
    """Make the directory's entries (creates, renames, deletes) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_dir(path: str) -> None:
    """Create `path` and any missing parents, durably (each new entry's parent is fsynced)."""
    path = os.path.abspath(path)
    missing: list[str] = []
    probe = path
    while not os.path.isdir(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    if not missing:
        return
    os.makedirs(path, mode=0o700, exist_ok=True)
    for created in reversed(missing):
        fsync_dir(os.path.dirname(created))


def preallocate(fd: int, size: int) -> bool:
    """Reserve `size` bytes of blocks for the file; False if the file system cannot.

    Errors other than "not supported" (ENOSPC above all) propagate: a full disk should be seen
    when a segment is created, before any record of a batch is written.
    """
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            return False
        raise
    return True


def read_data(path: str) -> bytes:
    """The file's bytes up to the end of its last data extent.

    What lies past that is a hole or reserved-but-unwritten space (a preallocated segment
    tail), which reads as zeros by definition, so recovery need not copy 64 MiB of zeros. Where
    the file system cannot tell (no SEEK_HOLE), the whole file is read.
    """
    with open(path, "rb") as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        end = size
        try:
            data_end = pos = 0
            while pos < size:
                start = os.lseek(fd, pos, os.SEEK_DATA)
                pos = data_end = os.lseek(fd, start, os.SEEK_HOLE)
            end = data_end
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data at or after pos: the rest is a hole
                end = data_end
        f.seek(0)
        return f.read(end)


class DirLock:
    """An exclusive flock on `<directory>/LOCK`, held until `release()` or process exit."""

    __slots__ = ("_fd", "path")

    def __init__(self, fd: int, path: str) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, directory: str) -> DirLock:
        path = os.path.join(directory, LOCK_NAME)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise DataDirLockedError(
                f"data directory {directory} is in use: {path} is locked by pid {holder}; "
                f"stop that tabby-store (or point this one at another directory)"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        # The pid is only a hint for the error above; the lock itself is the flock.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd, path)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        # The LOCK file stays: unlinking it would let a third process lock a fresh inode
        # while a second one still waits on the old one.
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
