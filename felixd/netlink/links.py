"""rtnetlink link and address messages, packed and parsed by hand: the IPIP device `tunl0`.

Calico's felix configures `tunl0` in three steps (ipip_mgr.go `configureIPIPDevice`, calico.md
§4.2): create it (`ip link add tunl0 type ipip`; on a kernel with the ipip module the fallback
device already exists and the answer is EEXIST, on one without it EOPNOTSUPP, "Unknown device
type"), set its MTU and bring it up, and give it exactly one IPv4 address, the node's IPIP
tunnel address as a /32 (every other IPv4 address removed). felixd does the same with the
messages below, sent through the batched channel (`channel.Channel`), so that creating,
changing and reading the device is testable without the module: the messages are checked
against pyroute2's parser and round-trip through the decoders here.

Layouts are the kernel's (linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h): `ifinfomsg`,
`ifaddrmsg`, IFLA_*/IFA_* attributes, IFLA_LINKINFO nesting IFLA_INFO_KIND.

Invariants: `decode_link(encode_link_add(...))` gives back the name, kind and MTU;
`decode_address(encode_address(...))` gives back the index and the address with its length;
decoders return None for what they cannot read instead of raising.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from felixd.netlink.messages import (
    CREATE_FLAGS,
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_REQUEST,
    attr,
    attrs,
    message,
)

# linux/rtnetlink.h
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
# linux/if_link.h
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_LINKINFO = 18
IFLA_INFO_KIND = 1
# linux/if_addr.h
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFF_UP = 0x1

IFINFOMSG = struct.Struct("=BxHiII")  # family, pad, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBi")  # family, prefixlen, flags, scope, index
ARPHRD_TUNNEL = 768  # the link type of an ipip device (linux/if_arp.h)


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """What felixd reads of a link: enough to compare a tunnel device with its desired state."""

    index: int
    name: str
    kind: str  # IFLA_INFO_KIND ("ipip", "vxlan", "veth"...), "" when the kernel sends none
    mtu: int
    up: bool


def encode_link_add(name: str, kind: str, mtu: int, seq: int) -> bytes:
    """`ip link add <name> type <kind> mtu <mtu>`, create-exclusive (EEXIST if it exists)."""
    body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    info = attr(IFLA_INFO_KIND, kind.encode())
    attributes = attr(IFLA_IFNAME, name.encode() + b"\0") + attr(IFLA_MTU, struct.pack("=I", mtu))
    attributes += attr(IFLA_LINKINFO, info)
    return message(RTM_NEWLINK, CREATE_FLAGS["add"], seq, body + attributes)


def encode_link_set(index: int, seq: int, mtu: int | None = None, up: bool | None = None) -> bytes:
    """`ip link set dev <index> [mtu N] [up|down]`: only what is given changes (ifi_change
    selects the flag bits the kernel applies)."""
    flags = IFF_UP if up else 0
    change = IFF_UP if up is not None else 0
    body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change)
    attributes = attr(IFLA_MTU, struct.pack("=I", mtu)) if mtu is not None else b""
    return message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, body + attributes)


def encode_address(index: int, address: str, action: str, seq: int) -> bytes:
    """`ip addr {add,del} <address>/<len> dev <index>` (add is create-exclusive)."""
    ip, _, length = address.partition("/")
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    packed = socket.inet_pton(family, ip)
    prefix = int(length) if length else (128 if family == socket.AF_INET6 else 32)
    body = IFADDRMSG.pack(family, prefix, 0, 0, index)
    attributes = attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed)
    kind = RTM_DELADDR if action == "delete" else RTM_NEWADDR
    return message(kind, CREATE_FLAGS[action], seq, body + attributes)


def encode_link_dump(seq: int) -> bytes:
    return message(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq, IFINFOMSG.pack(0, 0, 0, 0, 0))


def encode_address_dump(family: int, seq: int) -> bytes:
    return message(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, IFADDRMSG.pack(family, 0, 0, 0, 0))


def decode_link(payload: bytes) -> LinkInfo | None:
    """A link from an RTM_NEWLINK payload (a dump answer or a request we built)."""
    if len(payload) < IFINFOMSG.size:
        return None
    _family, _type, index, flags, _change = IFINFOMSG.unpack_from(payload)
    found = attrs(payload, IFINFOMSG.size)
    raw_name = found.get(IFLA_IFNAME)
    if raw_name is None:
        return None
    kind = ""
    if IFLA_LINKINFO in found:
        raw_kind = attrs(found[IFLA_LINKINFO]).get(IFLA_INFO_KIND, b"")
        kind = raw_kind.rstrip(b"\0").decode(errors="replace")
    mtu = struct.unpack("=I", found[IFLA_MTU][:4])[0] if len(found.get(IFLA_MTU, b"")) >= 4 else 0
    return LinkInfo(
        index=index,
        name=raw_name.rstrip(b"\0").decode(errors="replace"),
        kind=kind,
        mtu=mtu,
        up=bool(flags & IFF_UP),
    )


def decode_address(payload: bytes) -> tuple[int, str] | None:
    """(ifindex, "address/len") from an RTM_NEWADDR payload; IFA_LOCAL is the interface's own
    address (IFA_ADDRESS is the peer's on a point-to-point link, as on tunl0)."""
    if len(payload) < IFADDRMSG.size:
        return None
    family, prefix, _flags, _scope, index = IFADDRMSG.unpack_from(payload)
    found = attrs(payload, IFADDRMSG.size)
    raw = found.get(IFA_LOCAL, found.get(IFA_ADDRESS))
    if family not in (socket.AF_INET, socket.AF_INET6) or raw is None:
        return None
    want = 4 if family == socket.AF_INET else 16
    if len(raw) != want:
        return None
    text = socket.inet_ntop(family, raw) if want == 4 else str(ipaddress.IPv6Address(raw))
    return index, f"{text}/{prefix}"  # IPv6 in RFC 5952 text, as the planner writes it
