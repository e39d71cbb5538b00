"""`tabbyctl apply|create|replace|delete|get|patch`: Calico v3 resources in the store.

Manifests are YAML or JSON, one or many documents per file, `-` for stdin. Every document
is parsed and validated before anything is written, and a batch is written as one store
transaction (compares on each key's version or mod_revision, then the puts), so a batch is
applied whole or not at all. A batch larger than one transaction allows is split, and the
command says so. Errors name the document, the field and the reason.

Concurrency follows Calico: resourceVersion is the store's mod_revision; `create` requires
the key to be absent, `replace` and `delete` with a resourceVersion require it unchanged;
`apply` creates or updates whatever is there (retrying when someone else wrote in between).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from resources.errors import ResourceError, SelectorError
from resources.keys import DEFAULT_PREFIX, key_of, list_prefix
from resources.manifest import MAX_MANIFEST_BYTES, dump_yaml, load_documents
from resources.resource import KINDS, Resource, kind_info, parse_resource, validate_update
from resources.selector import matches
from resources.values import decode_value, encode_value
from store.client import StoreClient, prefix_end
from store.kv import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    PutRequest,
)
from store.kv.messages import RequestOp

DEFAULT_STORE = "unix:/run/tabby/store.sock"
OPS_PER_TXN = 64  # documents per transaction: one compare and one put each, under etcd's 128

Mode = Literal["apply", "create", "replace", "delete"]


class CommandError(Exception):
    """A user-facing failure; the message is printed as is and the exit code is 1."""


@dataclass(frozen=True, slots=True)
class Document:
    where: str  # "file.yaml document 3"
    resource: Resource[object]
    key: str


# --- reading manifests ---------------------------------------------------------------------


def _read(path: str) -> str:
    if path == "-":
        data = sys.stdin.read(MAX_MANIFEST_BYTES + 1)
    else:
        p = Path(path)
        if not p.exists():
            raise CommandError(f"{path}: no such file")
        if p.stat().st_size > MAX_MANIFEST_BYTES:
            raise CommandError(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes")
        data = p.read_text()
    if len(data) > MAX_MANIFEST_BYTES:
        raise CommandError(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes")
    return data


def parse_manifests(paths: Sequence[str], prefix: str = DEFAULT_PREFIX) -> list[Document]:
    """Every document of every file, validated; raises CommandError listing all problems."""
    docs: list[Document] = []
    problems: list[str] = []
    for path in paths:
        name = "stdin" if path == "-" else path
        try:
            raw = load_documents(_read(path))
        except ResourceError as exc:
            raise CommandError(f"{name}: {exc}") from None
        for i, doc in enumerate(raw, 1):
            meta = doc.get("metadata")
            label = (
                f"{doc.get('kind', '?')} {meta.get('name', '?') if isinstance(meta, dict) else '?'}"
            )
            where = f"{name} document {i} ({label})"
            try:
                resource = parse_resource(doc)
                docs.append(Document(where, resource, key_of(resource, prefix)))
            except ResourceError as exc:
                problems.append(f"{where}: {exc}")
    if problems:
        raise CommandError("nothing was changed:\n  " + "\n  ".join(problems))
    seen: dict[str, str] = {}
    for d in docs:
        if d.key in seen:
            raise CommandError(
                f"nothing was changed: {d.where} names the same object as {seen[d.key]}"
            )
        seen[d.key] = d.where
    return docs


# --- writing -----------------------------------------------------------------------------


def _chunks(docs: Sequence[Document]) -> Iterable[Sequence[Document]]:
    for i in range(0, len(docs), OPS_PER_TXN):
        yield docs[i : i + OPS_PER_TXN]


async def _current(
    client: StoreClient, docs: Sequence[Document], prefix: str
) -> dict[str, tuple[Resource[object], int]]:
    """The stored version of each document's object: key -> (resource, mod_revision)."""
    out: dict[str, tuple[Resource[object], int]] = {}
    for d in docs:
        resp = await client.range(d.key.encode())
        for kv in resp.kvs:
            out[d.key] = (decode_value(d.key, kv.value, kv.mod_revision, prefix), kv.mod_revision)
    return out


def _expected_revision(d: Document) -> int | None:
    rv = d.resource.metadata.resource_version
    if rv is None:
        return None
    if not rv.isdigit():
        raise CommandError(f"{d.where}: metadata.resourceVersion: must be a number, got {rv!r}")
    return int(rv)


