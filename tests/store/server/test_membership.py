"""Joining an existing cluster (issue 6: "join an existing one"; thesis §4.2.1 learners): a new
member is added as a learner, catches up from the leader, is promoted to voter, and counts
towards the quorum; removing it shrinks the configuration again. Plus peers over TCP with
mutual TLS (issue 6: "peers talk over TCP with mutual TLS")."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from ipc.certs import CertificateAuthority
from store.client import StoreUnavailableError, prefix_end
from tests.store.server.cluster import Cluster

pytestmark = pytest.mark.slow


async def test_learner_joins_catches_up_and_is_promoted(
    make_cluster: Callable[..., Cluster],
) -> None:
    c = make_cluster(3, snapshot_count=40, snapshot_catchup_entries=5)
    c.start_all()
    await c.wait_leader()
    kv = c.client()
    try:
        for i in range(60):  # past a snapshot, so the learner is sent one (Raft §7)
            await kv.put(b"/j/%02d" % i, b"x")
        await kv.member_add(4, f"unix:{c.root}/m4.peer.sock", name="m4")
        c.start(4, state="existing", cluster=[1, 2, 3, 4])
        solo = c.client([4])
        try:
            for _ in range(200):
                try:
                    r = await solo.range(b"/j/", prefix_end(b"/j/"), serializable=True)
                    if r.count == 60:
                        break
                except StoreUnavailableError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("learner did not catch up")
            for _ in range(100):
                try:
                    members = await kv.member_promote(4)
                    break
                except StoreUnavailableError:
                    await asyncio.sleep(0.2)  # refused until the learner is close enough
            else:
                raise AssertionError("promotion kept being refused")
            assert [(m.id, m.is_learner) for m in members] == [
                (1, False),
                (2, False),
                (3, False),
                (4, False),
            ]
            await kv.put(b"/j/after", b"y")
            r = await solo.range(b"/j/after")  # linearizable read on the new voter
            assert r.kvs and r.kvs[0].value == b"y"
        finally:
            await solo.close()
        members = await kv.member_remove(4)
        assert [m.id for m in members] == [1, 2, 3]
    finally:
        await kv.close()


async def test_peers_over_tcp_with_mutual_tls(make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster(3)
    ca = CertificateAuthority(c.root / "pki")
    for i in c.ids:
        server = ca.issue(f"m{i}", ["127.0.0.1"])
        client = ca.issue(f"m{i}-client", server=False)
        c.peer[i] = f"tls://127.0.0.1:{_free_port()}"
        c.extra[i] = {
            "peer_cert_file": str(server.cert_file),
            "peer_key_file": str(server.key_file),
            "peer_client_cert_file": str(client.cert_file),
            "peer_client_key_file": str(client.key_file),
            "peer_ca_file": str(ca.cert_file),
        }
    c.start_all()
    await c.wait_leader()
    kv = c.client()
    try:
        for i in range(10):
            await kv.put(b"/tls/%d" % i, b"x")
        r = await kv.range(b"/tls/", prefix_end(b"/tls/"), count_only=True)
        assert r.count == 10
    finally:
        await kv.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port
