"""A loopback lab for interop tests: tabby-bgpd (the real daemon, as a subprocess) plus one
Debian BGP daemon, each on its own 127.0.0.x address (IPv6 sessions share ::1 on distinct
ports, and tabby is the active side toward them so that inbound matching stays unambiguous).

Configs are written by the tests; processes are killed by the PIDs we started, in `close()`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ipc import RPCClient

ROOT = Path(__file__).resolve().parents[3]
TABBY = "127.0.0.10"


def free_port(address: str) -> int:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def wait_until(cond: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while True:
        if cond():
            return
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what or cond}")
        time.sleep(0.1)


class Lab:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.port = free_port(TABBY)
        self.port6 = free_port("::1")
        self.socket = tmp / "bgpd.sock"
        self.tabby: subprocess.Popen[bytes] | None = None

    # --- processes ----------------------------------------------------------------------------
    def spawn(
        self, argv: list[str], log: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        out = (self.tmp / log).open("wb")
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=self.tmp,
        )
        self.procs.append(proc)
        return proc

    def spawn_exabgp(self, conf: Path) -> subprocess.Popen[bytes]:
        """ExaBGP in the foreground, as root, on the address its config names."""
        env = {
            "exabgp_tcp_bind": "",
            "exabgp_daemon_drop": "false",
            "exabgp_daemon_user": "root",
            "exabgp_daemon_daemonize": "false",
            "exabgp_log_level": "INFO",
        }
        return self.spawn(["exabgp", str(conf)], "exabgp.log", env)

    def start_tabby(
        self, peers_toml: str, originate: tuple[str, ...] = ("10.10.0.0/24", "fd10::/64")
    ) -> None:
        text = (
            f'router_id = "{TABBY}"\nlocal_as = 65000\nuvloop = false\n'
            f'control_socket = "{self.socket}"\n'
            f'listen = [{{address = "{TABBY}", port = {self.port}}}, {{address = "::1", port = {self.port6}}}]\n'
            f"originate = {list(originate)!r}\n".replace("'", '"')
            + peers_toml
        )
        conf = self.tmp / "tabby.toml"
        conf.write_text(text)
        self.tabby = self.spawn([sys.executable, "-m", "bgpd.main", "-c", str(conf)], "tabby.log")
        wait_until(self.socket.exists, 10, "tabby control socket")

    def close(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def log(self, name: str) -> str:
        path = self.tmp / name
        return path.read_text(errors="replace") if path.exists() else ""

    # --- tabby control API ----------------------------------------------------------------------
    def rpc(self, method: str, *params: object) -> Any:
        async def call() -> object:
            async with RPCClient(f"unix:{self.socket}") as client:
                return await client.call(method, *params)

        return asyncio.run(call())

    def neighbor(self, address: str, port: int | None = None) -> dict[str, Any]:
        for row in self.rpc("neighbors"):
            if row["address"] == address and (port is None or row["port"] == port):
                return dict(row)
        raise KeyError(address)

    def established(self, address: str, port: int | None = None) -> bool:
        return bool(self.neighbor(address, port)["state"] == "Established")

    def node_status(self, *extra: str) -> str:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "ctl.main",
                "node",
                "status",
                "--socket",
                str(self.socket),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            cwd=ROOT,
        )
        return out.stdout


def tabby_peer(address: str, port: int, remote_as: int, **kw: object) -> str:
    lines = [
        "[[peers]]",
        f'address = "{address}"',
        f"port = {port}",
        f"remote_as = {remote_as}",
        "hold_time = 3",
        "connect_retry_time = 1.0",
        "idle_hold_time = 0.5",
        "idle_hold_max = 2.0",
    ]
    for key, value in kw.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {'true' if value else 'false'}")
        elif isinstance(value, (int, float)):
            lines.append(f"{key} = {value}")
        elif isinstance(value, list):
            lines.append(f"{key} = {value!r}".replace("'", '"'))
        else:
            lines.append(f'{key} = "{value}"')
    return "\n".join(lines) + "\n"


def gobgp_conf(
    address: str,
    asn: int,
    port: int,
    tabby_port: int,
    families: tuple[str, ...] = ("ipv4-unicast",),
) -> str:
    """gobgpd TOML: one neighbour, Tabby, with short timers so tests see failures fast."""
    afi_safis = "".join(
        f"""  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "{family}"
"""
        for family in families
    )
    return f"""[global.config]
  as = {asn}
  router-id = "{address}"
  port = {port}
  local-address-list = ["{address}"]

[[neighbors]]
  [neighbors.config]
    neighbor-address = "{TABBY}"
    peer-as = 65000
  [neighbors.transport.config]
    local-address = "{address}"
    remote-port = {tabby_port}
  [neighbors.timers.config]
    hold-time = 3
    keepalive-interval = 1
    connect-retry = 1
{afi_safis}"""
