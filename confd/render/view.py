"""Build confd's ClusterView from parsed resources (what the shell reads from the store)."""

from __future__ import annotations

from collections.abc import Iterable

from confd.render.compute import ClusterView, NodeView, Secrets
from resources.bgp import BGPConfigurationSpec, BGPPeerSpec
from resources.ipam import BlockAffinitySpec
from resources.ippool import IPPoolSpec
from resources.node import NodeSpec
from resources.resource import Resource


def build_view(
    resources: Iterable[Resource[object]], secrets: Secrets | None = None
) -> ClusterView:
    """Sort resources by kind; kinds confd does not read are ignored."""
    nodes: dict[str, NodeView] = {}
    configs: dict[str, BGPConfigurationSpec] = {}
    peers: dict[str, BGPPeerSpec] = {}
    pools: dict[str, IPPoolSpec] = {}
    affinities: list[BlockAffinitySpec] = []
    for r in resources:
        spec = r.spec
        if isinstance(spec, NodeSpec):
            nodes[r.name] = NodeView(r.name, spec, dict(r.labels))
        elif isinstance(spec, BGPConfigurationSpec):
            configs[r.name] = spec
        elif isinstance(spec, BGPPeerSpec):
            peers[r.name] = spec
        elif isinstance(spec, IPPoolSpec):
            pools[r.name] = spec
        elif isinstance(spec, BlockAffinitySpec):
            affinities.append(spec)
    affinities.sort(key=lambda a: (a.node, a.cidr.version, str(a.cidr)))
    return ClusterView(nodes, configs, peers, pools, tuple(affinities), dict(secrets or {}))