async def write_batch(
    client: StoreClient, docs: Sequence[Document], mode: Mode, prefix: str
) -> list[str]:
    """Write one transaction's worth of documents; returns a line per document."""
    for attempt in range(5):
        current = await _current(client, docs, prefix)
        compares: list[Compare] = []
        ops: list[RequestOp] = []
        lines: list[str] = []
        for d in docs:
            stored = current.get(d.key)
            want = _expected_revision(d)
            kind_name = f"{d.resource.kind} {d.resource.name}"
            if mode == "create" and stored is not None:
                raise CommandError(f"{d.where}: {kind_name} already exists (nothing was changed)")
            if mode in ("replace", "delete") and stored is None:
                raise CommandError(f"{d.where}: {kind_name} does not exist (nothing was changed)")
            if want is not None and stored is not None and want != stored[1]:
                raise CommandError(
                    f"{d.where}: conflict: {kind_name} is at resourceVersion {stored[1]}, "
                    f"the manifest says {want} (nothing was changed)"
                )
            if stored is not None and mode != "delete":
                try:
                    validate_update(stored[0], d.resource)
                except ResourceError as exc:
                    raise CommandError(f"{d.where}: {exc} (nothing was changed)") from None
            key = d.key.encode()
            if stored is None:
                compares.append(Compare(key, CompareTarget.VERSION, CompareResult.EQUAL, 0))
            else:
                compares.append(Compare(key, CompareTarget.MOD, CompareResult.EQUAL, stored[1]))
            if mode == "delete":
                ops.append(DeleteRangeRequest(key))
                lines.append(f"{kind_name} deleted")
            else:
                ops.append(PutRequest(key, encode_value(d.resource)))
                verb = (
                    "created"
                    if stored is None
                    else ("configured" if mode == "apply" else "replaced")
                )
                lines.append(f"{kind_name} {verb}")
        resp = await client.txn(compares, ops)
        if resp.succeeded:
            return lines
        if mode != "apply" or attempt == 4:
            raise CommandError(
                "conflict: another writer changed these objects meanwhile (nothing was changed)"
            )
    raise CommandError("conflict: gave up after repeated concurrent changes")


async def run_write(endpoints: Sequence[str], paths: Sequence[str], mode: Mode, prefix: str) -> int:
    docs = parse_manifests(paths, prefix)
    if not docs:
        raise CommandError("no resources in the given files")
    chunks = list(_chunks(docs))
    if len(chunks) > 1:
        print(
            f"note: {len(docs)} documents are written in {len(chunks)} transactions",
            file=sys.stderr,
        )
    async with StoreClient(list(endpoints)) as client:
        for chunk in chunks:
            for line in await write_batch(client, chunk, mode, prefix):
                print(line)
    return 0


# --- reading -----------------------------------------------------------------------------

_KIND_ALIASES = {info.plural: k for k, info in KINDS.items()} | {k.lower(): k for k in KINDS}
_KIND_ALIASES |= {
    "pool": "IPPool",
    "pools": "IPPool",
    "node": "Node",
    "peer": "BGPPeer",
    "peers": "BGPPeer",
}


def resolve_kind(text: str) -> str:
    kind = _KIND_ALIASES.get(text.lower()) or _KIND_ALIASES.get(text.lower().rstrip("s"))
    if kind is None:
        raise CommandError(f"unknown resource kind {text!r}; known: {', '.join(sorted(KINDS))}")
    return kind


async def list_resources(
    client: StoreClient, kind: str, namespace: str | None, prefix: str
) -> list[Resource[object]]:
    start = list_prefix(kind, namespace, prefix).encode()
    resp = await client.range(start, prefix_end(start))
    out: list[Resource[object]] = []
    for kv in resp.kvs:
        key = kv.key.decode()
        try:
            r = decode_value(key, kv.value, kv.mod_revision, prefix)
        except ResourceError as exc:
            print(f"warning: skipping {key}: {exc}", file=sys.stderr)
            continue
        if r.kind == kind:
            out.append(r)
    return out


def _wide_columns(r: Resource[object]) -> list[str]:
    spec: Any = r.spec
    if r.kind == "IPPool":
        return [str(spec.cidr), spec.ipip_mode, spec.vxlan_mode, str(spec.nat_outgoing).lower()]
    if r.kind == "Node":
        bgp = spec.bgp
        return [
            str(bgp.ipv4_address) if bgp and bgp.ipv4_address else "",
            str(bgp.as_number or "") if bgp else "",
        ]
    if r.kind == "BGPPeer":
        return [
            spec.peer_ip or spec.peer_selector or "",
            str(spec.as_number or ""),
            spec.node or spec.node_selector or "(global)",
        ]
    return []


