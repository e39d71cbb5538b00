"""What `./dev demo` runs until the local cluster exists: the IPC benchmark, end to end."""

from __future__ import annotations

import sys

from bench.ipc_rpc import main as ipc_main


def main(argv: list[str] | None = None) -> int:
    print("Tabby demo: the local cluster is not built yet; running the IPC benchmark instead.")
    return ipc_main(["--runs", "1", "--total", "20000", "--sequential", "2000", *(argv or [])])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
