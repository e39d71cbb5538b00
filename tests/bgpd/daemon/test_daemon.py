"""tabby-bgpd in process on 127.0.0.x high ports: establishment, unknown peers, reload matrix,
control API, TCP-MD5 (RFC 2385), GTSM (RFC 5082) and `tabbyctl node status`."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from bgpd.core.effects import DownKind
from bgpd.core.events import State
from bgpd.daemon.sockets import IP_MINTTL, connecting_socket, set_min_ttl
from bgpd.daemon.speaker import Speaker
from bgpd.wire.errors import (
    ADMINISTRATIVE_RESET,
    ADMINISTRATIVE_SHUTDOWN,
    CEASE,
    OTHER_CONFIGURATION_CHANGE,
)
from ctl import node
from ipc import RPCClient
from ipc.errors import RPCError
from tests.bgpd.daemon.conftest import SpeakerFactory, config, free_port, peer, wait_for

A, B = "127.0.0.2", "127.0.0.3"


def runner_of(sp: Speaker) -> Any:
    (r,) = sp.peers.values()
    return r


def up(sp: Speaker) -> bool:
    return all(r.core.state is State.ESTABLISHED for r in sp.peers.values())


async def mesh_pair(
    tmp: Path,
    speakers: SpeakerFactory,
    a_peer: dict[str, Any] | None = None,
    b_peer: dict[str, Any] | None = None,
    **extra: Any,
) -> tuple[Speaker, Speaker, int, int]:
    pa, pb = free_port(A), free_port(B)
    a = await speakers(
        config(
            tmp,
            A,
            pa,
            [peer(B, pb, local_address=A, peer_type="node-to-node mesh", **(a_peer or {}))],
            **extra,
        )
    )
    b = await speakers(
        config(
            tmp,
            B,
            pb,
            [peer(A, pa, local_address=B, peer_type="node-to-node mesh", **(b_peer or {}))],
            **extra,
        )
    )
    await wait_for(lambda: up(a) and up(b))
    return a, b, pa, pb


async def test_mesh_pair_establishes_and_greater_address_connects(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    a, b, _, _ = await mesh_pair(tmp_path, speakers, originate=[])
    # Calico: A (127.0.0.2) is passive toward the greater 127.0.0.3, so B's connection is used.
    assert runner_of(a).core.params.passive and not runner_of(b).core.params.passive
    assert not runner_of(a).core.primary.outbound and runner_of(b).core.primary.outbound


async def test_originated_prefixes_are_counted_by_the_peer(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    pa, pb = free_port(A), free_port(B)
    a = await speakers(
        config(
            tmp_path,
            A,
            pa,
            [peer(B, pb, local_address=A)],
            originate=["10.2.0.0/24", "10.2.1.0/24"],
        )
    )
    b = await speakers(config(tmp_path, B, pb, [peer(A, pa, local_address=B, passive=True)]))
    await wait_for(lambda: up(a) and up(b))
    await wait_for(lambda: b.sink.prefix_counts(runner_of(b).config.key).get("ipv4") == 2)


async def test_unknown_source_is_closed_without_touching_sessions(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    a, _b, pa, _ = await mesh_pair(tmp_path, speakers)
    before = runner_of(a).core.primary.established_count
    reader, writer = await asyncio.open_connection(A, pa, local_addr=("127.0.0.9", 0))
    assert await asyncio.wait_for(reader.read(100), 5) == b""  # closed at once, nothing sent
    writer.close()
    assert a.unknown_connections == 1
    assert up(a) and runner_of(a).core.primary.established_count == before


async def test_rfc4271_keepalives_keep_hold_time_3_sessions_up(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    a, b, _, _ = await mesh_pair(tmp_path, speakers)
    await asyncio.sleep(7.0)  # more than two hold times of 3 s
    assert up(a) and up(b)
    assert runner_of(a).core.primary.established_count == 1


async def test_reload_matrix_hot_soft_reset_and_rename_without_flap(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    a, b, pa, pb = await mesh_pair(tmp_path, speakers)
    ra, rb = runner_of(a), runner_of(b)
    base = a.config
    p0 = base.peers[0]

    # Hot: description, name and peer type (mesh -> node specific) do not flap (issue #3819).
    hot = dataclasses.replace(
        base,
        peers=[
            dataclasses.replace(
                p0, description="x", name="Node_b", peer_type="node specific", passive=True
            )
        ],
    )
    summary = await a.apply_config(hot)
    assert summary["hot"] == ["Node_b"]
    # Soft: next-hop self re-sends the Adj-RIB-Out, the session stays.
    soft = dataclasses.replace(hot, peers=[dataclasses.replace(hot.peers[0], next_hop="self")])
    summary = await a.apply_config(soft)
    assert summary["soft"] == ["Node_b"]
    assert ra.core.primary.established_count == 1 and up(a)
    # Reset: the hold time is carried by the OPEN; the peer sees Cease / Other Configuration Change.
    reset = dataclasses.replace(soft, peers=[dataclasses.replace(soft.peers[0], hold_time=6)])
    summary = await a.apply_config(reset)
    assert summary["reset"] == ["Node_b"]
    await wait_for(lambda: rb.core.primary.established_count == 2 and up(a) and up(b))
    err = [e for e in rb.core.primary.messages_in if e]  # messages were counted
    assert err
    assert ra.core.primary.negotiated is not None and ra.core.primary.negotiated.hold_time == 3
    down = rb.last_down
    assert down is not None and (down.code, down.subcode) == (CEASE, OTHER_CONFIGURATION_CHANGE)
    assert ra.core.primary.last_error is None
    del pa, pb


async def test_failed_reload_changes_nothing(tmp_path: Path, speakers: SpeakerFactory) -> None:
    a, _b, _, _ = await mesh_pair(tmp_path, speakers)
    cfg_file = tmp_path / "a.toml"
    cfg_file.write_text(
        'router_id = "127.0.0.2"\nlocal_as = 65000\n[[peers]]\naddress = "127.0.0.3"\nremote_as = 65000\nhold_time = 2\n'
    )
    from bgpd.daemon.config import BgpdConfig
    from runtime.config import ConfigError, from_mapping

    def loader() -> BgpdConfig:
        import tomllib

        return from_mapping(BgpdConfig, tomllib.loads(cfg_file.read_text()))

    a.loader = loader
    async with RPCClient(f"unix:{a.config.control_socket}") as client:
        with pytest.raises(RPCError) as info:
            await client.call("config.reload")
    assert info.value.code == "config" and "peers[0].hold_time" in info.value.message
    assert up(a) and runner_of(a).core.primary.established_count == 1
    with pytest.raises(ConfigError):
        loader()


async def test_control_api_hard_reset_and_rfc9003_shutdown(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    a, b, _, _ = await mesh_pair(tmp_path, speakers)
    rb = runner_of(b)
    async with RPCClient(f"unix:{a.config.control_socket}") as client:
        assert await client.call("neighbor.reset", B, "hard", "rekey") == 1
        await wait_for(lambda: rb.core.primary.established_count == 2 and up(a) and up(b))
        down = rb.last_down
        # Both sides sent the RFC 8538 N bit: the reset goes out inside a Hard Reset (§5), so
        # B flushes A's routes instead of keeping them stale; the cause travels inside it.
        assert down is not None and (down.code, down.subcode) == (CEASE, ADMINISTRATIVE_RESET)
        assert down.hard_reset and down.communication == "rekey"
        assert await client.call("neighbor.reset", B, "soft") == 1
        assert await client.call("neighbor.shutdown", B, "planned maintenance") == 1
        await wait_for(lambda: rb.core.state is not State.ESTABLISHED)
        err = rb.core.primary.last_error
        assert err is not None and err.kind is DownKind.NOTIFICATION_RECEIVED
        assert (err.code, err.subcode, err.communication, err.hard_reset) == (
            CEASE,
            ADMINISTRATIVE_SHUTDOWN,
            "planned maintenance",
            True,
        )
        rows = await client.call("neighbors")
        assert isinstance(rows, list) and rows[0]["bird_state"] == "down"
        with pytest.raises(RPCError) as info:
            await client.call("neighbor.reset", "192.0.2.1")
        assert info.value.code == "not_found"
        assert await client.call("neighbor.enable", B) == 1
        await wait_for(lambda: up(a) and up(b))
        status = await client.call("status")
        assert isinstance(status, dict) and status["states"] == {"Established": 1}

    # tabbyctl node status on B shows why A's session went down, with the RFC 9003 text.
    out = io.StringIO()
    args = node_args(b.config.control_socket, "table")
    await asyncio.to_thread(node.status_command, args, out)
    text = out.getvalue()
    assert "IPv4 BGP status" in text and "No IPv6 peers found." in text
    assert (
        f"| {A}:{a.config.listen[0].port} " in text
        and "node-to-node mesh" in text
        and "Established" in text
    )
    out = io.StringIO()
    await asyncio.to_thread(node.status_command, node_args(b.config.control_socket, "json"), out)
    data = json.loads(out.getvalue())
    assert data["running"] and data["peers"][0]["state"] == "Established"


def node_args(sock: Path, output: str) -> Any:
    import argparse

    return argparse.Namespace(socket=str(sock), output=output)


async def test_node_status_shows_the_notification_that_refused_the_session(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    pa, pb = free_port(A), free_port(B)
    a = await speakers(
        config(tmp_path, A, pa, [peer(B, pb, local_address=A, remote_as=65099, passive=True)])
    )
    b = await speakers(config(tmp_path, B, pb, [peer(A, pa, local_address=B)]))
    await wait_for(
        lambda: (
            runner_of(b).core.primary.last_error is not None
            and runner_of(b).core.primary.last_error.code == 2
        )
    )
    out = io.StringIO()
    await asyncio.to_thread(node.status_command, node_args(b.config.control_socket, "table"), out)
    assert "NOTIFICATION received: OPEN Message Error / Bad Peer AS" in out.getvalue()
    out = io.StringIO()
    await asyncio.to_thread(node.status_command, node_args(a.config.control_socket, "table"), out)
    assert "NOTIFICATION sent: OPEN Message Error / Bad Peer AS" in out.getvalue()


def test_node_status_when_daemon_is_not_running(tmp_path: Path) -> None:
    out = io.StringIO()
    assert node.status_command(node_args(tmp_path / "none.sock", "table"), out) == 1
    assert "not running" in out.getvalue()


async def test_rfc2385_tcp_md5_matching_keys_establish(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    await mesh_pair(
        tmp_path, speakers, a_peer={"password": "s3cret"}, b_peer={"password": "s3cret"}
    )


async def test_rfc2385_tcp_md5_mismatch_never_establishes(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    pa, pb = free_port(A), free_port(B)
    a = await speakers(
        config(tmp_path, A, pa, [peer(B, pb, local_address=A, password="one", passive=True)])
    )
    b = await speakers(config(tmp_path, B, pb, [peer(A, pa, local_address=B, password="two")]))
    with pytest.raises(AssertionError):
        await wait_for(lambda: up(a) or up(b), timeout=2.0)
    assert runner_of(a).core.primary.established_count == 0


async def test_rfc5082_gtsm_sessions_establish_and_sockets_carry_min_ttl(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    await mesh_pair(
        tmp_path, speakers, a_peer={"ttl_security": True}, b_peer={"ttl_security": True}
    )
    sock = connecting_socket(B, A, "", True)
    try:
        assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_TTL) == 255
        set_min_ttl(sock)
        assert sock.getsockopt(socket.IPPROTO_IP, IP_MINTTL) == 255
    finally:
        sock.close()


def test_sighup_reloads_the_file_and_a_bad_file_changes_nothing(tmp_path: Path) -> None:
    """The real daemon (`python -m bgpd.main`): SIGHUP applies the edited file; a file that
    fails validation is refused and the running configuration stays."""
    import signal
    import subprocess
    import sys
    import time

    port = free_port(A)
    sock = tmp_path / "bgpd.sock"
    conf = tmp_path / "bgpd.toml"

    def write(description: str, hold: int) -> None:
        conf.write_text(
            f'router_id = "{A}"\nlocal_as = 65000\nuvloop = false\ncontrol_socket = "{sock}"\n'
            f'listen = [{{address = "{A}", port = {port}}}]\n'
            f'[[peers]]\naddress = "{B}"\nport = {port}\nremote_as = 65000\npassive = true\n'
            f'description = "{description}"\nhold_time = {hold}\n'
        )

    def rows() -> list[dict[str, Any]]:
        async def call() -> Any:
            async with RPCClient(f"unix:{sock}") as client:
                return await client.call("neighbors")

        return list(asyncio.run(call()))

    def wait(cond: Any) -> None:
        for _ in range(200):
            if cond():
                return
            time.sleep(0.05)
        raise AssertionError("condition not met in time")

    write("first", 90)
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bgpd.main", "-c", str(conf)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait(sock.exists)
        assert rows()[0]["description"] == "first"
        write("second", 90)
        proc.send_signal(signal.SIGHUP)
        wait(lambda: rows()[0]["description"] == "second")
        write("third", 2)  # invalid hold time: the reload fails
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert rows()[0]["description"] == "second"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"peers[0].hold_time" in err


async def test_ipv6_transport_with_md5_and_gtsm(tmp_path: Path, speakers: SpeakerFactory) -> None:
    """IPv6 sockets: sockaddr_in6 in the TCP-MD5 key, IPV6_MINHOPCOUNT, an IPv6 listener."""
    p1, p2 = free_port("::1"), free_port("::1")
    opts = {"password": "v6-secret", "ttl_security": True}
    a = await speakers(
        config(tmp_path, A, p1, [peer("::1", p2, **opts)], listen=[{"address": "::1", "port": p1}])
    )
    b = await speakers(
        config(
            tmp_path,
            B,
            p2,
            [peer("::1", p1, passive=True, **opts)],
            listen=[{"address": "::1", "port": p2}],
        )
    )
    await wait_for(lambda: up(a) and up(b))
    assert runner_of(a).core.primary.negotiated.families == ((2, 1),)
