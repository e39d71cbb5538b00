"""Stateful mode and the KEEPALIVE liveness check.

The step language round-trips; against the toy target a conforming run is clean and the
planted bugs are caught (a stale route after the session ends: shrunk to a minimal sequence
that replays; no KEEPALIVEs: a liveness finding); tabby-bgpd and BIRD run bounded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bgpd.fuzz.engine import Harness, Options, fuzz_stateful, replay_sequence
from bgpd.fuzz.stateful import (
    OPEN_OPTIONS,
    SLOTS,
    VARIANTS,
    StatefulResult,
    Step,
    format_steps,
    parse_steps,
)
from bgpd.fuzz.target import parse_file
from tests.bgpd.fuzz.test_targets import TARGETS, toy_target

STEPS = st.one_of(
    st.builds(
        Step, st.just("announce"), st.integers(0, len(SLOTS) - 1), st.integers(0, VARIANTS - 1)
    ),
    st.builds(Step, st.just("withdraw"), st.integers(0, len(SLOTS) - 1)),
    st.builds(lambda v: Step("drop", 0, v), st.integers(0, len(OPEN_OPTIONS) - 1)),
    st.sampled_from(
        [
            Step(k)
            for k in (
                "keepalive",
                "refresh",
                "notify",
                "collide",
                "monitor-drop",
                "monitor-refresh",
            )
        ]
    ),
)


@given(st.lists(STEPS, max_size=12))
def test_replay_text_round_trips(steps: list[Step]) -> None:
    """The replay command's sequence reads back as exactly the sequence that failed."""
    assert parse_steps(format_steps(steps)) == steps


@pytest.mark.parametrize(
    "text",
    ["jump", "announce:0", "announce:9:0", "announce:0:8", "drop:7", "withdraw:x", "keepalive:1"],
)
def test_bad_replay_text_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_steps(text)


def options(tmp: Path, n: int, budget: float, settle: float = 3.0) -> Options:
    return Options(
        max_examples=n,
        seed=0,
        time_budget=budget,
        database=None,
        workdir=tmp / "work",
        steps=8,
        settle=settle,
    )


def run(
    path: Path, tmp: Path, n: int = 10, budget: float = 20.0, settle: float = 3.0
) -> StatefulResult:
    return fuzz_stateful(parse_file(path), options(tmp, n, budget, settle))


@pytest.mark.slow
def test_clean_toy_target_runs_clean_sequences(tmp_path: Path) -> None:
    """RFC 4271 §3.1, §6.8, §8.2.2, §9.2: a conforming target keeps the model's table."""
    res = run(toy_target(tmp_path, 121), tmp_path, n=15)
    assert res.harness_errors == []
    assert [r.as_dict() for r in res.reports] == []
    assert res.steps >= 30


@pytest.mark.slow
def test_planted_stale_routes_after_session_end_are_caught_shrunk_and_replayed(
    tmp_path: Path,
) -> None:
    """RFC 4271 §8.2.2, §9.2: routes of a session that ended must go; the failing sequence is
    shrunk to an announcement and the end of the session, and its replay fails again."""
    path = toy_target(tmp_path, 124, "keep-routes")
    # The toy answers at once: a short settle time keeps each failing candidate cheap.
    res = run(path, tmp_path, n=60, budget=20, settle=1.0)
    (report,) = res.reports
    kinds = [s.kind for s in report.steps]
    assert len(kinds) <= 3 and "announce" in kinds
    assert kinds[-1] in ("notify", "drop")
    assert report.findings[0].rfc.startswith("RFC 4271 §8.2.2")
    assert "--mode stateful --replay-steps" in report.replay
    again = replay_sequence(parse_file(path), report.steps, options(tmp_path, 1, 20))
    assert again is not None and again.findings[0].rfc == report.findings[0].rfc


def test_liveness_of_a_target_that_never_sends_keepalives(tmp_path: Path) -> None:
    """RFC 4271 §4.4: silence longer than the negotiated Hold Time (3 s) is a finding; the
    clean toy's sessions carry KEEPALIVEs and are measured."""
    for base, bugs in ((127, ("no-keepalive",)), (130, ())):
        path = toy_target(tmp_path, base, *bugs, hold_time=3)
        harness = Harness(parse_file(path), options(tmp_path / str(base), 1, 10))
        try:
            harness.loop.run_until_complete(harness.ensure(True))
            harness.loop.run_until_complete(asyncio.sleep(3.5))
            lv = {x.role: x for x in harness.liveness()}
            sessions = [sp for _, sp in harness.sessions]
        finally:
            harness.close()
        assert set(lv) == {"fuzzer", "monitor"}
        assert all(x.hold_time == 3 for x in lv.values())
        if bugs:
            assert all(x.findings and x.findings[0].rfc == "RFC 4271 §4.4" for x in lv.values())
            assert all(x.hold_gap >= 3.5 for x in lv.values())
        else:
            assert all(len(sp.keepalive_times) >= 2 for sp in sessions)


@pytest.mark.slow
def test_tabby_bgpd_runs_clean_sequences(tmp_path: Path) -> None:
    """tabby-bgpd in stateful mode, bounded: any finding is a bug in bgpd."""
    res = run(TARGETS / "tabby.toml", tmp_path, n=8, budget=25)
    assert res.harness_errors == []
    assert [r.as_dict() for r in res.reports] == []
    assert [f for lv in res.liveness for f in lv.findings] == []
    assert res.steps >= 8


@pytest.mark.slow
@pytest.mark.debian("bird")
def test_bird_runs_sequences_clean_of_harness_errors(tmp_path: Path) -> None:
    """BIRD 2 in stateful mode, bounded: findings are BIRD's behaviour, reported replayable."""
    res = run(TARGETS / "bird.toml", tmp_path, n=15, budget=25)
    assert res.harness_errors == []
    assert res.steps >= 15
    for r in res.reports:
        assert r.findings and "--replay-steps" in r.replay
