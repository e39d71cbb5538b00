"""Durable storage for tabby-store: a segmented write-ahead log and atomic snapshot files.

- `WAL` (wal.py): records in segment files with a per-record CRC-32, one fdatasync per Ready
  batch (group commit), torn-tail repair and refusal on any other damage.
- `SnapshotStore` (snapshot.py): snapshot files written atomically with a checksum.
- `open_storage` (storage.py): both under one data directory, with the snapshot chosen to agree
  with the WAL.

This layer does blocking file IO and is meant to be driven by a single writer (the server's
Raft task, through an executor if it wants). It knows nothing of Raft beyond plain values:
entries are `(index, term, kind, data)`, hard state `(term, vote, commit)`, snapshot metadata
`(index, term, conf_state)`.
"""

from store.wal.errors import (
    CorruptWALError,
    DataDirLockedError,
    SnapshotError,
    StorageError,
    WALFailedError,
)
from store.wal.record import EntryTuple, HardStateTuple, SnapshotMetaTuple
from store.wal.snapshot import Snapshot, SnapshotStore
from store.wal.storage import Restored, open_storage
from store.wal.wal import WAL, RecoveredState, WALStats

__all__ = [
    "WAL",
    "CorruptWALError",
    "DataDirLockedError",
    "EntryTuple",
    "HardStateTuple",
    "RecoveredState",
    "Restored",
    "Snapshot",
    "SnapshotError",
    "SnapshotMetaTuple",
    "SnapshotStore",
    "StorageError",
    "WALFailedError",
    "WALStats",
    "open_storage",
]
