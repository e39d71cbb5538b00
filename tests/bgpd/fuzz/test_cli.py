"""`tabbyctl bgp fuzz` end to end against the toy target: exit status, report, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ctl.main import main
from tests.bgpd.fuzz.test_targets import toy_target


@pytest.mark.slow
def test_stateful_replay_reports_the_sequence_and_its_replay_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = toy_target(tmp_path, 133, "keep-routes")
    steps = "announce:0:0;notify"
    argv = ["bgp", "fuzz", str(path), "--replay-steps", steps, "--workdir", str(tmp_path / "w")]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "FINDING [stateful]" in out and "RFC 4271 §8.2.2, §9.2" in out
    assert f"--mode stateful --replay-steps '{steps}'" in out


@pytest.mark.slow
def test_stateful_json_run_on_a_clean_target_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = toy_target(tmp_path, 136)
    argv = ["bgp", "fuzz", str(path), "--mode", "stateful", "--max-examples", "5"]
    argv += ["--seed", "1", "--database", "none", "--workdir", str(tmp_path / "w"), "-o", "json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["mode"] == "stateful" and summary["findings"] == []
    assert summary["steps"] >= 1 and summary["harness_errors"] == []
    assert {lv["role"] for lv in summary["liveness"]} == {"fuzzer", "monitor"}
