"""Boot a debootstrapped Debian 12 tree under `systemd-nspawn -b` to test units for real.

The tree is built once and cached (keyed by its package list) under /var/cache/tabby-tests;
every boot uses `--volatile=overlay`, so nothing a test does is written back. Tabby goes in
with the documented install command, from wheels built on the host (cached by the hash of
pyproject.toml; Tabby's own wheel is rebuilt each run). The container's systemd is driven with
`nsenter -t PID1 -a`, PID1 being the container's init as seen from the host; see
shared/reference/systemd-nspawn-and-cni.md for why (no host D-Bus, no machined here).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path("/var/cache/tabby-tests")
PACKAGES = "systemd,systemd-sysv,dbus,python3,python3-venv,iproute2,procps,nftables"


class ContainerError(RuntimeError):
    pass


def host_mirror() -> str:
    """The Debian mirror the host's own apt uses (no package host is named in code)."""
    sources = [*Path("/etc/apt/sources.list.d").glob("*.sources"), Path("/etc/apt/sources.list")]
    for path in sources:
        if not path.exists():
            continue
        text = path.read_text()
        for m in re.finditer(r"^URIs:\s*(\S+)", text, re.M):
            if "security" not in m.group(1):
                return m.group(1)
        for m in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", text, re.M):
            return m.group(1)
    raise ContainerError("no Debian mirror found in the host's apt sources")


def build_tree() -> Path:
    key = hashlib.sha256(f"bookworm minbase {PACKAGES}".encode()).hexdigest()[:12]
    tree = CACHE / f"bookworm-{key}"
    if (tree / "usr/lib/systemd/systemd").exists():
        return tree
    CACHE.mkdir(parents=True, exist_ok=True)
    for leftover in CACHE.glob(f".build-{key}-*"):
        _remove_tree(leftover)  # an interrupted earlier build
    tmp = CACHE / f".build-{key}-{os.getpid()}"
    try:
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={PACKAGES}",
                "bookworm",
                str(tmp),
                host_mirror(),
            ],
            check=True,
            capture_output=True,
            timeout=900,
        )
    except BaseException:
        _remove_tree(tmp)
        raise
    os.replace(tmp, tree)
    for old in CACHE.glob("bookworm-*"):
        if old != tree:
            _remove_tree(old)  # a tree for an older package list
    return tree


def _remove_tree(path: Path) -> None:
    """Remove a half-built tree: first whatever debootstrap left mounted inside it."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in sorted((m for m in mounts if m.startswith(str(path) + "/")), reverse=True):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def build_wheels() -> Path:
    """Wheels of Tabby and its dependencies for an offline install inside the container."""
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()[:12]
    wheels = CACHE / f"wheels-{key}"
    wheels.mkdir(parents=True, exist_ok=True)
    for old in wheels.glob("tabby-*.whl"):
        old.unlink()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=900,
        cwd=ROOT,
    )
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools' in-tree build leftovers
    return wheels


class Container:
    def __init__(
        self, tree: Path, name: str, network: Sequence[str], binds: Sequence[str] = ()
    ) -> None:
        self.tree = tree
        self.name = name
        self.network = list(network)
        self.binds = list(binds)
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid1 = 0

    def boot(self, timeout: float = 60.0) -> None:
        args = [
            "systemd-nspawn",
            "-D",
            str(self.tree),
            "-b",
            "--register=no",
            "--keep-unit",
            "-M",
            self.name,
            "--volatile=overlay",
            "--console=read-only",
            *self.network,
            *(f"--bind-ro={b}" for b in self.binds),
        ]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ContainerError(f"systemd-nspawn exited with {self.proc.returncode}")
            self.pid1 = self._find_pid1()
            if self.pid1:
                state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
                if state in ("running", "degraded"):
                    return
            time.sleep(0.2)
        raise ContainerError(f"container {self.name} did not reach running in {timeout:.0f} s")

    def _find_pid1(self) -> int:
        assert self.proc is not None
        my_ns = os.readlink("/proc/self/ns/pid")
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for pid in children.read_text().split():
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                if comm == "systemd" and os.readlink(f"/proc/{pid}/ns/pid") != my_ns:
                    return int(pid)
        return 0

    def run(
        self, *cmd: str, check: bool = True, timeout: float = 120.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        if not self.pid1:
            raise ContainerError("container not booted")
        out = subprocess.run(
            ["nsenter", "-t", str(self.pid1), "-a", *cmd],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=input,
        )
        if check and out.returncode != 0:
            raise ContainerError(
                f"{' '.join(cmd)} failed ({out.returncode}): {out.stdout}{out.stderr}"
            )
        return out

    def write(self, path: str, text: str) -> None:
        self.run("sh", "-c", f"mkdir -p \"$(dirname '{path}')\" && cat > '{path}'", input=text)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.run("systemctl", "show", unit, *(f"-p{p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_active(self, unit: str, timeout: float = 60.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        props: dict[str, str] = {}
        while time.monotonic() < deadline:
            props = self.show(unit, "ActiveState", "SubState", "StatusText", "MainPID", "NRestarts")
            if props.get("ActiveState") == "active" and props.get("SubState") == "running":
                return props
            time.sleep(0.2)
        journal = self.run(
            "journalctl", "-u", unit, "-o", "cat", "--no-pager", "-n", "30", check=False
        ).stdout
        raise ContainerError(f"{unit} not active: {props}\n{journal}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.pid1 and self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.run("systemctl", "poweroff", check=False, timeout=10)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
