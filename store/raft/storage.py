"""In-memory stable log: the Raft core's view of what the shell has persisted.

Implements etcd-io/raft's MemoryStorage contract: the shell fills it from its WAL and snapshot
files on restart (`set_hard_state`, `apply_snapshot`, `append`), the core appends to it in
`RaftNode.advance` once the shell has persisted a Ready, and the shell compacts it after taking a
state-machine snapshot (Raft paper §7).

Invariants: `_ents[0]` is a sentinel standing for the snapshot's last entry (index, term);
entries are consecutive; `first_index() == snapshot index + 1`; appending an entry that conflicts
with a stored one truncates the stored suffix (Figure 2, AppendEntries receiver rule 3).
"""

from __future__ import annotations

from store.raft.types import (
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Snapshot,
    SnapshotMeta,
)


class StorageError(Exception):
    """Base of the storage errors; the caller asked for something the log cannot give."""


class CompactedError(StorageError):
    """The requested index lies at or below the snapshot: it was compacted away (§7)."""


class UnavailableError(StorageError):
    """The requested index is beyond the last stored entry."""


class SnapshotOutOfDateError(StorageError):
    """A snapshot older than the current one was offered."""


def limit_size(entries: list[Entry], max_size: int) -> list[Entry]:
    """The longest prefix within `max_size` bytes, but never fewer than one entry."""
    if sum(len(e.data) for e in entries) + 24 * len(entries) <= max_size:
        return entries  # the common case, without the per-entry bookkeeping below
    total = 0
    for i, entry in enumerate(entries):
        total += len(entry.data) + 24  # Entry.size(), inlined: this runs once per entry sent
        if total > max_size and i > 0:
            return entries[:i]
    return entries


class MemoryStorage:
    """Entries, hard state and the latest snapshot, all in memory."""

    __slots__ = ("_ents", "_snapshot", "hard_state")

    def __init__(self) -> None:
        self.hard_state = HardState()
        self._snapshot = Snapshot()
        self._ents: list[Entry] = [Entry(0, 0, EntryKind.EMPTY)]

    # --- reads --------------------------------------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self.hard_state, self._snapshot.meta.conf_state

    def first_index(self) -> int:
        return self._ents[0].index + 1

    def last_index(self) -> int:
        return self._ents[0].index + len(self._ents) - 1

    def term(self, index: int) -> int:
        offset = self._ents[0].index
        if index < offset:
            raise CompactedError(f"index {index} is compacted (snapshot at {offset})")
        if index - offset >= len(self._ents):
            raise UnavailableError(f"index {index} is beyond the last index {self.last_index()}")
        return self._ents[index - offset].term

    def entries(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        """Entries with lo <= index < hi, limited to `max_size` bytes (at least one)."""
        offset = self._ents[0].index
        if lo <= offset:
            raise CompactedError(f"index {lo} is compacted (snapshot at {offset})")
        if hi > self.last_index() + 1:
            raise UnavailableError(f"index {hi - 1} is beyond the last index {self.last_index()}")
        ents = self._ents[lo - offset : hi - offset]
        return ents if max_size is None else limit_size(ents, max_size)

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # --- writes -------------------------------------------------------------------------------

    def set_hard_state(self, hard_state: HardState) -> None:
        self.hard_state = hard_state

    def apply_snapshot(self, snapshot: Snapshot) -> None:
        """Replace the whole log by `snapshot` (a follower installing one, or a restart)."""
        if snapshot.meta.index < self._snapshot.meta.index:
            raise SnapshotOutOfDateError(
                f"snapshot at {snapshot.meta.index} is older than {self._snapshot.meta.index}"
            )
        self._snapshot = snapshot
        self._ents = [Entry(snapshot.meta.term, snapshot.meta.index, EntryKind.EMPTY)]

    def create_snapshot(self, index: int, conf_state: ConfState, data: bytes) -> Snapshot:
        """Record a state-machine image taken at applied `index`; the log is not compacted."""
        if index <= self._snapshot.meta.index:
            raise SnapshotOutOfDateError(
                f"snapshot at {index} is not newer than {self._snapshot.meta.index}"
            )
        if index > self.last_index():
            raise UnavailableError(f"snapshot index {index} is beyond {self.last_index()}")
        meta = SnapshotMeta(index, self.term(index), conf_state)
        self._snapshot = Snapshot(meta, data)
        return self._snapshot

    def compact(self, index: int) -> None:
        """Discard entries up to and including `index`, keeping it as the sentinel.

        The caller must only compact what a snapshot covers, or a lagging follower could need an
        entry that no longer exists and no snapshot that replaces it (§7)."""
        offset = self._ents[0].index
        if index <= offset:
            raise CompactedError(f"index {index} is already compacted")
        if index > self.last_index():
            raise UnavailableError(f"compact index {index} is beyond {self.last_index()}")
        if index > self._snapshot.meta.index:
            raise StorageError(f"compact index {index} is not covered by a snapshot")
        keep = self._ents[index - offset :]
        self._ents = [Entry(keep[0].term, keep[0].index, EntryKind.EMPTY), *keep[1:]]

    def append(self, entries: list[Entry] | tuple[Entry, ...]) -> None:
        """Append, truncating any stored suffix that the new entries replace (Figure 2)."""
        if not entries:
            return
        first = self.first_index()
        last_new = entries[0].index + len(entries) - 1
        if last_new < first:
            return  # all of it is already covered by the snapshot
        if entries[0].index < first:
            entries = entries[first - entries[0].index :]
        start = entries[0].index - self._ents[0].index
        if start > len(self._ents):
            raise UnavailableError(
                f"missing log entries: last {self.last_index()}, appending at {entries[0].index}"
            )
        # In place: the common case (start == len) is a plain O(len(entries)) extend.
        del self._ents[start:]
        self._ents.extend(entries)

    def copy(self) -> MemoryStorage:
        """An independent copy (entries are immutable, so a shallow list copy suffices)."""
        clone = MemoryStorage()
        clone.hard_state = self.hard_state
        clone._snapshot = self._snapshot
        clone._ents = list(self._ents)
        return clone


def bootstrap(voters: list[int] | tuple[int, ...] | frozenset[int]) -> MemoryStorage:
    """Storage for a member of a brand-new cluster (all initial members call this alike).

    The initial membership is written as committed CONF_CHANGE entries of term 1, as etcd does,
    so that a node that joins later learns it by replaying the log like any other change."""
    storage = MemoryStorage()
    entries = [
        Entry(1, i, EntryKind.CONF_CHANGE, ConfChange(ConfChangeKind.ADD_NODE, node).encode())
        for i, node in enumerate(sorted(voters), start=1)
    ]
    storage.append(entries)
    storage.set_hard_state(HardState(term=1, vote=0, commit=len(entries)))
    return storage
