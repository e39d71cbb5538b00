"""What the two `KVClient` backends share above their transports (`StoreClient`, `EtcdClient`).

The KV calls are built here from `store.kv`'s request messages, and the watch that resumes after
a broken stream lives here once, so the backends cannot drift apart in what they promise
(docs/store.md): each backend implements only its primitives, the exchange of one request
(`_range`, `_put`, `_delete_range`, `_txn`, `_compact`) and one watch stream (`_watch_stream`),
plus `close`. Endpoint rotation and the back-off between rounds of attempts are shared as well.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import random
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Self

from store.kv import (
    CompactRequest,
    CompactResponse,
    Compare,
    DeleteRangeRequest,
    DeleteRangeResponse,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    TxnRequest,
    TxnResponse,
    WatchFilter,
    WatchResponse,
)
from store.kv.messages import RequestOp


@dataclass(frozen=True, slots=True)
class WatchCreate:
    """etcd's WatchCreateRequest: what one watch stream is opened with."""

    key: bytes
    range_end: bytes
    start_revision: int
    prev_kv: bool
    filters: tuple[WatchFilter, ...]
    progress_notify: bool


class KVClientBase(abc.ABC):
    """The backend-independent half of a `KVClient`: endpoint rotation, the KV calls, the watch."""

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout: float,
        max_in_flight: int,
        rng: random.Random | None,
    ) -> None:
        if not endpoints:
            raise ValueError(f"{type(self).__name__} needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.timeout = timeout
        self._rng = rng or random.Random()
        self._current = 0
        self._sem = asyncio.Semaphore(max_in_flight)
        self.failovers = 0

    # --- the backend's primitives ----------------------------------------------------------

    @abc.abstractmethod
    async def _range(self, req: RangeRequest, serializable: bool) -> RangeResponse: ...

    @abc.abstractmethod
    async def _put(self, req: PutRequest) -> PutResponse: ...

    @abc.abstractmethod
    async def _delete_range(self, req: DeleteRangeRequest) -> DeleteRangeResponse: ...

    @abc.abstractmethod
    async def _txn(self, req: TxnRequest) -> TxnResponse: ...

    @abc.abstractmethod
    async def _compact(self, req: CompactRequest) -> CompactResponse: ...

    @abc.abstractmethod
    def _watch_stream(self, index: int, create: WatchCreate) -> AsyncGenerator[WatchResponse, None]:
        """The responses of one watch stream on endpoint `index`, the `created` one included;
        it ends (without raising) when the stream breaks, and raises what must reach the
        caller (a request error)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    # --- endpoint rotation -------------------------------------------------------------------

    def _rotate(self, index: int) -> None:
        """The next call goes to the endpoint after `index`, unless another call moved on."""
        if self._current == index and len(self.endpoints) > 1:
            self._current = (index + 1) % len(self.endpoints)
            self.failovers += 1

    async def _retry_pause(self, index: int, delay: float, remaining: float) -> float:
        """After a failed attempt on `index`: move to the next endpoint, and once every one has
        been tried, wait a jittered `delay` (within what is left of the deadline) before the
        next round. Returns the delay for the round after."""
        self._rotate(index)
        if self._current in (index, 0):
            await asyncio.sleep(min(delay * (0.5 + self._rng.random()), max(remaining, 0)))
            delay = min(delay * 2, 0.5)
        return delay

    # --- KV ----------------------------------------------------------------------------------

    async def range(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        revision: int = 0,
        limit: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
        serializable: bool = False,
    ) -> RangeResponse:
        req = RangeRequest(key, range_end, limit, revision, keys_only, count_only)
        return await self._range(req, serializable)

    async def get(self, key: bytes, *, serializable: bool = False) -> RangeResponse:
        return await self.range(key, serializable=serializable)

    async def put(
        self,
        key: bytes,
        value: bytes,
        *,
        lease: int = 0,
        prev_kv: bool = False,
        ignore_value: bool = False,
        ignore_lease: bool = False,
    ) -> PutResponse:
        return await self._put(PutRequest(key, value, lease, prev_kv, ignore_value, ignore_lease))

    async def delete(
        self, key: bytes, range_end: bytes = b"", *, prev_kv: bool = False
    ) -> DeleteRangeResponse:
        return await self._delete_range(DeleteRangeRequest(key, range_end, prev_kv))

    async def txn(
        self,
        compare: Sequence[Compare],
        success: Sequence[RequestOp],
        failure: Sequence[RequestOp] = (),
    ) -> TxnResponse:
        return await self._txn(TxnRequest(tuple(compare), tuple(success), tuple(failure)))

    async def compact(self, revision: int, physical: bool = False) -> CompactResponse:
        return await self._compact(CompactRequest(revision, physical))

    # --- watch -------------------------------------------------------------------------------

    async def watch(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: Sequence[WatchFilter] = (),
        progress_notify: bool = False,
    ) -> AsyncIterator[WatchResponse]:
        """Event batches in revision order. A stream that ends without a cancellation (member
        stopped, connection lost, cut off as too slow) is re-created, on the next endpoint if
        there is one, at the revision after the last one delivered, so nothing is missed or
        repeated. Ends after yielding a `canceled` response (compaction: `compact_revision` > 0;
        re-list)."""
        next_rev = start_revision
        delay = 0.02
        while True:
            index = self._current
            create = WatchCreate(key, range_end, next_rev, prev_kv, tuple(filters), progress_notify)
            async with contextlib.aclosing(self._watch_stream(index, create)) as stream:
                async for resp in stream:
                    delay = 0.02
                    if resp.created and not resp.canceled:
                        if next_rev == 0:
                            next_rev = resp.revision + 1
                        continue
                    if resp.canceled:
                        yield resp
                        return
                    if resp.events:
                        next_rev = resp.events[-1].kv.mod_revision + 1
                    else:
                        next_rev = max(next_rev, resp.revision + 1)
                    yield resp
            self._rotate(index)
            await asyncio.sleep(delay * (0.5 + self._rng.random()))
            delay = min(delay * 2, 1.0)

    # --- context manager -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
