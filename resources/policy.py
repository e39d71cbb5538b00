"""NetworkPolicy, GlobalNetworkPolicy and Profile (calico.md §1.8, §1.11) and their rules.

Invariants after `finish_policy`: every selector parses; `types` is defaulted the way Calico
does (egress rules only → [Egress]; both → both; otherwise [Ingress]); ports appear only with
protocol TCP, UDP or SCTP; an ICMP code needs a type; preDNAT and doNotTrack require
applyOnForward, exclude each other, and preDNAT policies have no egress rules.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from resources.errors import ResourceError
from resources.schema import (
    BOOL,
    CIDR,
    FLOAT,
    LABELS,
    NONEMPTY,
    SELECTOR,
    STR,
    STRING_MAP,
    Either,
    Int,
    IPNetwork,
    ListOf,
    OneOf,
    Struct,
    field,
    opt,
)
from resources.selector import All, And, Equals, Global, Selector, parse_selector

MAX_RULES = 1024
PROTOCOL_NAMES = ("TCP", "UDP", "ICMP", "ICMPv6", "SCTP", "UDPLite")
PORT_PROTOCOLS = {"TCP", "UDP", "SCTP", 6, 17, 132}


class _Protocol(Either):
    """`TCP`, `UDP`, ... or a number 1–255 (numorstring.Protocol)."""

    def decode(self, value: object, path: str) -> int | str:
        if isinstance(value, str) and value in PROTOCOL_NAMES:
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 255:
            return value
        raise ResourceError(path, f"must be one of {', '.join(PROTOCOL_NAMES)} or 1-255")


PROTOCOL = _Protocol()


@dataclass(frozen=True, slots=True)
class ICMPFields:
    type: int | None = opt("type", Int(0, 254))
    code: int | None = opt("code", Int(0, 255))


@dataclass(frozen=True, slots=True)
class ServiceAccountMatch:
    names: tuple[str, ...] = field("names", ListOf(NONEMPTY), ())
    selector: str = field("selector", SELECTOR, "")


@dataclass(frozen=True, slots=True)
class ServiceMatch:
    name: str = field("name", NONEMPTY, required=True)
    namespace: str = field("namespace", STR, "")


@dataclass(frozen=True, slots=True)
class EntityRule:
    nets: tuple[IPNetwork, ...] = field("nets", ListOf(CIDR), ())
    not_nets: tuple[IPNetwork, ...] = field("notNets", ListOf(CIDR), ())
    selector: str = field("selector", SELECTOR, "")
    not_selector: str = field("notSelector", SELECTOR, "")
    namespace_selector: str = field("namespaceSelector", SELECTOR, "")
    ports: tuple[int | str, ...] = field("ports", ListOf(Either()), ())
    not_ports: tuple[int | str, ...] = field("notPorts", ListOf(Either()), ())
    service_accounts: ServiceAccountMatch | None = opt(
        "serviceAccounts", Struct(ServiceAccountMatch)
    )
    services: ServiceMatch | None = opt("services", Struct(ServiceMatch))


@dataclass(frozen=True, slots=True)
class HTTPPath:
    exact: str = field("exact", STR, "")
    prefix: str = field("prefix", STR, "")


@dataclass(frozen=True, slots=True)
class HTTPMatch:
    methods: tuple[str, ...] = field("methods", ListOf(NONEMPTY), ())
    paths: tuple[HTTPPath, ...] = field("paths", ListOf(Struct(HTTPPath)), ())


@dataclass(frozen=True, slots=True)
class RuleMetadata:
    annotations: dict[str, str] = field("annotations", STRING_MAP, factory=dict)


@dataclass(frozen=True, slots=True)
class Rule:
    action: str = field("action", OneOf("Allow", "Deny", "Log", "Pass"), required=True)
    ip_version: int | None = opt("ipVersion", Int(4, 6))
    protocol: int | str | None = opt("protocol", PROTOCOL)
    not_protocol: int | str | None = opt("notProtocol", PROTOCOL)
    icmp: ICMPFields | None = opt("icmp", Struct(ICMPFields))
    not_icmp: ICMPFields | None = opt("notICMP", Struct(ICMPFields))
    source: EntityRule | None = opt("source", Struct(EntityRule))
    destination: EntityRule | None = opt("destination", Struct(EntityRule))
    http: HTTPMatch | None = opt("http", Struct(HTTPMatch))
    metadata: RuleMetadata | None = opt("metadata", Struct(RuleMetadata))


_ICMP_VERSION = {"ICMP": 4, 1: 4, "ICMPv6": 6, 58: 6}


def _check_entity(side: EntityRule, path: str) -> None:
    # global() is only meaningful as the whole of a rule's namespaceSelector (Calico).
    if side.selector and parse_selector(side.selector).uses_global():
        raise ResourceError(f"{path}.selector", "global() is only valid in namespaceSelector")
    if side.namespace_selector:
        parsed = parse_selector(side.namespace_selector)
        if parsed.uses_global() and not isinstance(parsed.root, Global):
            raise ResourceError(
                f"{path}.namespaceSelector", "global() must be the whole namespaceSelector"
            )
    if side.services is not None and side.service_accounts is not None:
        raise ResourceError(f"{path}.services", "cannot be combined with serviceAccounts")


def _check_rule(rule: Rule, path: str, direction: str) -> None:
    if rule.ip_version not in (None, 4, 6):
        raise ResourceError(f"{path}.ipVersion", "must be 4 or 6")
    for proto in (rule.protocol, rule.not_protocol):
        wanted = _ICMP_VERSION.get(proto) if proto is not None else None
        if wanted is not None and rule.ip_version not in (None, wanted):
            raise ResourceError(f"{path}.ipVersion", f"must be {wanted} with protocol {proto}")
    if rule.http is not None:
        if direction == "egress":
            raise ResourceError(f"{path}.http", "not allowed in egress rules")
        if rule.protocol not in (None, "TCP", 6):
            raise ResourceError(f"{path}.protocol", "must be TCP when http is set")
    own_side = rule.source if direction == "egress" else rule.destination
    if own_side is not None and own_side.services is not None:
        where = "source" if direction == "egress" else "destination"
        raise ResourceError(f"{path}.{where}.services", f"not allowed in {direction} rule {where}")
    if (
        rule.destination is not None
        and rule.destination.services is not None
        and (rule.destination.ports or rule.destination.not_ports)
    ):
        raise ResourceError(
            f"{path}.destination.ports", "cannot specify ports with a service selector"
        )
    for name, icmp in (("icmp", rule.icmp), ("notICMP", rule.not_icmp)):
        if icmp is not None and icmp.code is not None and icmp.type is None:
            raise ResourceError(f"{path}.{name}.code", "an ICMP code requires a type")
        if icmp is not None and rule.protocol not in ("ICMP", "ICMPv6", 1, 58):
            raise ResourceError(f"{path}.{name}", "requires protocol ICMP or ICMPv6")
    if rule.http is not None and rule.action != "Allow":
        raise ResourceError(f"{path}.http", "only valid for Allow rules")
    families = {
        net.version
        for side in (rule.source, rule.destination)
        if side is not None
        for net in (*side.nets, *side.not_nets)
    }
    if len(families) > 1:
        raise ResourceError(f"{path}", "rule contains both IPv4 and IPv6 CIDRs")
    for side_name, side in (("source", rule.source), ("destination", rule.destination)):
        if side is None:
            continue
        side_path = f"{path}.{side_name}"
        _check_entity(side, side_path)
        if (side.ports or side.not_ports) and rule.protocol not in PORT_PROTOCOLS:
            raise ResourceError(
                f"{side_path}.{'ports' if side.ports else 'notPorts'}",
                "ports are only allowed with protocol TCP, UDP or SCTP",
            )
        if side.services is not None and (
            side.selector
            or side.not_selector
            or side.nets
            or side.not_nets
            or side.namespace_selector
        ):
            raise ResourceError(
                f"{side_path}.services", "cannot be combined with selectors or nets"
            )
        for net_field, nets in (("nets", side.nets), ("notNets", side.not_nets)):
            if rule.ip_version is not None:
                for i, net in enumerate(nets):
                    if net.version != rule.ip_version:
                        raise ResourceError(
                            f"{side_path}.{net_field}[{i}]",
                            f"is not an IPv{rule.ip_version} network (ipVersion)",
                        )


def _check_rules(ingress: tuple[Rule, ...], egress: tuple[Rule, ...]) -> None:
    for direction, rules in (("ingress", ingress), ("egress", egress)):
        for i, rule in enumerate(rules):
            _check_rule(rule, f"spec.{direction}[{i}]", direction)


def _default_types(
    types: tuple[str, ...], ingress: tuple[Rule, ...], egress: tuple[Rule, ...]
) -> tuple[str, ...]:
    if types:
        if len(set(types)) != len(types):
            raise ResourceError("spec.types", "must not repeat a value")
        return types
    if egress and ingress:
        return ("Ingress", "Egress")
    if egress:
        return ("Egress",)
    return ("Ingress",)


_RULES = ListOf(Struct(Rule), max_items=MAX_RULES)
_TYPES = ListOf(OneOf("Ingress", "Egress"), max_items=2)


@dataclass(frozen=True, slots=True)
class NetworkPolicySpec:
    tier: str = field("tier", NONEMPTY, "default")
    order: float | None = opt("order", FLOAT)
    selector: str = field("selector", SELECTOR, "")
    types: tuple[str, ...] = field("types", _TYPES, ())
    ingress: tuple[Rule, ...] = field("ingress", _RULES, ())
    egress: tuple[Rule, ...] = field("egress", _RULES, ())
    service_account_selector: str = field("serviceAccountSelector", SELECTOR, "")
    performance_hints: tuple[str, ...] = field(
        "performanceHints", ListOf(OneOf("AssumeNeededOnEveryNode")), ()
    )


@dataclass(frozen=True, slots=True)
class GlobalNetworkPolicySpec:
    tier: str = field("tier", NONEMPTY, "default")
    order: float | None = opt("order", FLOAT)
    selector: str = field("selector", SELECTOR, "")
    types: tuple[str, ...] = field("types", _TYPES, ())
    ingress: tuple[Rule, ...] = field("ingress", _RULES, ())
    egress: tuple[Rule, ...] = field("egress", _RULES, ())
    service_account_selector: str = field("serviceAccountSelector", SELECTOR, "")
    namespace_selector: str = field("namespaceSelector", SELECTOR, "")
    do_not_track: bool = field("doNotTrack", BOOL, False)
    pre_dnat: bool = field("preDNAT", BOOL, False)
    apply_on_forward: bool = field("applyOnForward", BOOL, False)
    performance_hints: tuple[str, ...] = field(
        "performanceHints", ListOf(OneOf("AssumeNeededOnEveryNode")), ()
    )


def _check_policy_selectors(selector: str, service_account_selector: str) -> None:
    for path, text in (
        ("spec.selector", selector),
        ("spec.serviceAccountSelector", service_account_selector),
    ):
        if text and parse_selector(text).uses_global():
            raise ResourceError(path, "global() is only valid in a rule's namespaceSelector")


def _check_tier(tier: str) -> None:
    # Calico refuses a policy whose tier does not exist; Tabby has no Tier kind, so only the
    # built-in `default` tier exists.
    if tier != "default":
        raise ResourceError("spec.tier", "only the 'default' tier exists (Tabby has no Tier kind)")


def finish_network_policy(spec: NetworkPolicySpec) -> NetworkPolicySpec:
    _check_tier(spec.tier)
    _check_policy_selectors(spec.selector, spec.service_account_selector)
    _check_rules(spec.ingress, spec.egress)
    return replace(spec, types=_default_types(spec.types, spec.ingress, spec.egress))


def finish_global_network_policy(spec: GlobalNetworkPolicySpec) -> GlobalNetworkPolicySpec:
    _check_tier(spec.tier)
    _check_policy_selectors(spec.selector, spec.service_account_selector)
    _check_rules(spec.ingress, spec.egress)
    if spec.do_not_track and spec.pre_dnat:
        raise ResourceError("spec.preDNAT", "preDNAT and doNotTrack cannot both be true")
    if (spec.do_not_track or spec.pre_dnat) and not spec.apply_on_forward:
        which = "doNotTrack" if spec.do_not_track else "preDNAT"
        raise ResourceError("spec.applyOnForward", f"must be true when {which} is true")
    if spec.pre_dnat and spec.egress:
        raise ResourceError("spec.egress", "preDNAT policies cannot have egress rules")
    types = _default_types(spec.types, spec.ingress, spec.egress)
    if spec.pre_dnat and "Egress" in types:
        raise ResourceError("spec.types", "preDNAT policies cannot have type Egress")
    return replace(spec, types=types)


@dataclass(frozen=True, slots=True)
class ProfileSpec:
    ingress: tuple[Rule, ...] = field("ingress", _RULES, ())
    egress: tuple[Rule, ...] = field("egress", _RULES, ())
    labels_to_apply: dict[str, str] = field("labelsToApply", LABELS, factory=dict)


def finish_profile(spec: ProfileSpec) -> ProfileSpec:
    _check_rules(spec.ingress, spec.egress)
    return spec


def policy_selector(selector: str, namespace: str | None) -> Selector:
    """The selector a policy really applies with (calico.md §5.1): a namespaced
    NetworkPolicy only selects endpoints of its namespace, `(<selector>) &&
    projectcalico.org/namespace == '<ns>'`; a global policy's selector is unchanged."""
    parsed = parse_selector(selector)
    if namespace is None:
        return parsed
    scope = Equals("projectcalico.org/namespace", namespace)
    if isinstance(parsed.root, All):
        return Selector(scope)
    return Selector(And((parsed.root, scope)))
