"""Parsing and normalising the addresses, prefixes and MACs found in resources.

Everything returns None on malformed text rather than raising, so the planner can turn bad input
into a status problem (issue 10: "bad input never stops the dataplane"). Parsers are memoised:
the same few thousand prefixes are parsed again on every plan.

Invariants: prefixes are strict (host bits clear, as Calico requires of IPPool CIDRs, §1.1);
MACs come out as lower-case colon-separated hex; the derived VTEP MAC follows felix's
`vtepMACForHost` (calico.md §1.4): 0x66 then the first five bytes of SHA-1(node name).
"""

from __future__ import annotations

import hashlib
import ipaddress
from functools import lru_cache

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

_HEX = frozenset("0123456789abcdef")
_IFNAMSIZ = 16  # linux/if.h: names are at most 15 bytes plus the NUL


@lru_cache(maxsize=1 << 16)
def parse_network(text: str) -> IPNetwork | None:
    """A strict CIDR ("10.0.0.0/26"); None if malformed or if host bits are set."""
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError:
        return None


@lru_cache(maxsize=1 << 14)
def parse_interface(text: str) -> IPInterface | None:
    """An address with its subnet's prefix length ("10.0.0.2/24"); a bare address is a host."""
    try:
        return ipaddress.ip_interface(text)
    except ValueError:
        return None


@lru_cache(maxsize=1 << 14)
def parse_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_host_prefix(text: str) -> IPNetwork | None:
    """A workload address: "10.0.0.5" or "10.0.0.5/32" (or /128 for IPv6), nothing wider."""
    if "/" not in text:
        addr = parse_address(text)
        return None if addr is None else ipaddress.ip_network(addr)
    net = parse_network(text)
    if net is None or net.num_addresses != 1:
        return None
    return net


def normalise_mac(text: str) -> str | None:
    """Six octets as lower-case "aa:bb:cc:dd:ee:ff" (':' or '-' separated input), else None."""
    parts = text.lower().replace("-", ":").split(":")
    if len(parts) != 6 or any(len(p) != 2 or not set(p) <= _HEX for p in parts):
        return None
    return ":".join(parts)


@lru_cache(maxsize=1 << 12)
def vtep_mac_for(node_name: str) -> str:
    """felix's deterministic VTEP MAC when `vxlanTunnelMACAddr` is empty (calico.md §1.4)."""
    digest = hashlib.sha1(node_name.encode(), usedforsecurity=False).digest()
    return ":".join(f"{b:02x}" for b in (0x66, *digest[:5]))


def valid_interface_name(name: str) -> bool:
    """What the kernel accepts as a link name (dev_valid_name): 1–15 bytes, no "/" or ":", no
    whitespace, not "." or "..". A '/' would also escape the sysctl path."""
    if not name or len(name.encode()) >= _IFNAMSIZ or name in {".", ".."}:
        return False
    return not any(c in {"/", ":"} or c.isspace() for c in name)


Prefix = tuple[int, int, int]
"""(IP version, network address as an integer, prefix length): a parsed prefix in the form that
containment and ordering need, far cheaper than `ipaddress` objects in the hot path."""

_BITS = {4: 32, 6: 128}


def parse_prefix(text: str) -> Prefix | None:
    parsed = canonical_prefix(text)
    return None if parsed is None else parsed[1]


def prefix_of(net: IPNetwork) -> Prefix:
    return (net.version, int(net.network_address), net.prefixlen)


def prefix_within(inner: Prefix, outer: Prefix) -> bool:
    """Whether `inner` lies inside `outer` (or equals it)."""
    version, address, length = inner
    o_version, o_address, o_length = outer
    if version != o_version or length < o_length:
        return False
    shift = _BITS[version] - o_length
    return address >> shift == o_address >> shift


# Canonical decimal spellings (no sign, no leading zero) and their values: one dict lookup
# validates and converts an octet or a prefix length.
_OCTETS = {str(i): i for i in range(256)}
_LENGTHS = {str(i): i for i in range(33)}


def _ipv4_fast(text: str) -> int | None:
    """Dotted-quad IPv4 in canonical form as an integer; None means "not on the fast path" (the
    caller then asks `ipaddress`, which decides what is valid)."""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    a, b, c, d = (_OCTETS.get(p) for p in parts)
    if a is None or b is None or c is None or d is None:
        return None
    return a << 24 | b << 16 | c << 8 | d


@lru_cache(maxsize=1 << 16)
def canonical_prefix(text: str) -> tuple[str, Prefix] | None:
    """The prefix as the kernel prints it, and parsed; None if malformed or not strict.

    Canonical IPv4 text (what bgpd and the store write) is parsed by hand, several times faster
    than `ipaddress`; anything else goes through `ipaddress`, and a differential test keeps the
    two in agreement."""
    addr, slash, length = text.partition("/")
    if slash:
        address, prefixlen = _ipv4_fast(addr), _LENGTHS.get(length)
        if address is not None and prefixlen is not None:
            if address & ((1 << (32 - prefixlen)) - 1):
                return None  # host bits set: not a strict prefix
            return (text, (4, address, prefixlen))
    net = parse_network(text)
    if net is None:
        return None
    return (str(net), prefix_of(net))


HostIP = tuple[int, int, str]
"""(IP version, address as an integer, canonical text)."""


@lru_cache(maxsize=1 << 16)
def parse_ip(text: str) -> HostIP | None:
    address = _ipv4_fast(text)
    if address is not None:
        return (4, address, text)
    addr = parse_address(text)
    if addr is None:
        return None
    return (addr.version, int(addr), str(addr))


def ip_within(ip: HostIP, prefix: Prefix) -> bool:
    version, address, _ = ip
    return prefix_within((version, address, _BITS[version]), prefix)


@lru_cache(maxsize=1 << 16)
def network_sort_key(text: str) -> tuple[int, int, int, str]:
    """Numeric order for prefixes (family, address, length); malformed text sorts last."""
    prefix = parse_prefix(text)
    if prefix is None:
        return (9, 0, 0, text)
    return (*prefix, "")
