"""Multi-version key-value storage: per-key revision lists, a sorted key index, a revision log.

This is etcd's `mvcc` package reduced to what an in-memory state machine needs
(etcd server/storage/mvcc: `kvstore.go`, `key_index.go`, `index.go`):

- one global `revision`, bumped once per write transaction (a txn is one revision);
- per key, the list of its records in revision order; a delete appends a tombstone
  (version 0, create_revision 0), as etcd's keyIndex ends a generation;
- `_live`/`_live_keys`: the current value of every existing key, for reads at the head;
  `_all_keys`: every key that still has records, for reads at older revisions;
- `_log[r - _log_base]`: the events of revision r, in the order of the writes in that revision,
  each with its previous value, so that watchers replay history without searching keys.

Invariants: `_log_base + len(_log) == revision + 1`; every revision in
[max(2, compact_revision), revision] has exactly one (non-empty) log entry (revision 1 is the
empty initial store); a key changes at most once per revision (txn rules forbid more); after
`compact(c)`, every key keeps, as etcd's keyIndex.compact does, its newest record at or below c
(unless that is a tombstone below c: the key is then dropped) and every record above c, so a
read at any revision >= c stays answerable; a tombstone at exactly c stays, for the DELETE
event at c (etcd #19179). Events at c lose their prev_kv (the value before c is gone; etcd's
watch leaves it empty too); every later event's prev_kv is kept. Writers check everything before calling `put`/`delete`: these
methods never fail half-way.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, bisect_right
from itertools import pairwise
from operator import attrgetter

from store.kv.messages import Event, EventType, KeyValue
from store.kv.sortedkeys import SortedKeys

# What one record costs against the quota: etcd's quota uses kvOverhead = 256 bytes plus the key
# and value (server/storage/quota.go). Our size is this logical sum, not a file size, so every
# member computes the same number and the NOSPACE decision replicates deterministically.
RECORD_OVERHEAD = 256

_MOD = attrgetter("mod_revision")
_PUT = EventType.PUT
_DELETE = EventType.DELETE


def key_bounds(key: bytes, range_end: bytes) -> tuple[bytes, bytes | None] | None:
    """[lo, hi) for an etcd key range; None for a single key. range_end b"\\0" means no bound."""
    if not range_end:
        return None
    if range_end == b"\0":
        return key, None
    return key, range_end


def in_range(k: bytes, key: bytes, range_end: bytes) -> bool:
    """Whether `k` lies in the etcd range (key, range_end)."""
    if not range_end:
        return k == key
    return key <= k and (range_end == b"\0" or k < range_end)


class MVCCStore:
    __slots__ = (
        "_all_keys",
        "_history",
        "_live",
        "_live_keys",
        "_log",
        "_log_base",
        "_multi",
        "compact_revision",
        "revision",
        "size",
    )

    def __init__(self) -> None:
        self.revision = 1  # etcd starts at 1 with an empty keyspace
        self.compact_revision = (
            -1
        )  # etcd compactMainRev: -1 until the first compaction, so Compact(0) succeeds once
        self.size = 0
        self._live: dict[bytes, KeyValue] = {}
        self._live_keys = SortedKeys()
        self._history: dict[bytes, list[KeyValue]] = {}
        self._all_keys = SortedKeys()
        # Keys that compaction may shorten: more than one record, or ending in a tombstone.
        self._multi: set[bytes] = set()
        self._log: list[tuple[Event, ...]] = []
        self._log_base = 2

    # --- reads ----------------------------------------------------------------------------

    def get(self, key: bytes) -> KeyValue | None:
        return self._live.get(key)

    def __len__(self) -> int:
        return len(self._live)

    def kv_at(self, key: bytes, rev: int) -> KeyValue | None:
        """The key's value at `rev` (None if absent then). `rev` must be >= compact_revision."""
        hist = self._history.get(key)
        if hist is None:
            return None
        if hist[-1].mod_revision <= rev:
            kv = hist[-1]
        else:
            i = bisect_right(hist, rev, key=_MOD)
            if i == 0:
                return None
            kv = hist[i - 1]
        return None if kv.version == 0 else kv

    def range(
        self, key: bytes, range_end: bytes, rev: int, at_head: bool, limit: int
    ) -> tuple[list[KeyValue], int]:
        """(the first `limit` key-values in key order, how many exist in total) at `rev`.

        `at_head` says the caller wants the newest state, including writes of a transaction
        in progress; the fast path then reads `_live` only."""
        bounds = key_bounds(key, range_end)
        if at_head:
            if bounds is None:
                kv = self._live.get(key)
                return ([kv], 1) if kv is not None else ([], 0)
            lo, hi = bounds
            live = self._live
            keys = self._live_keys.take(lo, hi, limit)
            count = self._live_keys.count(lo, hi) if limit and len(keys) == limit else len(keys)
            return [live[k] for k in keys], count
        if bounds is None:
            kv = self.kv_at(key, rev)
            return ([kv], 1) if kv is not None else ([], 0)
        out: list[KeyValue] = []
        count = 0
        kv_at = self.kv_at
        for k in self._all_keys.irange(*bounds):
            kv = kv_at(k, rev)
            if kv is not None:
                count += 1
                if not limit or count <= limit:
                    out.append(kv)
        return out, count

    def hash_kv(self, rev: int) -> int:
        """A CRC-32 over every kept record with mod_revision <= `rev`, in key order (etcd
        HashKV: members that applied the same entries and compactions agree)."""
        crc = 0
        for k in self._all_keys:
            for kv in self._history[k]:
                if kv.mod_revision > rev:
                    break
                head = b"%d %d %d %d " % (kv.create_revision, kv.mod_revision, kv.version, kv.lease)
                crc = zlib.crc32(kv.value, zlib.crc32(head, zlib.crc32(k, crc)))
        return crc

    def live_keys(self, key: bytes, range_end: bytes) -> list[bytes]:
        bounds = key_bounds(key, range_end)
        if bounds is None:
            return [key] if key in self._live else []
        return self._live_keys.take(bounds[0], bounds[1], 0)

    # --- writes (at revision `rev` = revision + 1, then `commit`) ------------------------

    def put(self, key: bytes, value: bytes, lease: int, rev: int) -> Event:
        prev = self._live.get(key)
        if prev is None:
            kv = KeyValue(key, rev, rev, 1, value, lease)
            self._live_keys.add(key)
            hist = self._history.get(key)
            if hist is None:
                self._history[key] = [kv]
                self._all_keys.add(key)
            else:
                hist.append(kv)
                self._multi.add(key)
        else:
            kv = KeyValue(key, prev.create_revision, rev, prev.version + 1, value, lease)
            self._history[key].append(kv)
            self._multi.add(key)
        self._live[key] = kv
        self.size += len(key) + len(value) + RECORD_OVERHEAD
        return Event(_PUT, kv, prev)

    def delete(self, key: bytes, rev: int) -> Event:
        """Delete a key that exists (the caller looked it up)."""
        prev = self._live.pop(key)
        self._live_keys.remove(key)
        tomb = KeyValue(key, 0, rev, 0, b"", 0)
        self._history[key].append(tomb)
        self._multi.add(key)
        self.size += len(key) + RECORD_OVERHEAD
        return Event(_DELETE, tomb, prev)

    def commit(self, rev: int, events: tuple[Event, ...]) -> None:
        """End a write transaction that changed something: it becomes revision `rev`."""
        self._log.append(events)
        self.revision = rev

    # --- history ---------------------------------------------------------------------------

    @property
    def first_logged(self) -> int:
        """The oldest revision whose events are still in the log."""
        return self._log_base

    def events_at(self, rev: int) -> tuple[Event, ...]:
        """Events of revision `rev`, for first_logged <= rev <= revision."""
        return self._log[rev - self._log_base]

    def compact(self, rev: int) -> None:
        """Drop history below `rev` (callers check compact_revision < rev <= revision)."""
        history = self._history
        size = 0
        for key in list(self._multi):
            hist = history[key]
            i = bisect_right(hist, rev, key=_MOD)
            # etcd keyIndex.compact: the newest record at or below `rev` is the value at `rev`;
            # older ones go. A tombstone below `rev` goes too (the key was absent at `rev`).
            keep_from = i - 1 if i > 0 else 0
            if i > 0 and hist[i - 1].version == 0 and hist[i - 1].mod_revision < rev:
                keep_from = i
            if keep_from:
                for kv in hist[:keep_from]:
                    size += len(kv.key) + len(kv.value) + RECORD_OVERHEAD
                del hist[:keep_from]
            if not hist:
                del history[key]
                self._all_keys.remove(key)
                self._multi.discard(key)
            elif len(hist) == 1 and hist[0].version != 0:
                self._multi.discard(key)
        self.size -= size
        if rev > self._log_base:
            del self._log[: rev - self._log_base]
            self._log_base = rev
        if rev >= self._log_base and rev <= self.revision:
            # Every prev_kv of an event at `rev` was dropped above: leave it empty, as a
            # snapshot of this state rebuilds it (and as etcd's watch does).
            at = rev - self._log_base
            if any(ev.prev_kv is not None for ev in self._log[at]):
                self._log[at] = tuple([Event(ev.type, ev.kv, None) for ev in self._log[at]])
        self.compact_revision = rev

    # --- snapshots -------------------------------------------------------------------------

    def dump(self) -> list[object]:
        """A msgpack-able, deterministic image. Keys in order, flattened to one list
        `[key, n, (create, mod, version, value, lease) * n, key, ...]` (nested lists per record
        cost three times as much to build and load); the log as changed keys per revision."""
        history = self._history
        flat: list[object] = []
        extend = flat.extend
        for k in self._all_keys:
            hist = history[k]
            extend((k, len(hist)))
            for kv in hist:
                extend((kv.create_revision, kv.mod_revision, kv.version, kv.value, kv.lease))
        log = [[ev.kv.key for ev in events] for events in self._log]
        return [self.revision, self.compact_revision, self._log_base, flat, log]

    @classmethod
    def load(cls, image: list[object]) -> MVCCStore:
        """Rebuild from `dump()`; raises ValueError/TypeError/KeyError/IndexError on an
        inconsistent image. Integrity against bit rot is the storage layer's checksums' job."""
        revision, compact_revision, log_base, flat, log = image
        st = cls()
        if not (
            type(revision) is int
            and type(compact_revision) is int
            and type(log_base) is int
            and isinstance(flat, list)
            and isinstance(log, list)
        ):
            raise TypeError("bad MVCC image header")
        st.revision, st.compact_revision, st._log_base = revision, compact_revision, log_base
        ordered: list[bytes] = []
        live_ordered: list[bytes] = []
        history, live, multi = st._history, st._live, st._multi
        size = 0
        i, end = 0, len(flat)
        while i < end:
            k, n = flat[i], flat[i + 1]
            if type(k) is not bytes or type(n) is not int or n < 1:
                raise TypeError("bad key in MVCC image")
            i += 2
            hist = []
            for j in range(i, i + 5 * n, 5):
                value = flat[j + 3]
                if type(value) is not bytes:
                    raise TypeError("bad value in MVCC image")
                hist.append(KeyValue(k, flat[j], flat[j + 1], flat[j + 2], value, flat[j + 4]))
                size += len(k) + len(value) + RECORD_OVERHEAD
            i += 5 * n
            history[k] = hist
            ordered.append(k)
            last = hist[-1]
            if n > 1 or last.version == 0:
                multi.add(k)
            if last.version != 0:
                live[k] = last
                live_ordered.append(k)
        if any(a >= b for a, b in pairwise(ordered)):
            raise ValueError("keys of an MVCC image must be sorted and unique")
        st._all_keys = SortedKeys(ordered)
        st._live_keys = SortedKeys(live_ordered)
        st.size = size
        for offset, changed in enumerate(log):
            rev = log_base + offset
            events: list[Event] = []
            for k in changed:
                hist = history[k]
                at = bisect_left(hist, rev, key=_MOD)
                kv = hist[at]
                if kv.mod_revision != rev:
                    raise ValueError(
                        f"log names {k!r} at revision {rev} but it has no record there"
                    )
                prev = hist[at - 1] if at and hist[at - 1].version != 0 else None
                events.append(Event(_DELETE if kv.version == 0 else _PUT, kv, prev))
            st._log.append(tuple(events))
        if log_base + len(st._log) != revision + 1:
            raise ValueError("MVCC image log does not end at its revision")
        return st
