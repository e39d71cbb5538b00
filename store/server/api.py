"""The RPC methods of a tabby-store member: the client API and the peer API.

Client API (served on the client endpoints; each maps to an etcd v3 RPC, see docs/store.md):

    kv.range(request_bytes, serializable) -> response     KV.Range
    kv.write(request_bytes) -> response                   KV.Put/DeleteRange/Txn/Compact,
                                                          Lease.Grant/Revoke, Maintenance.Alarm
    kv.watch(key, range_end, start_revision, prev_kv,     Watch (one stream per watch)
             filters, progress_notify) ~> watch responses
    lease.keepalive(id) -> ttl                            Lease.LeaseKeepAlive (one round)
    lease.ttl(id, keys) -> [id, ttl, granted, keys]       Lease.LeaseTimeToLive
    lease.list() -> [ids]                                 Lease.LeaseLeases
    maint.status() -> {...}                               Maintenance.Status
    maint.alarms() -> [alarm types]                       Maintenance.Alarm(GET)
    maint.snapshot() -> bytes                             Maintenance.Snapshot
    maint.move_leader(id)                                 Maintenance.MoveLeader
    cluster.members() / cluster.add / cluster.remove / cluster.promote   Cluster.Member*

Requests are `store.kv.codec` bytes; responses are `store.wire` lists. KV errors go out as
RPCError(code=<store.kv ErrorKind value>, message=<etcd's message>, data={"grpc": code}).

Forwarding (issue 6: "a request sent to a follower is forwarded to the leader"): writes, lease
keep-alives and time-to-live, and membership changes received by a follower are forwarded over
the peer connection to the member it believes leads (`fwd.*` on the peer endpoint, which a
member serves only while it leads: no multi-hop chains). A forward that fails before it was sent
(`unavailable`, `not_leader`) is retried until `request_timeout`; one that fails after it was
sent reports `outcome_unknown`, because the leader may have committed it. Linearizable reads are
answered by the member that received them, after a ReadIndex round trip to the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgpack

from ipc import BadNotification, RPCError, RPCServer, Stream
from ipc import errors as ipc_errors
from store.kv import (
    ErrorResponse,
    KVError,
    RangeRequest,
    Request,
    Response,
    WatchCreateRequest,
    WatchFilter,
    check_request,
    decode_request,
)
from store.raft import ConfChange, ConfChangeKind, from_wire
from store.raft.messages import WireError
from store.server.member import (
    MEMBER_UNAVAILABLE,
    Member,
    MemberInfo,
    NotLeaderError,
    OutcomeUnknownError,
)
from store.wire import encode_response, encode_watch_response

T = TypeVar("T")

NO_LEADER = "no_leader"
NOT_LEADER = "not_leader"
OUTCOME_UNKNOWN = "outcome_unknown"

# Errors that prove the request was never carried out: safe to retry anywhere.
# MEMBER_UNAVAILABLE: the member's WAL failed (full disk) or it is stopping; whatever it had
# proposed was answered `outcome_unknown`, everything else gets this code, from a forwarding
# follower too (it retries until another member leads).
NOT_EXECUTED = frozenset({NO_LEADER, NOT_LEADER, MEMBER_UNAVAILABLE, ipc_errors.UNAVAILABLE})


def kv_error(err: KVError | ErrorResponse) -> RPCError:
    if isinstance(err, KVError):
        return RPCError(err.kind.value, err.message, {"grpc": err.code.value})
    return RPCError(err.kind, err.message, {"grpc": err.code})


class StoreAPI:
    def __init__(self, member: Member) -> None:
        self.member = member
        self.timeout = member.config.request_timeout

    def register_client(self, server: RPCServer) -> None:
        table: dict[str, Callable[..., Awaitable[object]]] = {
            "kv.range": self.range,
            "kv.write": self.write,
            "lease.keepalive": self.lease_keepalive,
            "lease.ttl": self.lease_ttl,
            "lease.list": self.lease_list,
            "maint.status": self.status,
            "maint.alarms": self.alarms,
            "maint.snapshot": self.snapshot,
            "maint.move_leader": self.move_leader,
            "cluster.members": self.members,
            "cluster.add": self.member_add,
            "cluster.remove": self.member_remove,
            "cluster.promote": self.member_promote,
        }
        for name, handler in table.items():
            server.register(name, handler)
        server.register_stream("kv.watch", self.watch)
        if self.member.config.debug_fault_injection:
            server.register("debug.partition", self.debug_partition)

    def register_peer(self, server: RPCServer) -> None:
        server.register_notification("raft.step", self.raft_step)
        server.register("fwd.write", self.fwd_write)
        server.register("fwd.keepalive", self.fwd_keepalive)
        server.register("fwd.ttl", self.fwd_ttl)
        server.register("fwd.conf", self.fwd_conf)

    # --- the leader-or-forward helper ----------------------------------------------------

    async def _on_leader(
        self, local: Callable[[], Awaitable[T]], method: str, *params: object
    ) -> T | object:
        m = self.member
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            m.check_usable()
            leader = m.leader
            remaining = deadline - loop.time()
            if leader == m.id:
                try:
                    # asyncio.timeout, not wait_for: no extra task per request on the hot path
                    async with asyncio.timeout(max(remaining, 0.001)):
                        return await local()
                except NotLeaderError:
                    pass
                except TimeoutError:
                    raise RPCError(
                        OUTCOME_UNKNOWN, "no answer within the request timeout"
                    ) from None
            elif leader and leader not in m.transport.blocked:
                client = m.transport.client(leader)
                if client is not None:
                    try:
                        return await client.call(method, *params, timeout=max(remaining, 0.001))
                    except RPCError as exc:
                        if exc.code not in NOT_EXECUTED:
                            if exc.code in (ipc_errors.CONNECTION_LOST, ipc_errors.TIMEOUT):
                                raise RPCError(OUTCOME_UNKNOWN, exc.message) from None
                            raise
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise RPCError(NO_LEADER, "etcdserver: no leader")
            m.leader_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    m.leader_changed.wait(), min(remaining, m.config.heartbeat_interval * 2)
                )

    async def _propose(self, data: bytes) -> Response | None:
        try:
            return await self.member.propose_local(data)
        except OutcomeUnknownError as exc:
            raise RPCError(OUTCOME_UNKNOWN, str(exc)) from None

    # --- KV ----------------------------------------------------------------------------

    async def range(self, data: bytes, serializable: bool = False) -> object:
        req = _decode(data)
        if not isinstance(req, RangeRequest):
            raise RPCError(ipc_errors.INVALID_PARAMS, "kv.range takes a RangeRequest")
        if not serializable:
            await self._barrier()
        try:
            return encode_response(self.member.machine.range(req))
        except KVError as exc:
            raise kv_error(exc) from None

    async def _barrier(self) -> None:
        m = self.member
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            m.check_usable()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise RPCError(NO_LEADER, "etcdserver: no leader (read index timed out)")
            try:
                async with asyncio.timeout(remaining):
                    await m.read_barrier_once()
                return
            except NotLeaderError:
                await m.wait_leader(min(remaining, m.config.election_timeout))
            except TimeoutError:
                continue

    async def write(self, data: bytes) -> object:
        req = _decode(data)
        if isinstance(req, RangeRequest):
            return await self.range(data)
        try:
            check_request(req, self.member.kv_config.max_txn_ops)
        except KVError as exc:
            raise kv_error(exc) from None
        result = await self._on_leader(lambda: self._propose(data), "fwd.write", data)
        return _result(result)

    async def fwd_write(self, data: bytes) -> object:
        if not self.member.is_leader:
            raise RPCError(NOT_LEADER, f"not the leader (leader {self.member.leader})")
        try:
            async with asyncio.timeout(self.timeout):
                resp = await self._propose(data)
        except NotLeaderError as exc:
            raise RPCError(NOT_LEADER, str(exc)) from None
        except TimeoutError:
            raise RPCError(OUTCOME_UNKNOWN, "no answer within the request timeout") from None
        if isinstance(resp, ErrorResponse):
            raise kv_error(resp)
        return None if resp is None else encode_response(resp)

    async def watch(
        self,
        stream: Stream,
        key: bytes,
        range_end: bytes = b"",
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: list[int] | None = None,
        progress_notify: bool = False,
    ) -> None:
        m = self.member
        m.check_usable()
        try:
            flt = tuple(WatchFilter(f) for f in filters or ())
        except ValueError:
            raise RPCError(ipc_errors.INVALID_PARAMS, f"bad watch filters {filters!r}") from None
        req = WatchCreateRequest(
            bytes(key),
            bytes(range_end),
            int(start_revision),
            bool(prev_kv),
            flt,
            bool(progress_notify),
        )
        created = m.hub.create(req)
        stream.send(encode_watch_response(created))
        if created.canceled:
            return
        done = m.register_watch(created.watch_id, stream)
        try:
            await done
        finally:
            m.watches.pop(created.watch_id, None)
            m.hub.cancel(created.watch_id)

    # --- leases ------------------------------------------------------------------------

    async def lease_keepalive(self, lease_id: int) -> object:
        return await self._on_leader(lambda: self._renew(lease_id), "fwd.keepalive", lease_id)

    async def _renew(self, lease_id: int) -> int:
        m = self.member
        try:
            ttl, checkpoint = m.tracker.renew(lease_id, asyncio.get_running_loop().time())
        except KVError as exc:
            if not m.is_leader:
                raise NotLeaderError(m.leader) from None
            raise kv_error(exc) from None
        if checkpoint is not None:
            m.propose_nowait(checkpoint)
        return ttl

    async def fwd_keepalive(self, lease_id: int) -> int:
        if not self.member.is_leader:
            raise RPCError(NOT_LEADER, "not the leader")
        try:
            return await self._renew(lease_id)
        except NotLeaderError as exc:
            raise RPCError(NOT_LEADER, str(exc)) from None

    async def lease_ttl(self, lease_id: int, keys: bool = False) -> object:
        return await self._on_leader(lambda: self._ttl(lease_id, keys), "fwd.ttl", lease_id, keys)

    async def _ttl(self, lease_id: int, keys: bool) -> list[object]:
        m = self.member
        try:
            info = m.machine.lease(lease_id)
            remaining = m.tracker.remaining(lease_id, asyncio.get_running_loop().time())
        except KVError as exc:
            raise kv_error(exc) from None
        return [lease_id, remaining, info.ttl, list(info.keys) if keys else []]

    async def fwd_ttl(self, lease_id: int, keys: bool = False) -> list[object]:
        if not self.member.is_leader:
            raise RPCError(NOT_LEADER, "not the leader")
        return await self._ttl(lease_id, keys)

    async def lease_list(self) -> list[int]:
        await self._barrier()
        return [lease.id for lease in self.member.machine.leases()]

    # --- maintenance -------------------------------------------------------------------

    async def status(self) -> dict[str, object]:
        return self.member.status()

    async def alarms(self) -> list[int]:
        await self._barrier()
        return [int(a) for a in self.member.machine.alarms()]

    async def snapshot(self) -> bytes:
        await self._barrier()
        return self.member.snapshot_bytes()

    async def move_leader(self, target: int) -> int:
        m = self.member
        if not m.is_leader:
            raise RPCError(NOT_LEADER, f"etcdserver: not leader (leader {m.leader})")
        try:
            await asyncio.wait_for(m.transfer_leadership(int(target)), self.timeout)
        except NotLeaderError as exc:
            raise RPCError(NOT_LEADER, str(exc)) from None
        except TimeoutError:
            raise RPCError(ipc_errors.TIMEOUT, "leadership transfer did not finish") from None
        return m.leader

    # --- membership --------------------------------------------------------------------

    async def members(self) -> list[list[object]]:
        m = self.member
        conf = m.node.conf_state
        out: list[list[object]] = []
        for mid in sorted(conf.members() | set(m.members)):
            info = m.members.get(mid, MemberInfo(mid, ""))
            out.append([*info.to_wire(), mid in conf.learners])
        return out

    async def member_add(
        self,
        member_id: int,
        peer_endpoint: str,
        name: str = "",
        client_endpoints: list[str] | None = None,
        learner: bool = True,
    ) -> list[list[object]]:
        info = MemberInfo(
            int(member_id), str(peer_endpoint), str(name), tuple(client_endpoints or ())
        )
        context: bytes = msgpack.packb(info.to_wire())
        kind = ConfChangeKind.ADD_LEARNER if learner else ConfChangeKind.ADD_NODE
        await self._conf(int(kind), int(member_id), context)
        return await self.members()

    async def member_remove(self, member_id: int) -> list[list[object]]:
        await self._conf(int(ConfChangeKind.REMOVE_NODE), int(member_id), b"")
        return await self.members()

    async def member_promote(self, member_id: int) -> list[list[object]]:
        await self._conf(int(ConfChangeKind.ADD_NODE), int(member_id), b"")
        return await self.members()

    async def _conf(self, kind: int, node_id: int, context: bytes) -> None:
        change = ConfChange(ConfChangeKind(kind), node_id, context)
        await self._on_leader(lambda: self._conf_local(change), "fwd.conf", kind, node_id, context)
        # Answer with the membership as of the change, even when it was forwarded.
        await self._barrier()

    async def _conf_local(self, change: ConfChange) -> None:
        try:
            await self.member.conf_change_local(change)
        except RuntimeError as exc:
            raise RPCError("conf_change_refused", str(exc)) from None
        except OutcomeUnknownError as exc:
            raise RPCError(OUTCOME_UNKNOWN, str(exc)) from None

    async def fwd_conf(self, kind: int, node_id: int, context: bytes) -> None:
        if not self.member.is_leader:
            raise RPCError(NOT_LEADER, "not the leader")
        try:
            await self._conf_local(ConfChange(ConfChangeKind(kind), node_id, bytes(context)))
        except NotLeaderError as exc:
            raise RPCError(NOT_LEADER, str(exc)) from None

    async def debug_partition(self, ids: list[int]) -> list[int]:
        """Drop Raft traffic and forwards to and from `ids` (test fault injection)."""
        self.member.transport.blocked = {int(i) for i in ids}
        return sorted(self.member.transport.blocked)

    # --- peers -------------------------------------------------------------------------

    def raft_step(self, src: object, batch: object) -> None:
        """One-way: a peer's batch of Raft messages. A batch that does not decode closes
        that peer's connection (BadNotification), and none of it is delivered."""
        m = self.member
        if type(src) is not int or type(batch) is not list:
            raise BadNotification("raft.step takes a member id and an array of messages")
        if src in m.transport.blocked:
            return
        msgs = []
        for item in batch:
            try:
                msgs.append(from_wire(item))
            except WireError as exc:
                raise BadNotification(f"bad raft message: {exc}") from None
        m.deliver(msgs)


def _decode(data: object) -> Request:
    if type(data) is not bytes:
        raise RPCError(ipc_errors.INVALID_PARAMS, "request must be encoded bytes")
    try:
        return decode_request(data)
    except KVError as exc:
        raise kv_error(exc) from None


def _result(result: object) -> object:
    """A local proposal gives a Response; a forwarded one already is its wire form."""
    if result is None or isinstance(result, list):
        return result
    if isinstance(result, ErrorResponse):
        raise kv_error(result)
    return encode_response(result)  # type: ignore[arg-type]


__all__ = [
    "MEMBER_UNAVAILABLE",
    "NOT_EXECUTED",
    "NOT_LEADER",
    "NO_LEADER",
    "OUTCOME_UNKNOWN",
    "StoreAPI",
    "kv_error",
]
