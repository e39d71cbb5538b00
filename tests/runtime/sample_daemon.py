"""A minimal daemon built on the shared runtime, run as a real process by the runtime tests."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path

from ipc import RPCServer
from runtime.config import ConfigError, DaemonConfig
from runtime.daemon import run_daemon


@dataclasses.dataclass(kw_only=True)
class SampleConfig(DaemonConfig):
    socket: Path = Path("/run/tabby/sample.sock")
    greeting: str = "hello"
    hang_on_stop: bool = False
    start_delay: float = 0.0  # >0: start() waits this long before it serves (a slow start)
    wedge_after: float = 0.0  # >0: stop answering the watchdog after this many seconds

    def validate(self) -> None:
        super().validate()
        if not self.greeting:
            raise ConfigError("greeting: must not be empty")


class SampleDaemon:
    name = "sample"

    def __init__(self, config: SampleConfig) -> None:
        self.config = config
        self.server = RPCServer(name="sample")
        self.reloads = 0
        self.started = 0.0
        self.server.register("greet", self.greet)
        self.server.register("reloads", self.get_reloads)

    async def greet(self) -> str:
        return self.config.greeting

    async def get_reloads(self) -> int:
        return self.reloads

    async def start(self) -> None:
        if self.config.start_delay > 0:
            await asyncio.sleep(self.config.start_delay)
        self.started = asyncio.get_running_loop().time()
        await self.server.listen(f"unix:{self.config.socket}")

    async def stop(self) -> None:
        if self.config.hang_on_stop:
            await asyncio.sleep(3600)
        await self.server.close()

    async def reload(self) -> None:
        self.reloads += 1

    def status(self) -> str:
        return f"serving, {self.reloads} reloads"

    def healthy(self) -> bool:
        if self.config.wedge_after <= 0:
            return True
        return asyncio.get_running_loop().time() - self.started < self.config.wedge_after


if __name__ == "__main__":
    sys.exit(run_daemon("sample", SampleConfig, SampleDaemon))
