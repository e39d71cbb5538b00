"""Errors of the storage layer (WAL, snapshots, data-directory lock).

Every error names the file and, where it matters, the byte offset, so that an operator reading
the refusal to start knows exactly which file to inspect or restore.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every storage-layer error."""


class CorruptWALError(StorageError):
    """A WAL segment is damaged somewhere a crash cannot explain; the server must not start."""

    def __init__(self, path: str, offset: int, reason: str) -> None:
        self.path = path
        self.offset = offset
        self.reason = reason
        super().__init__(
            f"WAL corrupt: {path} at offset {offset}: {reason}; refusing to start "
            f"(restore this member from a snapshot or remove and re-add it to the cluster)"
        )


class WALFailedError(StorageError):
    """An earlier write or fdatasync failed; the WAL is poisoned until the process restarts.

    After a failed fsync the page cache no longer tells the truth about the disk, so retrying
    could acknowledge data that is not durable ("fsyncgate"). Recovery on restart is the only
    safe way forward.
    """


class SnapshotError(StorageError):
    """No usable snapshot could be chosen; the message says which file and why."""


class DataDirLockedError(StorageError):
    """Another process (or another open in this process) holds the data directory."""
