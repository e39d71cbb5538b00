"""`./dev demo`: bring up a three-node local Tabby cluster and show it working.

A store member, then per node tabby-confd and tabby-bgpd as real processes on 127.0.10.N,
with the default resources applied from YAML. If a demo cluster is already running it is
shown rather than started twice.
"""

from __future__ import annotations

import sys

from ctl.cluster.commands import DEFAULT_DIR, ClusterState
from ctl.cluster.procs import is_alive
from ctl.main import main as tabbyctl


def main(argv: list[str] | None = None) -> int:
    state_file = DEFAULT_DIR / "cluster.json"
    if state_file.exists() and any(is_alive(p) for p in ClusterState.load(state_file).processes):
        print(f"A demo cluster is already running in {DEFAULT_DIR}; its status:\n")
        return tabbyctl(["cluster", "status", *(argv or [])])
    print("Tabby demo: a three-node cluster (store, confd and bgpd per node) on 127.0.10.1-3\n")
    return tabbyctl(["cluster", "up", "--nodes", "3", *(argv or [])])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
