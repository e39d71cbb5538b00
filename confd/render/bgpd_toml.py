"""Render a node's BGP plan as tabby-bgpd's declarative TOML (see docs/bgpd.md).

Every peer gets the export policy `calico-export`, Calico's `calico_export_to_bgp_peers`
filter: nothing inside a pool with `disableBGPExport`, then any route inside a pool down to
the pool's block size (the blocks, never the /32s or /128s inside them), and nothing else.

The daemon settings that are not BGP decisions (control socket, log format, paths) come
from confd's own configuration as `base` and are written first, so one file is all bgpd
reads. Output is deterministic: the same plan always renders the same bytes, which lets
confd skip the write and the reload when nothing changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from confd.render.model import NodeBGPPlan, PeerPlan, PoolExport

EXPORT_POLICY = "calico-export"
POOLS_LIST = "calico-pools"  # exported pools, each down to its block size
NO_EXPORT_LIST = "calico-no-export"  # disableBGPExport pools, everything inside them

TomlScalar = str | int | float | bool
TomlValue = TomlScalar | list[str]


def _value(value: TomlValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    return "[" + ", ".join(json.dumps(v) for v in value) + "]"


def _peer_table(peer: PeerPlan) -> list[str]:
    fields: dict[str, TomlValue] = {
        "name": peer.name,
        "address": str(peer.address),
        "port": peer.port,
        "remote_as": peer.remote_as,
        "peer_type": peer.peer_type,
        "description": peer.source,
        "passive": peer.passive,
        "families": [peer.family],
        "next_hop": peer.next_hop,
        "export_policy": EXPORT_POLICY,
    }
    if peer.source_address is not None:
        fields["local_address"] = str(peer.source_address)
    if peer.password:
        fields["password"] = peer.password
    if peer.ttl_security:
        fields["ttl_security"] = True
    if peer.keepalive_time:
        fields["keepalive_time"] = peer.keepalive_time
    if peer.graceful_restart_time:
        fields["graceful_restart_time"] = peer.graceful_restart_time
    if peer.rr_client:
        fields["rr_client"] = True
        fields["cluster_id"] = peer.cluster_id
    return ["[[peers]]", *(f"{k} = {_value(v)}" for k, v in fields.items())]


def _entry(pool: PoolExport) -> str:
    # Exported: prefix length from the pool's own up to its block size. Not exported: all.
    le = pool.block_size if pool.export else pool.cidr.max_prefixlen
    return f"{{prefix = {_value(str(pool.cidr))}, le = {max(le, pool.cidr.prefixlen)}}}"


def _export_policy(pools: tuple[PoolExport, ...]) -> list[str]:
    """Prefix lists and the export policy; a list with no pool is left out with its term (so
    with no pool at all nothing is exported, as with Calico's filter)."""
    lines: list[str] = []
    terms: list[tuple[str, str]] = []
    for name, action, members in (
        (NO_EXPORT_LIST, "reject", [p for p in pools if not p.export]),
        (POOLS_LIST, "accept", [p for p in pools if p.export]),
    ):
        if not members:
            continue
        lines += ["", "[[prefix_lists]]", f"name = {_value(name)}", "prefixes = ["]
        lines += [f"  {_entry(p)}," for p in members]
        lines.append("]")
        terms.append((name, action))
    lines += ["", "[[policies]]", f"name = {_value(EXPORT_POLICY)}", 'default = "reject"']
    for name, action in terms:
        lines += ["", "[[policies.terms]]", f"prefix_lists = {_value([name])}"]
        lines.append(f"action = {_value(action)}")
    return lines


def render_bgpd_toml(plan: NodeBGPPlan, base: Mapping[str, TomlScalar] | None = None) -> str:
    lines = [f"# Rendered by tabby-confd for node {plan.node}. Do not edit: confd rewrites it."]
    for key, value in sorted((base or {}).items()):
        lines.append(f"{key} = {_value(value)}")
    lines.append(f"router_id = {_value(str(plan.router_id))}")
    lines.append(f"local_as = {plan.local_as}")
    if plan.cluster_id:
        lines.append(f"cluster_id = {_value(plan.cluster_id)}")
    plain = [str(o.prefix) for o in plan.originate if not (o.communities or o.large_communities)]
    lines.append(f"originate = {_value(plain)}")
    lines.append("")
    lines.append("[[listen]]")
    address = str(plan.listen_address) if plan.listen_address is not None else "0.0.0.0"
    lines.append(f"address = {_value(address)}")
    lines.append(f"port = {plan.listen_port}")
    for o in plan.originate:
        if o.communities or o.large_communities:
            # Calico's prefixAdvertisements: the block carries its communities.
            lines += ["", "[[advertise]]", f"prefix = {_value(str(o.prefix))}"]
            lines.append(f"communities = {_value(list(o.communities))}")
            lines.append(f"large_communities = {_value(list(o.large_communities))}")
    lines += _export_policy(plan.pools)
    for peer in plan.peers:
        lines.append("")
        lines.extend(_peer_table(peer))
    return "\n".join(lines) + "\n"
