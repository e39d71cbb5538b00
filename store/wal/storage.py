"""One data directory: `<dir>/wal` and `<dir>/snap`, opened and reconciled in one call.

`open_storage` is what the server calls at start. It recovers the WAL, picks the snapshot that
agrees with it (snapshot.py), and returns the log entries after that snapshot. It refuses to
start when the pieces do not fit: a gap between the snapshot and the first WAL entry, or a
hard state whose commit index lies beyond everything held (committed entries lost).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from store.wal.errors import StorageError
from store.wal.record import EntryTuple, HardStateTuple
from store.wal.snapshot import DEFAULT_KEEP, Snapshot, SnapshotStore
from store.wal.wal import DEFAULT_SEGMENT_SIZE, WAL


@dataclass(frozen=True, slots=True)
class Restored:
    """The state to restart a Raft node from."""

    hard_state: HardStateTuple | None
    snapshot: Snapshot | None
    entries: list[EntryTuple]
    """Entries after the snapshot's index, consecutive."""
    repairs: tuple[str, ...]


def open_storage(
    data_dir: str,
    *,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    preallocate: bool = True,
    keep_snapshots: int = DEFAULT_KEEP,
) -> tuple[WAL, SnapshotStore, Restored]:
    """Lock and recover `data_dir`; raise StorageError (with file and reason) if unsafe."""
    wal, recovered = WAL.open(
        os.path.join(data_dir, "wal"), segment_size=segment_size, preallocate=preallocate
    )
    try:
        snaps = SnapshotStore.open(os.path.join(data_dir, "snap"), keep=keep_snapshots)
        try:
            snapshot = snaps.load_newest(recovered)
            base = snapshot.index if snapshot is not None else 0
            entries = recovered.entries
            first = recovered.first_index
            if first is not None and first > base + 1:
                raise StorageError(
                    f"{data_dir}: the WAL starts at entry {first} but the newest usable "
                    f"snapshot ends at {base}: entries {base + 1}..{first - 1} are missing"
                )
            if first is not None:
                entries = entries[max(0, base + 1 - first) :]
            last = entries[-1][0] if entries else base
            hard = recovered.hard_state
            if hard is not None and hard[2] > last:
                raise StorageError(
                    f"{data_dir}: the hard state says entries up to {hard[2]} are committed "
                    f"but only {last} are held (snapshot {base}, WAL to {last})"
                )
            restored = Restored(hard, snapshot, entries, recovered.repairs)
        except BaseException:
            snaps.close()
            raise
    except BaseException:
        wal.close()
        raise
    return wal, snaps, restored
