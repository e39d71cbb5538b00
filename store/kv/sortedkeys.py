"""A sorted set of byte-string keys for range scans: a list of sorted chunks.

A single sorted list costs a memmove of the whole tail on every insert (tens of µs at 10^5
keys); chunks of at most 2·LOAD keys keep an insert or removal to a bisect over the chunk
maxima plus a short memmove, while a scan is still a walk over contiguous lists. Invariants:
every chunk is non-empty and sorted, `_maxes[c] == _chunks[c][-1]`, chunks are in order and
disjoint. Membership is the caller's business (the store keeps dicts): `add` takes an absent
key and `remove` a present one.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator

LOAD = 512


class SortedKeys:
    __slots__ = ("_chunks", "_len", "_maxes")

    def __init__(self, keys: list[bytes] | None = None) -> None:
        """`keys`, if given, must already be sorted and free of duplicates."""
        ordered = keys or []
        self._chunks: list[list[bytes]] = [
            ordered[i : i + LOAD] for i in range(0, len(ordered), LOAD)
        ]
        self._maxes: list[bytes] = [c[-1] for c in self._chunks]
        self._len = len(ordered)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            yield from chunk

    def add(self, key: bytes) -> None:
        maxes = self._maxes
        self._len += 1
        if not maxes:
            self._chunks.append([key])
            maxes.append(key)
            return
        c = bisect_left(maxes, key)
        if c == len(maxes):
            c -= 1
            chunk = self._chunks[c]
            chunk.append(key)
            maxes[c] = key
        else:
            chunk = self._chunks[c]
            insort(chunk, key)
        if len(chunk) > 2 * LOAD:
            self._chunks[c : c + 1] = [chunk[:LOAD], chunk[LOAD:]]
            maxes[c : c + 1] = [chunk[LOAD - 1], chunk[-1]]

    def remove(self, key: bytes) -> None:
        maxes = self._maxes
        c = bisect_left(maxes, key)
        chunk = self._chunks[c]
        i = bisect_left(chunk, key)
        del chunk[i]
        self._len -= 1
        if not chunk:
            del self._chunks[c]
            del maxes[c]
            return
        if i == len(chunk):
            maxes[c] = chunk[-1]
        if len(chunk) < LOAD // 4 and len(self._chunks) > 1:
            # Merge a thinning chunk into a neighbour so that deletes cannot leave many tiny chunks.
            left = c - 1 if c > 0 else c
            merged = self._chunks[left] + self._chunks[left + 1]
            if len(merged) > 2 * LOAD:
                half = len(merged) // 2
                self._chunks[left : left + 2] = [merged[:half], merged[half:]]
                maxes[left : left + 2] = [merged[half - 1], merged[-1]]
            else:
                self._chunks[left : left + 2] = [merged]
                maxes[left : left + 2] = [merged[-1]]

    def _locate(self, key: bytes) -> tuple[int, int]:
        """(chunk, offset) of the first key >= `key`; (len(chunks), 0) past the end."""
        c = bisect_left(self._maxes, key)
        if c == len(self._maxes):
            return c, 0
        return c, bisect_left(self._chunks[c], key)

    def irange(self, lo: bytes, hi: bytes | None) -> Iterator[bytes]:
        """Keys k with lo <= k < hi (hi None: no upper bound), ascending."""
        c, i = self._locate(lo)
        chunks = self._chunks
        while c < len(chunks):
            chunk = chunks[c]
            if hi is not None and chunk[-1] >= hi:
                for k in chunk[i:]:
                    if k >= hi:
                        return
                    yield k
                return
            yield from chunk[i:] if i else chunk
            c += 1
            i = 0

    def count(self, lo: bytes, hi: bytes | None) -> int:
        """How many keys lie in [lo, hi), without walking them."""
        c1, i1 = self._locate(lo)
        c2, i2 = (len(self._chunks), 0) if hi is None else self._locate(hi)
        if (c2, i2) <= (c1, i1):
            return 0
        if c1 == c2:
            return i2 - i1
        total = len(self._chunks[c1]) - i1 + i2
        for c in range(c1 + 1, c2):
            total += len(self._chunks[c])
        return total

    def take(self, lo: bytes, hi: bytes | None, limit: int) -> list[bytes]:
        """The first `limit` keys of [lo, hi) (limit 0: all of them)."""
        out: list[bytes] = []
        c, i = self._locate(lo)
        chunks = self._chunks
        while c < len(chunks):
            chunk = chunks[c]
            j = len(chunk) if hi is None or chunk[-1] < hi else bisect_left(chunk, hi, i)
            if limit:
                j = min(j, i + limit - len(out))
            out.extend(chunk[i:j])
            if (limit and len(out) >= limit) or j < len(chunk):
                return out
            c += 1
            i = 0
        return out
