from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.store.server.cluster import Cluster


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    made: list[Cluster] = []
    # Unix socket paths are limited to 108 bytes: keep the root short.
    root = Path("/tmp") / f"tabby-store-{tmp_path.name[-24:]}-{id(made) % 10000}"
    root.mkdir(parents=True, exist_ok=True)

    def factory(n: int, **settings: object) -> Cluster:
        c = Cluster(root / f"c{len(made)}", n, **settings)
        c.root.mkdir()
        made.append(c)
        return c

    yield factory
    for c in made:
        c.close()
    shutil.rmtree(root, ignore_errors=True)
