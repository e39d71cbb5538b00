"""Render a node's BGP plan as BIRD 2 configuration, so confd can drive BIRD instead of bgpd.

The peering decisions are the plan's (the same as for tabby-bgpd); this module only speaks
BIRD 2's syntax. Like Calico's templates, it originates each affine block as a blackhole
static route and exports only pool routes down to the block size (never the /32s inside
the blocks), as Calico's `calico_export_to_bgp_peers` does. There is no `protocol kernel`:
felixd is the only writer of kernel routes.

`loopback_next_hops` is for tests on 127.0.0.0/8: BIRD treats 127/8 next hops as unreachable
unless they resolve through an IGP table, so a private table with a default route via `lo`
stands in for the connected routes a real host has.
"""

from __future__ import annotations

import json

from confd.render.model import NodeBGPPlan, PeerPlan


def _q(text: str) -> str:
    return json.dumps(text)


def _peer(peer: PeerPlan, plan: NodeBGPPlan, loopback: bool) -> list[str]:
    channel = peer.family
    lines = [f"protocol bgp {peer.name} from tabby_peer_{channel} {{"]
    lines.append(f"  description {_q(peer.source or peer.peer_type)};")
    local_as = peer.local_as or plan.local_as
    # BIRD 2 listens per protocol: `local [address] port P` is the listening side too.
    local = peer.source_address or plan.listen_address
    where = f" {local}" if local is not None else ""
    lines.append(f"  local{where} port {plan.listen_port} as {local_as};")
    if plan.listen_address is not None:
        lines.append("  strict bind on;")
    lines.append(f"  neighbor {peer.address} port {peer.port} as {peer.remote_as};")
    if peer.passive:
        lines.append("  passive on;")
    if peer.ttl_security:
        lines.append(f"  ttl security on; multihop {peer.ttl_security};")
    else:
        lines.append("  multihop;")
    if peer.password:
        lines.append(f"  password {_q(peer.password)};")
    if peer.graceful_restart_time:
        lines.append(f"  graceful restart time {peer.graceful_restart_time};")
    if peer.keepalive_time:
        lines.append(f"  keepalive time {peer.keepalive_time};")
    if peer.rr_client:
        lines.append("  rr client;")
        lines.append(f"  rr cluster id {peer.cluster_id};")
    if peer.allow_local_as:
        lines.append(f"  allow local as {peer.allow_local_as};")
    opts = []
    if peer.next_hop == "self":
        opts.append("next hop self;")
    elif peer.next_hop == "keep":
        opts.append("next hop keep;")
    if loopback:
        opts.append(f"igp table tabby_igp_{'4' if channel == 'ipv4' else '6'};")
    if opts:
        lines.append(f"  {channel} {{ {' '.join(opts)} }};")
    lines.append("}")
    return lines


def _export_filter(plan: NodeBGPPlan, version: int) -> list[str]:
    """Calico's `calico_export_to_bgp_peers`: nothing inside a `disableBGPExport` pool; this
    node's blocks with their communities; any route inside an exported pool down to the pool's
    block size (blocks learned from other nodes, when reflecting); nothing else. The same
    decisions as tabby-bgpd's `calico-export` policy (confd/render/bgpd_toml.py)."""
    name = f"tabby_export_v{version}"
    blocks = [o for o in plan.originate if o.prefix.version == version]
    pools = [p for p in plan.pools if p.cidr.version == version]
    lines = [f"filter {name} {{"]
    hidden = [f"{p.cidr}+" for p in pools if not p.export]
    if hidden:
        lines.append(f"  if net ~ [ {', '.join(hidden)} ] then reject;")
    for o in blocks:
        cond = f"net = {o.prefix}"
        adds = [f"bgp_community.add(({c.replace(':', ',')}));" for c in o.communities]
        adds += [f"bgp_large_community.add(({c.replace(':', ',')}));" for c in o.large_communities]
        lines.append(f"  if {cond} then {{ {' '.join(adds)} accept; }}")
    shown = [
        f"{p.cidr}{{{p.cidr.prefixlen},{max(p.block_size, p.cidr.prefixlen)}}}"
        for p in pools
        if p.export
    ]
    if shown:
        lines.append(f"  if net ~ [ {', '.join(shown)} ] then accept;")
    lines.append("  reject;")
    lines.append("}")
    return lines


def render_bird(plan: NodeBGPPlan, *, loopback_next_hops: bool = False) -> str:
    out = [
        f"# Rendered by tabby-confd for node {plan.node}. Do not edit: confd rewrites it.",
        f"router id {plan.router_id};",
    ]
    out.append("protocol device { scan time 10; }")
    out.append('protocol direct { ipv4; ipv6; interface -"cali*", -"vxlan.calico", "*"; }')
    if loopback_next_hops:
        out += [
            "ipv4 table tabby_igp_4;",
            "ipv6 table tabby_igp_6;",
            'protocol static tabby_igp_static_4 { ipv4 { table tabby_igp_4; }; route 0.0.0.0/0 via "lo"; }',
            'protocol static tabby_igp_static_6 { ipv6 { table tabby_igp_6; }; route ::/0 via "lo"; }',
        ]
    for version in (4, 6):
        blocks = [o for o in plan.originate if o.prefix.version == version]
        channel = f"ipv{version}"
        if blocks:
            out.append(f"protocol static tabby_blocks_v{version} {{")
            out.append(f"  {channel};")
            out += [f"  route {o.prefix} blackhole;" for o in blocks]
            out.append("}")
        out += _export_filter(plan, version)
        out.append(f"template bgp tabby_peer_{channel} {{")
        out.append(f"  {channel} {{ import all; export filter tabby_export_v{version}; }};")
        out.append("  graceful restart;")
        out.append("}")
    for peer in plan.peers:
        out += _peer(peer, plan, loopback_next_hops)
    return "\n".join(out) + "\n"
