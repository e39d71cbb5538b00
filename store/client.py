"""The datastore client every Tabby consumer uses: the `KVClient` protocol and `StoreClient`.

`KVClient` is the narrow async interface of DESIGN.md ("range, txn with compares on
mod_revision/version, watch from a revision with prev_kv, leases"), spoken in `store.kv`'s
request and response dataclasses, which are etcd v3's messages field for field. Nothing in it
is tabby-store-only: docs/store.md maps each call to the etcd v3 RPC a second backend would use.

`StoreClient` implements it over the ipc package against tabby-store members (what it shares
with `store.etcd.EtcdClient`, the KV calls, the resuming watch and endpoint rotation, is
`store.kvbase.KVClientBase`):
- endpoint failover: one RPC client per member endpoint; a member that cannot answer (down,
  no leader, not reachable) makes the client move to the next endpoint;
- retries only where safe: ranges are retried on any failure within the timeout (on the next
  member); writes are retried only when the error proves they never ran (`no_leader`,
  `not_leader`, `member_unavailable` (the member's disk filled up, or it is stopping),
  `unavailable`, `overloaded`, connect failures); a write whose connection
  dropped after it was sent, or whose handler failed (`internal`), raises
  `StoreUnavailableError(outcome_unknown=True)`, because it may have committed;
- timeouts: every call has a deadline (`timeout`, default 5 s) covering all its attempts;
- bounded: at most `max_in_flight` calls per client are outstanding at once;
- watches resume after a reconnect from the last revision seen (no gaps, no duplicates) and end
  with the server's cancellation (`canceled`, `compact_revision`), which `listwatch` turns into
  a re-list.

Errors: `KVError` (store.kv.errors, etcd's codes and messages) for request errors such as
`compacted`, `StoreUnavailableError` when no member could serve the call in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from ipc import ClientOptions, RPCClient, RPCError, TLSConfig
from ipc import errors as ipc_errors
from store.kv import (
    AlarmAction,
    AlarmRequest,
    AlarmResponse,
    AlarmType,
    CompactRequest,
    CompactResponse,
    Compare,
    DefragmentRequest,
    DefragmentResponse,
    DeleteRangeRequest,
    DeleteRangeResponse,
    ErrorResponse,
    KVError,
    LeaseGrantRequest,
    LeaseGrantResponse,
    LeaseRevokeRequest,
    LeaseRevokeResponse,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    Request,
    Response,
    TxnRequest,
    TxnResponse,
    WatchFilter,
    WatchResponse,
    encode_request,
)
from store.kv.errors import ErrorKind
from store.kv.messages import RequestOp
from store.kvbase import KVClientBase, WatchCreate
from store.wire import decode_response, decode_watch_response

_KINDS = {k.value: k for k in ErrorKind}
# Server answers that prove the request was not carried out (see store/server/api.py);
# `overloaded` is the ipc server refusing a request before its handler runs;
# `member_unavailable` a member whose WAL failed (full disk) or that is stopping.
_NOT_EXECUTED = frozenset(
    {
        "no_leader",
        "not_leader",
        "member_unavailable",
        ipc_errors.UNAVAILABLE,
        ipc_errors.OVERLOADED,
    }
)
# Answers after which a write may have committed. `internal` (a handler that failed for a
# reason the server did not name) belongs here: the failure may have come after the
# proposal. A read that meets any of them is retried, on the next member.
_MAYBE_EXECUTED = frozenset(
    {
        "outcome_unknown",
        ipc_errors.CONNECTION_LOST,
        ipc_errors.TIMEOUT,
        ipc_errors.CANCELLED,
        ipc_errors.INTERNAL,
    }
)


class StoreUnavailableError(Exception):
    """No member answered in time. `outcome_unknown`: a write was sent and may have committed."""

    def __init__(self, message: str, outcome_unknown: bool = False) -> None:
        super().__init__(message)
        self.outcome_unknown = outcome_unknown


def prefix_end(prefix: bytes) -> bytes:
    """etcd's `GetPrefixRangeEnd`: the range_end that selects every key starting with prefix."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"  # every key >= prefix


@dataclass(frozen=True, slots=True)
class LeaseTimeToLive:
    id: int
    ttl: int  # remaining seconds; -1 if the lease does not exist (etcd's convention)
    granted_ttl: int
    keys: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """Maintenance.Status: the member's view (header fields and raft indexes)."""

    member_id: int
    leader: int
    raft_term: int
    raft_index: int
    applied_index: int
    revision: int
    db_size: int
    is_learner: bool
    alarms: tuple[AlarmType, ...]


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    name: str
    peer_endpoint: str
    client_endpoints: tuple[str, ...]
    is_learner: bool


