"""One tabby-store member: the task that owns the Raft node, its WAL and the KV state machine.

The Ready loop of etcd-io/raft (README "Usage"), in one asyncio task (STYLE.md rule 2):
ticks, peer messages, proposals, reads and membership changes arrive as commands on a queue;
per Ready the task (1) saves the snapshot file, entries and hard state to the WAL with one
fdatasync (group commit: everything proposed while the previous fsync ran goes into the next
batch), (2) sends the messages, (3) applies committed entries to the KV state machine and
resolves the futures of the clients that proposed them, (4) calls advance. Raft §5.4 safety
needs step 1 before step 2 ("respond to RPCs only after updating stable storage", Figure 2).

Around the loop: linearizable reads wait for a ReadIndex (thesis §6.4) and then for the
applied index to reach it; the leader's LeaseTracker proposes revokes in bounded batches;
watch responses are drained from the watch hub into bounded per-watch streams; a snapshot is
taken every `snapshot_count` applied entries and the WAL released behind it.

Invariants: the Raft node, WAL and snapshot store are touched only by the owner task (the
executor runs the blocking file IO while the owner awaits it, so there is still one writer);
the KV machine, watch hub and lease tracker are changed by the owner and read (or, for
watch create/cancel and lease renewals, changed by synchronous calls that never await) on the
same event-loop thread, so no call ever sees them half-updated.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import msgpack

from ipc import RPCError
from runtime.log import get_logger
from store.kv import (
    KVConfig,
    KVError,
    KVStateMachine,
    LeaseTracker,
    Request,
    Response,
    WatchHub,
    decode_request,
    encode_request,
)
from store.raft import (
    ConfChange,
    ConfChangeKind,
    Config,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    MemoryStorage,
    Message,
    ProposalDropped,
    RaftNode,
    Ready,
    Role,
    Snapshot,
    SnapshotMeta,
    SoftState,
    bootstrap,
)
from store.server.config import StoreConfig
from store.server.transport import PeerTransport
from store.server.watch_fanout import WatchFanout, WatchStream
from store.wal import WAL, SnapshotStore, open_storage

log = get_logger("store.member")

SNAPSHOT_FORMAT = 1
# A small WAL batch is saved on the loop thread only while saves are this fast (a moving
# average): on a slow or contended disk the loop keeps serving (RPCs, serializable reads,
# watch writes, watchdog pings) while the executor waits for the disk.
INLINE_SAVE_LIMIT = 0.002
# Peer messages queued for the owner task at most; beyond it they are dropped (and counted),
# as a lossy network would: Raft resends what matters, and memory stays bounded.
MAX_PENDING_STEPS = 16384


class NotLeaderError(Exception):
    """This member is not the leader (or stopped being it); `leader` is who is, 0 if unknown."""

    def __init__(self, leader: int) -> None:
        super().__init__(f"not the leader (leader {leader or 'unknown'})")
        self.leader = leader


class OutcomeUnknownError(Exception):
    """The proposal may or may not have been committed (its log slot changed hands)."""


MEMBER_UNAVAILABLE = "member_unavailable"


class MemberUnavailableError(RPCError):
    """This member cannot serve (its WAL failed, e.g. on a full disk, or it is stopping) and
    did not propose the request: safe to retry, a write too, on another member. An RPCError,
    so the RPC server answers it as is (no `internal`, no traceback per request)."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            MEMBER_UNAVAILABLE, f"member unavailable ({reason}); the request was not proposed"
        )


@dataclass(frozen=True, slots=True)
class MemberInfo:
    id: int
    peer_endpoint: str
    name: str = ""
    client_endpoints: tuple[str, ...] = ()

    def to_wire(self) -> list[object]:
        return [self.id, self.peer_endpoint, self.name, list(self.client_endpoints)]

    @classmethod
    def from_wire(cls, w: list[object]) -> MemberInfo:
        mid, peer, name, clients = w
        return cls(
            int(cast(int, mid)), str(peer), str(name), tuple(map(str, cast(list[str], clients)))
        )


