"""The benchmark runner: ``./dev bench [NAME ...]`` runs each named benchmark (all by default).

Benchmarks print their own tables with ratios against the peer systems measured in the same
run. They are not part of the test suite: timings on shared machines are too noisy to gate on.
"""

from __future__ import annotations

import importlib
import sys

# name -> module with a main(argv) -> int
BENCHMARKS = {
    "ipc": "bench.ipc_rpc",
}


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-")] or list(BENCHMARKS)
    extra = [a for a in argv if a.startswith("-")]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    status = 0
    for name in names:
        print(f"== {name} ==", flush=True)
        module = importlib.import_module(BENCHMARKS[name])
        status |= int(module.main(extra))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
