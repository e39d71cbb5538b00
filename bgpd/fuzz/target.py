"""Fuzz targets: `address[:port]` strings and target files (TOML).

A target file names the speaker under test and the two harness peers::

    address = "127.0.0.11"      # the target's BGP address (127.0.0.0/8 only)
    port = 179
    asn = 65000                 # 0: learn it from the target's OPEN
    router_id = "127.0.0.11"
    hold_time = 30              # what the harness peers offer
    families = ["ipv4", "ipv6"] # what the target is configured for (default ["ipv4"])
    add_path = true             # ADD-PATH for IPv4 unicast, fuzzer -> target -> monitor
    [fuzzer]
    address = "127.0.0.12"
    asn = 65001
    [monitor]
    address = "127.0.0.13"
    asn = 65002
    [command]                   # optional: the harness starts (and restarts) the target
    argv = ["bird", "-f", "-c", "$config", "-s", "$dir/bird.ctl", "-P", "$dir/bird.pid"]
    template = "bird.conf.in"   # rendered with string.Template into $config
    ready_timeout = 15

Template placeholders: `$address $port $asn $router_id $fuzzer_address $fuzzer_asn
$monitor_address $monitor_asn $dir $config $python` ($python: this interpreter). Invariant: every address is in 127.0.0.0/8,
so the fuzzer never sends to anything but loopback.

The target files shipped with Tabby (`bgpd/fuzz/targets/`, package data) are found by name:
`tabbyctl bgp fuzz bird` is `.../targets/bird.toml` wherever the package is installed.
"""

from __future__ import annotations

import ipaddress
import sys
import tomllib
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from string import Template

FAMILIES = ("ipv4", "ipv6")


class TargetError(ValueError):
    """The target specification is unusable."""


@dataclass(frozen=True, slots=True)
class Role:
    address: str
    asn: int


@dataclass(frozen=True, slots=True)
class Command:
    argv: tuple[str, ...]
    template: str | None = None  # template text, already read
    ready_timeout: float = 15.0


@dataclass(frozen=True, slots=True)
class Target:
    address: str
    port: int = 179
    asn: int = 0
    router_id: str = ""
    hold_time: int = 30
    fuzzer: Role = Role("127.0.0.2", 65001)
    monitor: Role = Role("127.0.0.3", 65002)
    command: Command | None = None
    source: str = ""  # what the user typed, for replay commands
    # Address families the target exchanges with both harness peers (RFC 4760): with "ipv6"
    # the speakers negotiate IPv6 unicast and the `ipv6` property runs.
    families: tuple[str, ...] = ("ipv4",)
    # The target does ADD-PATH (RFC 7911) for IPv4 unicast: receives path identifiers from the
    # fuzzer and sends them to the monitor. Then the `add-path` property runs.
    add_path: bool = False

    def values(self, workdir: Path) -> dict[str, str]:
        return {
            "address": self.address,
            "port": str(self.port),
            "asn": str(self.asn),
            "router_id": self.router_id or self.address,
            "fuzzer_address": self.fuzzer.address,
            "fuzzer_asn": str(self.fuzzer.asn),
            "monitor_address": self.monitor.address,
            "monitor_asn": str(self.monitor.asn),
            "dir": str(workdir),
            "config": str(workdir / "target.conf"),
            "python": sys.executable,
        }

    def render(self, workdir: Path) -> tuple[list[str], str | None]:
        """The command line and the rendered config text for a run in `workdir`."""
        if self.command is None:
            raise TargetError("this target has no command")
        values = self.values(workdir)
        argv = [Template(a).substitute(values) for a in self.command.argv]
        text = None
        if self.command.template is not None:
            text = Template(self.command.template).substitute(values)
        return argv, text


def _loopback(address: str, what: str) -> str:
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError as err:
        raise TargetError(f"{what}: {address!r} is not an IPv4 address") from err
    if not ip.is_loopback:
        raise TargetError(f"{what}: {address} is outside 127.0.0.0/8")
    return address


def parse_address(spec: str) -> Target:
    """`127.0.0.x` or `127.0.0.x:port`."""
    host, _, port = spec.partition(":")
    try:
        portnum = int(port) if port else 179
    except ValueError as err:
        raise TargetError(f"bad port in {spec!r}") from err
    return Target(_loopback(host, "target"), portnum, source=spec)


def _role(table: object, default: Role, what: str) -> Role:
    if table is None:
        return default
    if not isinstance(table, dict):
        raise TargetError(f"[{what}] must be a table")
    return Role(
        _loopback(str(table.get("address", default.address)), what),
        int(table.get("asn", default.asn)),
    )


def parse_file(path: Path) -> Target:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise TargetError(f"{path}: {err}") from err
    if "address" not in data:
        raise TargetError(f"{path}: 'address' is required")
    command = None
    cmd = data.get("command")
    if cmd is not None:
        if not isinstance(cmd, dict) or not isinstance(cmd.get("argv"), list):
            raise TargetError(f"{path}: [command] needs argv = [...]")
        template = None
        if "template" in cmd:
            tpath = path.parent / str(cmd["template"])
            try:
                template = tpath.read_text()
            except OSError as err:
                raise TargetError(f"{path}: template {tpath}: {err}") from err
        command = Command(
            tuple(str(a) for a in cmd["argv"]), template, float(cmd.get("ready_timeout", 15.0))
        )
    defaults = Target("127.0.0.1")
    families = data.get("families", ["ipv4"])
    if not isinstance(families, list) or not set(families) <= set(FAMILIES) or not families:
        raise TargetError(f"{path}: families must be a list of {', '.join(FAMILIES)}")
    return Target(
        _loopback(str(data["address"]), "address"),
        int(data.get("port", 179)),
        int(data.get("asn", 0)),
        str(data.get("router_id", "")),
        int(data.get("hold_time", 30)),
        _role(data.get("fuzzer"), defaults.fuzzer, "fuzzer"),
        _role(data.get("monitor"), defaults.monitor, "monitor"),
        command,
        str(path),
        tuple(str(f) for f in families),
        bool(data.get("add_path", False)),
    )


def bundled_targets() -> Path:
    """The directory of target files shipped as package data (pyproject.toml)."""
    where = resources.files("bgpd.fuzz").joinpath("targets")
    if not isinstance(where, Path):  # a zip import: no files to hand to a target command
        raise TargetError(f"bundled targets are not on the file system ({where})")
    return where


def bundled_names() -> list[str]:
    return sorted(p.stem for p in bundled_targets().glob("*.toml"))


def parse_target(spec: str) -> Target:
    """A target file if `spec` names one, else a bundled target's name (`bird`, `frr`, ...),
    else an address."""
    path = Path(spec)
    if path.is_file():
        return parse_file(path)
    name = spec.removesuffix(".toml")
    if "/" not in spec and name in bundled_names():
        # The name as typed stays the source: replay commands then work on any install.
        return replace(parse_file(bundled_targets() / f"{name}.toml"), source=spec)
    if spec.endswith(".toml"):
        return parse_file(path)  # reports the missing file
    return parse_address(spec)
