"""tabby-confd: keeps one node's BGP daemon configured from the resources in the store.

The shell around the pure planner (`confd.render`): it receives snapshots of the resources it
watches, debounces bursts, computes this node's plan, renders it for the chosen target
(tabby-bgpd TOML or BIRD 2), validates the text, writes it atomically (temp file, fsync,
rename, directory fsync) and asks the daemon to reload. An unchanged rendering is neither
written nor reloaded, so a store change that does not concern this node costs nothing, and
bgpd's reload only touches the sessions whose settings changed.

The target daemon not running is not an error: the file is in place when it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import subprocess
import time
import tomllib
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Literal

from bgpd.daemon.config import BgpdConfig
from confd.render.bgpd_toml import render_bgpd_toml
from confd.render.bird import render_bird
from confd.render.compute import Secrets, compute_plan
from confd.render.model import NodeBGPPlan
from confd.render.view import build_view
from ipc import RPCClient, RPCServer
from ipc.client import ClientOptions
from ipc.errors import RPCError
from resources.resource import Resource
from runtime.config import ConfigError, DaemonConfig, from_mapping
from runtime.log import get_logger

log = get_logger("confd")

Snapshots = Callable[[], AsyncIterator[Sequence[Resource[object]]]]


@dataclasses.dataclass(kw_only=True)
class ConfdConfig(DaemonConfig):
    node_name: str = ""  # "" = this host's name
    store_endpoints: list[str] = dataclasses.field(
        default_factory=lambda: ["unix:/run/tabby/store.sock"]
    )
    store_prefix: str = "/calico"
    target: Literal["bgpd", "bird"] = "bgpd"
    output: Path = Path("/var/lib/tabby/confd/bgpd.toml")
    control_socket: Path = Path("/run/tabby/confd.sock")
    bgpd_socket: Path = Path("/run/tabby/bgpd.sock")
    bird_socket: Path = Path("/run/bird/bird.ctl")
    secrets_file: Path | None = None
    debounce: float = 0.2
    loopback_next_hops: bool = False  # BIRD on 127.0.0.0/8 (tests, local cluster)
    bgpd_base: dict[str, object] = dataclasses.field(default_factory=dict)

    def validate(self) -> None:
        super().validate()
        if self.debounce < 0:
            raise ConfigError("debounce: must not be negative")
        if not self.store_endpoints:
            raise ConfigError("store_endpoints: at least one endpoint is needed")
        for key, value in self.bgpd_base.items():
            if not isinstance(value, (str, int, float, bool)):
                raise ConfigError(f"bgpd_base.{key}: must be a string, number or boolean")

    @property
    def node(self) -> str:
        return self.node_name or socket.gethostname()


def load_secrets(path: Path | None) -> Secrets:
    """Tabby's source of BGP passwords: a TOML file of ``[secret-name] key = "value"`` tables.

    Calico reads `secretKeyRef` from Kubernetes Secrets; Tabby has no Kubernetes, so the same
    reference names a table and key in this file (mode 0600, owned by the confd user).
    """
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"secrets_file {path}: {exc}") from exc
    out: dict[tuple[str, str], str] = {}
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"secrets_file {path}: [{name}] must be a table")
        for key, value in table.items():
            if not isinstance(value, str):
                raise ConfigError(f"secrets_file {path}: {name}.{key} must be a string")
            out[(name, key)] = value
    return out


def write_atomically(path: Path, text: str) -> None:
    """Temp file, fsync, rename, directory fsync: readers see the old or the new file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class RenderError(Exception):
    """The rendered text did not validate; nothing was written."""


