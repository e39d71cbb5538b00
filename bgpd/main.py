"""tabby-bgpd entry point: `main()` runs the BGP speaker under the shared daemon runtime.

SIGHUP re-reads the same config file with the same flag overrides (`runtime.config.load_config`)
and applies it through the reload matrix; a file that fails validation changes nothing.
"""

from __future__ import annotations

import argparse
import sys

from bgpd.daemon.config import BgpdConfig
from bgpd.daemon.speaker import Speaker
from runtime.config import add_flags, load_config
from runtime.daemon import run_daemon

DESCRIPTION = "Tabby BGP speaker (RFC 4271): sessions, mesh, route reflection"


def main(argv: list[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)

    def loader() -> BgpdConfig:
        parser = argparse.ArgumentParser(prog="tabby-bgpd")
        add_flags(parser, BgpdConfig, "bgpd")
        return load_config(BgpdConfig, parser.parse_args(args_list), "bgpd")

    return run_daemon(
        "bgpd",
        BgpdConfig,
        lambda config: Speaker(config, loader),
        argv=args_list,
        description=DESCRIPTION,
    )


if __name__ == "__main__":
    sys.exit(main())
