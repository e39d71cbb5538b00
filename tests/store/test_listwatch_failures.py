"""ListWatcher retries a store that does not answer for ever; it must say so, once per streak."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from typing import cast

import pytest

from store.client import KVClient, StoreUnavailableError
from store.kv import RangeResponse, WatchResponse
from store.listwatch import ListWatcher, Resync


class _Refusing:
    """Fails `range` with the scripted errors, then answers."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors

    async def range(self, key: bytes, range_end: bytes = b"") -> RangeResponse:
        if self.errors:
            raise StoreUnavailableError(self.errors.pop(0))
        return RangeResponse(7, (), False, 0)


def _events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "tabby_event", r.getMessage()) == name]


async def test_a_failing_store_is_logged_once_per_cause_and_its_recovery_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    bad = "etcd refused user 'felix' (password file /etc/tabby/etcd.pw): authentication failed"
    client = _Refusing([bad, bad, bad, "no member answered in time"])
    lw = ListWatcher(cast(KVClient, client), b"/calico/", rng=random.Random(1), max_backoff=0.01)
    first = await anext(lw.updates())
    assert isinstance(first, Resync) and first.revision == 7
    warned = _events(caplog, "store.unavailable")
    fields: list[dict[str, object]] = [r.__dict__["tabby_fields"] for r in warned]
    assert [f["error"] for f in fields] == [bad, "no member answered in time"]
    assert len(_events(caplog, "store.available")) == 1


class _CancellingWatch(_Refusing):
    """Lists fine; every watch is cancelled at once for a reason other than compaction."""

    def __init__(self) -> None:
        super().__init__([])
        self.watches = 0

    async def watch(
        self, key: bytes, range_end: bytes = b"", **kw: object
    ) -> AsyncIterator[WatchResponse]:
        self.watches += 1
        yield WatchResponse(0, 7, (), True, True, 0, "etcdserver: permission denied")


async def test_a_watch_cancelled_for_another_reason_backs_off_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    client = _CancellingWatch()
    lw = ListWatcher(cast(KVClient, client), b"/calico/", rng=random.Random(1), max_backoff=0.4)
    delays: list[float] = []

    async def record(delay: float) -> float:
        delays.append(delay)
        await asyncio.sleep(0)  # no real pause, but let the test run between attempts
        return min(delay * 2, 0.4)

    lw._backoff = record  # type: ignore[method-assign]
    updates = lw.updates()
    assert isinstance(await anext(updates), Resync)
    task = asyncio.ensure_future(anext(updates))
    for _ in range(200):  # bounded: until six re-creations happened
        if client.watches >= 6:
            break
        await asyncio.sleep(0)
    task.cancel()
    assert client.watches >= 6
    assert delays[:6] == [0.05, 0.1, 0.2, 0.4, 0.4, 0.4]  # the back-off grows, never resets
    warned = _events(caplog, "store.unavailable")
    assert len(warned) == 1 and "permission denied" in warned[0].__dict__["tabby_fields"]["error"]
