"""Manifests: YAML or JSON text holding one or many v3 documents, parsed all-or-nothing.

calicoctl accepts multi-document YAML, a JSON object, a JSON/YAML list of objects and
`kind: List`-style objects with `items`; so does this module. Every document is validated
before any is returned, so a caller never applies half a batch (issue 7, tabbyctl). Errors
say which document (0-based index, kind and name when known) and which field. Invariants: the
text is at most `MAX_MANIFEST_BYTES`; timestamps stay strings (PyYAML's safe loader would turn
them into datetimes); YAML aliases are refused, so the input cannot expand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import yaml

from resources.errors import ResourceError
from resources.resource import KINDS, Resource, parse_resource

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_DOCUMENTS = 10_000


class ManifestError(ResourceError):
    """A manifest is invalid; `document` is the 0-based index of the bad document, or None
    when the text as a whole is (too large, not YAML)."""

    def __init__(self, document: int | None, where: str, error: ResourceError) -> None:
        self.document = document
        self.where = where
        super().__init__(error.path, error.reason)
        prefix = "manifest" if document is None else f"document {document}{where}"
        self.args = (f"{prefix}: {error}",)

    def __str__(self) -> str:
        return str(self.args[0])


class _Loader(yaml.SafeLoader):
    """Safe loader that keeps `2026-11-30T12:00:00Z` as text, as Kubernetes does, and refuses
    aliases: a few nested aliases expand exponentially ("billion laughs")."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not supported", event.start_mark
            )
        return super().compose_node(parent, index)  # type: ignore[arg-type]


_Loader.yaml_implicit_resolvers = {
    key: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_documents(text: str | bytes) -> list[Mapping[str, object]]:
    """Split a manifest into document mappings (no validation of their content yet)."""
    if len(text) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            None, "", ResourceError("", f"manifest larger than {MAX_MANIFEST_BYTES} bytes")
        )
    try:
        raw = [doc for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError(
            None, "", ResourceError("", f"not valid YAML or JSON{where}: {problem}")
        ) from None
    out: list[Mapping[str, object]] = []
    for doc in raw:
        _flatten(doc, out)
    return out


def _flatten(doc: object, out: list[Mapping[str, object]]) -> None:
    if len(out) > MAX_DOCUMENTS:
        raise ManifestError(len(out), "", ResourceError("", f"more than {MAX_DOCUMENTS} documents"))
    if (
        isinstance(doc, Mapping)
        and isinstance(doc.get("kind"), str)
        and str(doc.get("kind")).endswith("List")
    ):
        items = doc.get("items")
        if not isinstance(items, Sequence) or isinstance(items, str):
            raise ManifestError(
                len(out), f" ({doc.get('kind')})", ResourceError("items", "must be a list")
            )
        for item in items:
            _flatten(item, out)
        return
    if isinstance(doc, Sequence) and not isinstance(doc, (str, bytes)):
        for item in doc:
            _flatten(item, out)
        return
    if not isinstance(doc, Mapping):
        raise ManifestError(len(out), "", ResourceError("", "a document must be a mapping"))
    out.append(doc)


def _describe(doc: Mapping[str, object]) -> str:
    kind = doc.get("kind")
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    if isinstance(kind, str) and isinstance(name, str):
        return f" ({kind} {name})"
    return f" ({kind})" if isinstance(kind, str) else ""


def parse_manifest(text: str | bytes, namespace: str | None = None) -> list[Resource[object]]:
    """Parse and validate every document; raise on the first bad one, returning nothing.

    `namespace` (tabbyctl `--namespace`) fills in namespaced documents that have none.
    """
    docs = load_documents(text)
    resources: list[Resource[object]] = []
    for index, doc in enumerate(docs):
        if namespace is not None:
            meta = doc.get("metadata")
            if isinstance(meta, Mapping) and "namespace" not in meta:
                info = KINDS.get(str(doc.get("kind")))
                if info is not None and info.namespaced:
                    doc = {**doc, "metadata": {**meta, "namespace": namespace}}
        try:
            resources.append(parse_resource(doc))
        except ResourceError as err:
            raise ManifestError(index, _describe(doc), err) from None
    return resources


def dump_yaml(documents: Sequence[Mapping[str, object]]) -> str:
    """calicoctl-style YAML: one document for one object, `kind: List` style for several."""
    plain = [dict(doc) for doc in documents]
    if len(plain) == 1:
        return yaml.safe_dump(plain[0], sort_keys=False, default_flow_style=False)
    return yaml.safe_dump(
        {"apiVersion": "projectcalico.org/v3", "kind": "List", "items": plain},
        sort_keys=False,
        default_flow_style=False,
    )