def encode_conf_state(cs: ConfState) -> bytes:
    data: bytes = msgpack.packb([sorted(cs.voters), sorted(cs.learners)])
    return data


def decode_conf_state(data: bytes) -> ConfState:
    voters, learners = msgpack.unpackb(data)
    return ConfState(frozenset(voters), frozenset(learners))


@dataclass(slots=True)
class _Commands:
    steps: list[Message] = field(default_factory=list)
    proposals: list[tuple[bytes, asyncio.Future[Response | None]]] = field(default_factory=list)
    reads: list[asyncio.Future[None]] = field(default_factory=list)
    confs: list[tuple[ConfChange, asyncio.Future[Response | None]]] = field(default_factory=list)
    transfers: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)


class Member(WatchFanout):
    def __init__(self, config: StoreConfig, transport: PeerTransport) -> None:
        self.config = config
        self.id = config.id
        self.transport = transport
        self.kv_config = KVConfig(quota_bytes=config.quota_bytes)
        self.machine = KVStateMachine(self.kv_config)
        self.hub = WatchHub(self.machine, max_buffered_events=config.max_watch_buffer)
        self.tracker = LeaseTracker()
        self.machine.lease_observer = self.tracker
        self.members: dict[int, MemberInfo] = {}
        self.node: RaftNode
        self.storage: MemoryStorage
        self._wal: WAL | None = None
        self._snaps: SnapshotStore | None = None
        self._cmds = _Commands()
        self._wake = asyncio.Event()
        self._ticks = 0
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._progress: asyncio.Task[None] | None = None
        self._waiting: dict[int, tuple[int, asyncio.Future[Response | None]]] = {}
        self._read_ctx = 0
        self._reads_in_flight: dict[bytes, list[asyncio.Future[None]]] = {}
        self._reads_by_index: deque[tuple[int, list[asyncio.Future[None]]]] = deque()
        self._applied = 0
        self._snap_index = 0
        self._snap_indexes: deque[int] = deque()
        self._save_avg = 0.0  # moving average of a WAL save's seconds (write + fdatasync)
        self._deferred: list[Message] = []  # sent at the end of this loop turn (_send_later)
        self.watches: dict[int, WatchStream] = {}
        self.leader_changed = asyncio.Event()
        self.soft = SoftState(0, Role.FOLLOWER)
        self.stopped = False
        self.failure: BaseException | None = None
        self.dropped_steps = 0  # peer messages refused because MAX_PENDING_STEPS were queued
        self.on_status: Callable[[str], None] | None = None

    # ------------------------------------------------------------------------------------
    # start / stop
    # ------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Recover the data dir (or bootstrap it) and build the Raft node; no IO tasks yet."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        os.makedirs(cfg.data_dir, exist_ok=True)
        wal, snaps, restored = await loop.run_in_executor(None, open_storage, str(cfg.data_dir))
        self._wal, self._snaps = wal, snaps
        for repair in restored.repairs:
            log.warning("wal.repaired", detail=repair)
        self.members = {
            mid: MemberInfo(mid, ep, cfg.name if mid == self.id else str(mid))
            for mid, ep in cfg.cluster().items()
        }
        storage = MemoryStorage()
        applied = 0
        if restored.snapshot is not None:
            s = restored.snapshot
            meta = SnapshotMeta(s.index, s.term, decode_conf_state(s.conf_state))
            storage.apply_snapshot(Snapshot(meta, s.data))
            self._restore_state(s.data)
            applied = s.index
            self._snap_index = s.index
            self._snap_indexes.append(s.index)
        if restored.entries:
            storage.append([Entry(t, i, EntryKind(k), d) for i, t, k, d in restored.entries])
        if restored.hard_state is not None:
            storage.set_hard_state(HardState(*restored.hard_state))
        fresh = restored.hard_state is None and not restored.entries and restored.snapshot is None
        if fresh and cfg.initial_cluster_state == "new":
            storage = bootstrap(sorted(cfg.cluster()))
            hs = storage.hard_state
            entries = [
                (e.index, e.term, int(e.kind), e.data)
                for e in storage.entries(1, storage.last_index() + 1)
            ]
            await loop.run_in_executor(None, wal.save, (hs.term, hs.vote, hs.commit), entries)
            log.info("store.bootstrapped", members=",".join(map(str, sorted(cfg.cluster()))))
        elif fresh:
            log.info("store.joining", cluster=",".join(map(str, sorted(cfg.cluster()))))
        self.storage = storage
        raft_cfg = Config(
            id=self.id,
            election_tick=cfg.election_ticks,
            heartbeat_tick=1,
            tick_interval=cfg.heartbeat_interval,
            applied=applied,
        )
        self.node = RaftNode(raft_cfg, storage, random.Random(int.from_bytes(os.urandom(8))))
        self._applied = applied

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport.set_peers(self._peer_endpoints())
        self._task = loop.create_task(self._run())
        self._ticker = loop.create_task(self._tick_loop())
        self._progress = loop.create_task(self._progress_loop())
        self._cmds_campaign = True
        self.kick()

    async def stop(self) -> None:
        """Hand leadership over if we lead (thesis §3.10), then stop and close the WAL."""
        if self.node.is_leader and len(self.node.conf_state.voters) > 1 and not self.stopped:
            target = max((v for v in self.node.conf_state.voters if v != self.id), default=0)
            if target:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self.transfer_leadership(target), 2.0)
        self.stopped = True
        for task in (self._ticker, self._progress, self._task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self._end_watches(cancel=False)
        for _, fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(OutcomeUnknownError("member stopping"))
        self._waiting.clear()
        loop = asyncio.get_running_loop()
        if self._wal is not None:
            await loop.run_in_executor(None, self._wal.close)
        if self._snaps is not None:
            self._snaps.close()

    # ------------------------------------------------------------------------------------
    # requests from the API (run on the loop thread, never across the node's Ready)
    # ------------------------------------------------------------------------------------

    def kick(self) -> None:
        self._wake.set()

    @property
    def leader(self) -> int:
        return self.soft.leader

    @property
    def is_leader(self) -> bool:
        return self.soft.role is Role.LEADER

    def check_usable(self) -> None:
        """Raises MemberUnavailableError once the member failed or is stopping."""
        if self.failure is not None:
            raise MemberUnavailableError(f"failed: {self.failure}")
        if self.stopped:
            raise MemberUnavailableError("stopping")

    async def propose_local(self, data: bytes) -> Response | None:
        """Propose encoded request bytes on this member, which must lead; raises
        NotLeaderError (nothing was proposed) or OutcomeUnknownError."""
        self.check_usable()
        fut: asyncio.Future[Response | None] = asyncio.get_running_loop().create_future()
        self._cmds.proposals.append((data, fut))
        self.kick()
        return await fut

    async def read_barrier_once(self) -> None:
        """ReadIndex (thesis §6.4): resolves once this member applied a commit index that was
        current when the read started; raises NotLeaderError if no leader could confirm it."""
        self.check_usable()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._cmds.reads.append(fut)
        self.kick()
        await fut

    async def conf_change_local(self, change: ConfChange) -> None:
        self.check_usable()
        fut: asyncio.Future[Response | None] = asyncio.get_running_loop().create_future()
        self._cmds.confs.append((change, fut))
        self.kick()
        await fut

    async def transfer_leadership(self, to: int) -> None:
        self.check_usable()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._cmds.transfers.append((to, fut))
        self.kick()
        await fut
        while self.is_leader and self.failure is None:
            self.leader_changed.clear()
            await self.leader_changed.wait()
        self.check_usable()  # a member that failed meanwhile will never see the transfer end

    def deliver(self, messages: list[Message]) -> None:
        if self.failure is not None:
            return  # nobody will step them: do not let peers' traffic pile up
        steps = self._cmds.steps
        room = MAX_PENDING_STEPS - len(steps)
        if len(messages) > room:
            self.dropped_steps += len(messages) - max(room, 0)
            messages = messages[: max(room, 0)]
        steps.extend(messages)
        self.kick()

    def propose_nowait(self, req: Request) -> None:
        """Fire-and-forget proposals of the leader's own duties (lease revokes, checkpoints)."""
        fut: asyncio.Future[Response | None] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(_consume)
        self._cmds.proposals.append((encode_request(req), fut))
        self.kick()

    async def wait_leader(self, timeout: float) -> int:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.leader == 0:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return 0
            self.leader_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.leader_changed.wait(), remaining)
        return self.leader

    def snapshot_bytes(self) -> bytes:
        """This member's state image: membership and the KV machine (also `snapshot save`)."""
        image = [
            SNAPSHOT_FORMAT,
            [m.to_wire() for _, m in sorted(self.members.items())],
            self.machine.to_snapshot(),
        ]
        data: bytes = msgpack.packb(image, use_bin_type=True)
        return data

    # ------------------------------------------------------------------------------------
    # the owner task
    # ------------------------------------------------------------------------------------

    _cmds_campaign = False

    async def _tick_loop(self) -> None:
        interval = self.config.heartbeat_interval
        while True:
            await asyncio.sleep(interval)
            self._ticks += 1
            self.kick()

    async def _progress_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.progress_notify_interval)
            self._send_progress()

    async def _run(self) -> None:
        try:
            await self._loop()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            # A WAL failure (fsync error, full disk) poisons the member: only a restart and
            # recovery tell the truth about what reached the disk (wal.py).
            self.failure = exc
            log.exception("member.failed", error=str(exc))  # once; requests get the short form
            for _, fut in self._waiting.values():
                if not fut.done():
                    fut.set_exception(OutcomeUnknownError(f"member failed: {exc}"))
            self._waiting.clear()
            self._fail_unproposed(MemberUnavailableError(f"failed: {exc}"))
            self.leader_changed.set()  # wakes a leadership transfer waiting on this member
            if self.on_status is not None:
                self.on_status(f"failed: {exc}")

    def _fail_unproposed(self, err: MemberUnavailableError) -> None:
        """Answer at once everything that waits on a loop that will not run again: queued
        commands were never proposed, reads need no answer from the log. Watch streams end,
        so that their clients resume on another member."""
        c = self._cmds
        self._cmds = _Commands()
        futs: list[asyncio.Future[Response | None]] | list[asyncio.Future[None]]
        for futs in (
            [f for _, f in c.proposals],
            [f for _, f in c.confs],
            [f for _, f in c.transfers],
            c.reads,
            [f for fs in self._reads_in_flight.values() for f in fs],
            [f for _, fs in self._reads_by_index for f in fs],
        ):
            for fut in futs:
                if not fut.done():
                    fut.set_exception(err)
        self._reads_in_flight.clear()
        self._reads_by_index.clear()
        self._end_watches(cancel=True)

    async def _loop(self) -> None:
        node = self.node
        loop = asyncio.get_running_loop()
        while True:
            if not node.has_ready() and not self._work_pending():
                await self._wake.wait()
            self._wake.clear()
            ticks, self._ticks = min(self._ticks, 10), 0
            for _ in range(ticks):
                node.tick()
            if ticks:
                self._lease_duties(loop.time())
            self._process_commands()
            while node.has_ready():
                rd = node.ready()
                await self._handle_ready(rd)
                node.advance(rd)
                self._release_reads()
                await self._maybe_snapshot()
            self._drain_watches()
            if self._cmds_campaign and node.conf_state.voters:
                # A lone voter need not sit out an election timeout before leading.
                self._cmds_campaign = False
                if node.conf_state.voters == {self.id} and not node.is_leader:
                    node.campaign()

    def _work_pending(self) -> bool:
        c = self._cmds
        return bool(
            self._ticks or c.steps or c.proposals or c.reads or c.confs or c.transfers
        ) or bool(self.hub.ready() and self.watches)

    def _process_commands(self) -> None:
        node = self.node
        c = self._cmds
        self._cmds = _Commands()
        for m in c.steps:
            node.step(m)
        if c.proposals:
            live = [(d, f) for d, f in c.proposals if not f.done()]
            try:
                entries = node.propose_batch([d for d, _ in live])
            except ProposalDropped as exc:
                for _, fut in live:
                    fut.set_exception(NotLeaderError(exc.leader))
            else:
                for entry, (_, fut) in zip(entries, live, strict=True):
                    self._waiting[entry.index] = (entry.term, fut)
        for change, fut in c.confs:
            try:
                entry = node.propose_conf_change(change)
            except ProposalDropped as exc:
                fut.set_exception(
                    NotLeaderError(exc.leader) if not node.is_leader else RuntimeError(exc.reason)
                )
            else:
                self._waiting[entry.index] = (entry.term, fut)
        for to, tfut in c.transfers:
            try:
                node.transfer_leadership(to)
                tfut.set_result(None)
            except ProposalDropped as exc:
                tfut.set_exception(NotLeaderError(exc.leader))
        reads = [f for f in c.reads if not f.done()]
        if reads:
            self._read_ctx += 1
            ctx = self._read_ctx.to_bytes(8, "big")
            try:
                node.read_index(ctx)
            except ProposalDropped as exc:
                for f in reads:
                    f.set_exception(NotLeaderError(exc.leader))
            else:
                self._reads_in_flight[ctx] = reads

    async def _handle_ready(self, rd: Ready) -> None:
        loop = asyncio.get_running_loop()
        wal = self._wal
        assert wal is not None and self._snaps is not None
        if rd.soft_state is not None:
            self._on_soft_state(rd.soft_state)
        snap_meta = None
        if rd.snapshot is not None:
            s = rd.snapshot
            conf = encode_conf_state(s.meta.conf_state)
            await loop.run_in_executor(
                None, self._snaps.save, s.meta.index, s.meta.term, conf, s.data
            )
            snap_meta = (s.meta.index, s.meta.term, conf)
        # Thesis §10.2.1 (and etcd's raft.go): a leader may replicate while it writes its own
        # disk, because the core counts the leader's log towards a quorum only once advance()
        # reports it durable. Everyone else must persist first (Figure 2: respond only after
        # updating stable storage), which is also what a vote needs.
        # The core says when: a leader whose term and vote are already durable and that
        # installs no snapshot (a term or vote must never be acted on before it is saved).
        early = rd.may_send_before_persist
        # A leader's Ready without new entries carries only commit-index news and
        # heartbeats: answering clients and watchers first costs the followers little,
        # whereas with new entries to replicate, the followers' fsyncs should start first.
        early_send = early and bool(rd.entries)
        if early_send and rd.messages:
            self._send_now(rd.messages)
        committed = rd.committed_entries
        if committed and rd.snapshot is None and committed[-1].index <= self.storage.last_index():
            # Committed and already in our own durable log (MemoryStorage holds what advance()
            # recorded as persisted): apply now, while the new entries are being written, so
            # that answers do not wait for the next fsync (etcd applies concurrently with
            # raftNode's Save too). A leader's committed entries are always in this case.
            for entry in committed:
                self._apply(entry)
            committed = ()
            if self.watches:
                self._drain_watches()  # watchers need not wait for the fsync either
        if early and not early_send and rd.messages:
            # After the callbacks already queued, i.e. after the answers of the requests
            # just applied are written.
            self._send_later(rd.messages)
        if rd.entries or snap_meta is not None or rd.must_sync:
            hs = rd.hard_state or self.node.hard_state()
            entries = [(e.index, e.term, int(e.kind), e.data) for e in rd.entries]
            started = time.monotonic()
            if (
                snap_meta is None
                and len(entries) <= self.config.wal_inline_entries
                and self._save_avg <= INLINE_SAVE_LIMIT
                and not wal.starts_segment(sum(len(e[3]) for e in entries), len(entries))
            ):
                # A small batch means a light load: nothing waits to overlap with the fsync,
                # and the two thread hops of the executor (each a wake-up, costly on a VM)
                # would be most of the save's latency. Big batches, a batch that opens a
                # segment, and every batch while the disk is slow run in the executor.
                wal.save((hs.term, hs.vote, hs.commit), entries, snap_meta)
            else:
                await loop.run_in_executor(
                    None, wal.save, (hs.term, hs.vote, hs.commit), entries, snap_meta
                )
            self._save_avg += (time.monotonic() - started - self._save_avg) / 8
        if not early and rd.messages:
            self._send_now(rd.messages)
        if rd.snapshot is not None:
            self._install_snapshot(rd.snapshot)
        for entry in committed:
            self._apply(entry)
        for rs in rd.read_states:
            futs = self._reads_in_flight.pop(rs.context, None)
            if futs:
                self._reads_by_index.append((rs.index, futs))

    def _send_now(self, messages: tuple[Message, ...]) -> None:
        self._flush_deferred()  # never let a later Ready's messages overtake deferred ones
        self.transport.send(messages)

    def _send_later(self, messages: tuple[Message, ...]) -> None:
        if not self._deferred:
            asyncio.get_running_loop().call_soon(self._flush_deferred)
        self._deferred.extend(messages)

    def _flush_deferred(self) -> None:
        if self._deferred:
            deferred, self._deferred = self._deferred, []
            self.transport.send(deferred)

    def _apply(self, entry: Entry) -> None:
        if entry.index <= self._applied:
            return
        self._applied = entry.index
        resp: Response | None = None
        if entry.kind is EntryKind.NORMAL and entry.data:
            try:
                req = decode_request(entry.data)
            except KVError as exc:
                log.error("entry.undecodable", index=entry.index, error=str(exc))
            else:
                resp = self.machine.apply(entry.index, req)
        else:
            # Entries without a KV request still count, so that the machine's applied index
            # (and the snapshot it writes) equals Raft's.
            self.machine.advance(entry.index)
            if entry.kind is EntryKind.CONF_CHANGE:
                self._apply_member_change(ConfChange.decode(entry.data))
        waiter = self._waiting.pop(entry.index, None)
        if waiter is not None:
            term, fut = waiter
            if fut.done():
                return
            if term == entry.term:
                fut.set_result(resp)
            else:
                # Another leader's entry took the slot: ours was never committed (§5.3).
                fut.set_exception(NotLeaderError(self.leader))

    def _apply_member_change(self, change: ConfChange) -> None:
        if change.kind is ConfChangeKind.REMOVE_NODE:
            self.members.pop(change.node_id, None)
        elif change.context:
            try:
                info = MemberInfo.from_wire(msgpack.unpackb(change.context))
            except Exception as exc:  # a context we cannot read keeps the old address
                log.error("member.bad_context", node=change.node_id, error=str(exc))
            else:
                self.members[change.node_id] = info
        self.transport.set_peers(self._peer_endpoints())
        log.info("member.changed", kind=change.kind.name, node=change.node_id)

    def _install_snapshot(self, snap: Snapshot) -> None:
        self._restore_state(snap.data)
        self._applied = snap.meta.index
        self._snap_index = snap.meta.index
        for index in [i for i in self._waiting if i <= snap.meta.index]:
            _, fut = self._waiting.pop(index)
            if not fut.done():
                fut.set_exception(OutcomeUnknownError("replaced by a snapshot"))
        self.transport.set_peers(self._peer_endpoints())
        log.info("snapshot.installed", index=snap.meta.index, term=snap.meta.term)

    def _restore_state(self, data: bytes) -> None:
        fmt, members, kv = msgpack.unpackb(data)
        if fmt != SNAPSHOT_FORMAT:
            raise ValueError(f"snapshot format {fmt}, this build reads {SNAPSHOT_FORMAT}")
        self.members = {m.id: m for m in (MemberInfo.from_wire(w) for w in members)}
        machine = KVStateMachine.from_snapshot(kv, self.kv_config)
        machine.lease_observer = self.tracker
        self.machine = machine
        self.hub.attach(machine)
        self.tracker.reset(machine.leases())

    def _on_soft_state(self, soft: SoftState) -> None:
        was_leader = self.soft.role is Role.LEADER
        old_leader = self.soft.leader
        self.soft = soft
        now = asyncio.get_running_loop().time()
        if soft.role is Role.LEADER and not was_leader:
            self.tracker.promote(now, self.machine.leases(), self.config.election_timeout)
        elif was_leader and soft.role is not Role.LEADER:
            self.tracker.demote()
        if soft.leader != old_leader:
            log.info("leader.changed", leader=soft.leader, term=self.node.term)
            # Reads waiting on the old leader's ReadIndex may never be answered: retry them.
            for futs in self._reads_in_flight.values():
                for f in futs:
                    if not f.done():
                        f.set_exception(NotLeaderError(soft.leader))
            self._reads_in_flight.clear()
            self.leader_changed.set()
            if self.on_status is not None:
                self.on_status(self.status_line())

    def _release_reads(self) -> None:
        q = self._reads_by_index
        while q and q[0][0] <= self._applied:
            _, futs = q.popleft()
            for f in futs:
                if not f.done():
                    f.set_result(None)

    def _lease_duties(self, now: float) -> None:
        if not self.is_leader:
            return
        for revoke in self.tracker.expired(now):
            self.propose_nowait(revoke)
        checkpoint = self.tracker.checkpoints(now)
        if checkpoint is not None:
            self.propose_nowait(checkpoint)

    async def _maybe_snapshot(self) -> None:
        cfg = self.config
        applied = self._applied
        if applied - self._snap_index < cfg.snapshot_count:
            return
        assert self._wal is not None and self._snaps is not None
        loop = asyncio.get_running_loop()
        data = self.snapshot_bytes()
        snap = self.storage.create_snapshot(applied, self.node.conf_state, data)
        conf = encode_conf_state(snap.meta.conf_state)
        await loop.run_in_executor(None, self._snaps.save, applied, snap.meta.term, conf, data)
        await loop.run_in_executor(None, self._wal.save_snapshot, applied, snap.meta.term, conf)
        self._snap_index = applied
        self._snap_indexes.append(applied)
        compact_to = applied - cfg.snapshot_catchup_entries
        if compact_to >= self.storage.first_index():
            self.storage.compact(compact_to)
        while len(self._snap_indexes) > 5:  # SnapshotStore keeps 5 (DEFAULT_KEEP)
            self._snap_indexes.popleft()
        await loop.run_in_executor(None, self._wal.release_to, self._snap_indexes[0])
        log.info("snapshot.taken", index=applied, term=snap.meta.term, bytes=len(data))

    # ------------------------------------------------------------------------------------
    # reporting
    # ------------------------------------------------------------------------------------

    def _peer_endpoints(self) -> dict[int, str]:
        return {mid: m.peer_endpoint for mid, m in self.members.items()}

    def status_line(self) -> str:
        if self.leader == 0:
            return f"waiting for a leader (term {self.node.term})"
        role = "leader" if self.is_leader else "follower"
        return f"{role}, leader {self.leader}, term {self.node.term}, applied {self._applied}"

    def status(self) -> dict[str, object]:
        node = self.node
        conf = node.conf_state
        return {
            "id": self.id,
            "name": self.config.name,
            "leader": self.leader,
            "role": self.soft.role.value,
            "raft_term": node.term,
            "raft_index": node.log.last_index(),
            "commit_index": node.commit_index,
            "applied_index": self._applied,
            "revision": self.machine.revision,
            "compact_revision": self.machine.compact_revision,
            "db_size": self.machine.db_size,
            "db_size_in_use": self.machine.db_size_in_use,
            "is_learner": self.id in conf.learners,
            "alarms": [int(a) for a in self.machine.alarms()],
            "snapshot_index": self._snap_index,
            "watchers": len(self.hub),
        }

    @property
    def applied_index(self) -> int:
        return self._applied


def _consume(fut: asyncio.Future[Response | None]) -> None:
    if not fut.cancelled():
        fut.exception()
