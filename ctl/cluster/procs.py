"""Processes of a local cluster: start detached, wait for READY=1, check, stop by PID.

`tabbyctl cluster up` exits while the daemons keep running, so every later command finds
them again from the state file by PID. A PID alone can be reused by an unrelated process
after a crash, so each record also keeps the process's start time from /proc/PID/stat and a
process only counts as ours when both match. Nothing is ever stopped by name.

Readiness is the daemons' own sd_notify: each child gets a private NOTIFY_SOCKET and is
ready when it sends READY=1, the same signal systemd waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path


class StartError(RuntimeError):
    """A daemon exited or did not become ready; the message carries its last log lines."""


@dataclass
class ProcessRecord:
    node: str
    daemon: str
    argv: list[str]
    log: str
    pid: int = 0
    start_ticks: int = 0
    socket: str = ""
    config: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, object]) -> ProcessRecord:
        return cls(**data)  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        return f"{self.node}/{self.daemon}"


def start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks), or None if gone or a zombie."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    rest = raw[raw.rindex(")") + 2 :].split()
    if rest[0] in ("Z", "X"):
        return None
    return int(rest[19])


def is_alive(rec: ProcessRecord) -> bool:
    return rec.pid > 0 and start_ticks(rec.pid) == rec.start_ticks


def tail(path: str | Path, lines: int = 15) -> list[str]:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except FileNotFoundError:
        return []
    return data.splitlines()[-lines:]


def spawn(rec: ProcessRecord, env: dict[str, str], notify_path: Path) -> subprocess.Popen[bytes]:
    """Start `rec.argv` in its own session with output to its log file."""
    Path(rec.log).parent.mkdir(parents=True, exist_ok=True)
    child_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
    }
    child_env.update(env)
    child_env["NOTIFY_SOCKET"] = str(notify_path)
    with open(rec.log, "ab") as log:
        proc = subprocess.Popen(
            rec.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env,
            start_new_session=True,
        )
    rec.pid = proc.pid
    rec.start_ticks = start_ticks(proc.pid) or 0
    return proc


class NotifyListener:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET for one child."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.status = ""

    async def wait_ready(
        self, proc: subprocess.Popen[bytes], rec: ProcessRecord, timeout: float
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if proc.poll() is not None:
                raise StartError(
                    f"{rec.label} exited with status {proc.returncode} before it was ready"
                    + "".join(f"\n    {line}" for line in tail(rec.log))
                )
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise StartError(
                    f"{rec.label} not ready after {timeout:.0f} s (last status: {self.status or 'none'})"
                    + "".join(f"\n    {line}" for line in tail(rec.log))
                )
            try:
                data = await asyncio.wait_for(loop.sock_recv(self.sock, 4096), min(0.2, remaining))
            except TimeoutError:
                continue
            for line in data.decode(errors="replace").splitlines():
                if line.startswith("STATUS="):
                    self.status = line[7:]
                if line == "READY=1":
                    return

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def stop(rec: ProcessRecord, timeout: float = 10.0) -> str:
    """SIGTERM, then SIGKILL after `timeout`; returns what happened, for the report."""
    if not is_alive(rec):
        return "not running"
    with contextlib.suppress(ProcessLookupError):
        os.kill(rec.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(rec):
            _reap(rec.pid)
            return "stopped"
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(rec.pid, signal.SIGKILL)
    for _ in range(100):
        if not is_alive(rec):
            break
        time.sleep(0.05)
    _reap(rec.pid)
    return "killed"


def kill9(rec: ProcessRecord) -> None:
    if is_alive(rec):
        os.kill(rec.pid, signal.SIGKILL)
        for _ in range(100):
            if not is_alive(rec):
                break
            time.sleep(0.02)
        _reap(rec.pid)


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (no zombie left behind)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def alive_all(records: Sequence[ProcessRecord]) -> list[ProcessRecord]:
    return [r for r in records if is_alive(r)]
