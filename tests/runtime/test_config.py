"""Config files and flags: types checked, unknown keys refused, every error names its key."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from runtime.config import ConfigError, DaemonConfig, add_flags, from_mapping, load_config


@dataclasses.dataclass(kw_only=True)
class Peer:
    address: str
    remote_as: int
    passive: bool = False


@dataclasses.dataclass(kw_only=True)
class ExampleConfig(DaemonConfig):
    router_id: str = "0.0.0.0"
    local_as: int = 64512
    hold_time: float = 90.0
    socket: Path = Path("/run/tabby/x.sock")
    peers: list[Peer] = dataclasses.field(default_factory=list)
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    password: str | None = None


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_flags(parser, ExampleConfig, "example")
    return parser.parse_args(argv)


def test_file_then_flags(tmp_path: Path) -> None:
    conf = tmp_path / "example.toml"
    conf.write_text(
        'router_id = "10.0.0.1"\nlocal_as = 65001\nuvloop = false\n'
        '[[peers]]\naddress = "127.0.0.2"\nremote_as = 65002\n'
        '[labels]\nzone = "a"\n'
    )
    cfg = load_config(
        ExampleConfig,
        parse(["-c", str(conf), "--local-as", "65009", "--uvloop", "--socket", "/tmp/s"]),
        "example",
    )
    assert cfg.router_id == "10.0.0.1"
    assert cfg.local_as == 65009
    assert cfg.uvloop is True
    assert cfg.socket == Path("/tmp/s")
    assert cfg.peers == [Peer(address="127.0.0.2", remote_as=65002)]
    assert cfg.labels == {"zone": "a"}
    assert cfg.password is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"local_as": "x"}, "local_as: expected an integer, got 'x'"),
        ({"local_as": True}, "local_as: expected an integer, got True"),
        ({"bogus": 1}, "bogus: unknown setting"),
        (
            {"peers": [{"address": "a", "remote_as": 1}, {"address": "b"}]},
            "peers[1].remote_as: required",
        ),
        (
            {"peers": [{"address": "a", "remote_as": "1"}]},
            "peers[0].remote_as: expected an integer",
        ),
        ({"log_level": "loud"}, "log_level: must be one of debug, info, warning, error"),
        ({"metrics_port": 70000}, "metrics_port: 70000 is not a port number"),
        ({"peers": {"address": "a"}}, "peers: expected a list"),
    ],
)
def test_errors_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_mapping(ExampleConfig, data)
    assert message in str(info.value)


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(ExampleConfig, parse(["-c", str(tmp_path / "nope.toml")]), "example")


def test_bad_toml_is_an_error(tmp_path: Path) -> None:
    conf = tmp_path / "bad.toml"
    conf.write_text("router_id = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(ExampleConfig, parse(["-c", str(conf)]), "example")


def test_flag_with_bad_number(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--local-as: expected an integer"):
        load_config(
            ExampleConfig,
            parse(["-c", str(tmp_path / "x"), "--local-as", "abc"])
            if False
            else parse(["--local-as", "abc"]),
            "example",
        )
