"""The logical Raft log the WAL holds: appends, overwritten suffixes and snapshot markers.

The writer and recovery share this class, so the log `save()` accepts is exactly the log replay
rebuilds. Rules (etcd-io/raft README, Ready contract: "when writing index i, discard persisted
entries >= i"; Raft paper §5.3 for conflicting suffixes, §7 for snapshots):

- an entry at `last + 1` appends;
- an entry at `i` with `first <= i <= last` discards entries `>= i`, then appends;
- an entry below `first`, or past `last + 1`, is a gap: refused (the writer raises ValueError,
  recovery reports corruption);
- an empty log takes any index as its start (a WAL whose older segments were released), unless a
  snapshot marker fixed the next index;
- a snapshot marker (index N, term T) keeps the log when it holds entry N with term T, or when N
  is below the log's start (a snapshot behind the retained log); otherwise the whole log is
  discarded and the next entry must be N + 1 (Raft §7: "If existing log entry has same index and
  term as snapshot's last included entry, retain log entries following it ... Discard the entire
  log").

Terms are kept for every held entry (an array of u64, cheap) because the marker rule needs them;
entry payloads only when `keep_data` is set (recovery).
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Sequence

from store.wal.record import EntryTuple


class LogShape:
    """Indices and terms of the held log, and optionally the entries themselves."""

    __slots__ = ("_entries", "_expect", "_first", "_keep_data", "_terms")

    def __init__(self, *, keep_data: bool) -> None:
        self._keep_data = keep_data
        self._first = 0
        self._terms: array[int] = array("Q")
        self._entries: list[EntryTuple] = []
        # The index the next entry must have when the log is empty; None means any.
        self._expect: int | None = None

    @property
    def first_index(self) -> int:
        """Index of the first held entry (meaningless when the log is empty)."""
        return self._first

    @property
    def last_index(self) -> int:
        """Index of the last held entry; when empty, the index before the next expected one."""
        if self._terms:
            return self._first + len(self._terms) - 1
        return (self._expect - 1) if self._expect is not None else 0

    @property
    def empty(self) -> bool:
        return not self._terms

    @property
    def entries(self) -> list[EntryTuple]:
        return self._entries

    def term_at(self, index: int) -> int | None:
        if self._terms and self._first <= index < self._first + len(self._terms):
            return self._terms[index - self._first]
        return None

    def entry_problem(self, index: int) -> str | None:
        """Why an entry at `index` cannot be written next, or None if it can."""
        if not self._terms:
            if self._expect is not None and index != self._expect:
                return f"entry {index} after a snapshot marker that requires entry {self._expect}"
            return None
        last = self._first + len(self._terms) - 1
        if index < self._first:
            return f"entry {index} precedes the first held entry {self._first}"
        if index > last + 1:
            return f"entry {index} leaves a gap after entry {last}"
        return None

    def batch_problem(
        self, indices: list[int], snapshot: tuple[int, int] | None, newest_marker: int
    ) -> str | None:
        """Why a batch (an optional snapshot marker, then entries) cannot be saved, or None.

        Checks without mutating: the marker's effect is computed, not applied.
        """
        expect_after_reset: int | None = None
        if snapshot is not None:
            index, term = snapshot
            if index < newest_marker:
                return f"snapshot marker {index} is older than the saved marker {newest_marker}"
            if not (self._terms and (index < self._first or self.term_at(index) == term)):
                expect_after_reset = index + 1
        if not indices:
            return None
        if expect_after_reset is not None:
            if indices[0] != expect_after_reset:
                return f"entry {indices[0]} after a snapshot marker that requires entry {expect_after_reset}"
        else:
            problem = self.entry_problem(indices[0])
            if problem is not None:
                return problem
        for prev, index in itertools.pairwise(indices):
            if index != prev + 1:
                return f"entries of one batch must be consecutive: {index} follows {prev}"
        return None

    def without_data(self) -> LogShape:
        """A copy that keeps indices and terms only (the writer's view after recovery)."""
        copy = LogShape(keep_data=False)
        copy._first = self._first
        copy._terms = array("Q", self._terms)
        copy._expect = self._expect
        return copy

    def append(self, entry: EntryTuple) -> None:
        """Add an entry (the caller checked `entry_problem`); overwrites a suffix if needed."""
        index = entry[0]
        if not self._terms:
            self._first = index
            self._expect = None
        else:
            keep = index - self._first
            if keep < len(self._terms):
                # Raft overwrote an uncommitted suffix: entries >= index are gone.
                del self._terms[keep:]
                if self._keep_data:
                    del self._entries[keep:]
                if not self._terms:
                    self._first = index
        self._terms.append(entry[1])
        if self._keep_data:
            self._entries.append(entry)

    def extend(self, entries: Sequence[EntryTuple]) -> None:
        """Add a run of consecutive entries (checked by `batch_problem`)."""
        if not entries:
            return
        self.append(entries[0])
        self._terms.extend(entry[1] for entry in entries[1:])
        if self._keep_data:
            self._entries.extend(entries[1:])

    def apply_snapshot(self, index: int, term: int) -> None:
        """A snapshot marker (not a carried one): keep or discard the log by Raft §7."""
        if self._terms and (index < self._first or self.term_at(index) == term):
            return
        self._terms = array("Q")
        self._entries = []
        self._expect = index + 1

    def release_below(self, index: int) -> None:
        """Forget held entries below `index` (their segments were deleted)."""
        if not self._terms or index <= self._first:
            return
        last = self.last_index
        drop = min(index - self._first, len(self._terms))
        del self._terms[:drop]
        if self._keep_data:
            del self._entries[:drop]
        self._first += drop
        if not self._terms:
            # Raft continues after the released entries, so the next one is last + 1.
            self._expect = last + 1
