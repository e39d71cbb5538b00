"""Import and export policies in tabby-bgpd's TOML: named prefix lists, named policies of ordered
terms, and the per-peer `import_policy` / `export_policy` that pick them.

The file's shape (docs/bgpd.md has the reference):

    [[prefix_lists]]
    name = "pools"
    prefixes = [{prefix = "10.244.0.0/16", le = 26}]

    [[policies]]
    name = "export-pools"
    default = "reject"
    [[policies.terms]]
    prefix_lists = ["pools"]
    action = "accept"

Everything is checked when the file is loaded, so a reload with a bad policy changes nothing;
errors name the field (`peers[2].export_policy: unknown policy "x"`). `compile_policies` turns the
checked tables into the pure core's `Policy` objects; a peer without a policy gets `accept-all`,
or `reject-all` on eBGP when `ebgp_default_deny` is set (RFC 8212 §2).

Why a policy may not set LOCAL_PREF on export to an eBGP peer: the attribute must not be sent
to one (RFC 4271 §5.1.5), so such a setting could only be silently dropped; it is refused.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from bgpd.core.routing.policy import (
    ACCEPT_ALL,
    REJECT_ALL,
    Policy,
    PolicyError,
    PrefixMatch,
    Term,
    parse_community,
    parse_large_community,
)
from bgpd.wire.context import IPV4_UNICAST, IPV6_UNICAST, Family
from runtime.config import ConfigError

BUILTIN: dict[str, Policy] = {ACCEPT_ALL.name: ACCEPT_ALL, REJECT_ALL.name: REJECT_ALL}
FAMILIES: dict[str, Family] = {"ipv4": IPV4_UNICAST, "ipv6": IPV6_UNICAST}
MAX_PREFIX_ENTRIES = 100_000  # per list: a bound on what one config file can make us build


@dataclass(kw_only=True)
class PrefixEntry:
    """A prefix and the lengths accepted inside it; neither `ge` nor `le`: the prefix itself."""

    prefix: str
    ge: int | None = None  # shortest accepted length (default: the prefix's own)
    le: int | None = None  # longest accepted length (default: `ge` given: the maximum)

    def compile(self, where: str) -> PrefixMatch:
        try:
            net = ipaddress.ip_network(self.prefix)
        except ValueError as exc:
            raise ConfigError(f"{where}.prefix: {exc}") from None
        bits = net.max_prefixlen
        ge = net.prefixlen if self.ge is None else self.ge
        if self.le is not None:
            le = self.le
        else:
            le = net.prefixlen if self.ge is None else bits
        for name, value in (("ge", ge), ("le", le)):
            if not net.prefixlen <= value <= bits:
                raise ConfigError(f"{where}.{name}: {value} outside {net.prefixlen}..{bits}")
        if ge > le:
            raise ConfigError(f"{where}: ge {ge} is greater than le {le}")
        return PrefixMatch(net, ge, le)


@dataclass(kw_only=True)
class PrefixListConfig:
    name: str
    prefixes: list[PrefixEntry] = field(default_factory=list)


@dataclass(kw_only=True)
class TermConfig:
    """One term: all the matches given must hold; then the actions apply, in field order."""

    # Matches (empty: anything).
    prefix_lists: list[str] = field(default_factory=list)  # inside any of them
    families: list[str] = field(default_factory=list)  # ipv4, ipv6
    communities: list[str] = field(default_factory=list)  # carries any of them
    large_communities: list[str] = field(default_factory=list)  # carries any of them
    as_path_min: int | None = None  # AS_PATH length bounds, inclusive
    as_path_max: int | None = None
    # Actions.
    set_local_pref: int | None = None
    set_med: int | None = None
    remove_communities: list[str] = field(default_factory=list)
    add_communities: list[str] = field(default_factory=list)
    remove_large_communities: list[str] = field(default_factory=list)
    add_large_communities: list[str] = field(default_factory=list)
    action: Literal["accept", "reject", "next"] = "next"  # next: go on to the next term


@dataclass(kw_only=True)
class PolicyConfig:
    name: str
    terms: list[TermConfig] = field(default_factory=list)
    default: Literal["accept", "reject"] = "reject"  # when no term decided


def _u32(value: int | None, where: str) -> None:
    if value is not None and not 0 <= value <= 0xFFFFFFFF:
        raise ConfigError(f"{where}: must be 0..4294967295")


def _communities(texts: Sequence[str], where: str) -> tuple[int, ...]:
    out = []
    for i, text in enumerate(texts):
        try:
            out.append(parse_community(text))
        except PolicyError as exc:
            raise ConfigError(f"{where}[{i}]: {exc}") from None
    return tuple(out)


def _large(texts: Sequence[str], where: str) -> tuple[tuple[int, int, int], ...]:
    out = []
    for i, text in enumerate(texts):
        try:
            out.append(parse_large_community(text))
        except PolicyError as exc:
            raise ConfigError(f"{where}[{i}]: {exc}") from None
    return tuple(out)


def _term(term: TermConfig, where: str, lists: Mapping[str, tuple[PrefixMatch, ...]]) -> Term:
    prefixes: list[PrefixMatch] = []
    for i, name in enumerate(term.prefix_lists):
        if name not in lists:
            raise ConfigError(f'{where}.prefix_lists[{i}]: unknown prefix list "{name}"')
        prefixes += lists[name]
    families = []
    for i, name in enumerate(term.families):
        if name not in FAMILIES:
            raise ConfigError(f"{where}.families[{i}]: {name!r} is not one of ipv4, ipv6")
        families.append(FAMILIES[name])
    for name in ("as_path_min", "as_path_max", "set_local_pref", "set_med"):
        _u32(getattr(term, name), f"{where}.{name}")
    if (
        term.as_path_min is not None
        and term.as_path_max is not None
        and term.as_path_min > term.as_path_max
    ):
        raise ConfigError(f"{where}.as_path_min: greater than as_path_max")
    if term.prefix_lists and not prefixes:
        # Every named list is empty: the term can match nothing. Said plainly rather than
        # letting an empty tuple mean "any prefix".
        raise ConfigError(f"{where}.prefix_lists: the lists named are all empty")
    return Term(
        prefixes=tuple(prefixes),
        families=tuple(families),
        communities=_communities(term.communities, f"{where}.communities"),
        large_communities=_large(term.large_communities, f"{where}.large_communities"),
        as_path_min=term.as_path_min,
        as_path_max=term.as_path_max,
        set_local_pref=term.set_local_pref,
        set_med=term.set_med,
        remove_communities=_communities(term.remove_communities, f"{where}.remove_communities"),
        add_communities=_communities(term.add_communities, f"{where}.add_communities"),
        remove_large_communities=_large(
            term.remove_large_communities, f"{where}.remove_large_communities"
        ),
        add_large_communities=_large(term.add_large_communities, f"{where}.add_large_communities"),
        action=None if term.action == "next" else term.action,
    )


def compile_policies(
    prefix_lists: Sequence[PrefixListConfig], policies: Sequence[PolicyConfig]
) -> dict[str, Policy]:
    """The named policies (plus the built-in `accept-all` and `reject-all`), checked."""
    lists: dict[str, tuple[PrefixMatch, ...]] = {}
    for i, pl in enumerate(prefix_lists):
        where = f"prefix_lists[{i}]"
        if not pl.name:
            raise ConfigError(f"{where}.name: required")
        if pl.name in lists:
            raise ConfigError(f'{where}.name: prefix list "{pl.name}" is defined twice')
        if len(pl.prefixes) > MAX_PREFIX_ENTRIES:
            raise ConfigError(f"{where}.prefixes: more than {MAX_PREFIX_ENTRIES} entries")
        lists[pl.name] = tuple(
            e.compile(f"{where}.prefixes[{j}]") for j, e in enumerate(pl.prefixes)
        )
    out: dict[str, Policy] = dict(BUILTIN)
    for i, pc in enumerate(policies):
        where = f"policies[{i}]"
        if not pc.name:
            raise ConfigError(f"{where}.name: required")
        if pc.name in BUILTIN:
            raise ConfigError(f'{where}.name: "{pc.name}" is built in')
        if pc.name in out:
            raise ConfigError(f'{where}.name: policy "{pc.name}" is defined twice')
        terms = tuple(_term(t, f"{where}.terms[{j}]", lists) for j, t in enumerate(pc.terms))
        out[pc.name] = Policy(pc.name, terms, pc.default)
    return out


def check_peer_policy(
    policies: Mapping[str, Policy], name: str, where: str, *, export_to_ebgp: bool
) -> None:
    if not name:
        return
    policy = policies.get(name)
    if policy is None:
        raise ConfigError(f'{where}: unknown policy "{name}"')
    if export_to_ebgp and policy.sets_local_pref:
        raise ConfigError(
            f'{where}: policy "{name}" sets local_pref, which is never sent to an eBGP peer'
            " (RFC 4271 §5.1.5)"
        )


def effective(
    policies: Mapping[str, Policy], name: str, *, ibgp: bool, ebgp_default_deny: bool
) -> Policy:
    """The policy a peer runs: the named one, else accept-all (reject-all per RFC 8212)."""
    if name:
        return policies[name]
    return REJECT_ALL if ebgp_default_deny and not ibgp else ACCEPT_ALL
