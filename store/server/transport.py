"""Peer transport: Raft messages between members over the shared ipc package.

Each member serves `raft.step` (a batch of `store.raft.to_wire` messages) on its peer endpoint,
TCP with mutual TLS between hosts or a Unix socket in a local cluster, as a one-way msgpack-RPC
notification: like etcd's stream transport, nothing acknowledges a message (Raft's own
responses do that), and an answer frame per batch would wake the sender for nothing — on a
virtual machine each such wake-up costs more than the Raft work it carries. Peers must run the
same release: an older member neither sends nor understands these notifications. Outbound,
`send` writes one frame per peer straight into that peer's connection, on the caller's stack,
with no task hop (the member decides when to call it: a leader's new entries before its own
WAL write). Only when the connection is down or its write buffer is over the high-water mark
do messages wait in a queue, which one sender task per peer drains once it has (re)connected
or the buffer has drained.

Raft tolerates lost, duplicated and reordered messages (the paper's §5.1 network model), so the
transport never retries and drops rather than blocks: a peer that is down or slow costs at most
`MAX_QUEUE` messages of memory, and the leader's own probing resends what was lost.
`blocked` drops traffic to and from chosen peers: the fault-injection hook that partition tests
use (it is only reachable through a debug RPC the member enables in test mode).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

from ipc import ClientOptions, RPCClient, RPCError, TLSConfig
from ipc.messages import NOTIFICATION
from runtime.log import get_logger
from store.raft import Message, to_wire

log = get_logger("store.peer")

MAX_QUEUE = 4096
MAX_BATCH = 512


class _Peer:
    __slots__ = ("client", "endpoint", "queue", "task", "wake")

    def __init__(self, endpoint: str, tls: TLSConfig | None, timeout: float) -> None:
        self.endpoint = endpoint
        opts = ClientOptions(timeout=timeout, connect_timeout=timeout, connect_deadline=timeout)
        self.client = RPCClient(endpoint, tls=tls, options=opts)
        self.queue: deque[Message] = deque()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class PeerTransport:
    def __init__(self, self_id: int, tls: TLSConfig | None, timeout: float = 1.0) -> None:
        self.self_id = self_id
        self.tls = tls
        self.timeout = timeout
        self._peers: dict[int, _Peer] = {}
        self.blocked: set[int] = set()
        self.dropped = 0
        self.on_unreachable: Callable[[int], None] | None = None

    def set_peers(self, endpoints: dict[int, str]) -> None:
        """Make the peer set match `endpoints` (id -> peer endpoint), self excluded."""
        for pid in list(self._peers):
            if pid not in endpoints or endpoints[pid] != self._peers[pid].endpoint:
                self._close_peer(pid)
        for pid, ep in endpoints.items():
            if pid != self.self_id and pid not in self._peers:
                peer = _Peer(ep, self.tls, self.timeout)
                peer.task = asyncio.get_running_loop().create_task(self._sender(pid, peer))
                self._peers[pid] = peer

    def client(self, pid: int) -> RPCClient | None:
        """The RPC client for forwarding requests to `pid` (shared with the sender task)."""
        peer = self._peers.get(pid)
        if peer is None:
            return None
        return peer.client

    def send(self, messages: tuple[Message, ...] | list[Message]) -> None:
        touched: dict[int, _Peer] = {}
        for m in messages:
            peer = self._peers.get(m.dst)
            if peer is None or m.dst in self.blocked:
                self.dropped += 1
                continue
            if len(peer.queue) >= MAX_QUEUE:
                peer.queue.popleft()
                self.dropped += 1
            peer.queue.append(m)
            touched[m.dst] = peer
        for peer in touched.values():
            if not self._write(peer):
                peer.wake.set()

    def _write(self, peer: _Peer) -> bool:
        """Write the peer's queue to its live connection now; False if it must wait."""
        conn = peer.client._conn
        if conn is None or conn.lost or conn._write_paused:
            return not peer.queue
        queue = peer.queue
        try:
            while queue:
                n = min(len(queue), MAX_BATCH)
                batch = [to_wire(queue.popleft()) for _ in range(n)]
                conn.send(conn.packer.pack([NOTIFICATION, "raft.step", [self.self_id, batch]]))
        except RPCError:
            return False
        return True

    async def _sender(self, pid: int, peer: _Peer) -> None:
        while True:
            await peer.wake.wait()
            peer.wake.clear()
            while peer.queue:
                try:
                    conn = await peer.client._connection()
                    if conn._write_paused:
                        await conn.drain()
                except RPCError as exc:
                    self.dropped += len(peer.queue)
                    peer.queue.clear()
                    log.debug("peer.send_failed", peer=pid, code=exc.code)
                    if self.on_unreachable is not None:
                        self.on_unreachable(pid)
                    # Do not spin against a dead peer; Raft resends what matters.
                    await asyncio.sleep(min(self.timeout, 0.05))
                    continue
                self._write(peer)

    def _close_peer(self, pid: int) -> None:
        peer = self._peers.pop(pid)
        if peer.task is not None:
            peer.task.cancel()
        asyncio.get_running_loop().create_task(peer.client.close())

    async def close(self) -> None:
        for pid in list(self._peers):
            peer = self._peers.pop(pid)
            if peer.task is not None:
                peer.task.cancel()
                with contextlib.suppress(BaseException):
                    await peer.task
            await peer.client.close()
