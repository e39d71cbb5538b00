"""Watch Calico resources in the store: list-then-watch several key prefixes, decoded.

What confd and felixd both need from the store: the current set of resources under a few
prefixes, yielded again after every change. Built on `ListWatcher` (no gaps, no duplicates,
re-list on compaction); values are decoded once per (key, mod_revision), and a value that does
not decode is skipped with one log line, so one bad object never stops a daemon. Nothing is
yielded until every prefix has been listed once, so a consumer never acts on half a view.
Only the client side of the store is used, so any `KVClient` backend works; the endpoints'
scheme chooses it (`store.backend.connect`: etcd's http(s):// URLs or tabby-store's).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from resources.errors import ResourceError
from resources.resource import Resource
from resources.values import decode_value
from runtime.log import get_logger
from store.backend import connect
from store.client import KVClient
from store.listwatch import ListWatcher

log = get_logger("store.resourcewatch")


async def watch_resources(
    endpoints: Sequence[str],
    prefixes: Sequence[str],
    store_prefix: str,
    client: KVClient | None = None,
) -> AsyncIterator[list[Resource[object]]]:
    own = client is None
    kv: KVClient = client if client is not None else connect(list(endpoints))
    watchers = [ListWatcher(kv, p.encode()) for p in prefixes]
    changed = asyncio.Event()
    seen = [False] * len(watchers)
    cache: dict[tuple[bytes, int], Resource[object] | None] = {}

    async def follow(i: int, watcher: ListWatcher) -> None:
        async for _ in watcher.updates():
            seen[i] = True
            changed.set()

    tasks = [asyncio.get_running_loop().create_task(follow(i, w)) for i, w in enumerate(watchers)]
    try:
        while True:
            await changed.wait()
            changed.clear()
            for task in tasks:
                if task.done():
                    task.result()  # a watcher that failed for good takes the source down
            if not all(seen):
                continue
            live: set[tuple[bytes, int]] = set()
            out: list[Resource[object]] = []
            for watcher in watchers:
                for item in watcher.state.values():
                    ident = (item.key, item.mod_revision)
                    live.add(ident)
                    if ident not in cache:
                        cache[ident] = _decode(
                            item.key, item.value, item.mod_revision, store_prefix
                        )
                    resource = cache[ident]
                    if resource is not None:
                        out.append(resource)
            for stale in set(cache) - live:
                del cache[stale]
            yield out
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        if own:
            await kv.close()


def _decode(
    key: bytes, value: bytes, mod_revision: int, store_prefix: str
) -> Resource[object] | None:
    try:
        return decode_value(key.decode(), value, mod_revision, store_prefix)
    except (ResourceError, UnicodeDecodeError) as exc:
        log.warning("resource.skipped", key=key.decode(errors="replace"), error=str(exc))
        return None
