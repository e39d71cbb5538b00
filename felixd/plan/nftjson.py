"""nftables tables as libnftables JSON (`nft -j -f -`), for the nftables backend.

The JSON schema is nftables' own (libnftables-json(5)): a document `{"nftables": [...]}` of
commands. A table is replaced atomically with the usual idiom `add table; delete table; add
table ...` in one document, which nft runs as one transaction: the first `add` makes the delete
safe when the table is absent, and nobody ever sees a half-built table.

Invariants: only the expressions and statements Tabby's planner emits are translated (tables
below); anything else raises ValueError, so an unsupported rule is caught by the tests and never
reaches the kernel half-translated.
"""

from __future__ import annotations

from felixd.plan.addresses import parse_network
from felixd.plan.model import NftChain, NftMatch, NftRule, NftSet, NftTable

JSON = dict[str, "JSON"] | list["JSON"] | str | int | bool | None

# Left-hand sides of matches: `ip saddr` is a payload expression, `oifname` a meta one.
_PAYLOADS = {
    "ip saddr": ("ip", "saddr"),
    "ip daddr": ("ip", "daddr"),
    "ip6 saddr": ("ip6", "saddr"),
    "ip6 daddr": ("ip6", "daddr"),
}
_META = frozenset({"iifname", "oifname", "mark"})
_VERDICTS = frozenset({"accept", "drop", "return", "masquerade"})
_OPS = frozenset({"==", "!="})


def _left(text: str) -> JSON:
    if text in _PAYLOADS:
        protocol, fld = _PAYLOADS[text]
        return {"payload": {"protocol": protocol, "field": fld}}
    if text in _META:
        return {"meta": {"key": text}}
    raise ValueError(f"nft expression {text!r} has no JSON translation")


def _right(text: str) -> JSON:
    if text.startswith("@"):
        return text  # a named set
    net = parse_network(text)
    if net is not None and "/" in text:
        return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}
    return text


def _match(m: NftMatch) -> JSON:
    if m.op not in _OPS:
        raise ValueError(f"nft operator {m.op!r} has no JSON translation")
    return {"match": {"op": m.op, "left": _left(m.left), "right": _right(m.right)}}


def _statement(text: str) -> JSON:
    if text in _VERDICTS:
        return {text: None}
    raise ValueError(f"nft statement {text!r} has no JSON translation")


def _element(text: str) -> JSON:
    net = parse_network(text)
    if net is None:
        raise ValueError(f"set element {text!r} is not a prefix")
    return {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}


def _set(table: NftTable, s: NftSet) -> JSON:
    body: dict[str, JSON] = {
        "family": table.family,
        "table": table.name,
        "name": s.name,
        "type": s.type,
    }
    if s.interval:
        body["flags"] = ["interval"]
    if s.elements:
        body["elem"] = [_element(e) for e in s.elements]
    return {"set": body}


def _chain(table: NftTable, c: NftChain) -> JSON:
    body: dict[str, JSON] = {"family": table.family, "table": table.name, "name": c.name}
    if c.hook is not None:
        body.update({"type": c.type, "hook": c.hook, "prio": c.priority})
        if c.policy is not None:
            body["policy"] = c.policy
    return {"chain": body}


def _rule(table: NftTable, chain: NftChain, r: NftRule) -> JSON:
    body: dict[str, JSON] = {
        "family": table.family,
        "table": table.name,
        "chain": chain.name,
        "expr": [*(_match(m) for m in r.matches), _statement(r.statement)],
    }
    if r.comment:
        body["comment"] = r.comment
    return {"rule": body}


def _table_ref(family: str, name: str) -> JSON:
    return {"table": {"family": family, "name": name}}


def _document(commands: list[JSON]) -> JSON:
    return {"nftables": [{"metainfo": {"json_schema_version": 1}}, *commands]}


def replace_table(table: NftTable) -> JSON:
    """One transaction that makes `table` exist exactly as given (created or replaced)."""
    ref = _table_ref(table.family, table.name)
    commands: list[JSON] = [{"add": ref}, {"delete": ref}, {"add": ref}]
    commands += [{"add": _set(table, s)} for s in table.sets]
    commands += [{"add": _chain(table, c)} for c in table.chains]
    commands += [{"add": _rule(table, c, r)} for c in table.chains for r in c.rules]
    return _document(commands)


def delete_table(family: str, name: str) -> JSON:
    """One transaction that removes the table (and fails if it is not there)."""
    return _document([{"delete": _table_ref(family, name)}])
