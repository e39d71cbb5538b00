"""Import and export policy: ordered terms of matches and actions, BIRD-filter style but small.

A term matches on prefixes (with length ranges: `10.244.0.0/16 ge 26 le 26`), address family,
communities, large communities and AS_PATH length; all the matches a term gives must hold, and
a term with none matches every route. Its actions set LOCAL_PREF or MED, remove then add
communities or large communities, and optionally decide (`accept` or `reject`). Terms run in
order; the first deciding term ends evaluation; with none, the policy's default decides. This
is enough for Calico's rule "export the pool's blocks, never the /32s inside them" and for
tagging routes for a ToR.

RFC 8212: with `ebgp_default_deny`, an eBGP session with no policy at all neither imports
nor exports, as the RFC requires of a speaker that enables it.

Invariant: `evaluate` never changes attributes it was not told to, and returns the very
object it was given when no action applied (callers intern on identity).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

from bgpd.wire.attributes import NO_ADVERTISE, NO_EXPORT, NO_EXPORT_SUBCONFED, PathAttributes
from bgpd.wire.context import AFI_IPV4, AFI_IPV6, Family
from bgpd.wire.prefix import ADDRESS_OCTETS, Prefix

Verdict = Literal["accept", "reject"]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class PolicyError(ValueError):
    """A policy definition that does not parse; the message names the bad part."""


# A prefix as policy matching sees it: (AFI, length, address as an int). Built once per
# evaluated prefix straight from the wire form; no ipaddress objects on the export path.
WirePrefix = tuple[int, int, int]


def wire_prefix(prefix: Prefix, afi: int) -> WirePrefix:
    octets = ADDRESS_OCTETS[afi]
    return afi, prefix[0], int.from_bytes(prefix[1:].ljust(octets, b"\x00"), "big")


@dataclass(frozen=True, slots=True)
class PrefixMatch:
    network: IPNetwork
    ge: int
    le: int
    # Derived: the network's AFI, length, and address bits above its length.
    _afi: int = field(init=False, repr=False, compare=False)
    _length: int = field(init=False, repr=False, compare=False)
    _high: int = field(init=False, repr=False, compare=False)
    _shift: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        net = self.network
        shift = net.max_prefixlen - net.prefixlen
        object.__setattr__(self, "_afi", AFI_IPV6 if net.version == 6 else AFI_IPV4)
        object.__setattr__(self, "_shift", shift)
        object.__setattr__(self, "_length", net.prefixlen)
        object.__setattr__(self, "_high", int(net.network_address) >> shift)

    def matches(self, net: IPNetwork) -> bool:
        afi = AFI_IPV6 if net.version == 6 else AFI_IPV4
        return self.matches_wire((afi, net.prefixlen, int(net.network_address)))

    def matches_wire(self, wp: WirePrefix) -> bool:
        """Inside `network`, and a length within ge..le."""
        afi, length, address = wp
        return (
            afi == self._afi
            and self.ge <= length <= self.le
            and length >= self._length
            and address >> self._shift == self._high
        )

    @classmethod
    def parse(cls, text: str) -> PrefixMatch:
        """`NET`, `NET ge N`, `NET le N`, `NET ge N le M` (exact match when neither is given)."""
        parts = text.split()
        try:
            net = ipaddress.ip_network(parts[0])
        except (ValueError, IndexError):
            raise PolicyError(f"{text!r}: not a prefix") from None
        ge, le = net.prefixlen, net.prefixlen
        rest = parts[1:]
        saw_range = False
        while rest:
            if len(rest) < 2 or rest[0] not in ("ge", "le") or not rest[1].isdigit():
                raise PolicyError(f"{text!r}: expected 'ge N' or 'le N'")
            value = int(rest[1])
            if not net.prefixlen <= value <= net.max_prefixlen:
                raise PolicyError(
                    f"{text!r}: {rest[0]} {value} outside {net.prefixlen}..{net.max_prefixlen}"
                )
            if rest[0] == "ge":
                ge = value
                if not saw_range:
                    le = net.max_prefixlen
            else:
                le = value
            saw_range = True
            rest = rest[2:]
        if ge > le:
            raise PolicyError(f"{text!r}: ge is greater than le")
        return cls(net, ge, le)


# Well-known communities by the names operators write (RFC 1997, RFC 7999, RFC 8326).
COMMUNITY_NAMES: dict[str, int] = {
    "no-export": NO_EXPORT,
    "no-advertise": NO_ADVERTISE,
    "no-export-subconfed": NO_EXPORT_SUBCONFED,
    "graceful-shutdown": 0xFFFF0000,
    "blackhole": 0xFFFF029A,
}

LargeCommunity = tuple[int, int, int]


def parse_community(text: str) -> int:
    """`aa:nn` or a well-known name (`no-export`) → the 32-bit community value (RFC 1997)."""
    named = COMMUNITY_NAMES.get(text.lower())
    if named is not None:
        return named
    try:
        high, low = (int(x) for x in text.split(":"))
    except ValueError:
        raise PolicyError(f"{text!r}: a community is aa:nn or a well-known name") from None
    if not (0 <= high <= 0xFFFF and 0 <= low <= 0xFFFF):
        raise PolicyError(f"{text!r}: community parts must be 0..65535")
    return high << 16 | low


def parse_large_community(text: str) -> LargeCommunity:
    """`aa:nn:mm` → the three 32-bit parts (RFC 8092)."""
    try:
        a, b, c = (int(x) for x in text.split(":"))
    except ValueError:
        raise PolicyError(f"{text!r}: a large community is aa:nn:mm") from None
    if not all(0 <= v <= 0xFFFFFFFF for v in (a, b, c)):
        raise PolicyError(f"{text!r}: large community parts must be 32-bit")
    return a, b, c


# A term with more prefix matches than this looks them up in a `PrefixIndex` instead of
# trying each in turn (a prefix list of a few pools stays a plain loop, which is faster).
INDEX_ABOVE = 8


class PrefixIndex:
    """Prefix matches grouped by (AFI, network length) and keyed by the network's bits, so
    that matching a route costs one dict probe per distinct network length no longer than the
    route's, not one comparison per entry (a prefix list can hold thousands)."""

    __slots__ = ("_lengths", "_table")

    def __init__(self, matches: tuple[PrefixMatch, ...]) -> None:
        self._table: dict[tuple[int, int], dict[int, list[PrefixMatch]]] = {}
        lengths: dict[int, set[int]] = {}
        for m in matches:
            bucket = self._table.setdefault((m._afi, m._length), {})
            bucket.setdefault(m._high, []).append(m)
            lengths.setdefault(m._afi, set()).add(m._length)
        self._lengths = {afi: sorted(ls) for afi, ls in lengths.items()}

    def matches_wire(self, wp: WirePrefix) -> bool:
        afi, length, address = wp
        bits = ADDRESS_OCTETS[afi] * 8
        table = self._table
        for n in self._lengths.get(afi, ()):
            if n > length:
                break
            hits = table[(afi, n)].get(address >> (bits - n))
            if hits is not None:
                for m in hits:
                    if m.ge <= length <= m.le:
                        return True
        return False