async def run_get(args: argparse.Namespace) -> int:
    kind = resolve_kind(args.kind)
    info = kind_info(kind)
    namespace = args.namespace if info.namespaced else None
    async with StoreClient(list(args.store)) as client:
        items = await list_resources(client, kind, namespace, args.prefix)
    if args.name:
        items = [r for r in items if r.name == args.name]
        if not items:
            raise CommandError(f"{kind} {args.name!r} not found")
    if args.selector:
        try:
            items = [r for r in items if matches(args.selector, r.labels)]
        except SelectorError as exc:
            raise CommandError(f"-l: {exc}") from None
    docs = [r.to_dict() for r in items]
    if args.output == "json":
        body: object = (
            docs[0]
            if args.name
            else {"apiVersion": "projectcalico.org/v3", "kind": f"{kind}List", "items": docs}
        )
        print(json.dumps(body, indent=2))
    elif args.output == "yaml":
        print(dump_yaml(docs) if docs else "", end="")
    else:
        rows = [
            [
                r.name,
                *([r.namespace or ""] if info.namespaced else []),
                *(_wide_columns(r) if args.output == "wide" else []),
            ]
            for r in items
        ]
        head = ["NAME", *(["NAMESPACE"] if info.namespaced else [])]
        if args.output == "wide":
            head += {
                "IPPool": ["CIDR", "IPIP", "VXLAN", "NAT"],
                "Node": ["IPV4", "ASN"],
                "BGPPeer": ["PEER", "ASN", "NODE"],
            }.get(kind, [])
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=False)]
        for row in [head, *rows]:
            print("   ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
    return 0


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = _merge(out.get(k), v)
    return out


async def run_patch(args: argparse.Namespace) -> int:
    kind = resolve_kind(args.kind)
    try:
        patch = json.loads(args.patch)
    except ValueError as exc:
        raise CommandError(f"-p: not JSON: {exc}") from None
    async with StoreClient(list(args.store)) as client:
        items = [
            r
            for r in await list_resources(
                client, kind, args.namespace if kind_info(kind).namespaced else None, args.prefix
            )
            if r.name == args.name
        ]
        if not items:
            raise CommandError(f"{kind} {args.name!r} not found")
        doc = _merge(items[0].to_dict(), patch)
        try:
            resource = parse_resource(doc)
        except ResourceError as exc:
            raise CommandError(f"patched {kind} {args.name}: {exc} (nothing was changed)") from None
        d = Document(f"patch of {kind} {args.name}", resource, key_of(resource, args.prefix))
        for line in await write_batch(client, [d], "replace", args.prefix):
            print(line.replace("replaced", "patched"))
    return 0


# --- the command group -------------------------------------------------------------------


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        action="append",
        default=None,
        metavar="ENDPOINT",
        help=f"store endpoint (default {DEFAULT_STORE}; repeat for failover)",
    )
    p.add_argument("--prefix", default=DEFAULT_PREFIX, help="key prefix in the store")


def _run(coro_fn: Any) -> Any:
    def handler(args: argparse.Namespace) -> int:
        if getattr(args, "store", None) is None:
            args.store = [DEFAULT_STORE]
        try:
            return int(asyncio.run(coro_fn(args)))
        except CommandError as exc:
            print(f"tabbyctl: {exc}", file=sys.stderr)
            return 1
        except Exception as exc:  # store unreachable, etc.: one clear line, no traceback
            print(f"tabbyctl: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1

    return handler


def register(sub: Any) -> None:
    for mode, help_text in (
        ("apply", "create or update resources from manifests"),
        ("create", "create resources; fails if any exists"),
        ("replace", "replace existing resources; fails if any is missing"),
        ("delete", "delete resources named in manifests, or KIND NAME"),
    ):
        p = sub.add_parser(mode, help=help_text)
        p.add_argument(
            "-f", "--filename", action="append", default=[], help="YAML/JSON file, - for stdin"
        )
        if mode == "delete":
            p.add_argument("kind", nargs="?")
            p.add_argument("name", nargs="?")
            p.add_argument("-n", "--namespace", default="default")
        _common(p)
        p.set_defaults(func=_run(_write_command(mode)))  # type: ignore[arg-type]
    g = sub.add_parser("get", help="show resources")
    g.add_argument("kind")
    g.add_argument("name", nargs="?")
    g.add_argument("-o", "--output", choices=["ps", "wide", "yaml", "json"], default="ps")
    g.add_argument("-l", "--selector", default="")
    g.add_argument("-n", "--namespace", default=None)
    _common(g)
    g.set_defaults(func=_run(run_get))
    pt = sub.add_parser("patch", help="JSON merge patch of one resource")
    pt.add_argument("kind")
    pt.add_argument("name")
    pt.add_argument("-p", "--patch", required=True)
    pt.add_argument("-n", "--namespace", default="default")
    _common(pt)
    pt.set_defaults(func=_run(run_patch))


def _write_command(mode: Mode) -> Any:
    async def command(args: argparse.Namespace) -> int:
        if mode == "delete" and args.kind and not args.filename:
            kind = resolve_kind(args.kind)
            if not args.name:
                raise CommandError("delete KIND NAME needs a name")
            async with StoreClient(list(args.store)) as client:
                items = [
                    r
                    for r in await list_resources(
                        client,
                        kind,
                        args.namespace if kind_info(kind).namespaced else None,
                        args.prefix,
                    )
                    if r.name == args.name
                ]
                if not items:
                    raise CommandError(f"{kind} {args.name!r} not found")
                d = Document(
                    f"{kind} {args.name}",
                    items[0].with_resource_version(None),
                    key_of(items[0], args.prefix),
                )
                for line in await write_batch(client, [d], "delete", args.prefix):
                    print(line)
            return 0
        if not args.filename:
            raise CommandError(f"{mode} needs -f FILE (or - for stdin)")
        return await run_write(args.store, args.filename, mode, args.prefix)

    return command
