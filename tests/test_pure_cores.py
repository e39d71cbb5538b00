"""Pure cores import no asyncio, socket, time or os (STYLE.md rule 1).

Time enters as `now`, randomness as a seeded `random.Random`; only daemon shells touch the
loop, sockets, disk and clock. Every module under a directory listed here is scanned, so a new
module in a pure package cannot slip out of the rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"asyncio", "socket", "time", "os", "selectors", "threading", "subprocess"}

# Directories (recursively) and single files that hold sans-IO protocol logic.
PURE = [
    "bgpd/wire",
    "bgpd/core",
    "store/raft",
    "store/kv",
    "resources",
    "confd/render",
    "felixd/plan",
]


def _pure_modules() -> list[Path]:
    found: list[Path] = []
    for entry in PURE:
        path = ROOT / entry
        if path.is_dir():
            found.extend(sorted(path.rglob("*.py")))
        elif path.with_suffix(".py").is_file():
            found.append(path.with_suffix(".py"))
    return found


def _imported_roots(source: str) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("module", _pure_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_core_imports_no_io(module: Path) -> None:
    bad = _imported_roots(module.read_text()) & FORBIDDEN
    assert not bad, (
        f"{module.relative_to(ROOT)} imports {sorted(bad)}: pure cores take time and IO from their shell"
    )


def test_scanner_sees_forbidden_imports() -> None:
    assert _imported_roots("import os.path\nfrom asyncio import sleep\n") == {"os", "asyncio"}
