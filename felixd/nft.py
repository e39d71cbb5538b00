"""nftables through its JSON batch interface: `nft -j -f -`, one transaction per change.

felixd writes whole tables (`felixd.plan.nftjson.replace_table` / `delete_table`). Rather than
parse nft's JSON back into an `NftTable`, the shell lets nft normalise: after a table is
written, `nft -j list table` gives its listing (handles removed), stored with the table it came
from, in memory and in a state file so a restarted felixd knows it too. Reading a table back,
the listing is taken again: if it equals the stored one, the stored `NftTable` is reported;
otherwise (someone changed the table, or felixd has no record of it) an empty table with that
key is reported, which the differ replaces. So a restart writes nothing, and a tampered table is
rewritten at the next resync.

Invariants: only tables the caller passes through `owned` are ever reported; a failed `nft`
run becomes an errno (EIO, or ENOENT when nft is not installed), never an exception; a state
file that does not parse is ignored (the cost is one rewrite).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from felixd.plan.model import NftChain, NftMatch, NftRule, NftSet, NftTable
from felixd.plan.nftjson import JSON, delete_table, replace_table

NFT_TIMEOUT = 10.0
Key = tuple[str, str]


def table_to_json(table: NftTable) -> dict[str, JSON]:
    return {
        "family": table.family,
        "name": table.name,
        "sets": [
            {"name": s.name, "type": s.type, "elements": list(s.elements), "interval": s.interval}
            for s in table.sets
        ],
        "chains": [
            {
                "name": c.name,
                "type": c.type,
                "hook": c.hook,
                "priority": c.priority,
                "policy": c.policy,
                "rules": [
                    {
                        "matches": [[m.left, m.op, m.right] for m in r.matches],
                        "statement": r.statement,
                        "comment": r.comment,
                    }
                    for r in c.rules
                ],
            }
            for c in table.chains
        ],
    }


def table_from_json(data: Mapping[str, object]) -> NftTable:
    """The inverse of `table_to_json` (raises KeyError/TypeError/ValueError on bad input)."""

    def seq(value: object) -> list[dict[str, object]]:
        if not isinstance(value, list):
            raise TypeError("expected a list")
        return value

    def opt_int(value: object) -> int | None:
        return None if value is None else int(str(value))

    def opt_str(value: object) -> str | None:
        return None if value is None else str(value)

    sets = tuple(
        NftSet(
            str(s["name"]),
            str(s["type"]),
            tuple(str(e) for e in seq(s["elements"])),
            bool(s["interval"]),
        )
        for s in seq(data["sets"])
    )
    chains = tuple(
        NftChain(
            str(c["name"]),
            tuple(
                NftRule(
                    tuple(NftMatch(str(m[0]), str(m[1]), str(m[2])) for m in seq(r["matches"])),  # type: ignore[index]
                    str(r["statement"]),
                    str(r["comment"]),
                )
                for r in seq(c["rules"])
            ),
            opt_str(c["type"]),
            opt_str(c["hook"]),
            opt_int(c["priority"]),
            opt_str(c["policy"]),
        )
        for c in seq(data["chains"])
    )
    return NftTable(str(data["family"]), str(data["name"]), sets, chains)


def _strip_handles(value: object) -> object:
    if isinstance(value, dict):
        return {k: _strip_handles(v) for k, v in value.items() if k != "handle"}
    if isinstance(value, list):
        return [_strip_handles(v) for v in value if not (isinstance(v, dict) and "metainfo" in v)]
    return value


class NftBackend:
    def __init__(self, nft: str = "nft", state_file: Path | None = None) -> None:
        self.nft = shutil.which(nft) or nft
        self.state_file = state_file
        # key -> (nft's listing of the table right after felixd wrote it, the table)
        self.applied: dict[Key, tuple[str, NftTable]] = {}
        self._load()

    def _run(self, args: list[str], stdin: str | None = None) -> tuple[int | None, str]:
        try:
            done = subprocess.run(
                [self.nft, *args],
                input=stdin,
                capture_output=True,
                text=True,
                timeout=NFT_TIMEOUT,
                check=False,
            )
        except FileNotFoundError:
            return errno.ENOENT, "nft not installed"
        except subprocess.TimeoutExpired:
            return errno.ETIMEDOUT, "nft timed out"
        if done.returncode != 0:
            return errno.EIO, done.stderr.strip()
        return None, done.stdout

    def listing(self, family: str, name: str) -> str | None:
        """The table as nft shows it, handles removed, as canonical JSON text."""
        error, out = self._run(["-j", "list", "table", family, name])
        if error is not None:
            return None
        return json.dumps(_strip_handles(json.loads(out)), sort_keys=True)

    def tables(self, owned: Callable[[str, str], bool]) -> dict[Key, NftTable]:
        """The owned tables the kernel holds (see the module docstring for their contents)."""
        error, out = self._run(["-j", "list", "tables"])
        if error is not None:
            return {}
        found: dict[Key, NftTable] = {}
        for item in json.loads(out).get("nftables", []):
            table = item.get("table")
            if not isinstance(table, dict):
                continue
            key = (str(table["family"]), str(table["name"]))
            if not owned(*key):
                continue
            known = self.applied.get(key)
            if known is not None and known[0] == self.listing(*key):
                found[key] = known[1]
            else:
                found[key] = NftTable(*key)
        return found

    def apply(self, document: JSON) -> tuple[int | None, str]:
        return self._run(["-j", "-f", "-"], json.dumps(document))

    def replace(self, table: NftTable) -> int | None:
        error, _ = self.apply(replace_table(table))
        listing = self.listing(*table.key) if error is None else None
        if listing is not None:
            self.applied[table.key] = (listing, table)
        else:
            self.applied.pop(table.key, None)
        self._save()
        return error

    def delete(self, family: str, name: str) -> int | None:
        error, _ = self.apply(delete_table(family, name))
        self.applied.pop((family, name), None)
        self._save()
        return error

    # -- the state file ------------------------------------------------------------------

    def _load(self) -> None:
        if self.state_file is None:
            return
        try:
            data = json.loads(self.state_file.read_text())
            for entry in data:
                table = table_from_json(entry["table"])
                self.applied[table.key] = (str(entry["listing"]), table)
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            self.applied.clear()

    def _save(self) -> None:
        if self.state_file is None:
            return
        data = [{"listing": lst, "table": table_to_json(t)} for lst, t in self.applied.values()]
        try:
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_file.with_name(f".{self.state_file.name}.tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.state_file)
        except OSError:
            pass  # the cost of a lost state file is one rewrite after a restart
