"""tabby-confd as a real process against a real store: resources applied with tabbyctl become
this node's bgpd configuration, and later changes re-render it."""

from __future__ import annotations

import asyncio
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctl.cluster.procs import NotifyListener, ProcessRecord, spawn, stop
from ctl.main import main as tabbyctl
from tests.confd.test_plan import BASE
from tests.store_process import ROOT, start_store, stop_all


@pytest.fixture
def store_and_confd(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    stores = asyncio.run(start_store(tmp_path))
    endpoint = f"unix:{tmp_path}/store-1.sock"
    output = tmp_path / "bgpd.toml"
    conf = tmp_path / "confd.toml"
    conf.write_text(
        f'node_name = "kube-master"\nstore_endpoints = ["{endpoint}"]\noutput = "{output}"\n'
        f'control_socket = "{tmp_path}/confd.sock"\nbgpd_socket = "{tmp_path}/bgpd.sock"\n'
        "debounce = 0.05\n"
    )
    rec = ProcessRecord(
        "kube-master",
        "confd",
        [sys.executable, "-m", "confd.main", "-c", str(conf)],
        str(tmp_path / "confd.log"),
    )
    listener = NotifyListener(tmp_path / "notify-confd.sock")
    try:
        proc = spawn(rec, {"PYTHONPATH": str(ROOT)}, listener.path)
        asyncio.run(listener.wait_ready(proc, rec, 30))
        yield endpoint, output
    finally:
        listener.close()
        stop(rec)
        stop_all(stores)


def wait_for_peers(output: Path, want: list[str]) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if output.exists():
            got = [p["name"] for p in tomllib.loads(output.read_text()).get("peers", [])]
            if got == want:
                break
        time.sleep(0.1)
    return got


@pytest.mark.slow
def test_resources_become_bgpd_config(store_and_confd: tuple[str, Path], tmp_path: Path) -> None:
    endpoint, output = store_and_confd
    manifest = tmp_path / "cluster.yaml"
    manifest.write_text(BASE)
    assert tabbyctl(["apply", "-f", str(manifest), "--store", endpoint]) == 0
    assert wait_for_peers(output, ["Mesh_10_192_0_3", "Mesh_10_192_0_4", "Mesh_fd00__3"]) == [
        "Mesh_10_192_0_3",
        "Mesh_10_192_0_4",
        "Mesh_fd00__3",
    ]
    assert tomllib.loads(output.read_text())["originate"] == ["192.168.10.0/26"]
    # Turning the mesh off and adding a global peer re-renders.
    change = tmp_path / "change.yaml"
    change.write_text(
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n"
        "spec: {nodeToNodeMeshEnabled: false}\n---\n"
        "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: tor}\n"
        "spec: {peerIP: 10.192.0.1, asNumber: 65001}\n"
    )
    assert tabbyctl(["apply", "-f", str(change), "--store", endpoint]) == 0
    assert wait_for_peers(output, ["Global_10_192_0_1"]) == ["Global_10_192_0_1"]
