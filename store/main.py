"""`tabby-store`: run one member of the Raft-replicated KV store (see docs/store.md)."""

from __future__ import annotations

import sys

from runtime.daemon import run_daemon
from store.server.config import StoreConfig
from store.server.daemon import StoreDaemon


def main(argv: list[str] | None = None) -> int:
    return run_daemon(
        "store",
        StoreConfig,
        StoreDaemon,
        argv=argv,
        description="tabby-store: a Raft-replicated MVCC key-value store (etcd v3 semantics)",
    )


if __name__ == "__main__":
    sys.exit(main())
