"""Helpers shared by the storage tests: deterministic payloads and a small log model."""

from __future__ import annotations

import os

from store.wal import WAL, RecoveredState
from store.wal.record import EntryTuple


def payload(index: int, term: int, size: int = 40) -> bytes:
    """Deterministic entry data, so a recovered entry can be checked byte for byte."""
    head = f"{index}:{term}:".encode()
    return (head * (size // len(head) + 1))[:size]


def entries(first: int, last: int, term: int, size: int = 40) -> list[EntryTuple]:
    return [(i, term, 0, payload(i, term, size)) for i in range(first, last + 1)]


class LogModel:
    """The Raft log as a plain dict, written independently of store.wal.replay."""

    def __init__(self) -> None:
        self.log: dict[int, EntryTuple] = {}

    def save(self, batch: list[EntryTuple]) -> None:
        if batch:
            start = batch[0][0]
            for index in [i for i in self.log if i >= start]:
                del self.log[index]
            for entry in batch:
                self.log[entry[0]] = entry

    def ordered(self) -> list[EntryTuple]:
        return [self.log[i] for i in sorted(self.log)]


def reopen(wal: WAL, **kwargs: int | bool) -> tuple[WAL, RecoveredState]:
    wal.close()
    return WAL.open(wal.directory, **kwargs)  # type: ignore[arg-type]


def last_segment(wal_dir: str) -> str:
    names = sorted(n for n in os.listdir(wal_dir) if n.endswith(".wal"))
    return os.path.join(wal_dir, names[-1])
