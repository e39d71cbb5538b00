"""The life cycle every Tabby daemon shares: start, serve, reload on SIGHUP, stop on SIGTERM.

A daemon is an object with async ``start``, ``stop`` and ``reload`` (the `Daemon`
protocol). `run_daemon` wraps it: it picks the event loop (uvloop unless turned off, and
never for a daemon that runs netlink, which fails on uvloop), sets up logging and metrics,
tells systemd READY=1 once ``start`` returns, pings the watchdog at half its interval from
the loop itself (so a wedged loop stops the pings and systemd restarts us), and on SIGTERM
sends STOPPING=1 and gives ``stop`` at most ``stop_timeout`` seconds before a forced exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from typing import Protocol, TypeVar

from runtime.config import ConfigError, DaemonConfig, add_flags, load_config
from runtime.log import get_logger, setup_logging
from runtime.metrics import start_metrics
from runtime.sdnotify import Notifier

log = get_logger("daemon")

C = TypeVar("C", bound=DaemonConfig)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_STOP_TIMEOUT = 3


class Daemon(Protocol):
    name: str

    async def start(self) -> None:
        """Bind sockets, start tasks; return once the daemon can serve (READY follows)."""

    async def stop(self) -> None:
        """Stop serving and release everything; bounded by stop_timeout."""

    async def reload(self) -> None:
        """Re-read configuration (SIGHUP); a failed reload must leave the old config running."""

    def status(self) -> str:
        """One line for systemd's STATUS=."""
        ...

    def healthy(self) -> bool:
        """False stops the watchdog pings, so that systemd restarts a wedged daemon."""
        ...


class DaemonRunner:
    """Runs one daemon inside an already running event loop; separated for tests."""

    def __init__(self, daemon: Daemon, config: DaemonConfig, notifier: Notifier) -> None:
        self.daemon = daemon
        self.config = config
        self.notifier = notifier
        self._stop = asyncio.Event()
        self._reloading: asyncio.Task[None] | None = None
        self.exit_code = EXIT_OK

    def request_stop(self) -> None:
        self._stop.set()

    def request_reload(self) -> None:
        if self._reloading is not None and not self._reloading.done():
            log.info("reload.coalesced", daemon=self.daemon.name)
            return
        self._reloading = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        self.notifier.reloading()
        try:
            await self.daemon.reload()
            log.info("reload.done", daemon=self.daemon.name)
        except Exception as exc:
            log.exception("reload.failed", daemon=self.daemon.name, error=str(exc))
        self.notifier.ready(self.daemon.status())

    async def _watchdog(self, interval: float) -> None:
        while True:
            if self.daemon.healthy():
                self.notifier.watchdog()
            else:
                log.warning("watchdog.withheld", daemon=self.daemon.name)
            await asyncio.sleep(interval)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum, handler in (
            (signal.SIGTERM, self.request_stop),
            (signal.SIGINT, self.request_stop),
            (signal.SIGHUP, self.request_reload),
        ):
            loop.add_signal_handler(signum, handler)
        self.notifier.status("starting")
        # start() may wait a long time (a store member waits for a leader, confd for the
        # store): SIGTERM meanwhile must still stop the daemon within the bound.
        starting = loop.create_task(self.daemon.start())
        stopping = loop.create_task(self._stop.wait())
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(BaseException):
                await starting
            self.notifier.stopping()
            log.info("stopping", daemon=self.daemon.name, during="start")
            return await self._stop_daemon()
        try:
            starting.result()
        except Exception as exc:
            log.exception("start.failed", daemon=self.daemon.name, error=str(exc))
            self.notifier.status(f"start failed: {exc}")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.daemon.stop(), self.config.stop_timeout)
            return EXIT_FAILED
        start_metrics(self.config.metrics_address, self.config.metrics_port)
        self.notifier.ready(self.daemon.status())
        log.info("ready", daemon=self.daemon.name, status=self.daemon.status())
        watchdog: asyncio.Task[None] | None = None
        interval = self.notifier.watchdog_interval()
        if interval:
            watchdog = loop.create_task(self._watchdog(interval))
        await self._stop.wait()
        self.notifier.stopping()
        log.info("stopping", daemon=self.daemon.name)
        if watchdog is not None:
            watchdog.cancel()
        return await self._stop_daemon()

    async def _stop_daemon(self) -> int:
        try:
            await asyncio.wait_for(self.daemon.stop(), self.config.stop_timeout)
        except TimeoutError:
            log.error("stop.timeout", daemon=self.daemon.name, seconds=self.config.stop_timeout)
            return EXIT_STOP_TIMEOUT
        except Exception as exc:
            log.exception("stop.failed", daemon=self.daemon.name, error=str(exc))
            return EXIT_FAILED
        log.info("stopped", daemon=self.daemon.name)
        return self.exit_code


def _use_uvloop(config: DaemonConfig, netlink: bool) -> bool:
    if not config.uvloop or netlink:
        return False
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def run_daemon(
    name: str,
    config_cls: type[C],
    factory: Callable[[C], Daemon],
    *,
    argv: list[str] | None = None,
    netlink: bool = False,
    description: str = "",
) -> int:
    """Parse flags and config, then run the daemon until SIGTERM; returns the exit code."""
    parser = argparse.ArgumentParser(prog=f"tabby-{name}", description=description)
    add_flags(parser, config_cls, name)
    args = parser.parse_args(argv)
    try:
        config = load_config(config_cls, args, name)
    except ConfigError as exc:
        print(f"tabby-{name}: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.log_level, config.log_format)
    notifier = Notifier()
    uv = _use_uvloop(config, netlink)
    log.info("starting", daemon=name, loop="uvloop" if uv else "asyncio")

    async def main() -> int:
        runner = DaemonRunner(factory(config), config, notifier)
        return await runner.run()

    try:
        if uv:
            import uvloop

            code: int = uvloop.run(main())
        else:
            code = asyncio.run(main())
    finally:
        notifier.close()
    return code
