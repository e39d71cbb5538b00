"""`tabby-felixd`: program this host's dataplane from the store and bgpd (standard asyncio loop:
pyroute2 fails on uvloop)."""

from __future__ import annotations

import sys

from felixd.daemon import Felixd, FelixdConfig
from runtime.daemon import run_daemon


def main(argv: list[str] | None = None) -> int:
    return run_daemon(
        "felixd",
        FelixdConfig,
        Felixd,
        argv=argv,
        netlink=True,
        description="Programs routes, VXLAN and NAT on this host from the store and bgpd.",
    )


if __name__ == "__main__":
    sys.exit(main())
