"""Store values: the JSON a resource is kept as, and the way back (calico.md §2.1).

A v3 resource is stored as the JSON of its document without `metadata.resourceVersion`; on
read the store's `mod_revision` becomes the resourceVersion (Calico: "resourceVersion = etcd
mod_revision as a decimal string"). IPAM objects are stored the way Calico's IPAM stores them:
the block, `{"state", "deleted"}` for an affinity, `{"block", "deleted"}` for a handle and
`{"strict_affinity", "auto_allocate_blocks", "maxBlocksPerHost"}` for the config, with the
name, node and CIDR carried by the key. Invariant: `decode_value(key_of(r), encode_value(r),
rev) == r.with_resource_version(rev)`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from resources.errors import ResourceError
from resources.ipam import BlockAffinitySpec, IPAMConfigSpec, IPAMHandleSpec
from resources.keys import DEFAULT_PREFIX, parse_key
from resources.resource import API_VERSION, Resource, parse_resource, typed
from resources.schema import Json, JsonObject, encode_struct

MAX_VALUE_BYTES = 1_572_864  # etcd's default request limit (1.5 MiB)

# etcd JSON name of IPAMConfig fields ↔ v3 spec name (Calico's model uses snake case here).
_IPAM_CONFIG_NAMES = {
    "strict_affinity": "strictAffinity",
    "auto_allocate_blocks": "autoAllocateBlocks",
    "maxBlocksPerHost": "maxBlocksPerHost",
}


def _ipam_value(resource: Resource[object]) -> JsonObject:
    if resource.kind == "IPAMBlock":
        return encode_struct(resource.spec)
    if resource.kind == "BlockAffinity":
        affinity = typed(resource, BlockAffinitySpec).spec
        return {"state": affinity.state, "deleted": affinity.deleted}
    if resource.kind == "IPAMHandle":
        handle = typed(resource, IPAMHandleSpec).spec
        blocks: dict[str, Json] = dict(handle.block)
        return {"block": blocks, "deleted": handle.deleted}
    config = typed(resource, IPAMConfigSpec).spec
    return {
        "strict_affinity": config.strict_affinity,
        "auto_allocate_blocks": config.auto_allocate_blocks,
        "maxBlocksPerHost": config.max_blocks_per_host,
    }


def value_document(resource: Resource[object]) -> JsonObject:
    """The JSON object stored for `resource` (no resourceVersion)."""
    if resource.kind in ("IPAMBlock", "BlockAffinity", "IPAMHandle", "IPAMConfig"):
        return _ipam_value(resource)
    return resource.with_resource_version(None).to_dict()


def encode_value(resource: Resource[object]) -> bytes:
    return json.dumps(value_document(resource), separators=(",", ":"), allow_nan=False).encode()


def decode_value(
    key: str, value: bytes | str, mod_revision: int, prefix: str = DEFAULT_PREFIX
) -> Resource[object]:
    """Key and stored value → the resource, with resourceVersion = `mod_revision`."""
    if len(value) > MAX_VALUE_BYTES:
        raise ResourceError("value", f"stored value larger than {MAX_VALUE_BYTES} bytes")
    ref = parse_key(key, prefix)
    try:
        loaded = json.loads(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResourceError("value", f"not JSON: {exc}") from None
    if not isinstance(loaded, Mapping):
        raise ResourceError("value", "must be a JSON object")
    if ref.kind in ("IPAMBlock", "BlockAffinity", "IPAMHandle", "IPAMConfig"):
        spec: dict[str, object]
        if ref.kind == "IPAMBlock":
            spec = dict(loaded)
        elif ref.kind == "BlockAffinity":
            spec = {**loaded, "node": ref.node, "cidr": str(ref.cidr)}
        elif ref.kind == "IPAMHandle":
            spec = {**loaded, "handleID": ref.name}
        else:
            spec = {}
            for stored, name in _IPAM_CONFIG_NAMES.items():
                if stored in loaded:
                    spec[name] = loaded[stored]
            for extra in set(loaded) - set(_IPAM_CONFIG_NAMES):
                raise ResourceError(f"spec.{extra}", "unknown field (not supported by Tabby)")
        doc: Mapping[str, object] = {
            "apiVersion": API_VERSION,
            "kind": ref.kind,
            "metadata": {"name": ref.name},
            "spec": spec,
        }
    else:
        doc = loaded
    resource = parse_resource(doc)
    if (resource.kind, resource.name, resource.namespace) != (ref.kind, ref.name, ref.namespace):
        raise ResourceError(
            "metadata.name",
            f"value names {resource.kind} {resource.namespace or ''}/{resource.name}, "
            f"but the key is {key!r}",
        )
    return resource.with_resource_version(mod_revision)
