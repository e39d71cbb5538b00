"""What a session negotiated, carried into every encode and decode (RFC 5492 capabilities).

`WireContext` plays the role of BIRD's parse state and GoBGP's marshalling options: 4-octet AS
numbers (RFC 6793), ADD-PATH per address family and direction (RFC 7911), extended messages
(RFC 8654). `DEFAULT` is the RFC 4271 baseline that applies before OPENs are exchanged.

It also points at the attribute-set intern cache, so that identical attribute bytes decode to the
same `PathAttributes` object for every session that shares the cache.

Invariants: a context is immutable; a session builds a new one when OPENs are exchanged
(`bgpd.wire.capabilities.negotiate`). The cache is the only mutable thing reachable from it and
holds only values that are a pure function of (attribute bytes, four_octet_as).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bgpd.wire.attributes import PathAttributes

# Address families (IANA AFI / SAFI registries, RFC 4760).
AFI_IPV4 = 1
AFI_IPV6 = 2
SAFI_UNICAST = 1
SAFI_MULTICAST = 2
IPV4_UNICAST = (AFI_IPV4, SAFI_UNICAST)
IPV6_UNICAST = (AFI_IPV6, SAFI_UNICAST)

AFI_NAMES: dict[int, str] = {AFI_IPV4: "ipv4", AFI_IPV6: "ipv6"}
SAFI_NAMES: dict[int, str] = {SAFI_UNICAST: "unicast", SAFI_MULTICAST: "multicast"}

Family = tuple[int, int]

MAX_MESSAGE = 4096  # RFC 4271 §4.1
MAX_EXTENDED_MESSAGE = 65535  # RFC 8654 §4


class AttributeCache:
    """Bounded intern table: raw attribute bytes -> the decoded `PathAttributes`.

    Keys are the attribute section minus MP_REACH_NLRI/MP_UNREACH_NLRI, separately for 2- and
    4-octet sessions (the same bytes mean different AS paths). `values` does the same one level
    down (single attribute bytes -> decoded value), so a new set made of known attributes shares
    their values; `encoded` maps attribute sets back to bytes for the encoder. When full, the oldest entry goes
    (dicts keep insertion order), so a flapping peer cannot grow it without bound.
    """

    __slots__ = ("encoded", "hits", "maxsize", "misses", "tables", "values")

    def __init__(self, maxsize: int = 262_144) -> None:
        self.maxsize = maxsize
        # Index 0: 2-octet AS session, index 1: 4-octet AS session.
        self.tables: tuple[dict[bytes, PathAttributes], dict[bytes, PathAttributes]] = ({}, {})
        # One level down: one attribute's bytes (header included) -> its decoded value.
        self.values: tuple[dict[bytes, object], dict[bytes, object]] = ({}, {})
        # The reverse direction, for encoding: attribute set -> its bytes.
        self.encoded: tuple[dict[PathAttributes, bytes], dict[PathAttributes, bytes]] = ({}, {})
        self.hits = 0
        self.misses = 0

    def store_encoded(self, four_octet_as: bool, key: PathAttributes, value: bytes) -> bytes:
        table = self.encoded[four_octet_as]
        if len(table) >= self.maxsize:
            del table[next(iter(table))]
        table[key] = value
        return value

    def store(self, four_octet_as: bool, key: bytes, value: PathAttributes) -> PathAttributes:
        table = self.tables[four_octet_as]
        if len(table) >= self.maxsize:
            del table[next(iter(table))]
        table[key] = value
        return value

    def clear(self) -> None:
        for table in self.tables:
            table.clear()
        for enc in self.encoded:
            enc.clear()
        for values in self.values:
            values.clear()

    def __len__(self) -> int:
        return len(self.tables[0]) + len(self.tables[1])


SHARED_CACHE = AttributeCache()


@dataclass(frozen=True, slots=True)
class WireContext:
    """Negotiated session parameters for the codec.

    four_octet_as: both sides sent the RFC 6793 capability (AS_PATH carries 4-octet ASNs).
    add_path_rx: families for which we receive path identifiers (we said receive, peer send).
    add_path_tx: families for which we send path identifiers (we said send, peer receive).
    extended_message: both sides sent the RFC 8654 capability (65,535-octet messages).
    cache: attribute intern table; excluded from equality.
    """

    four_octet_as: bool = False
    add_path_rx: frozenset[Family] = frozenset()
    add_path_tx: frozenset[Family] = frozenset()
    extended_message: bool = False
    cache: AttributeCache = field(default=SHARED_CACHE, compare=False, repr=False)
    # Derived once, read per UPDATE on the hot path (a tuple hash per message otherwise).
    ipv4_add_path_rx: bool = field(init=False, compare=False, repr=False)
    ipv4_add_path_tx: bool = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ipv4_add_path_rx", IPV4_UNICAST in self.add_path_rx)
        object.__setattr__(self, "ipv4_add_path_tx", IPV4_UNICAST in self.add_path_tx)

    @property
    def max_message(self) -> int:
        """Largest UPDATE/NOTIFICATION/ROUTE-REFRESH we accept or send (RFC 8654 §4)."""
        return MAX_EXTENDED_MESSAGE if self.extended_message else MAX_MESSAGE


DEFAULT = WireContext()
