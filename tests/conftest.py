"""Test-wide settings: hypothesis profiles and the markers that need root or Debian packages.

The `gate` profile is derandomized so CI is repeatable; `hunt` runs long and random by hand
(`HYPOTHESIS_PROFILE=hunt ./dev test -k ...`), and what it finds becomes a fixed `@example`.
"""

from __future__ import annotations

import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "gate",
    derandomize=True,
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "hunt",
    derandomize=False,
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "gate"))


def pytest_runtest_setup(item: pytest.Item) -> None:
    needs_root = item.get_closest_marker("root") or item.get_closest_marker("netns")
    if needs_root and os.geteuid() != 0:
        pytest.skip("needs root (CI runs as root)")
    for mark in item.iter_markers("debian"):
        for binary in mark.args:
            if shutil.which(binary) is None and not os.path.exists(binary):
                pytest.skip(f"needs {binary!r} from Debian (the test command installs it)")
