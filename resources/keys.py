"""Store keys mirroring Calico's etcd layout (calico.md §2.1), under a configurable prefix.

    <prefix>/resources/v3/projectcalico.org/<plural>/[<namespace>/]<name>
    <prefix>/ipam/v2/assignment/ipv4/block/10.0.0.0-26          IPAMBlock
    <prefix>/ipam/v2/host/<node>/ipv4/block/10.0.0.0-26         BlockAffinity
    <prefix>/ipam/v2/handle/<handleID>                          IPAMHandle
    <prefix>/ipam/v2/config                                     IPAMConfig

The default prefix is `/calico`, which makes the keys byte-identical to Calico's. Invariants:
`parse_key(key_for(ref)) == ref` for every valid reference; names and namespaces never contain
`/`, so a key splits unambiguously; a key outside the layout is refused by `parse_key`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from resources.errors import ResourceError
from resources.resource import KINDS_BY_PLURAL, Resource, block_name, kind_info
from resources.schema import IPNetwork

DEFAULT_PREFIX = "/calico"
GROUP = "projectcalico.org"


@dataclass(frozen=True, slots=True)
class KeyRef:
    """What a key names. For IPAM kinds `cidr`/`node` are what the key itself carries."""

    kind: str
    name: str
    namespace: str | None = None
    cidr: IPNetwork | None = None
    node: str | None = None


def _clean_prefix(prefix: str) -> str:
    if not prefix.startswith("/") or (prefix.endswith("/") and prefix != "/"):
        raise ValueError(f"key prefix must start with '/' and not end with '/': {prefix!r}")
    return "" if prefix == "/" else prefix


def _cidr_segment(cidr: IPNetwork) -> str:
    return str(cidr).replace("/", "-")


def _parse_cidr_segment(segment: str, version: str) -> IPNetwork:
    address, _, length = segment.rpartition("-")
    try:
        cidr = ipaddress.ip_network(f"{address}/{length}")
    except ValueError:
        raise ResourceError("key", f"invalid block CIDR {segment!r} in key") from None
    if f"ipv{cidr.version}" != version:
        raise ResourceError("key", f"block {segment!r} is not {version}")
    return cidr


def _segment(text: str, what: str) -> str:
    if not text or "/" in text:
        raise ResourceError("key", f"{what} {text!r} cannot be part of a key")
    return text


def block_key(cidr: IPNetwork, prefix: str = DEFAULT_PREFIX) -> str:
    p = _clean_prefix(prefix)
    return f"{p}/ipam/v2/assignment/ipv{cidr.version}/block/{_cidr_segment(cidr)}"


def affinity_key(node: str, cidr: IPNetwork, prefix: str = DEFAULT_PREFIX) -> str:
    p = _clean_prefix(prefix)
    node = _segment(node, "node name")
    return f"{p}/ipam/v2/host/{node}/ipv{cidr.version}/block/{_cidr_segment(cidr)}"


def handle_key(handle_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{_clean_prefix(prefix)}/ipam/v2/handle/{_segment(handle_id, 'handle id')}"


def ipam_config_key(prefix: str = DEFAULT_PREFIX) -> str:
    return f"{_clean_prefix(prefix)}/ipam/v2/config"


def resource_key(
    kind: str, name: str, namespace: str | None = None, prefix: str = DEFAULT_PREFIX
) -> str:
    """Key of a (non-IPAM) v3 resource."""
    info = kind_info(kind)
    base = f"{_clean_prefix(prefix)}/resources/v3/{GROUP}/{info.plural}"
    if info.namespaced:
        if namespace is None:
            raise ResourceError("metadata.namespace", f"{kind} is namespaced")
        return f"{base}/{_segment(namespace, 'namespace')}/{_segment(name, 'name')}"
    return f"{base}/{_segment(name, 'name')}"


def key_for(ref: KeyRef, prefix: str = DEFAULT_PREFIX) -> str:
    if ref.kind == "IPAMBlock":
        assert ref.cidr is not None
        return block_key(ref.cidr, prefix)
    if ref.kind == "BlockAffinity":
        assert ref.cidr is not None and ref.node is not None
        return affinity_key(ref.node, ref.cidr, prefix)
    if ref.kind == "IPAMHandle":
        return handle_key(ref.name, prefix)
    if ref.kind == "IPAMConfig":
        return ipam_config_key(prefix)
    return resource_key(ref.kind, ref.name, ref.namespace, prefix)


def ref_of(resource: Resource[object]) -> KeyRef:
    cidr = getattr(resource.spec, "cidr", None)
    node = getattr(resource.spec, "node", None)
    ipam_kind = resource.kind in ("IPAMBlock", "BlockAffinity")
    return KeyRef(
        kind=resource.kind,
        name=resource.name,
        namespace=resource.namespace,
        cidr=cidr if ipam_kind else None,
        node=node if resource.kind == "BlockAffinity" else None,
    )


def key_of(resource: Resource[object], prefix: str = DEFAULT_PREFIX) -> str:
    return key_for(ref_of(resource), prefix)


def list_prefix(
    kind: str, namespace: str | None = None, prefix: str = DEFAULT_PREFIX, node: str | None = None
) -> str:
    """Prefix to list/watch every object of `kind` (in `namespace`, or of `node` for
    affinities); it ends with '/' so that `ippools` does not also match `ippoolsx`."""
    p = _clean_prefix(prefix)
    if kind == "IPAMBlock":
        return f"{p}/ipam/v2/assignment/"
    if kind == "BlockAffinity":
        return f"{p}/ipam/v2/host/{_segment(node, 'node name')}/" if node else f"{p}/ipam/v2/host/"
    if kind == "IPAMHandle":
        return f"{p}/ipam/v2/handle/"
    if kind == "IPAMConfig":
        return f"{p}/ipam/v2/config"
    info = kind_info(kind)
    base = f"{p}/resources/v3/{GROUP}/{info.plural}/"
    if namespace is not None and info.namespaced:
        return f"{base}{_segment(namespace, 'namespace')}/"
    return base


def parse_key(key: str, prefix: str = DEFAULT_PREFIX) -> KeyRef:
    """Key → what it names; raises ResourceError (path `key`) for keys outside the layout."""
    p = _clean_prefix(prefix)
    if not key.startswith(p + "/"):
        raise ResourceError("key", f"{key!r} is not under prefix {prefix!r}")
    parts = key[len(p) + 1 :].split("/")
    if parts[:3] == ["resources", "v3", GROUP] and len(parts) in (5, 6):
        info = KINDS_BY_PLURAL.get(parts[3])
        if info is not None and len(parts) == (6 if info.namespaced else 5) and all(parts[4:]):
            if info.namespaced:
                return KeyRef(info.kind, parts[5], parts[4])
            return KeyRef(info.kind, parts[4])
    if parts[:2] == ["ipam", "v2"]:
        rest = parts[2:]
        if len(rest) == 4 and rest[0] == "assignment" and rest[2] == "block":
            cidr = _parse_cidr_segment(rest[3], rest[1])
            return KeyRef("IPAMBlock", block_name(cidr), cidr=cidr)
        if len(rest) == 5 and rest[0] == "host" and rest[1] and rest[3] == "block":
            cidr = _parse_cidr_segment(rest[4], rest[2])
            return KeyRef("BlockAffinity", f"{rest[1]}-{block_name(cidr)}", cidr=cidr, node=rest[1])
        if len(rest) == 2 and rest[0] == "handle" and rest[1]:
            return KeyRef("IPAMHandle", rest[1])
        if rest == ["config"]:
            return KeyRef("IPAMConfig", "default")
    raise ResourceError("key", f"{key!r} is not a Calico resource or IPAM key")
