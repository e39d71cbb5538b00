"""`tabby-confd`: render this node's BGP configuration from the store and reload bgpd."""

from __future__ import annotations

import sys

from confd.daemon import Confd, ConfdConfig
from runtime.daemon import run_daemon


def main(argv: list[str] | None = None) -> int:
    return run_daemon(
        "confd",
        ConfdConfig,
        Confd,
        argv=argv,
        description="Watches the store and keeps this node's BGP daemon configured.",
    )


if __name__ == "__main__":
    sys.exit(main())
