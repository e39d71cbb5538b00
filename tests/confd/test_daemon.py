"""confd's shell: debounced renders, atomic writes only on change, reload of the target."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
import yaml

from confd.daemon import Confd, ConfdConfig, load_secrets, write_atomically
from ipc import RPCServer
from resources.resource import Resource, parse_resource
from runtime.config import ConfigError
from tests.confd.test_plan import BASE


def resources(extra: str = "") -> list[Resource[object]]:
    return [parse_resource(d) for d in yaml.safe_load_all(BASE + extra) if d]


class Feed:
    """A scripted store: pushes snapshots when the test says so."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Sequence[Resource[object]]] = asyncio.Queue()

    async def __call__(self) -> AsyncIterator[Sequence[Resource[object]]]:
        while True:
            yield await self.queue.get()


async def fake_bgpd(path: Path) -> tuple[RPCServer, list[int]]:
    calls: list[int] = []
    server = RPCServer(name="fake-bgpd")

    async def reload() -> dict[str, object]:
        calls.append(1)
        return {"changed": []}

    server.register("config.reload", reload)
    await server.listen(f"unix:{path}")
    return server, calls


async def wait_for(predicate: object, what: str) -> None:
    for _ in range(200):
        if callable(predicate) and predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def test_render_write_reload_and_skip_unchanged(tmp_path: Path) -> None:
    config = ConfdConfig(
        node_name="kube-master",
        output=tmp_path / "bgpd.toml",
        control_socket=tmp_path / "confd.sock",
        bgpd_socket=tmp_path / "bgpd.sock",
        debounce=0.01,
        bgpd_base={"control_socket": str(tmp_path / "bgpd.sock")},
    )
    server, reloads = await fake_bgpd(tmp_path / "bgpd.sock")
    feed = Feed()
    confd = Confd(config, snapshots=feed)
    feed.queue.put_nowait(resources())
    try:
        await asyncio.wait_for(confd.start(), 10)
        written = tomllib.loads(config.output.read_text())
        assert written["router_id"] == "10.192.0.2"
        assert written["control_socket"] == str(tmp_path / "bgpd.sock")
        assert [p["name"] for p in written["peers"]] == [
            "Mesh_10_192_0_3",
            "Mesh_10_192_0_4",
            "Mesh_fd00__3",
        ]
        assert (confd.writes, len(reloads)) == (1, 1)
        # The same resources again: nothing written, nothing reloaded.
        feed.queue.put_nowait(resources())
        await wait_for(lambda: confd.renders == 2, "second render")
        assert (confd.writes, len(reloads)) == (1, 1)
        # A burst of changes renders once (debounce), with the last state.
        feed.queue.put_nowait(
            resources(
                "---\nkind: BGPConfiguration\napiVersion: projectcalico.org/v3\nmetadata: {name: default}\nspec: {asNumber: 65000}\n"
            )
        )
        feed.queue.put_nowait(
            resources(
                "---\nkind: BGPConfiguration\napiVersion: projectcalico.org/v3\nmetadata: {name: default}\nspec: {asNumber: 65001}\n"
            )
        )
        await wait_for(lambda: len(reloads) == 2, "the reload after the burst")
        assert confd.writes == 2
        assert tomllib.loads(config.output.read_text())["local_as"] == 65001
        status = await confd.status_rpc()
        assert status["peers"] == ["Mesh_10_192_0_3", "Mesh_10_192_0_4", "Mesh_fd00__3"]
    finally:
        await confd.stop()
        await server.close()


async def test_bgpd_not_running_is_not_an_error(tmp_path: Path) -> None:
    config = ConfdConfig(
        node_name="kube-node-1",
        output=tmp_path / "out" / "bgpd.toml",
        control_socket=tmp_path / "confd.sock",
        bgpd_socket=tmp_path / "nobody.sock",
        debounce=0.0,
    )
    feed = Feed()
    confd = Confd(config, snapshots=feed)
    feed.queue.put_nowait(resources())
    try:
        await asyncio.wait_for(confd.start(), 10)
        assert config.output.exists() and confd.reloads == 0 and confd.last_error == ""
    finally:
        await confd.stop()


def test_atomic_write_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "f.toml"
    write_atomically(target, "a = 1\n")
    write_atomically(target, "a = 2\n")
    assert target.read_text() == "a = 2\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.toml"]


def test_secrets_file(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    path.write_text('[bgp-secrets]\ntor = "s3cret"\n')
    assert load_secrets(path) == {("bgp-secrets", "tor"): "s3cret"}
    path.write_text("[bgp-secrets]\ntor = 5\n")
    with pytest.raises(ConfigError, match=r"bgp-secrets\.tor must be a string"):
        load_secrets(path)
