"""Target files: shipped as package data and found by name (no daemon needed)."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from importlib import resources
from pathlib import Path

import pytest

from bgpd.fuzz.target import TargetError, bundled_names, bundled_targets, parse_target

ROOT = Path(__file__).resolve().parents[3]


def test_bundled_targets_resolve_via_importlib_resources() -> None:
    """The directory `tabbyctl bgp fuzz NAME` reads is the package's own `targets/`."""
    where = resources.files("bgpd.fuzz").joinpath("targets")
    assert where.joinpath("bird.toml").is_file()
    assert bundled_targets() == where
    assert {"bird", "frr", "gobgp", "exabgp", "tabby"} <= set(bundled_names())


def test_every_target_file_is_declared_package_data() -> None:
    """pyproject.toml ships every file under bgpd/fuzz/targets (a wheel would miss the rest)."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = data["tool"]["setuptools"]["package-data"]["bgpd.fuzz"]
    files = sorted(p.name for p in (ROOT / "bgpd" / "fuzz" / "targets").iterdir() if p.is_file())
    assert files
    missing = [f for f in files if not any(fnmatch(f"targets/{f}", g) for g in globs)]
    assert missing == []


def test_a_bundled_name_parses_with_its_template_and_keeps_the_name_for_replay() -> None:
    t = parse_target("bird")
    assert t.address == "127.0.0.31" and t.command is not None and t.command.template
    assert t.source == "bird"
    assert parse_target("bird.toml").source == "bird.toml"


def test_addresses_and_missing_files_are_not_names() -> None:
    assert parse_target("127.0.0.9:1179").port == 1179
    with pytest.raises(TargetError):
        parse_target("nonexistent-target.toml")
    with pytest.raises(TargetError):
        parse_target("10.0.0.1")  # outside 127.0.0.0/8
