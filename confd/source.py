"""Where confd's snapshots come from: list-then-watch of the prefixes one node needs.

Nodes, BGPConfigurations, BGPPeers and IPPools of the whole cluster, and the block
affinities of this node only, each through the store client's `ListWatcher` (no gaps, no
duplicates, re-list on compaction). Every update yields the merged set of resources; values
are decoded once per (key, mod_revision). A value that does not decode is skipped with a log
line, so one bad object never stops the node's BGP configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from confd.daemon import ConfdConfig
from resources.errors import ResourceError
from resources.keys import list_prefix
from resources.resource import Resource
from resources.values import decode_value
from runtime.log import get_logger
from store.client import StoreClient
from store.listwatch import ListWatcher

log = get_logger("confd.source")

WATCHED_KINDS = ("Node", "BGPConfiguration", "BGPPeer", "IPPool")


def prefixes(config: ConfdConfig, node: str) -> list[str]:
    out = [list_prefix(kind, prefix=config.store_prefix) for kind in WATCHED_KINDS]
    out.append(list_prefix("BlockAffinity", prefix=config.store_prefix, node=node))
    return out


async def store_snapshots(
    config: ConfdConfig, node: str
) -> AsyncIterator[Sequence[Resource[object]]]:
    client = StoreClient(config.store_endpoints)
    watchers = [ListWatcher(client, p.encode()) for p in prefixes(config, node)]
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
                continue  # wait until every prefix has been listed once
            live: set[tuple[bytes, int]] = set()
            out: list[Resource[object]] = []
            for watcher in watchers:
                for kv in watcher.state.values():
                    ident = (kv.key, kv.mod_revision)
                    live.add(ident)
                    if ident not in cache:
                        try:
                            cache[ident] = decode_value(
                                kv.key.decode(), kv.value, kv.mod_revision, config.store_prefix
                            )
                        except (ResourceError, UnicodeDecodeError) as exc:
                            log.warning(
                                "resource.skipped",
                                key=kv.key.decode(errors="replace"),
                                error=str(exc),
                            )
                            cache[ident] = None
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
        await client.close()