class Confd:
    name = "confd"

    def __init__(self, config: ConfdConfig, snapshots: Snapshots | None = None) -> None:
        self.config = config
        self.node = config.node
        self._snapshots = snapshots
        self.server = RPCServer(name="confd")
        self.server.register("status", self.status_rpc)
        self.tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()
        self.renders = 0
        self.writes = 0
        self.reloads = 0
        self.last_error = ""
        self.last_plan: NodeBGPPlan | None = None
        self.last_change = 0.0
        self.connected = False
        self.secrets: Secrets = {}

    # -- life cycle ------------------------------------------------------------------
    async def start(self) -> None:
        self.secrets = load_secrets(self.config.secrets_file)
        await self.server.listen(f"unix:{self.config.control_socket}")
        self.tasks.append(asyncio.get_running_loop().create_task(self._run()))
        # Ready once the first snapshot has been rendered (connected to the store).
        await self.ready.wait()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.server.close()

    async def reload(self) -> None:
        self.secrets = load_secrets(self.config.secrets_file)
        self.last_change = time.time()

    def status(self) -> str:
        if not self.connected:
            return "waiting for the store"
        peers = len(self.last_plan.peers) if self.last_plan else 0
        return f"node {self.node}: {peers} peers, {self.writes} writes, {self.reloads} reloads"

    def healthy(self) -> bool:
        return True

    async def status_rpc(self) -> dict[str, object]:
        plan = self.last_plan
        return {
            "node": self.node,
            "connected": self.connected,
            "renders": self.renders,
            "writes": self.writes,
            "reloads": self.reloads,
            "last_error": self.last_error,
            "output": str(self.config.output),
            "peers": [p.name for p in plan.peers] if plan else [],
            "originate": [str(o.prefix) for o in plan.originate] if plan else [],
            "problems": [f"{p.resource}: {p.reason}" for p in plan.problems] if plan else [],
        }

    # -- the loop --------------------------------------------------------------------
    async def _source(self) -> AsyncIterator[Sequence[Resource[object]]]:
        if self._snapshots is not None:
            async for snap in self._snapshots():
                yield snap
            return
        from confd.source import store_snapshots

        async for snap in store_snapshots(self.config, self.node):
            yield snap

    async def _run(self) -> None:
        latest: list[Sequence[Resource[object]]] = []
        wake = asyncio.Event()

        async def pump() -> None:
            async for snap in self._source():
                self.connected = True
                latest[:] = [snap]
                wake.set()

        pumper = asyncio.get_running_loop().create_task(pump())
        try:
            while True:
                await wake.wait()
                # Debounce: a burst of changes (a manifest applied) renders once.
                await asyncio.sleep(self.config.debounce)
                wake.clear()
                if pumper.done():
                    pumper.result()  # surface the source's failure
                snap = latest[0]
                try:
                    await self.render(snap)
                except Exception as exc:
                    self.last_error = str(exc)
                    log.exception("render.failed", node=self.node, error=str(exc))
                self.ready.set()
        finally:
            pumper.cancel()

    def render_text(self, plan: NodeBGPPlan) -> str:
        if self.config.target == "bird":
            return render_bird(plan, loopback_next_hops=self.config.loopback_next_hops)
        base = {
            k: v for k, v in self.config.bgpd_base.items() if isinstance(v, (str, int, float, bool))
        }
        return render_bgpd_toml(plan, base)

    def validate(self, text: str) -> None:
        if self.config.target == "bgpd":
            try:
                from_mapping(BgpdConfig, tomllib.loads(text))
            except (tomllib.TOMLDecodeError, ConfigError) as exc:
                raise RenderError(f"rendered bgpd config is invalid: {exc}") from exc
            return
        tmp = self.config.output.with_name(f".{self.config.output.name}.check")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        try:
            out = subprocess.run(
                ["bird", "-p", "-c", str(tmp)],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        finally:
            tmp.unlink(missing_ok=True)
        if out.returncode != 0:
            raise RenderError(f"rendered BIRD config is invalid: {out.stderr.strip()}")

    async def render(self, resources: Sequence[Resource[object]]) -> bool:
        """Render one snapshot; returns True when the file changed (and a reload was asked)."""
        self.renders += 1
        plan = compute_plan(self.node, build_view(resources, self.secrets))
        self.last_plan = plan
        for problem in plan.problems:
            log.warning("plan.problem", resource=problem.resource, reason=problem.reason)
        text = self.render_text(plan)
        path = self.config.output
        with contextlib.suppress(FileNotFoundError):
            if path.read_text() == text:
                return False
        self.validate(text)
        write_atomically(path, text)
        self.writes += 1
        log.info(
            "config.written", path=str(path), peers=len(plan.peers), originate=len(plan.originate)
        )
        await self.reload_target()
        return True

    async def reload_target(self) -> None:
        if self.config.target == "bird":
            proc = await asyncio.create_subprocess_exec(
                "birdc",
                "-s",
                str(self.config.bird_socket),
                "configure",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await proc.communicate()
            if proc.returncode == 0:
                self.reloads += 1
            else:
                log.info("bird.not_reloaded", output=out.decode(errors="replace").strip())
            return
        opts = ClientOptions(connect_deadline=1.0, timeout=10.0)
        try:
            async with RPCClient(f"unix:{self.config.bgpd_socket}", options=opts) as client:
                await client.call("config.reload")
            self.reloads += 1
            log.info("bgpd.reloaded")
        except RPCError as exc:
            if exc.code in ("unavailable", "connection_lost"):
                log.info("bgpd.not_running", detail=exc.message)
            else:
                self.last_error = f"bgpd refused the reload: {exc.message}"
                log.error("bgpd.reload_failed", code=exc.code, error=exc.message)
