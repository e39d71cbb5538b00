"""The two `KVClient` backends the contract suite runs against, each as a real process.

- `tabby-store`: one member started as `tests.store.server.cluster` does (Unix socket);
- `etcd`: Debian's etcd 3.4 on a random 127.0.0.x address, reached through its JSON gateway
  by `store.etcd.EtcdClient` (marked `debian("etcd")`, skipped where it is missing).

One process per backend per module (tests use their own key prefixes; compaction is global,
so tests only read revisions they wrote after it). Processes are killed by the PID started.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from store.backend import connect
from store.client import KVClient
from tests.store.server.cluster import Cluster

ETCD = "/usr/bin/etcd"
PROGRESS_INTERVAL = "1s"  # watch progress notifications, both backends (default 10 min)


@dataclass
class Backend:
    name: str
    endpoints: list[str]

    def client(self, timeout: float = 10.0) -> KVClient:
        return connect(self.endpoints, timeout=timeout)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class EtcdProcess:
    """One etcd member on 127.0.0.x (a fresh data dir), for tests; alone or in a cluster."""

    def __init__(
        self,
        root: Path,
        host: str | None = None,
        name: str = "e1",
        tls_args: list[str] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.root = root
        self.name = name
        self.host = host or f"127.0.0.{random.randint(2, 250)}"
        self.client_port = _free_port(self.host)
        self.peer_port = _free_port(self.host)
        self.tls_args = tls_args or []  # --cert-file ... : the client URL is https
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.tls_args else "http"
        return f"{scheme}://{self.host}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.host}:{self.peer_port}"

    def start(self, initial_cluster: str | None = None, state: str = "new") -> None:
        log = open(self.root / f"{self.name}.log", "ab")  # noqa: SIM115 - owned by the process
        self.proc = subprocess.Popen(
            [
                ETCD,
                "--name", self.name,
                "--data-dir", str(self.root / f"{self.name}.data"),
                "--listen-client-urls", self.url,
                "--advertise-client-urls", self.url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", initial_cluster or f"{self.name}={self.peer_url}",
                "--initial-cluster-state", state,
                "--log-level", "warn",
                "--experimental-watch-progress-notify-interval", PROGRESS_INTERVAL,
                *self.tls_args,
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()

    def wait_ready(self, timeout: float = 30.0, ctx: ssl.SSLContext | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log()
            try:
                with socket.create_connection((self.host, self.client_port), timeout=1) as raw:
                    s = raw if ctx is None else ctx.wrap_socket(raw, server_hostname=self.host)
                    body = b'{"key":"AA=="}'
                    s.sendall(
                        b"POST /v3/kv/range HTTP/1.1\r\nHost: e\r\nContent-Length: %d\r\n\r\n%s"
                        % (len(body), body)
                    )
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"etcd did not start: {self.log()}")

    def log(self) -> str:
        path = self.root / f"{self.name}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def start_etcd_cluster(root: Path, n: int) -> list[EtcdProcess]:
    """n members on one random 127.0.0.x address; the caller kills them."""
    host = f"127.0.0.{random.randint(2, 250)}"
    members = [EtcdProcess(root, host, f"e{i}") for i in range(1, n + 1)]
    cluster = ",".join(f"{m.name}={m.peer_url}" for m in members)
    for m in members:
        m.start(cluster)
    for m in members:
        m.wait_ready()
    return members


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("tabby-store", marks=pytest.mark.slow),
        pytest.param("etcd", marks=[pytest.mark.slow, pytest.mark.debian(ETCD)]),
    ],
)
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    name: str = request.param
    if name == "etcd" and not os.path.exists(ETCD):
        pytest.skip(f"needs {ETCD} (Debian etcd-server)")
    root = Path(tempfile.mkdtemp(prefix="tabby-contract-", dir="/tmp"))
    try:
        if name == "etcd":
            etcd = EtcdProcess(root)
            try:
                etcd.start()
                etcd.wait_ready()
                yield Backend(name, [etcd.url])
            finally:
                etcd.kill()
        else:
            cluster = Cluster(root / "c", 1, progress_notify_interval=1.0)
            cluster.root.mkdir()
            try:
                cluster.start_all()
                asyncio.run(cluster.wait_leader())
                yield Backend(name, [cluster.client_endpoint(1)])
            finally:
                cluster.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def kv(backend: Backend) -> AsyncIterator[KVClient]:
    client = backend.client()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> bytes:
    """A key prefix of this test alone."""
    return f"/contract/{request.node.name}/".encode()
