"""Compact prefixes and the NLRI encoding (RFC 4271 §4.3, RFC 4760 §5, RFC 7911 §3).

A `Prefix` is a plain `bytes` object in the wire form: one length octet followed by the
ceil(length/8) significant address octets, with the host bits beyond the length zeroed.

Why bytes: decoding is one slice per prefix (no int conversion, no object construction beyond
the slice), CPython caches a bytes hash, equality is a memcmp, and an IPv4 /24 costs 37 octets
of memory. Encoding is a join. The address family is not inside the key: it travels with the
container (`Update.nlri`/`withdrawn` are IPv4 unicast, `MpReach`/`MpUnreach` carry AFI/SAFI),
and the RIB keeps one table per family. With ADD-PATH (RFC 7911) the path identifiers travel
in a parallel tuple of ints, so a prefix key is the same with and without ADD-PATH.

Invariants: `len(p) == 1 + (p[0] + 7) // 8`, `p[0] <= 32` (IPv4) or `<= 128` (IPv6), and the
bits after `p[0]` are zero. `split_nlri` returns only prefixes that satisfy them.
"""

from __future__ import annotations

import ipaddress
import re

from bgpd.wire.context import AFI_IPV4, AFI_IPV6

Prefix = bytes

MAX_LENGTH: dict[int, int] = {AFI_IPV4: 32, AFI_IPV6: 128}
ADDRESS_OCTETS: dict[int, int] = {AFI_IPV4: 4, AFI_IPV6: 16}
# Mask of the host bits in the last octet, by (length % 8).
_HOST_MASK = (0x00, 0x7F, 0x3F, 0x1F, 0x0F, 0x07, 0x03, 0x01)


def _token(length: int) -> bytes:
    """Regex for one canonical prefix of `length` bits: the length octet, the full octets, and
    a last octet whose host bits are zero."""
    n = (length + 7) >> 3
    lit = re.escape(bytes((length,)))
    if n == 0:
        return lit
    rem = length & 7
    full = n if rem == 0 else n - 1
    body = b"[\x00-\xff]" + (b"{%d}" % full if full > 1 else b"") if full else b""
    if rem == 0:
        return lit + body
    allowed = b"".join(re.escape(bytes((v,))) for v in range(256) if not v & _HOST_MASK[rem])
    return lit + body + b"[" + allowed + b"]"


def _scanner(maxlen: int, common: tuple[int, ...]) -> re.Pattern[bytes]:
    order = list(common) + [n for n in range(maxlen + 1) if n not in common]
    return re.compile(b"|".join(_token(n) for n in order))


# Fast path: a regex that matches exactly one canonical prefix, alternatives ordered by how
# common the length is in a full table, so `findall` splits a whole NLRI field in C.
SCANNERS: dict[int, re.Pattern[bytes]] = {
    32: _scanner(32, (24, 22, 23, 21, 20, 19, 16, 18, 17)),
    128: _scanner(128, (48, 32, 44, 40, 36, 64, 29, 47, 46, 56, 128)),
}


class NlriError(Exception):
    """Internal: the NLRI bytes cannot be split; the caller maps it to its RFC 7606 case."""


def split_nlri(data: bytes, start: int, end: int, maxlen: int) -> list[Prefix]:
    """Split `data[start:end]` into prefixes (no path identifiers). Hot path of every UPDATE."""
    scanner = SCANNERS.get(maxlen)
    if scanner is not None:
        found: list[Prefix] = scanner.findall(data, start, end)
        # findall skips octets where no prefix matches; if nothing was skipped the lengths add
        # up, and every piece is a canonical prefix. Otherwise take the careful path below.
        if sum(map(len, found)) == end - start:
            return found
    out: list[Prefix] = []
    append = out.append
    i = start
    while i < end:
        plen = data[i]
        if plen > maxlen:
            raise NlriError(f"prefix length {plen} > {maxlen}")
        j = i + 1 + ((plen + 7) >> 3)
        if j > end:
            raise NlriError("prefix overruns the NLRI field")
        if plen & 7 and data[j - 1] & _HOST_MASK[plen & 7]:
            # RFC 4271 §4.3: trailing bits are irrelevant; zero them so keys are canonical.
            p = bytearray(data[i:j])
            p[-1] &= 0xFF ^ _HOST_MASK[plen & 7]
            append(bytes(p))
        else:
            append(data[i:j])
        i = j
    return out


def split_nlri_add_path(
    data: bytes, start: int, end: int, maxlen: int
) -> tuple[list[Prefix], list[int]]:
    """Split NLRI where each prefix is preceded by a 4-octet Path Identifier (RFC 7911 §3)."""
    out: list[Prefix] = []
    ids: list[int] = []
    i = start
    while i < end:
        if i + 5 > end:
            raise NlriError("path identifier overruns the NLRI field")
        ids.append(int.from_bytes(data[i : i + 4], "big"))
        i += 4
        plen = data[i]
        if plen > maxlen:
            raise NlriError(f"prefix length {plen} > {maxlen}")
        j = i + 1 + ((plen + 7) >> 3)
        if j > end:
            raise NlriError("prefix overruns the NLRI field")
        if plen & 7 and data[j - 1] & _HOST_MASK[plen & 7]:
            p = bytearray(data[i:j])
            p[-1] &= 0xFF ^ _HOST_MASK[plen & 7]
            out.append(bytes(p))
        else:
            out.append(data[i:j])
        i = j
    return out, ids


def join_nlri_add_path(prefixes: tuple[Prefix, ...], ids: tuple[int, ...]) -> bytes:
    """Encode prefixes with their Path Identifiers (RFC 7911 §3)."""
    if len(ids) != len(prefixes):
        raise ValueError("ADD-PATH needs one path identifier per prefix")
    return b"".join(i.to_bytes(4, "big") + p for p, i in zip(prefixes, ids, strict=True))


def make_prefix(text: str) -> Prefix:
    """`"10.0.0.0/24"` or `"2001:db8::/32"` -> the canonical `Prefix` (host bits must be zero)."""
    net = ipaddress.ip_network(text)
    return prefix_from_network(net)


def prefix_from_network(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Prefix:
    plen = net.prefixlen
    return bytes((plen,)) + net.network_address.packed[: (plen + 7) >> 3]


def prefix_afi(text: str) -> int:
    """The AFI of a prefix written as text."""
    return AFI_IPV6 if ":" in text else AFI_IPV4


def prefix_network(prefix: Prefix, afi: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The `ipaddress` network of a prefix in family `afi`."""
    octets = ADDRESS_OCTETS[afi]
    packed = prefix[1:].ljust(octets, b"\x00")
    if afi == AFI_IPV4:
        return ipaddress.IPv4Network((packed, prefix[0]))
    return ipaddress.IPv6Network((packed, prefix[0]))


def format_prefix(prefix: Prefix, afi: int = AFI_IPV4) -> str:
    """`Prefix` -> `"10.0.0.0/24"`."""
    return str(prefix_network(prefix, afi))


def is_canonical(prefix: Prefix, afi: int) -> bool:
    """True when `prefix` satisfies the module invariants for `afi`."""
    if not prefix or prefix[0] > MAX_LENGTH[afi] or len(prefix) != 1 + ((prefix[0] + 7) >> 3):
        return False
    rem = prefix[0] & 7
    return not (rem and prefix[-1] & _HOST_MASK[rem])
