"""The resource envelope (apiVersion, kind, metadata, spec, status) and the table of kinds.

`parse_resource(doc)` turns one YAML/JSON-shaped mapping into a `Resource`, applying Calico's
defaults and validation; `resource.to_dict()` is its inverse (defaults included, so
`parse_resource(r.to_dict()) == r`). `validate_update(old, new)` holds the rules that only
make sense between two versions (immutable fields). Every refusal is a `ResourceError` whose
path names the document field, e.g. `spec.ipipMode: must be one of Always, CrossSubnet, Never`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Generic, TypeVar, cast

from resources import bgp, endpoints, felix, ipam, ippool, node, policy
from resources.errors import ResourceError
from resources.schema import (
    LABELS,
    NONEMPTY,
    STRING_MAP,
    TIMESTAMP,
    IPNetwork,
    JsonObject,
    checked,
    decode_struct,
    dns1123_label,
    dns1123_subdomain,
    encode_struct,
    field,
    opt,
    policy_name,
    relaxed_name,
)

API_VERSION = "projectcalico.org/v3"
DEFAULT_NAMESPACE = "default"

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class ObjectMeta:
    name: str = field("name", NONEMPTY, required=True)
    namespace: str | None = opt("namespace", checked(dns1123_label))
    labels: dict[str, str] = field("labels", LABELS, factory=dict)
    annotations: dict[str, str] = field("annotations", STRING_MAP, factory=dict)
    resource_version: str | None = opt("resourceVersion", NONEMPTY)
    uid: str | None = opt("uid", NONEMPTY)
    creation_timestamp: str | None = opt("creationTimestamp", TIMESTAMP)


@dataclass(frozen=True, slots=True)
class Resource(Generic[S]):
    kind: str
    metadata: ObjectMeta
    spec: S
    status: node.NodeStatus | None = None

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str | None:
        return self.metadata.namespace

    @property
    def labels(self) -> dict[str, str]:
        return self.metadata.labels

    def to_dict(self) -> JsonObject:
        out: JsonObject = {
            "apiVersion": API_VERSION,
            "kind": self.kind,
            "metadata": encode_struct(self.metadata),
            "spec": encode_struct(self.spec),
        }
        if self.status is not None:
            out["status"] = encode_struct(self.status)
        return out

    def with_resource_version(self, revision: int | str | None) -> Resource[S]:
        """The resourceVersion is the store's mod_revision; None clears it (for writing)."""
        version = None if revision is None else str(revision)
        return replace(self, metadata=replace(self.metadata, resource_version=version))


# --- the table of kinds ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KindInfo:
    kind: str
    plural: str
    namespaced: bool
    spec_type: type[object]
    finish: Callable[[object, str], object]
    name_check: Callable[[str], str | None]
    has_status: bool = False


def _kind(
    kind: str,
    plural: str,
    spec_type: type[S],
    finish: Callable[[S, str], S] | None = None,
    *,
    namespaced: bool = False,
    name_check: Callable[[str], str | None] = dns1123_subdomain,
    has_status: bool = False,
) -> KindInfo:
    def no_finish(spec: S, name: str) -> S:
        return spec

    return KindInfo(
        kind=kind,
        plural=plural,
        namespaced=namespaced,
        spec_type=cast(type[object], spec_type),
        finish=cast(Callable[[object, str], object], finish or no_finish),
        name_check=name_check,
        has_status=has_status,
    )


def block_name(cidr: IPNetwork) -> str:
    """Calico's object name for a block CIDR: `10.0.0.0/26` → `10-0-0-0-26`."""
    return str(cidr).replace(".", "-").replace(":", "-").replace("/", "-")


def _check_block_name(spec: ipam.IPAMBlockSpec, name: str) -> ipam.IPAMBlockSpec:
    spec = ipam.finish_ipam_block(spec)
    if name != block_name(spec.cidr):
        raise ResourceError("metadata.name", f"must be {block_name(spec.cidr)!r} for {spec.cidr}")
    return spec


def _check_affinity_name(spec: ipam.BlockAffinitySpec, name: str) -> ipam.BlockAffinitySpec:
    expected = f"{spec.node}-{block_name(spec.cidr)}"
    if name != expected:
        raise ResourceError("metadata.name", f"must be {expected!r} (<node>-<block>)")
    return spec


