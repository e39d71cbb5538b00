"""Link events → per-interface resyncs (issue 10: a link up/down/rename/delete triggers a resync
of that interface, not of everything).

The daemon listens to RTMGRP_LINK and the address groups; `parse_link_messages` turns what it
receives into `LinkMessage`s (rtnetlink `ifinfomsg` + IFLA_IFNAME, linux/rtnetlink.h) and says
whether an address changed. `LinkTracker` remembers each interface by index and decides what a
message means for felixd:

- a workload interface (`cali*`) that appeared (`NEW`), came up (`UP`), went down (`DOWN`) or
  was deleted (`GONE`): only that interface's routes, neighbours and sysctls are resynced;
- felixd's own device (`vxlan.calico`) that appeared or was deleted (`NEW`, `GONE`): mirrored
  without reading the kernel (a deleted link took its routes, neighbours and FDB entries along);
  its state flapping is a full resync;
- anything else that changed (a host NIC, felixd's VXLAN device, a rename): a full resync, since
  host interfaces feed the whole plan and a rename moves entries between names.

What the kernel does to an interface's entries, which the daemon mirrors in its cached view: a
deleted link takes its routes, neighbours and sysctls along; a link set down loses its IPv4
routes and its neighbour entries (permanent ones too); a route cannot be added on a down link
(ENETDOWN), so a down workload interface counts as missing until it comes up.

Pure: bytes and names in, decisions out (no socket, no clock).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_NEWADDR = 20
RTM_DELADDR = 21
IFLA_IFNAME = 3
IFF_UP = 0x1

_HDR = struct.Struct("=IHHII")  # nlmsghdr
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_RTA = struct.Struct("=HH")


@dataclass(frozen=True, slots=True)
class LinkMessage:
    index: int
    name: str
    up: bool
    deleted: bool
    dump: bool  # an answer to our own dump (seq != 0), not an event


def _ifname(data: bytes, offset: int) -> str:
    while offset + _RTA.size <= len(data):
        length, kind = _RTA.unpack_from(data, offset)
        if length < _RTA.size:
            break
        if kind & 0x3FFF == IFLA_IFNAME:
            raw = data[offset + _RTA.size : offset + length]
            return raw.split(b"\0", 1)[0].decode(errors="replace")
        offset += (length + 3) & ~3
    return ""


def parse_link_messages(data: bytes) -> tuple[list[LinkMessage], bool]:
    """The link messages in one receive buffer, and whether any address was added or removed.
    Malformed tails are ignored (the kernel does not send them; a resync covers the rest)."""
    found: list[LinkMessage] = []
    addresses = False
    offset = 0
    while offset + _HDR.size <= len(data):
        length, kind, _flags, seq, _pid = _HDR.unpack_from(data, offset)
        if length < _HDR.size or offset + length > len(data):
            break
        body = offset + _HDR.size
        if kind in (RTM_NEWLINK, RTM_DELLINK) and length >= _HDR.size + _IFINFO.size:
            _family, _type, index, flags, _change = _IFINFO.unpack_from(data, body)
            name = _ifname(data[: offset + length], body + _IFINFO.size)
            found.append(
                LinkMessage(index, name, bool(flags & IFF_UP), kind == RTM_DELLINK, seq != 0)
            )
        elif kind in (RTM_NEWADDR, RTM_DELADDR):
            addresses = True
        offset += (length + 3) & ~3
    return found, addresses


class LinkChange(enum.Enum):
    """What happened to one workload interface: only its entries are resynced."""

    NEW = "new"  # appeared
    UP = "up"
    DOWN = "down"
    GONE = "gone"  # deleted


class Resync(enum.Enum):
    """What a message means beyond one workload interface."""

    NONE = "none"  # nothing felixd uses changed
    HOSTS = "hosts"  # read the host interfaces again (the planner decides what follows)
    FULL = "full"  # the kernel may have dropped entries felixd cannot name: read it all


@dataclass(slots=True)
class LinkTracker:
    """Interfaces by index as the messages showed them; `down` holds the workload interfaces
    that exist but are down (the daemon treats them as missing: routes on a down link fail)."""

    prefix: str = "cali"
    devices: frozenset[str] = frozenset({"vxlan.calico"})  # the links felixd makes
    links: dict[int, tuple[str, bool]] = field(default_factory=dict)
    down: set[str] = field(default_factory=set)

    def feed(self, msg: LinkMessage) -> LinkChange | Resync:
        """What `msg` means: a `LinkChange` of the workload interface `msg.name`, or how much
        to resync."""
        known = self.links.get(msg.index)
        workload = msg.name.startswith(self.prefix)
        device = msg.name in self.devices
        if msg.deleted:
            self.links.pop(msg.index, None)
            self.down.discard(msg.name)
            if workload or device:
                return LinkChange.GONE
            # A host interface that was up may have carried routes the kernel just flushed.
            return Resync.FULL if known is None or known[1] else Resync.HOSTS
        self.links[msg.index] = (msg.name, msg.up)
        if workload and not msg.up:
            self.down.add(msg.name)
        else:
            self.down.discard(msg.name)
        if msg.dump:
            return Resync.NONE  # what is there at start-up: the first full resync reads it
        if known is not None and known[0] != msg.name:
            self.down.discard(known[0])
            return Resync.FULL  # a rename: entries move with the index to another name
        if device:
            # felixd's own device (vxlan.calico): made (by felixd, or by someone it will be
            # made again over) or deleted is mirrored; its state flapping is read in full.
            if known is None:
                return LinkChange.NEW
            return Resync.FULL if known[1] != msg.up else Resync.NONE
        if not workload:
            if known is not None and known[1] and not msg.up:
                return Resync.FULL  # down: the kernel flushed the IPv4 routes via it
            # New, up, or another attribute (MTU): what the planner reads of it may change.
            return Resync.HOSTS
        if known is None:
            return LinkChange.NEW
        if known[1] != msg.up:
            return LinkChange.UP if msg.up else LinkChange.DOWN
        return Resync.NONE