@dataclass(frozen=True, slots=True)
class Term:
    # Matches: an empty tuple or None matches anything.
    prefixes: tuple[PrefixMatch, ...] = ()  # the prefix is inside any of them
    families: tuple[Family, ...] = ()
    communities: tuple[int, ...] = ()  # the route carries at least one of them
    large_communities: tuple[LargeCommunity, ...] = ()  # likewise
    as_path_min: int | None = None  # AS_PATH length (RFC 4271 §9.1.2.2 a), inclusive bounds
    as_path_max: int | None = None
    # Actions, applied in this order when the term matches.
    set_local_pref: int | None = None
    set_med: int | None = None
    remove_communities: tuple[int, ...] = ()
    add_communities: tuple[int, ...] = ()
    remove_large_communities: tuple[LargeCommunity, ...] = ()
    add_large_communities: tuple[LargeCommunity, ...] = ()
    action: Verdict | None = None  # None: apply the sets and go on to the next term
    _index: PrefixIndex | None = field(default=None, init=False, repr=False, compare=False)
    # Derived, so that a prefix-only term (Calico's export filter) skips the rest per route.
    _checks_attrs: bool = field(default=False, init=False, repr=False, compare=False)
    _acts: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.prefixes) > INDEX_ABOVE:
            object.__setattr__(self, "_index", PrefixIndex(self.prefixes))
        checks = bool(self.communities or self.large_communities) or not (
            self.as_path_min is None and self.as_path_max is None
        )
        object.__setattr__(self, "_checks_attrs", checks)
        acts = (
            self.set_local_pref is not None
            or self.set_med is not None
            or bool(self.remove_communities or self.add_communities)
            or bool(self.remove_large_communities or self.add_large_communities)
        )
        object.__setattr__(self, "_acts", acts)

    def matches(self, family: Family, wp: WirePrefix | None, attrs: PathAttributes) -> bool:
        """`wp` may be None only when the term has no prefix matches."""
        if self.families and family not in self.families:
            return False
        if self.prefixes:
            assert wp is not None
            if self._index is not None:
                if not self._index.matches_wire(wp):
                    return False
            else:
                for m in self.prefixes:  # a loop, not any(): no generator per evaluated prefix
                    if m.matches_wire(wp):
                        break
                else:
                    return False
        if not self._checks_attrs:
            return True
        if self.communities and set(self.communities).isdisjoint(attrs.communities):
            return False
        if self.large_communities and set(self.large_communities).isdisjoint(
            attrs.large_communities
        ):
            return False
        if self.as_path_min is not None or self.as_path_max is not None:
            length = attrs.as_path_length()
            if self.as_path_min is not None and length < self.as_path_min:
                return False
            if self.as_path_max is not None and length > self.as_path_max:
                return False
        return True

    def apply(self, attrs: PathAttributes) -> PathAttributes:
        changes: dict[str, object] = {}
        if self.set_local_pref is not None and attrs.local_pref != self.set_local_pref:
            changes["local_pref"] = self.set_local_pref
        if self.set_med is not None and attrs.med != self.set_med:
            changes["med"] = self.set_med
        if self.add_communities or self.remove_communities:
            merged = (set(attrs.communities) - set(self.remove_communities)) | set(
                self.add_communities
            )
            if merged != set(attrs.communities):
                changes["communities"] = tuple(sorted(merged))
        if self.add_large_communities or self.remove_large_communities:
            merged_l = (set(attrs.large_communities) - set(self.remove_large_communities)) | set(
                self.add_large_communities
            )
            if merged_l != set(attrs.large_communities):
                changes["large_communities"] = tuple(sorted(merged_l))
        return attrs._replace(**changes) if changes else attrs  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    terms: tuple[Term, ...] = ()
    default: Verdict = "accept"

    def evaluate(
        self, family: Family, prefix: Prefix, attrs: PathAttributes
    ) -> PathAttributes | None:
        """The (possibly modified) attributes if accepted, None if rejected."""
        wp: WirePrefix | None = None
        for term in self.terms:
            if term.prefixes and wp is None:
                wp = wire_prefix(prefix, family[0])
            if term.matches(family, wp, attrs):
                if term._acts:
                    attrs = term.apply(attrs)
                if term.action == "accept":
                    return attrs
                if term.action == "reject":
                    return None
        return attrs if self.default == "accept" else None

    @property
    def sets_local_pref(self) -> bool:
        """Whether some term sets LOCAL_PREF (which an eBGP peer must never be sent)."""
        return any(t.set_local_pref is not None for t in self.terms)


ACCEPT_ALL = Policy("accept-all")
REJECT_ALL = Policy("reject-all", default="reject")


def family_of(net: IPNetwork) -> int:
    return AFI_IPV6 if net.version == 6 else 1
