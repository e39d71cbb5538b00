"""Daemon configuration: a TOML file per daemon, every scalar key overridable by a flag.

Each daemon declares its settings as a dataclass (subclassing `DaemonConfig`); this module
loads ``/etc/tabby/<daemon>.toml`` into it with type checks, derives ``--flag`` options
from the same fields, and reports any mistake with the path of the offending key
(``peers[2].remote_as: expected an integer, got 'x'``). Unknown keys are refused rather
than ignored, so a typo never silently leaves a default in place.
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is missing, mistyped or out of range; names the key."""


@dataclasses.dataclass(kw_only=True)
class DaemonConfig:
    """Settings every Tabby daemon shares."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["kv", "json"] = "kv"
    uvloop: bool = True  # use uvloop when installed (never for netlink work)
    run_dir: Path = Path("/run/tabby")  # sockets
    state_dir: Path = Path("/var/lib/tabby")  # persistent state
    metrics_address: str = "127.0.0.1"
    metrics_port: int = 0  # 0: the Prometheus endpoint is off
    stop_timeout: float = 10.0  # SIGTERM: seconds to stop cleanly before a forced exit

    def validate(self) -> None:
        """Cross-field checks; subclasses extend and raise ConfigError naming the key."""
        if not 0 <= self.metrics_port < 65536:
            raise ConfigError(f"metrics_port: {self.metrics_port} is not a port number")
        if self.stop_timeout <= 0:
            raise ConfigError("stop_timeout: must be positive")


def _type_name(tp: object) -> str:
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "a boolean",
        Path: "a path",
    }
    if isinstance(tp, type) and tp in names:
        return names[tp]
    return str(tp)


def _coerce(value: object, tp: Any, where: str) -> object:
    origin = get_origin(tp)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            raise ConfigError(
                f"{where}: must be one of {', '.join(map(str, choices))}, got {value!r}"
            )
        return value
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: no type matches {value!r}")
    if origin in (list, tuple, Sequence):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_tp, *_) = get_args(tp) or (object,)
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        _, val_tp = get_args(tp) or (str, object)
        return {str(k): _coerce(v, val_tp, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return from_mapping(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected a boolean, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a path, got {value!r}")
        return Path(value)
    if tp is object:
        return value
    raise ConfigError(f"{where}: unsupported setting type {_type_name(tp)}")


def from_mapping(cls: type[T], data: Mapping[str, object], where: str = "") -> T:
    """Build dataclass `cls` from a parsed TOML table, checking every key and type."""
    assert dataclasses.is_dataclass(cls)
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, object] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        path = f"{where}.{key}" if where else key
        if name not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{path}: unknown setting (known here: {known})")
        kwargs[name] = _coerce(value, hints[name], path)
    missing = [
        name
        for name, f in fields.items()
        if name not in kwargs
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"{prefix}{missing[0]}: required setting is missing")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


def _scalar_fields(cls: type) -> list[tuple[str, Any]]:
    hints = get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        base = tp
        if get_origin(tp) in (typing.Union, types.UnionType):
            non_none = [a for a in get_args(tp) if a is not type(None)]
            base = non_none[0] if len(non_none) == 1 else None
        if base in (int, float, str, bool, Path) or get_origin(base) is Literal:
            out.append((f.name, base))
    return out


def add_flags(parser: argparse.ArgumentParser, cls: type, daemon: str) -> None:
    """Add ``-c/--config`` and one ``--key`` flag per scalar setting of `cls`."""
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=None,
        help=f"TOML config file (default /etc/tabby/{daemon}.toml if it exists)",
    )
    group = parser.add_argument_group("settings (override the config file)")
    for name, base in _scalar_fields(cls):
        flag = "--" + name.replace("_", "-")
        if base is bool:
            group.add_argument(flag, dest=f"set_{name}", action=argparse.BooleanOptionalAction)
        elif get_origin(base) is Literal:
            group.add_argument(flag, dest=f"set_{name}", choices=get_args(base))
        else:
            group.add_argument(flag, dest=f"set_{name}", type=str, metavar=name.upper())


def load_config(cls: type[T], args: argparse.Namespace, daemon: str) -> T:
    """Read the config file named by the flags (or the default), then apply flag overrides."""
    explicit: Path | None = args.config
    path = explicit or Path(f"/etc/tabby/{daemon}.toml")
    data: dict[str, object] = {}
    if path.exists():
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from exc
    elif explicit is not None:
        raise ConfigError(f"{path}: no such config file")
    for name, base in _scalar_fields(cls):
        raw = getattr(args, f"set_{name}", None)
        if raw is None:
            continue
        if base is int:
            try:
                data[name] = int(raw)
            except ValueError:
                raise ConfigError(f"--{name.replace('_', '-')}: expected an integer") from None
        elif base is float:
            try:
                data[name] = float(raw)
            except ValueError:
                raise ConfigError(f"--{name.replace('_', '-')}: expected a number") from None
        else:
            data[name] = raw
    try:
        return from_mapping(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
