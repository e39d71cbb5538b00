"""tabbyctl entry point: `main()` dispatches to one module per command group.

Each group module (e.g. `ctl.node`) exposes `register(subparsers)`, which adds its parser and
sets `func` (a callable taking the parsed namespace and returning the exit code) on each leaf
command. Adding a group is one line in `GROUPS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from types import ModuleType

from ctl import bgp, node, resources, store
from ctl.cluster import commands as cluster

GROUPS: dict[str, ModuleType] = {
    "bgp": bgp,  # `bgp fuzz` only when hypothesis (the optional `fuzz` extra) is installed
    "cluster": cluster,
    "node": node,
    "resources": resources,
    "store": store,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tabbyctl", description="Tabby command line")
    sub = parser.add_subparsers(dest="group", metavar="COMMAND")
    for module in GROUPS.values():
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
