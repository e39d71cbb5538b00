"""Fixtures for felixd daemon tests."""

from __future__ import annotations

import time

import pytest

import felixd.daemon


class FakeTime:
    """`time` as felixd.daemon sees it: wall-clock calls pass through, monotonic is the test's,
    so "before" and "after" a deadline are states the test sets, not sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(felixd.daemon, "time", fake)
    return fake
