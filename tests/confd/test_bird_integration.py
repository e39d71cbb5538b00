"""confd's BIRD renderer against Debian's bird2: three nodes mesh from resources alone.

Each node's config is rendered from the same YAML, BIRD runs on the node's own 127.0.0.x
address (bindMode NodeIP) on a high port, and every node must learn the other nodes' blocks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from confd.render.bird import render_bird
from confd.render.compute import compute_plan
from confd.render.view import build_view
from resources.resource import parse_resource

NODES = {"node-a": "127.0.0.61", "node-b": "127.0.0.62", "node-c": "127.0.0.63"}
BLOCKS = {"node-a": "10.244.1.0/26", "node-b": "10.244.2.0/26", "node-c": "10.244.3.0/26"}
PORT = 21179


def cluster_yaml() -> str:
    docs = [
        "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\n"
        f"spec: {{listenPort: {PORT}, bindMode: NodeIP}}",
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pods}\nspec: {cidr: 10.244.0.0/16}",
    ]
    for name, address in NODES.items():
        docs.append(
            f"apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {{name: {name}}}\n"
            f"spec: {{bgp: {{ipv4Address: {address}/8}}}}"
        )
        block = BLOCKS[name]
        docs.append(
            "apiVersion: projectcalico.org/v3\nkind: BlockAffinity\n"
            f"metadata: {{name: {name}-{block.replace('.', '-').replace('/', '-')}}}\n"
            f"spec: {{state: confirmed, node: {name}, cidr: {block}}}"
        )
    return "\n---\n".join(docs)


@pytest.fixture
def birds(tmp_path: Path) -> Iterator[dict[str, Path]]:
    view = build_view(parse_resource(d) for d in yaml.safe_load_all(cluster_yaml()))
    procs: list[subprocess.Popen[bytes]] = []
    sockets: dict[str, Path] = {}
    try:
        for name in NODES:
            conf = tmp_path / f"{name}.conf"
            conf.write_text(render_bird(compute_plan(name, view), loopback_next_hops=True))
            sock = tmp_path / f"{name}.ctl"
            procs.append(
                subprocess.Popen(
                    [
                        "bird",
                        "-f",
                        "-c",
                        str(conf),
                        "-s",
                        str(sock),
                        "-P",
                        str(tmp_path / f"{name}.pid"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            sockets[name] = sock
        yield sockets
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def birdc(sock: Path, *args: str) -> str:
    out = subprocess.run(
        ["birdc", "-s", str(sock), *args], capture_output=True, text=True, timeout=10, check=False
    )
    return out.stdout


@pytest.mark.slow
@pytest.mark.debian("bird", "birdc")
def test_three_birds_mesh_and_learn_every_block(birds: dict[str, Path]) -> None:
    deadline = time.monotonic() + 60
    missing: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        missing = {}
        for name, sock in birds.items():
            routes = birdc(sock, "show", "route")
            want = [b for n, b in BLOCKS.items() if n != name]
            absent = [b for b in want if b not in routes]
            if absent:
                missing[name] = absent
        if not missing:
            break
        time.sleep(0.5)
    assert not missing, {n: birdc(s, "show", "protocols") for n, s in birds.items()}
    # Both of node-a's mesh sessions are up.
    protocols = birdc(birds["node-a"], "show", "protocols")
    assert protocols.count("Established") == 2
