"""The daemon runtime as systemd sees it: sd_notify, watchdog, SIGHUP reload, SIGTERM stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ipc import RPCClient

ROOT = Path(__file__).resolve().parents[2]


class NotifySocket:
    """A stand-in for systemd's NOTIFY_SOCKET that records every datagram."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def wait_for(self, line: str, timeout: float = 15.0) -> None:
        loop_deadline = timeout / 0.2
        for _ in range(int(loop_deadline)):
            if any(line in m.splitlines() for m in self.messages):
                return
            with contextlib.suppress(TimeoutError):
                self.messages.append(self.sock.recv(4096).decode())
        raise AssertionError(f"never received {line!r}; got {self.messages}")

    def count(self, line: str) -> int:
        return sum(line in m.splitlines() for m in self.messages)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    ns = NotifySocket(tmp_path / "notify.sock")
    yield ns
    ns.close()


def start(
    tmp_path: Path, notify: NotifySocket | None, *flags: str, **env: str
) -> subprocess.Popen[bytes]:
    environ = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    environ["PYTHONPATH"] = str(ROOT)
    if notify is not None:
        environ["NOTIFY_SOCKET"] = str(notify.path)
    environ.update(env)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.runtime.sample_daemon",
            "--config",
            str(tmp_path / "none.toml") if False else str(write_config(tmp_path)),
            "--socket",
            str(tmp_path / "sample.sock"),
            *flags,
        ],
        cwd=ROOT,
        env=environ,
        stderr=subprocess.PIPE,
    )


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "sample.toml"
    path.write_text('greeting = "from file"\nlog_format = "json"\n')
    return path


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


async def call(tmp_path: Path, method: str) -> object:
    async with RPCClient(f"unix:{tmp_path / 'sample.sock'}") as client:
        return await client.call(method)


def test_ready_status_reload_and_stop(tmp_path: Path, notify: NotifySocket) -> None:
    proc = start(tmp_path, notify)
    try:
        notify.wait_for("READY=1")
        assert any(m.startswith("STATUS=") or "\nSTATUS=" in m for m in notify.messages)
        assert asyncio.run(call(tmp_path, "greet")) == "from file"
        proc.send_signal(signal.SIGHUP)
        notify.wait_for("RELOADING=1")
        for _ in range(50):
            if asyncio.run(call(tmp_path, "reloads")) == 1:
                break
        assert asyncio.run(call(tmp_path, "reloads")) == 1
        proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1")
        assert proc.wait(15) == 0
        assert not (tmp_path / "sample.sock").exists()
    finally:
        stop(proc)
    assert proc.stderr is not None
    lines = proc.stderr.read().decode().splitlines()
    assert lines and all(line.startswith("{") for line in lines), "json log format, one per line"


def test_watchdog_pings_at_half_the_interval(tmp_path: Path, notify: NotifySocket) -> None:
    proc = start(tmp_path, notify, WATCHDOG_USEC="400000")
    try:
        notify.wait_for("READY=1")
        for _ in range(3):
            notify.messages = [m for m in notify.messages if "WATCHDOG=1" not in m]
            notify.wait_for("WATCHDOG=1")
    finally:
        stop(proc)


def test_unhealthy_daemon_withholds_the_watchdog(tmp_path: Path, notify: NotifySocket) -> None:
    proc = start(tmp_path, notify, "--wedge-after", "0.3", WATCHDOG_USEC="200000")
    try:
        notify.wait_for("READY=1")
        notify.wait_for("WATCHDOG=1")
        # Once wedged, no more pings arrive: drain for a while and count.
        for _ in range(10):
            with contextlib.suppress(TimeoutError):
                notify.messages.append(notify.sock.recv(4096).decode())
        before = notify.count("WATCHDOG=1")
        for _ in range(10):
            with contextlib.suppress(TimeoutError):
                notify.messages.append(notify.sock.recv(4096).decode())
        assert notify.count("WATCHDOG=1") == before
    finally:
        stop(proc)


def test_sigterm_with_a_hanging_stop_exits_after_the_bound(
    tmp_path: Path, notify: NotifySocket
) -> None:
    proc = start(tmp_path, notify, "--hang-on-stop", "--stop-timeout", "0.5")
    try:
        notify.wait_for("READY=1")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 3  # EXIT_STOP_TIMEOUT: forced, not hung forever
    finally:
        stop(proc)


def test_bad_config_exits_with_the_field_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("greeting = 5\n")
    out = subprocess.run(
        [sys.executable, "-m", "tests.runtime.sample_daemon", "--config", str(bad)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        check=False,
        timeout=30,
    )
    assert out.returncode == 2
    assert b"greeting: expected a string, got 5" in out.stderr


def test_second_instance_does_not_steal_the_socket(tmp_path: Path, notify: NotifySocket) -> None:
    first = start(tmp_path, notify)
    try:
        notify.wait_for("READY=1")
        second = start(tmp_path, None)
        assert second.wait(30) == 1
        assert asyncio.run(call(tmp_path, "greet")) == "from file"
    finally:
        stop(first)


def test_sigterm_during_a_slow_start_stops_cleanly(tmp_path: Path, notify: NotifySocket) -> None:
    """A daemon still in start() (a store waiting for a leader) obeys SIGTERM at once."""
    proc = start(tmp_path, notify, "--start-delay", "3600")
    try:
        notify.wait_for("STATUS=starting")
        proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1")
        assert proc.wait(15) == 0
        assert notify.count("READY=1") == 0
    finally:
        stop(proc)


def test_metrics_endpoint_is_opt_in(tmp_path: Path, notify: NotifySocket) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    proc = start(tmp_path, notify, "--metrics-port", str(port))
    try:
        notify.wait_for("READY=1")
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            body = resp.read().decode()
        assert "python_info" in body  # Prometheus text format from the default registry
    finally:
        stop(proc)
