"""A local tabby-store cluster of real processes on Unix sockets, for the multi-process tests.

Members run `python -m store.main -c <toml>` with their data dirs, sockets and logs under one
temporary directory; every process is started and killed by PID (never by name).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from store.client import StoreClient


class Cluster:
    def __init__(self, root: Path, n: int, **settings: object) -> None:
        self.root = root
        self.ids = list(range(1, n + 1))
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.settings = {"heartbeat_interval": 0.1, "election_timeout": 1.0, **settings}
        self.peer = {i: f"unix:{root}/m{i}.peer.sock" for i in self.ids}
        self.extra: dict[int, dict[str, object]] = {}

    def client_endpoint(self, i: int) -> str:
        return f"unix:{self.root}/m{i}.sock"

    def write_config(self, i: int, state: str = "new", cluster: list[int] | None = None) -> Path:
        members = cluster or self.ids
        lines = [
            f'name = "m{i}"',
            f"id = {i}",
            f'data_dir = "{self.root}/m{i}.data"',
            f'client_endpoints = ["{self.client_endpoint(i)}"]',
            f'peer_endpoint = "{self.peer[i]}"',
            "initial_cluster = [" + ", ".join(f'"{j}={self.peer[j]}"' for j in members) + "]",
            f'initial_cluster_state = "{state}"',
            f'run_dir = "{self.root}"',
            f'state_dir = "{self.root}"',
            'log_level = "info"',
        ]
        for key, value in {**self.settings, **self.extra.get(i, {})}.items():
            lines.append(f"{key} = {_toml(value)}")
        path = self.root / f"m{i}.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, i: int, state: str = "new", cluster: list[int] | None = None) -> None:
        if i not in self.ids:
            self.ids.append(i)
            self.peer[i] = f"unix:{self.root}/m{i}.peer.sock"
        cfg = self.write_config(i, state, cluster)
        log = open(self.root / f"m{i}.log", "ab")  # noqa: SIM115 - owned by the process
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("NOTIFY_SOCKET", None)
        self.procs[i] = subprocess.Popen(
            [sys.executable, "-m", "store.main", "-c", str(cfg)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(Path(__file__).resolve().parents[3]),
        )
        log.close()

    def start_all(self) -> None:
        for i in self.ids:
            self.start(i)

    def signal(self, i: int, sig: int) -> None:
        proc = self.procs[i]
        if proc.poll() is None:
            os.kill(proc.pid, sig)

    def kill(self, i: int) -> None:
        self.signal(i, signal.SIGKILL)
        self.procs[i].wait(10)

    def stop(self, i: int) -> int:
        self.signal(i, signal.SIGTERM)
        return self.procs[i].wait(15)

    def close(self) -> None:
        for _i, proc in self.procs.items():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def log(self, i: int) -> str:
        return (self.root / f"m{i}.log").read_text(errors="replace")

    def client(self, ids: list[int] | None = None, timeout: float = 10.0) -> StoreClient:
        eps = [self.client_endpoint(i) for i in (ids or self.ids)]
        return StoreClient(eps, timeout=timeout)

    async def status(self, i: int) -> dict[str, object] | None:
        c = StoreClient(self.client_endpoint(i), timeout=1.0)
        try:
            return await c.status_raw()
        except Exception:
            return None
        finally:
            await c.close()

    async def wait_leader(self, ids: list[int] | None = None, timeout: float = 30.0) -> int:
        """The leader every listed (running) member agrees on."""
        deadline = time.monotonic() + timeout
        members = ids or [i for i in self.ids if self.procs[i].poll() is None]
        while time.monotonic() < deadline:
            leaders = set()
            for i in members:
                st = await self.status(i)
                leaders.add(None if st is None else st["leader"])
            if len(leaders) == 1:
                (leader,) = leaders
                if isinstance(leader, int) and leader in members:
                    return leader
            await asyncio.sleep(0.1)
        raise TimeoutError(f"no agreed leader among {members}: {leaders}")


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)
