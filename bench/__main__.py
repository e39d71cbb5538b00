"""The benchmark runner: ``./dev bench [NAME ...] [-- ARGS]`` runs each named benchmark.

Each benchmark is a module runnable on its own (``python -m bench.NAME``) that prints its
table, with ratios against the peer systems measured in the same run. The runner starts each
in its own process so that one benchmark's memory and threads never colour the next. They
are not part of the test suite: timings on shared machines are too noisy to gate on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name -> (module, what it compares)
BENCHMARKS = {
    "ipc": ("bench.ipc_rpc", "msgpack-RPC round trips vs a bare asyncio echo server"),
    "bgp-codec": ("bench.bgp_codec", "BGP UPDATE decode/encode rates (full table, single prefix)"),
    "bgp-converge": ("bench.bgp_converge", "bgperf-style convergence vs BIRD, FRR, GoBGP, ExaBGP"),
    "store-wal": ("bench.store_wal", "WAL batches/s and fdatasync cost"),
    "store": (
        "bench.store_vs_etcd",
        "tabby-store vs etcd 3.4: put latency/throughput, reads, watch",
    ),
    "felixd-routes": ("bench.felixd_routes", "programming 10,000 routes vs ip -batch"),
}


def main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        extra = argv[argv.index("--") + 1 :]
        argv = argv[: argv.index("--")]
    if argv in (["list"], ["-h"], ["--help"]):
        for name, (module, what) in BENCHMARKS.items():
            present = (ROOT / (module.replace(".", "/") + ".py")).exists()
            print(f"{name:<15} {what}{'' if present else '  (not in this checkout)'}")
        return 0
    names = argv or [
        n for n, (m, _) in BENCHMARKS.items() if (ROOT / (m.replace(".", "/") + ".py")).exists()
    ]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; `./dev bench list` shows them")
        return 2
    status = 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in names:
        module = BENCHMARKS[name][0]
        print(f"== {name}: {BENCHMARKS[name][1]} ==", flush=True)
        status |= subprocess.run(
            [sys.executable, "-m", module, *extra], cwd=ROOT, env=env, check=False
        ).returncode
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
