"""A member whose WAL write fails (a full disk), in process: what its clients are told.

The multi-process version with a real full tmpfs is test_full_disk.py (root). Here the WAL's
`save` is held while requests queue up behind it and then fails with ENOSPC, so the test
decides which requests were proposed before the failure and which only queued.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from ipc import RPCClient, RPCError, RPCServer
from store.kv import PutRequest, RangeRequest, encode_request
from store.raft import Message
from store.server.api import MEMBER_UNAVAILABLE, NOT_EXECUTED, OUTCOME_UNKNOWN, StoreAPI
from store.server.config import StoreConfig
from store.server.member import Member
from store.server.transport import PeerTransport
from store.wal import WAL
from tests.store.server.by_hand import elect_member_1, three_member_config, until


class _NoPeers:
    def __init__(self) -> None:
        self.blocked: set[int] = set()

    def set_peers(self, endpoints: dict[int, str]) -> None:
        pass

    def send(self, messages: tuple[Message, ...] | list[Message]) -> None:
        pass

    def client(self, member_id: int) -> None:
        return None


class _FullWAL:
    """A WAL whose next save waits for `fill`, then fails as a full disk does."""

    def __init__(self, wal: WAL) -> None:
        self._wal = wal
        self.fill = threading.Event()
        self.entered = 0

    def save(self, *args: object) -> None:
        self.entered += 1
        assert self.fill.wait(20), "the test never filled the disk"
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> object:
        return getattr(self._wal, name)


class _Sink:
    def __init__(self) -> None:
        self.items: list[object] = []

    def send(self, item: object) -> None:
        self.items.append(item)


def _events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "tabby_event", r.getMessage()) == name]


async def test_a_failed_member_answers_at_once_that_nothing_was_proposed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The proposal in the failed write is outcome-unknown; a write and a read that only
    queued behind it are answered at once (not at the request timeout) with
    `member_unavailable`, as is every later request, naming the cause; watch streams end so
    their clients resume elsewhere; the cause is logged once, with no traceback per request."""
    caplog.set_level(logging.INFO)
    cfg = StoreConfig(
        id=1,
        data_dir=tmp_path / "d",
        peer_endpoint="unix:/nonexistent/peer",
        request_timeout=60.0,  # longer than any wait below: "at once" cannot be the timeout
        wal_inline_entries=0,  # saves in the executor, so the test can hold one mid-write
    )
    m = Member(cfg, cast(PeerTransport, _NoPeers()))
    await m.open()
    m.start()
    server = RPCServer(name="store-test")
    api = StoreAPI(m)
    api.register_client(server)
    await server.listen(f"unix:{tmp_path}/client.sock")
    client = RPCClient(f"unix:{tmp_path}/client.sock")
    loop = asyncio.get_running_loop()

    async def until(check: Callable[[], bool]) -> None:
        deadline = loop.time() + 20
        while not check():
            assert loop.time() < deadline, "not reached"
            await asyncio.sleep(0.005)

    def call(method: str, *params: object) -> asyncio.Future[object]:
        return asyncio.ensure_future(client.call(method, *params, timeout=40))

    full = _FullWAL(cast(WAL, m._wal))
    try:
        await client.connect()
        await until(lambda: m.is_leader and m.applied_index == m.node.commit_index)
        assert await client.call("kv.write", encode_request(PutRequest(b"before", b"1")))
        sink = _Sink()
        watch = asyncio.ensure_future(api.watch(sink, b"w"))  # type: ignore[arg-type]
        await until(lambda: bool(m.watches))

        m._wal = cast(WAL, full)
        proposed = call("kv.write", encode_request(PutRequest(b"a", b"1")))
        await until(lambda: full.entered == 1)  # its entry is being written
        queued = call("kv.write", encode_request(PutRequest(b"b", b"2")))
        read = call("kv.range", encode_request(RangeRequest(b"a")), False)
        await until(lambda: bool(m._cmds.proposals) and bool(m._cmds.reads))
        full.fill.set()

        answers = await asyncio.wait_for(
            asyncio.gather(proposed, queued, read, return_exceptions=True), 20
        )
        codes = [a.code if isinstance(a, RPCError) else a for a in answers]
        assert codes == [OUTCOME_UNKNOWN, MEMBER_UNAVAILABLE, MEMBER_UNAVAILABLE]
        await asyncio.wait_for(watch, 20)  # the watch stream ended

        for method, params in (
            ("kv.write", (encode_request(PutRequest(b"c", b"3")),)),
            ("kv.range", (encode_request(RangeRequest(b"a")), False)),
            ("lease.keepalive", (7,)),
        ):
            with pytest.raises(RPCError) as later:
                await asyncio.wait_for(client.call(method, *params, timeout=40), 20)
            assert later.value.code == MEMBER_UNAVAILABLE, method
            assert "No space left on device" in later.value.message
            assert "not proposed" in later.value.message
        assert MEMBER_UNAVAILABLE in NOT_EXECUTED  # a forwarding follower retries, not fails

        assert len(_events(caplog, "member.failed")) == 1
        assert not _events(caplog, "handler.failed")
        assert sum(1 for r in caplog.records if r.exc_info) == 1
    finally:
        full.fill.set()
        await client.close()
        await server.close()
        await m.stop()


async def test_a_leadership_transfer_waiting_on_a_member_that_fails_ends_at_once(
    tmp_path: Path,
) -> None:
    """A transfer waits for leadership to move; if the member fails meanwhile (its loop dies
    while it still believes it leads), the wait ends with `member_unavailable` instead of
    lasting for ever (the leader will never see the transfer finish)."""
    m = Member(three_member_config(tmp_path), cast(PeerTransport, _NoPeers()))
    await m.open()
    m.start()
    try:
        await elect_member_1(m)
        # Member 3 never answers, so the transfer to it cannot finish by itself.
        transfer = asyncio.ensure_future(m.transfer_leadership(3))
        await until(lambda: m.node.lead_transferee == 3)
        assert not transfer.done()

        def broken_tick() -> None:
            raise OSError(errno.EIO, "Input/output error")

        m.node.tick = broken_tick  # type: ignore[method-assign]
        with pytest.raises(RPCError) as ended:
            await asyncio.wait_for(transfer, 10)
        assert ended.value.code == MEMBER_UNAVAILABLE
        assert m.is_leader  # it still believes it leads: only the failure ended the wait
    finally:
        await m.stop()