def _check_handle_name(spec: ipam.IPAMHandleSpec, name: str) -> ipam.IPAMHandleSpec:
    spec = ipam.finish_ipam_handle(spec)
    if name != spec.handle_id:
        raise ResourceError("metadata.name", f"must equal spec.handleID {spec.handle_id!r}")
    return spec


def _check_ipam_config_name(spec: ipam.IPAMConfigSpec, name: str) -> ipam.IPAMConfigSpec:
    if name != "default":
        raise ResourceError("metadata.name", "the IPAMConfig singleton must be named 'default'")
    return ipam.finish_ipam_config(spec)


def _ignore_name(fn: Callable[[S], S]) -> Callable[[S, str], S]:
    def finish(spec: S, name: str) -> S:
        return fn(spec)

    return finish


KINDS: dict[str, KindInfo] = {
    info.kind: info
    for info in (
        _kind("IPPool", "ippools", ippool.IPPoolSpec, _ignore_name(ippool.finish_ippool)),
        _kind(
            "BGPConfiguration",
            "bgpconfigurations",
            bgp.BGPConfigurationSpec,
            bgp.finish_bgp_configuration,
        ),
        _kind("BGPPeer", "bgppeers", bgp.BGPPeerSpec, _ignore_name(bgp.finish_bgp_peer)),
        _kind("Node", "nodes", node.NodeSpec, _ignore_name(node.finish_node), has_status=True),
        _kind(
            "FelixConfiguration",
            "felixconfigurations",
            felix.FelixConfigurationSpec,
            _ignore_name(felix.finish_felix_configuration),
        ),
        _kind(
            "NetworkPolicy",
            "networkpolicies",
            policy.NetworkPolicySpec,
            _ignore_name(policy.finish_network_policy),
            namespaced=True,
            name_check=policy_name,
        ),
        _kind(
            "GlobalNetworkPolicy",
            "globalnetworkpolicies",
            policy.GlobalNetworkPolicySpec,
            _ignore_name(policy.finish_global_network_policy),
            name_check=policy_name,
        ),
        _kind("NetworkSet", "networksets", endpoints.NetworkSetSpec, namespaced=True),
        _kind("GlobalNetworkSet", "globalnetworksets", endpoints.GlobalNetworkSetSpec),
        _kind(
            "HostEndpoint",
            "hostendpoints",
            endpoints.HostEndpointSpec,
            _ignore_name(endpoints.finish_host_endpoint),
        ),
        _kind(
            "WorkloadEndpoint",
            "workloadendpoints",
            endpoints.WorkloadEndpointSpec,
            _ignore_name(endpoints.finish_workload_endpoint),
            namespaced=True,
        ),
        _kind(
            "Profile",
            "profiles",
            policy.ProfileSpec,
            _ignore_name(policy.finish_profile),
            name_check=relaxed_name,
        ),
        _kind("IPAMBlock", "ipamblocks", ipam.IPAMBlockSpec, _check_block_name),
        _kind("BlockAffinity", "blockaffinities", ipam.BlockAffinitySpec, _check_affinity_name),
        _kind(
            "IPAMHandle",
            "ipamhandles",
            ipam.IPAMHandleSpec,
            _check_handle_name,
            name_check=relaxed_name,
        ),
        _kind("IPAMConfig", "ipamconfigs", ipam.IPAMConfigSpec, _check_ipam_config_name),
    )
}

KINDS_BY_PLURAL: dict[str, KindInfo] = {info.plural: info for info in KINDS.values()}
IPAM_KINDS = frozenset({"IPAMBlock", "BlockAffinity", "IPAMHandle", "IPAMConfig"})
_NO_NAMESPACE_LABEL = frozenset({"NetworkSet", "GlobalNetworkSet"})
_ENVELOPE = {"apiVersion", "kind", "metadata", "spec", "status"}


def kind_info(kind: str) -> KindInfo:
    try:
        return KINDS[kind]
    except KeyError:
        raise ResourceError(
            "kind", f"unknown kind {kind!r}; supported: {', '.join(sorted(KINDS))}"
        ) from None


