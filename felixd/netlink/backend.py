"""NetlinkBackend: `felixd.backends.base.DataplaneBackend` against the running kernel.

Routes, neighbours and FDB entries are read with hand-parsed dumps and written as batched,
hand-packed rtnetlink messages (`channel.Channel`), one acknowledgement pass per chunk; links,
addresses and the VXLAN device go through pyroute2 (few, small changes); sysctls are files under
/proc/sys; nftables tables go through `felixd.nft.NftBackend` (`nft -j -f -`).

The backend works in the network namespace of the thread that first uses it (sockets are opened
lazily), so the daemon runs it in one worker thread, which `felixd.netlink.netns.enter_netns`
may have moved into another namespace (tests, benchmark).

Invariants: `read` reports the managed route tables only and normalises as docs/felixd.md asks;
`apply` returns one result per operation in order and never raises for a kernel error (an
operation on a missing interface is ENODEV without reaching the kernel).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence
from typing import Protocol

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from felixd.backends.base import OpResult
from felixd.netlink.channel import Channel
from felixd.netlink.links import (
    RTM_NEWADDR,
    RTM_NEWLINK,
    LinkInfo,
    decode_address,
    decode_link,
    encode_address,
    encode_address_dump,
    encode_link_add,
    encode_link_dump,
    encode_link_set,
)
from felixd.netlink.messages import (
    AF_BRIDGE,
    RTM_GETNEIGH,
    RTM_GETROUTE,
    MissingLink,
    decode_neighbour,
    decode_route,
    encode_dump,
    encode_fdb,
    encode_neighbour,
    encode_route,
)
from felixd.nft import NftBackend
from felixd.plan.inputs import HostInterface
from felixd.plan.model import (
    FdbEntry,
    FdbKey,
    IpipDevice,
    Neighbour,
    NeighbourKey,
    ObservedState,
    Ownership,
    Route,
    RouteKey,
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

PROC_SYS = "/proc/sys"
SYSCTL_PATHS = (
    "net/ipv4/conf/{}/proxy_arp",
    "net/ipv4/conf/{}/forwarding",
    "net/ipv4/conf/{}/route_localnet",
    "net/ipv4/neigh/{}/proxy_delay",
    "net/ipv6/conf/{}/proxy_ndp",
    "net/ipv6/conf/{}/forwarding",
    "net/ipv6/conf/{}/accept_ra",
)
IFF_UP = 1

# The netlink action of each batched operation (the others are link, sysctl or nft work).
ACTIONS: dict[type, str] = {
    AddRoute: "add",
    ReplaceRoute: "replace",
    DeleteRoute: "delete",
    AddNeighbour: "add",
    ReplaceNeighbour: "replace",
    DeleteNeighbour: "delete",
    AddFdb: "add",
    ReplaceFdb: "replace",
    DeleteFdb: "delete",
}


def encode_op(op: Op, seq: int, indexes: dict[str, int]) -> bytes:
    """The rtnetlink message of a batched operation (raises MissingLink)."""
    action = ACTIONS[type(op)]
    match op:
        case AddRoute(route) | ReplaceRoute(route) | DeleteRoute(route):
            return encode_route(route, action, seq, indexes)
        case AddNeighbour(neigh) | ReplaceNeighbour(neigh) | DeleteNeighbour(neigh):
            return encode_neighbour(neigh, action, seq, indexes)
        case AddFdb(entry) | ReplaceFdb(entry) | DeleteFdb(entry):
            return encode_fdb(entry, action, seq, indexes)
    raise TypeError(f"{type(op).__name__} is not a batched operation")


class _Link(Protocol):
    def get(self, key: str, default: object = None) -> object: ...
    def get_attr(self, name: str) -> object: ...


class NetlinkBackend:
    def __init__(self, owner: Ownership | None = None, nft: NftBackend | None = None) -> None:
        self.owner = owner if owner is not None else Ownership()
        self.nft = nft
        self._channel: Channel | None = None
        self._ipr: IPRoute | None = None
        self.indexes: dict[str, int] = {}
        self.names: dict[int, str] = {}
        self._links: list[_Link] = []

    # -- lazily opened in the worker thread (and so in its namespace) ------------------------

    @property
    def channel(self) -> Channel:
        if self._channel is None:
            self._channel = Channel()
        return self._channel

    @property
    def ipr(self) -> IPRoute:
        if self._ipr is None:
            self._ipr = IPRoute()
        return self._ipr

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    # -- reading -------------------------------------------------------------------------

    def refresh_links(self) -> None:
        self._links = list(self.ipr.get_links())
        self.indexes = {
            str(link.get_attr("IFLA_IFNAME")): int(str(link.get("index"))) for link in self._links
        }
        self.names = {i: n for n, i in self.indexes.items()}

    def host_interfaces(self) -> list[HostInterface]:
        """The non-workload interfaces, for the planner (parent NIC, reachability, MTU)."""
        self.refresh_links()
        addrs: dict[int, list[str]] = {}
        for a in self.ipr.get_addr():
            addrs.setdefault(int(str(a.get("index"))), []).append(
                f"{a.get_attr('IFA_ADDRESS')}/{a.get('prefixlen')}"
            )
        found = []
        for link in self._links:
            name = str(link.get_attr("IFLA_IFNAME"))
            if self.owner.owns_interface(name) or name == "lo":
                continue
            index = int(str(link.get("index")))
            up = bool(int(str(link.get("flags"))) & IFF_UP)
            mtu = int(str(link.get_attr("IFLA_MTU")))
            found.append(HostInterface(name, tuple(sorted(addrs.get(index, []))), mtu, up))
        return found

    def read(self) -> ObservedState:
        self.refresh_links()
        routes: dict[RouteKey, Route] = {}
        for family in (socket.AF_INET, socket.AF_INET6):
            seq = self.channel.next_seq()
            for _kind, payload in self.channel.dump(encode_dump(RTM_GETROUTE, family, seq), seq):
                route = decode_route(payload, self.names)
                if route is not None and route.table in self.owner.tables:
                    routes.setdefault(route.key, route)
        neighbours: dict[NeighbourKey, Neighbour] = {}
        fdb: dict[FdbKey, FdbEntry] = {}
        for nfamily in (int(socket.AF_INET), int(socket.AF_INET6), AF_BRIDGE):
            seq = self.channel.next_seq()
            for _kind, payload in self.channel.dump(encode_dump(RTM_GETNEIGH, nfamily, seq), seq):
                entry = decode_neighbour(payload, self.names)
                if isinstance(entry, Neighbour):
                    neighbours[entry.key] = entry
                elif isinstance(entry, FdbEntry) and self.owner.owns_fdb(entry):
                    fdb.setdefault(entry.key, entry)
        nft = self.nft.tables(self.owner.owns_nft_table) if self.nft is not None else {}
        return ObservedState(
            routes=routes,
            neighbours=neighbours,
            fdb=fdb,
            links=frozenset(self.indexes),
            devices=self._devices(),
            sysctls=self._sysctls(),
            nft_tables=nft,
            tunnels=self._tunnels(),
        )

    def _devices(self) -> dict[str, VxlanDevice]:
        found: dict[str, VxlanDevice] = {}
        for link in self._links:
            name = str(link.get_attr("IFLA_IFNAME"))
            if name not in self.owner.devices:
                continue
            info = link.get_attr("IFLA_LINKINFO")
            if info is None or info.get_attr("IFLA_INFO_KIND") != "vxlan":  # type: ignore[attr-defined]
                continue
            data = info.get_attr("IFLA_INFO_DATA")  # type: ignore[attr-defined]
            index = int(str(link.get("index")))
            v4 = [
                a.get_attr("IFA_ADDRESS")
                for a in self.ipr.get_addr(index=index, family=socket.AF_INET)
            ]
            parent = data.get_attr("IFLA_VXLAN_LINK")
            found[name] = VxlanDevice(
                name=name,
                vni=int(data.get_attr("IFLA_VXLAN_ID")),
                port=int(data.get_attr("IFLA_VXLAN_PORT")),
                local=str(data.get_attr("IFLA_VXLAN_LOCAL")),
                parent=self.names.get(int(parent), "") if parent is not None else "",
                mac=str(link.get_attr("IFLA_ADDRESS")),
                mtu=int(str(link.get_attr("IFLA_MTU"))),
                address=f"{v4[0]}/32" if v4 else "",
            )
        return found

    def _tunnels(self) -> dict[str, IpipDevice]:
        """Every ipip link, as the differ compares it with the desired `tunl0`: an up link with
        its MTU and its one IPv4 address. A down link, or one with several addresses, reads
        back as something no plan asks for, so the differ sets it right (`ensure_ipip`)."""
        found: dict[str, IpipDevice] = {}
        for link in self._links:
            info = link.get_attr("IFLA_LINKINFO")
            if info is None or info.get_attr("IFLA_INFO_KIND") != "ipip":  # type: ignore[attr-defined]
                continue
            name = str(link.get_attr("IFLA_IFNAME"))
            index = int(str(link.get("index")))
            v4 = sorted(
                f"{a.get_attr('IFA_LOCAL') or a.get_attr('IFA_ADDRESS')}/{a.get('prefixlen')}"
                for a in self.ipr.get_addr(index=index, family=socket.AF_INET)
            )
            up = bool(int(str(link.get("flags"))) & IFF_UP)
            mtu = int(str(link.get_attr("IFLA_MTU"))) if up else 0
            found[name] = IpipDevice(name, mtu, ",".join(v4))
        return found

    def _sysctls(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name in self.indexes:
            if not name.startswith(self.owner.interface_prefix):
                continue
            for template in SYSCTL_PATHS:
                path = template.format(name)
                try:
                    with open(f"{PROC_SYS}/{path}") as f:
                        found[path] = f.read().strip()
                except OSError:
                    continue
        return found

    # -- writing -------------------------------------------------------------------------

    def apply(self, ops: Sequence[Op]) -> list[OpResult]:
        if not self.indexes:
            self.refresh_links()
        errors: list[int | None] = [None] * len(ops)
        pending: list[tuple[int, int, bytes]] = []  # (op index, seq, message)

        def flush() -> None:
            if pending:
                results = self.channel.request_batch([(seq, msg) for _, seq, msg in pending])
                for (i, _, _), error in zip(pending, results, strict=True):
                    errors[i] = error
                pending.clear()

        for i, op in enumerate(ops):
            if type(op) in ACTIONS:
                seq = self.channel.next_seq()
                try:
                    pending.append((i, seq, encode_op(op, seq, self.indexes)))
                except MissingLink:
                    # The link map is from the last read; a link may have come since.
                    self.refresh_links()
                    try:
                        pending.append((i, seq, encode_op(op, seq, self.indexes)))
                    except MissingLink:
                        errors[i] = errno.ENODEV
                continue
            flush()
            errors[i] = self._apply_one(op)
        flush()
        return [OpResult(op, error) for op, error in zip(ops, errors, strict=True)]

    def _apply_one(self, op: Op) -> int | None:
        try:
            match op:
                case AddVxlanDevice(device):
                    return self._add_vxlan(device)
                case SetVxlanDevice(device):
                    return self._set_vxlan(device)
                case SetIpipDevice(ipip):
                    return self.ensure_ipip(ipip.name, ipip.mtu, ipip.address)
                case DeleteLink(name):
                    index = self.indexes.get(name)
                    if index is None:
                        return errno.ENODEV
                    self.ipr.link("del", index=index)
                    self.refresh_links()
                case SetSysctl(path, value):
                    with open(f"{PROC_SYS}/{path}", "w") as f:
                        f.write(value)
                case AddNftTable(table) | ReplaceNftTable(table):
                    return self.nft.replace(table) if self.nft is not None else errno.EOPNOTSUPP
                case DeleteNftTable(family, name):
                    return (
                        self.nft.delete(family, name) if self.nft is not None else errno.EOPNOTSUPP
                    )
                case _:
                    return errno.EINVAL
        except NetlinkError as exc:
            return int(exc.code) or errno.EIO
        except OSError as exc:
            return exc.errno or errno.EIO
        return None

    def _add_vxlan(self, device: VxlanDevice) -> int | None:
        if device.name in self.indexes:
            return errno.EEXIST
        parent = self.indexes.get(device.parent)
        if parent is None:
            return errno.ENODEV
        self.ipr.link(
            "add",
            ifname=device.name,
            kind="vxlan",
            vxlan_id=device.vni,
            vxlan_port=device.port,
            vxlan_local=device.local,
            vxlan_link=parent,
            address=device.mac,
            mtu=device.mtu,
        )
        self.refresh_links()
        index = self.indexes[device.name]
        if device.address:
            ip, _, length = device.address.partition("/")
            self.ipr.addr("add", index=index, address=ip, prefixlen=int(length or 32))
        self.ipr.link("set", index=index, state="up")
        return None

    def _set_vxlan(self, device: VxlanDevice) -> int | None:
        index = self.indexes.get(device.name)
        if index is None:
            return errno.ENODEV
        self.ipr.link("set", index=index, mtu=device.mtu, address=device.mac)
        want = device.address.partition("/")[0]
        for a in self.ipr.get_addr(index=index, family=socket.AF_INET):
            have = str(a.get_attr("IFA_ADDRESS"))
            if have != want:
                self.ipr.addr(
                    "del", index=index, address=have, prefixlen=int(str(a.get("prefixlen")))
                )
        if want and want not in {
            str(a.get_attr("IFA_ADDRESS"))
            for a in self.ipr.get_addr(index=index, family=socket.AF_INET)
        }:
            self.ipr.addr("add", index=index, address=want, prefixlen=32)
        return None

    # -- the IPIP device (calico.md §4.2; felix's ipip_mgr.go configureIPIPDevice) -----------

    def tunnel(self, name: str) -> tuple[LinkInfo, tuple[str, ...]] | None:
        """The link `name` and its IPv4 addresses (with length), read with rtnetlink dumps."""
        seq = self.channel.next_seq()
        link = None
        for kind, payload in self.channel.dump(encode_link_dump(seq), seq):
            found = decode_link(payload) if kind == RTM_NEWLINK else None
            if found is not None and found.name == name:
                link = found
        if link is None:
            return None
        seq = self.channel.next_seq()
        addresses = []
        for kind, payload in self.channel.dump(encode_address_dump(socket.AF_INET, seq), seq):
            addr = decode_address(payload) if kind == RTM_NEWADDR else None
            if addr is not None and addr[0] == link.index:
                addresses.append(addr[1])
        return link, tuple(sorted(addresses))

    def ensure_ipip(self, name: str, mtu: int, address: str) -> int | None:
        """Make `name` an up IPIP device with this MTU and exactly this IPv4 address ("" for
        none), writing only what differs; the first errno, or None.

        EOPNOTSUPP means the kernel has no ipip module (the device cannot exist, so routes via
        it stay blocked); a link of that name of another kind is EEXIST (not felixd's to
        replace)."""
        found = self.tunnel(name)
        if found is None:
            seq = self.channel.next_seq()
            (error,) = self.channel.request_batch([(seq, encode_link_add(name, "ipip", mtu, seq))])
            if error not in (None, errno.EEXIST):
                return error
            found = self.tunnel(name)
            if found is None:
                return errno.ENODEV
        link, addresses = found
        # Routes via the device are encoded by index: make it known without a full link read.
        self.indexes[link.name] = link.index
        self.names[link.index] = link.name
        if link.kind != "ipip":
            return errno.EEXIST
        batch: list[tuple[int, bytes]] = []
        if link.mtu != mtu or not link.up:
            seq = self.channel.next_seq()
            batch.append((seq, encode_link_set(link.index, seq, mtu=mtu, up=True)))
        for have in addresses:
            if have != address:
                seq = self.channel.next_seq()
                batch.append((seq, encode_address(link.index, have, "delete", seq)))
        if address and address not in addresses:
            seq = self.channel.next_seq()
            batch.append((seq, encode_address(link.index, address, "add", seq)))
        if not batch:
            return None
        return next((e for e in self.channel.request_batch(batch) if e is not None), None)
