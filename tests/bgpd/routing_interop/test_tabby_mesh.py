"""Three tabby-bgpd processes in an iBGP full mesh over real sockets (Calico's node-to-node mesh):
every node learns the other two's prefixes, and routes learned over iBGP are not re-advertised
to iBGP peers (RFC 4271 §9.2), so each prefix has exactly one candidate path at each node."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipc import RPCClient
from tests.bgpd.interop.lab import Lab, free_port, tabby_peer, wait_until

NODES = ("127.0.0.111", "127.0.0.112", "127.0.0.113")

pytestmark = [pytest.mark.slow]


def rpc(sock: Path, method: str, *params: object) -> Any:
    async def call() -> object:
        async with RPCClient(f"unix:{sock}") as client:
            return await client.call(method, *params)

    return asyncio.run(call())


def prefix_of(node: str) -> str:
    return f"10.{node.rsplit('.', 1)[1]}.0.0/24"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    lab = Lab(tmp_path_factory.mktemp("mesh"))
    ports = {n: free_port(n) for n in NODES}
    socks = {n: lab.tmp / f"{n}.sock" for n in NODES}
    try:
        for node in NODES:
            peers = "".join(
                tabby_peer(o, ports[o], 65000, local_address=node, peer_type="node-to-node mesh")
                for o in NODES
                if o != node
            )
            conf = lab.tmp / f"{node}.toml"
            conf.write_text(
                f'router_id = "{node}"\nlocal_as = 65000\nuvloop = false\n'
                f'control_socket = "{socks[node]}"\n'
                f'listen = [{{address = "{node}", port = {ports[node]}}}]\n'
                f'originate = ["{prefix_of(node)}"]\n' + peers
            )
            lab.spawn([sys.executable, "-m", "bgpd.main", "-c", str(conf)], f"{node}.log")
        for node in NODES:
            wait_until(socks[node].exists, 10, f"{node} control socket")

        def all_up() -> bool:
            return all(
                r["state"] == "Established" for n in NODES for r in rpc(socks[n], "neighbors")
            )

        wait_until(all_up, 30, "the full mesh")
        yield socks
    finally:
        lab.close()


def test_rfc4271_9_2_full_mesh_every_node_has_the_others_routes_from_their_origin(
    mesh: dict[str, Path],
) -> None:
    for node in NODES:
        for other in NODES:
            if other == node:
                continue

            def learned(node: str = node, other: str = other) -> list[dict[str, Any]]:
                rows: list[dict[str, Any]] = rpc(mesh[node], "rib", prefix_of(other))["routes"]
                return rows

            wait_until(lambda: bool(learned()), 15, f"{other}'s prefix at {node}")
            (row,) = learned()
            assert row["next_hops"] == [other]
            assert row["as_path"] == []  # iBGP: no AS added
            # Not re-advertised by the third node: a single candidate path (§9.2).
            assert row["candidates"] == 1
