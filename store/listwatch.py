"""List-then-watch: a consumer's always-current view of one key prefix (what confd and felixd use).

The pattern Calico's watchersyncer uses on etcd (libcalico-go `watcher.go`): list the prefix at
revision R, then watch it from R + 1 with prev_kv. Guarantees, over any `KVClient`:

- no gaps, no duplicates: every event after the list is delivered exactly once, in revision
  order; a watch that breaks (member restart, connection lost) is re-created from the revision
  after the last one delivered, and any event at or below it is dropped defensively;
- compaction: a watch cancelled with `compact_revision` cannot resume (etcd #8668: "compaction
  error should not be auto resumed, and it cannot in theory"), so the prefix is listed again and
  the consumer gets a fresh `Resync` with the whole state, never a silent skip (cilium #3011);
- back-off between failed attempts, bounded, so a store outage is not a tight loop
  (Calico #4109).

Yields `Resync` (the complete state at a revision; replace your view) and `Changes` (events
after the previous item). `ListWatcher.state` is the resulting view, kept up to date.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

from runtime.log import get_logger
from store.client import KVClient, StoreUnavailableError, prefix_end
from store.kv import Event, EventType, KeyValue

log = get_logger("store.listwatch")


@dataclass(frozen=True, slots=True)
class Resync:
    revision: int
    kvs: tuple[KeyValue, ...]


@dataclass(frozen=True, slots=True)
class Changes:
    revision: int
    events: tuple[Event, ...]


Update = Resync | Changes


class ListWatcher:
    def __init__(
        self,
        client: KVClient,
        prefix: bytes,
        *,
        range_end: bytes | None = None,
        rng: random.Random | None = None,
        max_backoff: float = 2.0,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.range_end = prefix_end(prefix) if range_end is None else range_end
        self.state: dict[bytes, KeyValue] = {}
        self.revision = 0
        self.relists = 0
        self.rewatches = 0
        self._rng = rng or random.Random()
        self._max_backoff = max_backoff
        self._failing = ""  # the error of the current streak of failures, "" when healthy

    def _failed(self, exc: StoreUnavailableError) -> None:
        # Retried for ever, so say so once per streak (and when the cause changes): a wrong
        # etcd password or an unreachable store must not be silent.
        if str(exc) != self._failing:
            log.warning(
                "store.unavailable", prefix=self.prefix.decode(errors="replace"), error=str(exc)
            )
        self._failing = str(exc)

    def _recovered(self) -> None:
        if self._failing:
            log.info("store.available", prefix=self.prefix.decode(errors="replace"))
            self._failing = ""

    async def _backoff(self, delay: float) -> float:
        await asyncio.sleep(delay * (0.5 + self._rng.random()))
        return min(delay * 2, self._max_backoff)

    async def _list(self) -> Resync:
        delay = 0.05
        while True:
            try:
                resp = await self.client.range(self.prefix, self.range_end)
            except StoreUnavailableError as exc:
                self._failed(exc)
                delay = await self._backoff(delay)
                continue
            self._recovered()
            self.state = {kv.key: kv for kv in resp.kvs}
            self.revision = resp.revision
            return Resync(resp.revision, resp.kvs)

    def _apply(self, events: tuple[Event, ...]) -> tuple[Event, ...]:
        fresh = tuple(ev for ev in events if ev.kv.mod_revision > self.revision)
        for ev in fresh:
            if ev.type is EventType.PUT:
                self.state[ev.kv.key] = ev.kv
            else:
                self.state.pop(ev.kv.key, None)
        if fresh:
            self.revision = fresh[-1].kv.mod_revision
        return fresh

    async def updates(self) -> AsyncIterator[Update]:
        yield await self._list()
        delay = 0.05
        while True:
            compacted = False
            try:
                async for resp in self.client.watch(
                    self.prefix, self.range_end, start_revision=self.revision + 1, prev_kv=True
                ):
                    if resp.canceled:
                        compacted = resp.compact_revision > 0
                        if not compacted:
                            # Not a compaction: re-created after a back-off that keeps growing.
                            self._failed(
                                StoreUnavailableError(f"watch cancelled: {resp.cancel_reason}")
                            )
                        break
                    delay = 0.05
                    self._recovered()
                    events = self._apply(resp.events)
                    if events:
                        yield Changes(self.revision, events)
            except StoreUnavailableError as exc:
                self._failed(exc)
            if compacted:
                self.relists += 1
                yield await self._list()
                continue
            # The watch ended for another reason: resume from the last revision delivered.
            self.rewatches += 1
            delay = await self._backoff(delay)
