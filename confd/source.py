"""Where confd's snapshots come from: the store prefixes one node's BGP configuration needs.

Nodes, BGPConfigurations, BGPPeers and IPPools of the whole cluster, and the block
affinities of this node only, watched through `store.resourcewatch`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from confd.daemon import ConfdConfig
from resources.keys import list_prefix
from resources.resource import Resource
from store.resourcewatch import watch_resources

WATCHED_KINDS = ("Node", "BGPConfiguration", "BGPPeer", "IPPool")


def prefixes(config: ConfdConfig, node: str) -> list[str]:
    out = [list_prefix(kind, prefix=config.store_prefix) for kind in WATCHED_KINDS]
    out.append(list_prefix("BlockAffinity", prefix=config.store_prefix, node=node))
    return out


async def store_snapshots(
    config: ConfdConfig, node: str
) -> AsyncIterator[Sequence[Resource[object]]]:
    async for resources in watch_resources(
        config.store_endpoints, prefixes(config, node), config.store_prefix
    ):
        yield resources