def parse_resource(doc: Mapping[str, object]) -> Resource[object]:
    """One v3 document → a validated Resource with Calico's defaults applied.

    A namespaced kind without `metadata.namespace` gets `default` (as calicoctl does).
    """
    if not isinstance(doc, Mapping):
        raise ResourceError("", "a resource must be a mapping")
    for key in doc:
        if key not in _ENVELOPE:
            raise ResourceError(str(key), "unknown field (not supported by Tabby)")
    if doc.get("apiVersion") != API_VERSION:
        raise ResourceError("apiVersion", f"must be {API_VERSION}")
    kind = doc.get("kind")
    if not isinstance(kind, str):
        raise ResourceError("kind", "is required")
    info = kind_info(kind)
    metadata = decode_struct(ObjectMeta, doc.get("metadata"), "metadata")
    if problem := info.name_check(metadata.name):
        raise ResourceError("metadata.name", problem)
    if kind in _NO_NAMESPACE_LABEL and endpoints.LABEL_NAMESPACE in metadata.labels:
        # Calico maps the real namespace through this label; a network set may not fake it.
        raise ResourceError(
            f"metadata.labels.{endpoints.LABEL_NAMESPACE}", "is reserved and cannot be set"
        )
    if info.namespaced and metadata.namespace is None:
        metadata = replace(metadata, namespace=DEFAULT_NAMESPACE)
    if not info.namespaced and metadata.namespace is not None:
        raise ResourceError("metadata.namespace", f"{kind} is not namespaced")
    raw_spec = doc.get("spec")
    spec = info.finish(
        decode_struct(info.spec_type, {} if raw_spec is None else raw_spec, "spec"), metadata.name
    )
    status: node.NodeStatus | None = None
    if doc.get("status") is not None:
        if not info.has_status:
            raise ResourceError("status", f"{kind} has no status")
        status = decode_struct(node.NodeStatus, doc.get("status"), "status")
    return Resource(kind=kind, metadata=metadata, spec=spec, status=status)


def build_resource(
    kind: str,
    name: str,
    spec: S,
    *,
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
    status: node.NodeStatus | None = None,
) -> Resource[S]:
    """Make a resource in code (CNI writing a WorkloadEndpoint, felixd a Node status) and run
    it through the same defaults and validation as a document, so no invalid object is built."""
    draft: Resource[S] = Resource(
        kind=kind,
        metadata=ObjectMeta(name=name, namespace=namespace, labels=dict(labels or {})),
        spec=spec,
        status=status,
    )
    parsed = parse_resource(draft.to_dict())
    return typed(parsed, type(spec))


def typed(resource: Resource[object], spec_type: type[S]) -> Resource[S]:
    """Narrow a parsed resource to its spec type (raises TypeError on the wrong kind)."""
    if not isinstance(resource.spec, spec_type):
        raise TypeError(f"{resource.kind} spec is not a {spec_type.__name__}")
    return cast(Resource[S], resource)


# --- updates ---------------------------------------------------------------------------------

# (kind, document path, attribute of the spec) that may not change once created.
IMMUTABLE_SPEC_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("IPPool", "spec.cidr", "cidr"),
    ("IPPool", "spec.blockSize", "block_size"),
    ("IPAMBlock", "spec.cidr", "cidr"),
    ("BlockAffinity", "spec.cidr", "cidr"),
    ("BlockAffinity", "spec.node", "node"),
    ("IPAMHandle", "spec.handleID", "handle_id"),
    ("WorkloadEndpoint", "spec.node", "node"),
    ("WorkloadEndpoint", "spec.orchestrator", "orchestrator"),
    ("HostEndpoint", "spec.node", "node"),
)


def validate_update(old: Resource[object], new: Resource[object]) -> None:
    """Rules between two versions of one object: identity and immutable fields."""
    if old.kind != new.kind:
        raise ResourceError("kind", f"cannot change from {old.kind} to {new.kind}")
    for path, attr in (("metadata.name", "name"), ("metadata.namespace", "namespace")):
        if getattr(old.metadata, attr) != getattr(new.metadata, attr):
            raise ResourceError(path, "is immutable")
    for path, attr in (
        ("metadata.uid", "uid"),
        ("metadata.creationTimestamp", "creation_timestamp"),
    ):
        before = getattr(old.metadata, attr)
        after = getattr(new.metadata, attr)
        if before is not None and after is not None and before != after:
            raise ResourceError(path, "is immutable")
    for kind, path, attr in IMMUTABLE_SPEC_FIELDS:
        if kind == old.kind and getattr(old.spec, attr) != getattr(new.spec, attr):
            raise ResourceError(
                path,
                f"is immutable (was {getattr(old.spec, attr)}, now {getattr(new.spec, attr)})",
            )
