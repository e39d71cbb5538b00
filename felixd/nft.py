"""nftables through its JSON batch interface: `nft -j -f -`, one transaction per change.

felixd writes whole tables (`felixd.plan.nftjson.replace_table` / `delete_table`). Reading a
table back into an `NftTable` would need a parser for nft's JSON dump; instead (docs/felixd.md
allows it) the shell remembers the last table it applied and reports that for a table that
exists in the kernel, and reports an unknown owned table as an empty one, which the differ then
replaces. The memory is dropped whenever a transaction fails, so an error always leads to a
rewrite.

Invariants: only tables the caller passes through `owned` are ever reported; a failed `nft`
run becomes an errno (EIO, or ENOENT when nft is not installed), never an exception.
"""

from __future__ import annotations

import errno
import json
import shutil
import subprocess
from collections.abc import Callable

from felixd.plan.model import NftTable
from felixd.plan.nftjson import JSON, delete_table, replace_table

NFT_TIMEOUT = 10.0


class NftBackend:
    def __init__(self, nft: str = "nft") -> None:
        self.nft = shutil.which(nft) or nft
        self.applied: dict[tuple[str, str], NftTable] = {}

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

    def tables(self, owned: Callable[[str, str], bool]) -> dict[tuple[str, str], NftTable]:
        """The owned tables the kernel holds (see the module docstring for their contents)."""
        error, out = self._run(["-j", "list", "tables"])
        if error is not None:
            return {}
        found: dict[tuple[str, str], NftTable] = {}
        for item in json.loads(out).get("nftables", []):
            table = item.get("table")
            if not isinstance(table, dict):
                continue
            key = (str(table["family"]), str(table["name"]))
            if owned(*key):
                found[key] = self.applied.get(key, NftTable(*key))
        return found

    def apply(self, document: JSON) -> tuple[int | None, str]:
        return self._run(["-j", "-f", "-"], json.dumps(document))

    def replace(self, table: NftTable) -> int | None:
        error, _ = self.apply(replace_table(table))
        if error is None:
            self.applied[table.key] = table
        else:
            self.applied.clear()
        return error

    def delete(self, family: str, name: str) -> int | None:
        error, _ = self.apply(delete_table(family, name))
        self.applied.pop((family, name), None)
        if error is not None:
            self.applied.clear()
        return error
