"""The Raft log as the core sees it: stable entries in `MemoryStorage` plus an unstable tail.

Implements the log rules of the Raft paper: the consistency check and conflict truncation of
AppendEntries (Figure 2, receiver rules 2-4), the "at least as up-to-date" comparison used when
voting (§5.4.1), and snapshot restore (§7). As in etcd-io/raft, entries appended since the last
`Ready` live in the unstable tail until the shell has persisted them.

Invariants: unstable entries start at `offset` and are consecutive; if an unstable snapshot is
pending, unstable entries (if any) follow it; `applied <= committed <= last_index()`; a committed
entry is never truncated; only stable entries are handed out for applying.
"""

from __future__ import annotations

from store.raft.storage import CompactedError, MemoryStorage, StorageError, limit_size
from store.raft.types import Entry, Snapshot


class RaftInvariantError(AssertionError):
    """The core was asked to break a Raft safety rule (a bug in the caller or in the core)."""


class RaftLog:
    __slots__ = ("applied", "committed", "offset", "storage", "unstable", "unstable_snapshot")

    def __init__(self, storage: MemoryStorage) -> None:
        self.storage = storage
        self.unstable: list[Entry] = []
        self.offset = storage.last_index() + 1
        self.unstable_snapshot: Snapshot | None = None
        self.committed = storage.first_index() - 1
        self.applied = storage.first_index() - 1

    # --- indexes and terms --------------------------------------------------------------------

    def first_index(self) -> int:
        if self.unstable_snapshot is not None:
            return self.unstable_snapshot.meta.index + 1
        return self.storage.first_index()

    def last_index(self) -> int:
        if self.unstable:
            return self.offset + len(self.unstable) - 1
        if self.unstable_snapshot is not None:
            return self.unstable_snapshot.meta.index
        return self.storage.last_index()

    def stable_last_index(self) -> int:
        """The last index already on stable storage (the tail beyond it is in flight)."""
        if self.unstable_snapshot is not None:
            return self.storage.last_index()
        return self.offset - 1

    def term(self, index: int) -> int | None:
        """The term of entry `index`, or None if it is compacted or beyond the log."""
        if index < self.first_index() - 1 or index > self.last_index():
            return None
        if index >= self.offset and self.unstable:
            return self.unstable[index - self.offset].term
        snap = self.unstable_snapshot
        if snap is not None:
            return snap.meta.term if index == snap.meta.index else None
        try:
            return self.storage.term(index)
        except StorageError:
            return None

    def last_term(self) -> int:
        term = self.term(self.last_index())
        assert term is not None
        return term

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def is_up_to_date(self, last_index: int, term: int) -> bool:
        """§5.4.1: compare the terms of the last entries, then the lengths."""
        my_term = self.last_term()
        return term > my_term or (term == my_term and last_index >= self.last_index())

    # --- appending ----------------------------------------------------------------------------

    def append(self, entries: list[Entry] | tuple[Entry, ...]) -> int:
        if not entries:
            return self.last_index()
        after = entries[0].index
        if after - 1 < self.committed:
            raise RaftInvariantError(
                f"append at {after} would overwrite committed {self.committed}"
            )
        if after == self.offset + len(self.unstable):
            self.unstable.extend(entries)
        elif after <= self.offset:
            # Replaces part of the stable log; the shell's WAL append truncates it the same way.
            self.offset = after
            self.unstable = list(entries)
        else:
            self.unstable = [*self.unstable[: after - self.offset], *entries]
        return self.last_index()

    def find_conflict(self, entries: tuple[Entry, ...]) -> int:
        """Index of the first entry whose term differs from ours (or is new), else 0."""
        for entry in entries:
            if not self.match_term(entry.index, entry.term):
                return entry.index
        return 0

    def maybe_append(
        self, prev_index: int, prev_term: int, committed: int, entries: tuple[Entry, ...]
    ) -> int | None:
        """Figure 2 AppendEntries receiver rules 2-5; the new last index, or None on mismatch."""
        if not self.match_term(prev_index, prev_term):
            return None
        last_new = prev_index + len(entries)
        conflict = self.find_conflict(entries)
        if conflict:
            if conflict <= self.committed:
                raise RaftInvariantError(f"entry {conflict} conflicts with a committed entry")
            self.append(entries[conflict - prev_index - 1 :])
        self.commit_to(min(committed, last_new))
        return last_new

    def find_conflict_by_term(self, index: int, term: int) -> int:
        """The largest index <= `index` whose term is <= `term` (fast log backtracking)."""
        while index > 0:
            mine = self.term(index)
            if mine is None or mine <= term:
                break
            index -= 1
        return index

    # --- reading ------------------------------------------------------------------------------

    def slice(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        """Entries lo <= index < hi; raises CompactedError below the first index."""
        if lo < self.first_index():
            raise CompactedError(f"index {lo} is compacted")
        hi = min(hi, self.last_index() + 1)
        if lo >= hi:
            return []
        out: list[Entry] = []
        if lo < self.offset:
            out = self.storage.entries(lo, min(hi, self.offset))
        if hi > self.offset:
            out.extend(self.unstable[max(lo, self.offset) - self.offset : hi - self.offset])
        return out if max_size is None else limit_size(out, max_size)

    def next_committed_entries(self, max_size: int) -> list[Entry]:
        """Committed, stable, unapplied entries: only persisted entries are applied."""
        if self.unstable_snapshot is not None:
            return []
        lo = max(self.applied + 1, self.first_index())
        hi = min(self.committed, self.offset - 1) + 1
        if lo >= hi:
            return []
        return self.slice(lo, hi, max_size)

    def has_next_committed_entries(self) -> bool:
        if self.unstable_snapshot is not None:
            return False
        return min(self.committed, self.offset - 1) > max(self.applied, self.first_index() - 1)

    # --- bookkeeping --------------------------------------------------------------------------

    def commit_to(self, index: int) -> None:
        if index > self.committed:
            if index > self.last_index():
                raise RaftInvariantError(f"commit {index} is beyond last index {self.last_index()}")
            self.committed = index

    def applied_to(self, index: int) -> None:
        if index > self.committed or index < self.applied:
            raise RaftInvariantError(f"applied {index} outside [{self.applied}, {self.committed}]")
        self.applied = index

    def stable_to(self, index: int, term: int) -> None:
        """Entries up to (index, term) reached stable storage; a term mismatch means the tail
        was replaced meanwhile, and the newer entries are still unstable."""
        if index < self.offset or self.term(index) != term:
            return
        self.unstable = self.unstable[index + 1 - self.offset :]
        self.offset = index + 1

    def stable_snap_to(self, index: int) -> None:
        if self.unstable_snapshot is not None and self.unstable_snapshot.meta.index == index:
            self.unstable_snapshot = None

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the log by `snapshot` (§7: "discard the entire log")."""
        self.committed = snapshot.meta.index
        self.unstable = []
        self.offset = snapshot.meta.index + 1
        self.unstable_snapshot = snapshot
