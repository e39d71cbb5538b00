"""ListWatcher retries a store that does not answer for ever; it must say so, once per streak."""

from __future__ import annotations

import logging
import random
from typing import cast

import pytest

from store.client import KVClient, StoreUnavailableError
from store.kv import RangeResponse
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