class KVClient(Protocol):
    """The datastore interface above which nothing may depend on the backend."""

    async def range(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        revision: int = 0,
        limit: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
        serializable: bool = False,
    ) -> RangeResponse: ...

    async def put(
        self,
        key: bytes,
        value: bytes,
        *,
        lease: int = 0,
        prev_kv: bool = False,
        ignore_value: bool = False,
        ignore_lease: bool = False,
    ) -> PutResponse: ...

    async def delete(
        self, key: bytes, range_end: bytes = b"", *, prev_kv: bool = False
    ) -> DeleteRangeResponse: ...

    async def txn(
        self,
        compare: Sequence[Compare],
        success: Sequence[RequestOp],
        failure: Sequence[RequestOp] = (),
    ) -> TxnResponse: ...

    def watch(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        start_revision: int = 0,
        prev_kv: bool = False,
        filters: Sequence[WatchFilter] = (),
        progress_notify: bool = False,
    ) -> AsyncIterator[WatchResponse]: ...

    async def lease_grant(self, ttl: int, lease_id: int = 0) -> LeaseGrantResponse: ...

    async def lease_keep_alive(self, lease_id: int) -> int: ...

    async def lease_revoke(self, lease_id: int) -> LeaseRevokeResponse: ...

    async def lease_time_to_live(self, lease_id: int, keys: bool = False) -> LeaseTimeToLive: ...

    async def lease_list(self) -> tuple[int, ...]: ...

    async def compact(self, revision: int, physical: bool = False) -> CompactResponse: ...

    async def status(self) -> StoreStatus: ...

    async def close(self) -> None: ...


