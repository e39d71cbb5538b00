"""The dataplane in iproute2 notation, for logs, status, `tabbyctl` and scenario tests.

Lines read like `ip route`, `ip neigh` and `bridge fdb` output (calico.md §4.2 writes its route
shapes the same way), so a scenario table can be checked against what an operator would type.
Invariant: one line per entry, entries in the differ's order, so equal dataplanes print equally.
"""

from __future__ import annotations

from felixd.plan.addresses import network_sort_key
from felixd.plan.model import (
    DesiredDataplane,
    FdbEntry,
    IpipDevice,
    Neighbour,
    NextHop,
    ObservedState,
    Route,
    RouteScope,
    RouteType,
    VxlanDevice,
)
from felixd.plan.ops import (
    AddFdb,
    AddNeighbour,
    AddNftTable,
    AddRoute,
    AddVxlanDevice,
    DeleteFdb,
    DeleteLink,
    DeleteNeighbour,
    DeleteNftTable,
    DeleteRoute,
    Op,
    ReplaceFdb,
    ReplaceNeighbour,
    ReplaceNftTable,
    ReplaceRoute,
    SetIpipDevice,
    SetSysctl,
    SetVxlanDevice,
)

_SCOPES = {RouteScope.LINK: "link", RouteScope.HOST: "host"}


def _dst(dst: str) -> str:
    # iproute2 prints host routes without their /32 or /128.
    return dst.removesuffix("/32").removesuffix("/128")


def _hop(hop: NextHop) -> str:
    onlink = " onlink" if hop.onlink else ""
    return f"nexthop via {hop.gateway} dev {hop.dev} weight {hop.weight}{onlink}"


def route_text(route: Route) -> str:
    words = ["blackhole"] if route.type is RouteType.BLACKHOLE else []
    words.append(_dst(route.dst))
    if route.gateway is not None:
        words += ["via", route.gateway]
    if route.dev is not None:
        words += ["dev", route.dev]
    if route.table != 254:
        words += ["table", str(route.table)]
    words += ["proto", str(route.protocol)]
    if route.scope in _SCOPES:
        words += ["scope", _SCOPES[route.scope]]
    if route.metric:
        words += ["metric", str(route.metric)]
    if route.onlink:
        words.append("onlink")
    if route.mtu is not None:
        words += ["mtu", str(route.mtu)]
    words += [_hop(h) for h in route.nexthops]
    return " ".join(words)


def neighbour_text(neigh: Neighbour) -> str:
    state = "PERMANENT" if neigh.permanent else "REACHABLE"
    return f"{neigh.address} dev {neigh.dev} lladdr {neigh.lladdr} {state}"


def fdb_text(entry: FdbEntry) -> str:
    return f"{entry.mac} dev {entry.dev} dst {entry.dst} self permanent"


def device_text(dev: VxlanDevice) -> str:
    return (
        f"{dev.name}: vxlan id {dev.vni} local {dev.local} dev {dev.parent} dstport {dev.port}"
        f" mtu {dev.mtu} address {dev.mac} inet {dev.address}"
    )


def tunnel_text(dev: IpipDevice) -> str:
    inet = f" inet {dev.address}" if dev.address else ""
    return f"{dev.name}: ipip mtu {dev.mtu}{inet} up"


def dataplane_lines(dp: DesiredDataplane | ObservedState) -> list[str]:
    """Every entry, grouped devices, FDB, neighbours, routes; sorted inside each group."""
    lines = [device_text(dp.devices[n]) for n in sorted(dp.devices)]
    lines += [tunnel_text(dp.tunnels[n]) for n in sorted(dp.tunnels)]
    lines += [fdb_text(dp.fdb[k]) for k in sorted(dp.fdb)]
    lines += [neighbour_text(dp.neighbours[k]) for k in sorted(dp.neighbours)]
    keys = sorted(dp.routes, key=lambda k: (k[0], network_sort_key(k[1]), k[2]))
    lines += [route_text(dp.routes[k]) for k in keys]
    return lines


def op_text(op: Op) -> str:
    """One operation as a log line, in `ip`/`bridge`/`sysctl`/`nft` words."""
    match op:
        case AddRoute(route):
            return f"route add {route_text(route)}"
        case ReplaceRoute(route):
            return f"route replace {route_text(route)}"
        case DeleteRoute(route):
            return f"route del {route_text(route)}"
        case AddNeighbour(neigh):
            return f"neigh add {neighbour_text(neigh)}"
        case ReplaceNeighbour(neigh):
            return f"neigh replace {neighbour_text(neigh)}"
        case DeleteNeighbour(neigh):
            return f"neigh del {neighbour_text(neigh)}"
        case AddFdb(entry):
            return f"fdb add {fdb_text(entry)}"
        case ReplaceFdb(entry):
            return f"fdb replace {fdb_text(entry)}"
        case DeleteFdb(entry):
            return f"fdb del {fdb_text(entry)}"
        case AddVxlanDevice(device):
            return f"link add {device_text(device)}"
        case SetVxlanDevice(device):
            return f"link set {device_text(device)}"
        case SetIpipDevice(ipip):
            return f"link set {tunnel_text(ipip)}"
        case DeleteLink(name):
            return f"link del {name}"
        case SetSysctl(path, value):
            return f"sysctl {path.replace('/', '.')}={value}"
        case AddNftTable(table):
            return f"nft add table {table.family} {table.name}"
        case ReplaceNftTable(table):
            return f"nft replace table {table.family} {table.name}"
        case DeleteNftTable(family, name):
            return f"nft delete table {family} {name}"
    raise AssertionError(f"unknown operation {op!r}")  # unreachable: Op is a closed union