class StoreClient(KVClientBase):
    """`KVClient` over tabby-store's msgpack-RPC client API, with failover between members."""

    def __init__(
        self,
        endpoints: str | Sequence[str],
        *,
        tls: TLSConfig | None = None,
        timeout: float = 5.0,
        max_in_flight: int = 256,
        rng: random.Random | None = None,
    ) -> None:
        eps = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        super().__init__(eps, timeout=timeout, max_in_flight=max_in_flight, rng=rng)
        opts = ClientOptions(
            timeout=timeout, connect_timeout=0.5, connect_deadline=0.5, backoff_initial=0.02
        )
        self._clients = [RPCClient(ep, tls=tls, options=opts) for ep in eps]

    # --- plumbing ------------------------------------------------------------------------

    async def _call(self, method: str, *params: object, retry_any: bool = False) -> object:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        last = ""
        delay = 0.02
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise StoreUnavailableError(f"{method}: no member answered in time ({last})")
            index = self._current
            client = self._clients[index]
            try:
                async with self._sem:
                    if client._conn is None or client._conn.lost:
                        await asyncio.wait_for(client.connect(), remaining)
                    return await client.call(method, *params, timeout=remaining)
            except TimeoutError:
                last = f"{client.endpoints[0]}: connect timeout"
                self._rotate(index)
                continue
            except RPCError as exc:
                kind = _KINDS.get(exc.code)
                if kind is not None:
                    raise KVError(kind) from None
                last = f"{client.endpoints[0]}: {exc.code}: {exc.message}"
                if exc.code in _MAYBE_EXECUTED and not retry_any:
                    # Not retried, but the next call goes elsewhere: a member that failed a
                    # write this way (lost connection, failed handler) is suspect.
                    self._rotate(index)
                    raise StoreUnavailableError(f"{method}: {last}", outcome_unknown=True) from None
                if exc.code not in _NOT_EXECUTED and exc.code not in _MAYBE_EXECUTED:
                    raise StoreUnavailableError(f"{method}: {last}") from None
                delay = await self._retry_pause(index, delay, remaining)

    async def _read(self, method: str, *params: object) -> object:
        return await self._call(method, *params, retry_any=True)

    async def _write(self, req: Request) -> Response:
        wire = await self._call("kv.write", encode_request(req))
        return _check(decode_response(wire))

    # --- KV and watch primitives (the calls themselves are KVClientBase's) ------------------

    async def _range(self, req: RangeRequest, serializable: bool) -> RangeResponse:
        wire = await self._read("kv.range", encode_request(req), serializable)
        return cast(RangeResponse, _check(decode_response(wire)))

    async def _put(self, req: PutRequest) -> PutResponse:
        return cast(PutResponse, await self._write(req))

    async def _delete_range(self, req: DeleteRangeRequest) -> DeleteRangeResponse:
        return cast(DeleteRangeResponse, await self._write(req))

    async def _txn(self, req: TxnRequest) -> TxnResponse:
        return cast(TxnResponse, await self._write(req))

    async def _compact(self, req: CompactRequest) -> CompactResponse:
        return cast(CompactResponse, await self._write(req))

    async def _watch_stream(
        self, index: int, create: WatchCreate
    ) -> AsyncGenerator[WatchResponse, None]:
        client = self._clients[index]
        try:
            await client.connect()
            async with client.stream(
                "kv.watch",
                create.key,
                create.range_end,
                create.start_revision,
                create.prev_kv,
                [int(f) for f in create.filters],
                create.progress_notify,
            ) as sub:
                async for item in sub:
                    yield decode_watch_response(item)
        except (RPCError, TimeoutError) as exc:
            kind = _KINDS.get(exc.code) if isinstance(exc, RPCError) else None
            if kind is not None:
                raise KVError(kind) from None

    # --- leases --------------------------------------------------------------------------

    async def lease_grant(self, ttl: int, lease_id: int = 0) -> LeaseGrantResponse:
        return cast(LeaseGrantResponse, await self._write(LeaseGrantRequest(ttl, lease_id)))

    async def lease_keep_alive(self, lease_id: int) -> int:
        """One keep-alive round (clientv3 `KeepAliveOnce`); returns the TTL granted anew.
        Safe to retry: renewing twice only moves the deadline."""
        return int(cast(int, await self._call("lease.keepalive", lease_id, retry_any=True)))

    async def lease_revoke(self, lease_id: int) -> LeaseRevokeResponse:
        return cast(LeaseRevokeResponse, await self._write(LeaseRevokeRequest(lease_id)))

    async def lease_time_to_live(self, lease_id: int, keys: bool = False) -> LeaseTimeToLive:
        try:
            w = cast(list[object], await self._read("lease.ttl", lease_id, keys))
        except KVError as exc:
            if exc.kind is ErrorKind.LEASE_NOT_FOUND:
                return LeaseTimeToLive(lease_id, -1, 0)
            raise
        lid, ttl, granted, ks = w
        return LeaseTimeToLive(
            int(cast(int, lid)),
            int(cast(int, ttl)),
            int(cast(int, granted)),
            tuple(cast(list[bytes], ks)),
        )

    async def lease_list(self) -> tuple[int, ...]:
        return tuple(cast(list[int], await self._read("lease.list")))

    # --- maintenance and cluster (etcd Maintenance / Cluster services) ---------------------

    async def status(self) -> StoreStatus:
        d = cast(dict[str, object], await self._read("maint.status"))
        return StoreStatus(
            member_id=_int(d["id"]),
            leader=_int(d["leader"]),
            raft_term=_int(d["raft_term"]),
            raft_index=_int(d["raft_index"]),
            applied_index=_int(d["applied_index"]),
            revision=_int(d["revision"]),
            db_size=_int(d["db_size"]),
            is_learner=bool(d["is_learner"]),
            alarms=tuple(AlarmType(_int(a)) for a in cast(list[int], d["alarms"])),
        )

    async def status_raw(self, endpoint: int | None = None) -> dict[str, object]:
        client = self._clients[self._current if endpoint is None else endpoint]
        return cast(dict[str, object], await client.call("maint.status", timeout=self.timeout))

    async def alarm_list(self) -> tuple[AlarmType, ...]:
        return tuple(AlarmType(a) for a in cast(list[int], await self._read("maint.alarms")))

    async def alarm_disarm(self, alarm: AlarmType = AlarmType.NOSPACE) -> AlarmResponse:
        return cast(AlarmResponse, await self._write(AlarmRequest(AlarmAction.DEACTIVATE, alarm)))

    async def defragment(self) -> DefragmentResponse:
        """etcd Maintenance.Defragment, replicated through Raft: db_size drops to what is in
        use on every member at once (a disarm is still needed to clear NOSPACE)."""
        return cast(DefragmentResponse, await self._write(DefragmentRequest()))

    async def snapshot(self) -> bytes:
        return cast(bytes, await self._read("maint.snapshot"))

    async def move_leader(self, target: int) -> int:
        for i in range(len(self._clients)):
            st = await self.status_raw(i)
            if st["leader"] == st["id"]:
                return int(cast(int, await self._clients[i].call("maint.move_leader", target)))
        raise StoreUnavailableError("no endpoint is the leader")

    async def member_list(self) -> list[Member]:
        return _members(await self._read("cluster.members"))

    async def member_add(
        self,
        member_id: int,
        peer_endpoint: str,
        *,
        name: str = "",
        client_endpoints: Sequence[str] = (),
        learner: bool = True,
    ) -> list[Member]:
        w = await self._call(
            "cluster.add", member_id, peer_endpoint, name, list(client_endpoints), learner
        )
        return _members(w)

    async def member_remove(self, member_id: int) -> list[Member]:
        return _members(await self._call("cluster.remove", member_id))

    async def member_promote(self, member_id: int) -> list[Member]:
        return _members(await self._call("cluster.promote", member_id))

    async def close(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                await client.close()


def _check(resp: Response) -> Response:
    if isinstance(resp, ErrorResponse):
        kind = _KINDS.get(resp.kind, ErrorKind.MALFORMED)
        raise KVError(kind)
    return resp


def _int(v: object) -> int:
    return int(cast(int, v))


def _members(w: object) -> list[Member]:
    out = []
    for item in cast(list[list[object]], w):
        mid, peer, name, clients, learner = item
        out.append(
            Member(_int(mid), str(name), str(peer), tuple(cast(list[str], clients)), bool(learner))
        )
    return out
