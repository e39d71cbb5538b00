"""`KVClient` over a real etcd v3 cluster, through etcd's JSON gRPC-gateway (HTTP/1.1).

For operators who already run etcd (Calico's own datastore): every Tabby daemon can use it in
place of tabby-store, because nothing above `KVClient` depends on the backend (DESIGN.md).

Why the gateway and plain asyncio streams: etcd serves the gateway on its client URL
(`/v3/kv/range`, `/v3/kv/txn`, `/v3/watch`, `/v3/lease/...`; etcd 3.4 and later), so no gRPC
or protobuf dependency is needed, and the HTTP/1.1 subset etcd speaks (POST with a
Content-Length body; answers with Content-Length or chunked, the streams chunked with one JSON
object per line) is small. Bytes travel base64-encoded and int64 fields as JSON strings; fields
at their default value are left out of etcd's answers.

The client's rules are `StoreClient`'s (docs/store.md), and the code that carries them above the
transport is shared with it (`store.kvbase.KVClientBase`):
- endpoint failover: calls go to one endpoint at a time; a refused connection, a broken one,
  or an answer that the member cannot serve ("etcdserver: no leader") moves to the next;
- every request but `status` carries clientv3's require-leader metadata (`hasleader`), so a
  member that has lost its leader refuses at once instead of proposing, which makes that
  refusal safe to retry (and it cancels watch streams, which then resume elsewhere);
- retries only where safe: reads, keep-alives and time-to-live are retried on any failure until
  the deadline; writes only when the failure proves they never ran (no connection, no leader,
  too many requests). A write that reached etcd and whose answer was lost raises
  `StoreUnavailableError(outcome_unknown=True)`, as clientv3's retry policy for mutable RPCs;
- one deadline (`timeout`) covers all attempts of a call; at most `max_in_flight` calls at once;
- watches are re-created after a broken stream at the revision after the last one delivered;
  a compaction cancel (`canceled`, `compact_revision`) ends the iterator, so `ListWatcher`
  re-lists.

Errors: etcd's error messages are the ones in `store.kv.errors` (etcd's `rpctypes`), so a known
message becomes the same `KVError` tabby-store raises. Other refusals (an unknown message, an
etcd without `/v3/`) raise `StoreUnavailableError` naming etcd's gRPC code and message; so does
an answer that does not have etcd's shape. Refusals of our user (a wrong password, a user
without permission) raise `EtcdAuthError`, a `StoreUnavailableError` that names the user.

TLS: `https://` endpoints with `ipc.TLSConfig` (CA, client certificate for --client-cert-auth).

Authentication (etcd's users and roles, `etcdctl auth enable`): with a user name and a password
(`user=` and `password-file=` in the endpoints' query, or the constructor's arguments), the
client gets a token from `/v3/auth/authenticate` before its first request and sends it in the
`Authorization` header of every request, watch streams included. A token that etcd no longer
takes (clientv3's `shouldRefreshToken`: "invalid auth token" once a simple token expired or was
issued by another member, "revision of auth store is old", "user name is empty" once auth was
enabled after we started) is replaced by a fresh one and the request sent again, once; every
such refusal comes before etcd acts on a request, so this is safe for writes too. An etcd
without auth enabled answers the authentication with "authentication is not enabled", and the
client then goes on without a token, as clientv3 does. The password file is read again for every
authentication, so a corrected file is picked up without a restart.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import ssl
from collections.abc import AsyncGenerator, Sequence
from pathlib import Path
from typing import cast

from ipc import TLSConfig
from runtime.log import get_logger
from store.client import LeaseTimeToLive, StoreStatus, StoreUnavailableError
from store.etcd_endpoint import Credentials, EtcdEndpoint, warn_about_exposure
from store.etcd_http import (
    MAX_LINE,
    ConnectError,
    GatewayConn,
    GRPCError,
    LostError,
    json_lines,
)
from store.etcd_json import (
    Json,
    as_int,
    as_list,
    b64,
    decoded,
    delete_json,
    delete_response,
    header_revision,
    put_json,
    put_response,
    range_json,
    range_response,
    txn_json,
    txn_response,
    unb64,
    watch_response,
)
from store.kv import (
    AlarmType,
    CompactRequest,
    CompactResponse,
    DeleteRangeRequest,
    DeleteRangeResponse,
    KVError,
    LeaseGrantResponse,
    LeaseRevokeResponse,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    TxnRequest,
    TxnResponse,
    WatchFilter,
    WatchResponse,
)
from store.kv.errors import ERRORS, ErrorKind
from store.kvbase import KVClientBase, WatchCreate

# etcd's error message -> our kind. "etcdserver: not leader" is left out: it is a member's
# refusal to serve (retry elsewhere), not a request error.
_BY_MESSAGE = {
    msg: kind for kind, (_code, msg) in ERRORS.items() if kind is not ErrorKind.NOT_LEADER
}

# gRPC's own refusal of a request over etcd's --max-request-bytes (plus gRPC's overhead): the
# same error, for the client, as etcd's ErrRequestTooLarge for a request just over the limit.
_BY_PREFIX: dict[str, ErrorKind] = {
    "grpc: received message larger than max": ErrorKind.REQUEST_TOO_LARGE
}

# Refusals given before anything was proposed: safe to retry a write on another member.
# ErrNoLeader comes from the require-leader interceptor, ErrTooManyRequests and ErrNotCapable
# are checked before the proposal (etcdserver/v3_server.go).
_NOT_EXECUTED = frozenset(
    {
        "etcdserver: no leader",
        "etcdserver: not leader",
        "etcdserver: too many requests",
        "etcdserver: not capable",
    }
)
# gRPC codes (google.rpc.Code) of transient failures: a read may be retried anywhere.
_TRANSIENT_CODES = frozenset({1, 2, 4, 8, 10, 13, 14})
# The refusals that mean our token is no good but a fresh one may be (clientv3's
# shouldRefreshToken); in a watch's cancel_reason they come wrapped ("rpc error: code = ...
# desc = etcdserver: invalid auth token").
_TOKEN_REFUSED = (
    "etcdserver: invalid auth token",
    "etcdserver: revision of auth store is old",
    "etcdserver: user name is empty",
)
_AUTH_FAILED = "etcdserver: authentication failed, invalid user ID or password"
_AUTH_NOT_ENABLED = "etcdserver: authentication is not enabled"
_PERMISSION_DENIED = 7  # gRPC PermissionDenied
_AUTHENTICATE = "/v3/auth/authenticate"
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")  # what may go in a header: printable, no spaces
_ALARM = re.compile(r"alarm:([A-Z]+)")

log = get_logger("store.etcd")


def _token_refused(message: str) -> bool:
    return any(m in message for m in _TOKEN_REFUSED)


def _permission_denied(cancel_reason: str) -> bool:
    # etcd 3.4 cancels a watch its user may not read with "rpc error: code =
    # PermissionDenied desc = etcdserver: permission denied".
    return "PermissionDenied" in cancel_reason or "permission denied" in cancel_reason


class EtcdAuthError(StoreUnavailableError):
    """etcd refused our user: a wrong password, a user without permission, or no fresh token.
    Not retried: a person has to fix the password (file) or the user's roles."""

    def __init__(self, message: str, user: str | None) -> None:
        super().__init__(message)
        self.user = user


class EtcdClient(KVClientBase):
    """`KVClient` against an etcd v3 cluster (3.4 or later) through its JSON gateway."""

    def __init__(
        self,
        endpoints: str | Sequence[str],
        *,
        tls: TLSConfig | None = None,
        timeout: float = 5.0,
        connect_timeout: float = 1.0,
        max_in_flight: int = 256,
        max_response_bytes: int = 256 << 20,
        rng: random.Random | None = None,
        user: str | None = None,
        password: str | None = None,
        password_file: str | Path | None = None,
    ) -> None:
        """`user` with `password` or `password_file` (etcd's user/password authentication) take
        the place of `user=` and `password-file=` in the endpoints' query; ValueError when the
        password file cannot be read, so a daemon with a wrong path stops at start."""
        eps = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        self._endpoints = [EtcdEndpoint.parse(ep) for ep in eps]
        super().__init__(
            [ep.url for ep in self._endpoints],
            timeout=timeout,
            max_in_flight=max_in_flight,
            rng=rng,
        )
        self.connect_timeout = connect_timeout
        self.max_response_bytes = max_response_bytes
        self._ssl: ssl.SSLContext | None = None
        from_urls = {ep.tls_files for ep in self._endpoints if ep.tls}
        if tls is None and len(from_urls) > 1:
            raise ValueError("etcd endpoints: every https:// endpoint needs the same certificates")
        if tls is None and from_urls:
            tls = from_urls.pop()
        if any(ep.tls for ep in self._endpoints):
            self._ssl = (tls or TLSConfig()).client_context()
        self._server_hostname = tls.server_hostname if tls is not None else None
        self._idle: list[list[GatewayConn]] = [[] for _ in self._endpoints]
        self._streams: set[GatewayConn] = set()
        self._max_idle = max(4, min(max_in_flight, 64))
        if user is not None or password is not None or password_file is not None:
            self.credentials: Credentials | None = Credentials(
                user or "",
                password_file=Path(password_file) if password_file is not None else None,
                password=password,
            )
        else:
            given = {ep.credentials for ep in self._endpoints}
            if len(given) > 1:
                raise ValueError(
                    "etcd endpoints: every endpoint needs the same user= and password-file="
                )
            self.credentials = given.pop()
        if self.credentials is not None:
            self.credentials.read_password()  # a wrong path or an empty file fails here
            warn_about_exposure(self.credentials, [ep for ep in self._endpoints if not ep.tls])
        # None: not authenticated yet; "": etcd has no auth enabled, requests go without one.
        self._token: str | None = None
        self._auth_lock = asyncio.Lock()
        self.authentications = 0  # tokens obtained (the first one and every renewal)

    # --- plumbing ------------------------------------------------------------------------

    async def _open(self, index: int, timeout: float) -> GatewayConn:
        ep = self._endpoints[index]
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    ep.host,
                    ep.port,
                    ssl=self._ssl if ep.tls else None,
                    server_hostname=(self._server_hostname or ep.host) if ep.tls else None,
                    limit=MAX_LINE,
                ),
                min(timeout, self.connect_timeout),
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise ConnectError(f"{ep.url}: {exc or type(exc).__name__}") from None
        return GatewayConn(reader, writer)

    async def _take(self, index: int, timeout: float) -> GatewayConn:
        idle = self._idle[index]
        while idle:
            conn = idle.pop()
            if conn.alive:
                return conn
            conn.close()
        return await self._open(index, timeout)

    def _give_back(self, index: int, conn: GatewayConn) -> None:
        if conn.reusable and conn.alive and len(self._idle[index]) < self._max_idle:
            self._idle[index].append(conn)
        else:
            conn.close()

    async def _exchange(
        self,
        index: int,
        path: str,
        body: bytes,
        timeout: float,
        require_leader: bool,
        token: str | None,
    ) -> Json:
        conn = await self._take(index, timeout)
        ep = self._endpoints[index]
        try:
            async with asyncio.timeout(timeout):
                conn.send(ep.host, path, body, require_leader, token)
                status, headers = await conn.read_head()
                data = await conn.read_body(headers, self.max_response_bytes)
        except ssl.SSLError as exc:
            conn.close()
            if conn.fresh and "ALERT" in (exc.reason or ""):
                # TLS 1.3: the server judges our certificate after we sent the request, and
                # its refusal (an alert) is what we read back; nothing reached etcd.
                raise ConnectError(f"{ep.url}: TLS handshake refused: {exc}") from None
            raise LostError(f"{ep.url}{path}: {exc}") from None
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            conn.close()
            raise LostError(f"{ep.url}{path}: {exc or type(exc).__name__}") from None
        except TimeoutError:
            conn.close()
            raise LostError(f"{ep.url}{path}: no answer in time") from None
        except LostError:
            conn.close()
            raise
        conn.fresh = False
        self._give_back(index, conn)
        try:
            doc = json.loads(data) if data else {}
        except ValueError:
            if status == 404:
                # etcd before 3.4 serves the gateway under /v3beta/ (3.3) or /v3alpha/ only.
                # (A gRPC NotFound, such as an unknown lease, is a 404 with a JSON body.)
                raise GRPCError(12, f"HTTP 404 for {path}: etcd 3.4 or later is needed") from None
            raise LostError(f"{ep.url}{path}: HTTP {status}: not JSON") from None
        if not isinstance(doc, dict):
            raise LostError(f"{ep.url}{path}: HTTP {status}: not a JSON object")
        error = doc.get("error")
        if isinstance(error, dict):  # a stream's error: {"error": {"grpc_code": .., ...}}
            raise GRPCError(as_int(error.get("grpc_code", 2)), str(error.get("message")))
        if status != 200 or ("code" in doc and "error" in doc):
            raise GRPCError(as_int(doc.get("code", 2)), str(doc.get("message", doc.get("error"))))
        return cast(Json, doc)

    async def _call(
        self,
        path: str,
        req: Json,
        *,
        idempotent: bool,
        require_leader: bool = True,
        deadline: float | None = None,
    ) -> Json:
        loop = asyncio.get_running_loop()
        if deadline is None:
            deadline = loop.time() + self.timeout
        body = json.dumps(req, separators=(",", ":")).encode()
        last = ""
        delay = 0.02
        refreshed = False
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise StoreUnavailableError(f"{path}: no etcd member answered in time ({last})")
            token = None
            if self.credentials is not None and path != _AUTHENTICATE:
                token = await self._token_for(deadline)
            index = self._current
            try:
                async with self._sem:
                    return await self._exchange(index, path, body, remaining, require_leader, token)
            except ConnectError as exc:
                last = str(exc)
            except LostError as exc:
                last = str(exc)
                if not idempotent:
                    self._rotate(index)  # as StoreClient: the next call goes elsewhere
                    raise StoreUnavailableError(f"{path}: {last}", outcome_unknown=True) from None
            except GRPCError as exc:
                kind: ErrorKind | None = _BY_MESSAGE.get(exc.message) or next(
                    (k for p, k in _BY_PREFIX.items() if exc.message.startswith(p)), None
                )
                if kind is not None:
                    raise KVError(kind) from None
                if path == _AUTHENTICATE and exc.message in (_AUTH_FAILED, _AUTH_NOT_ENABLED):
                    raise  # `_authenticate` says what it means
                if token is not None and _token_refused(exc.message) and not refreshed:
                    # Refused before etcd acted on the request: a fresh token, and once more.
                    refreshed = True
                    self._forget(token)
                    continue
                if (refused := self._user_refused(path, exc.message, exc.code)) is not None:
                    raise refused from None
                last = f"{self.endpoints[index]}: {exc}"
                if exc.message not in _NOT_EXECUTED:
                    if exc.code not in _TRANSIENT_CODES:
                        raise StoreUnavailableError(f"{path}: etcd refused: {exc}") from None
                    if not idempotent:
                        self._rotate(index)
                        raise StoreUnavailableError(
                            f"{path}: {last}", outcome_unknown=True
                        ) from None
            delay = await self._retry_pause(index, delay, remaining)

    # --- authentication ----------------------------------------------------------------------

    async def _token_for(self, deadline: float) -> str:
        """The token to send, authenticating first when there is none. One authentication at a
        time: calls that queued behind it take the token it got."""
        token = self._token
        if token is not None:
            return token
        # A caller queued behind another's authentication still keeps its own deadline.
        try:
            async with asyncio.timeout_at(deadline), self._auth_lock:
                token = self._token
                if token is None:
                    token = self._token = await self._authenticate(deadline)
                return token
        except TimeoutError:
            raise StoreUnavailableError(
                "etcd authentication: no etcd member answered in time"
            ) from None

    def _forget(self, token: str) -> None:
        """etcd no longer takes `token`: the next request authenticates again (unless another
        call already did)."""
        if self._token == token:
            self._token = None

    async def _authenticate(self, deadline: float) -> str:
        """A token for our user from /v3/auth/authenticate; "" when etcd has no auth enabled."""
        creds = self.credentials
        assert creds is not None
        try:
            password = creds.read_password()
        except ValueError as exc:
            raise EtcdAuthError(str(exc), creds.user) from None
        req: Json = {"name": creds.user, "password": password}
        try:
            doc = await self._call(_AUTHENTICATE, req, idempotent=True, deadline=deadline)
        except GRPCError as exc:
            if exc.message == _AUTH_NOT_ENABLED:
                return ""  # as clientv3: go on without a token
            where = f" (password file {str(creds.password_file)!r})" if creds.password_file else ""
            raise EtcdAuthError(
                f"etcd user {creds.user!r}: authentication failed, wrong user name or "
                f"password{where}",
                creds.user,
            ) from None
        token = doc.get("token")
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            raise StoreUnavailableError(f"{_AUTHENTICATE}: etcd's answer has no usable token")
        self.authentications += 1
        return token

    def _user_refused(self, what: str, message: str, code: int) -> EtcdAuthError | None:
        """A refusal that is about who we are, said with the user's name (or its absence)."""
        creds = self.credentials
        if creds is not None and code == _PERMISSION_DENIED:
            return EtcdAuthError(
                f"{what}: etcd user {creds.user!r} is not permitted: {message}", creds.user
            )
        if not _token_refused(message):
            return None
        if creds is None:
            return EtcdAuthError(
                f"{what}: etcd has authentication enabled: give the store endpoints user= and "
                f"password-file= ({message})",
                None,
            )
        return EtcdAuthError(
            f"{what}: etcd refused the token it had just issued to user {creds.user!r}: {message}",
            creds.user,
        )

    # --- KV and watch primitives (the calls themselves are KVClientBase's) ------------------

    async def _range(self, req: RangeRequest, serializable: bool) -> RangeResponse:
        body = range_json(req)
        if serializable:
            body["serializable"] = True
        doc = await self._call("/v3/kv/range", body, idempotent=True)
        return decoded("range", False, lambda: range_response(doc, header_revision(doc)))

    async def _put(self, req: PutRequest) -> PutResponse:
        doc = await self._call("/v3/kv/put", put_json(req), idempotent=False)
        return decoded("put", True, lambda: put_response(doc, header_revision(doc)))

    async def _delete_range(self, req: DeleteRangeRequest) -> DeleteRangeResponse:
        doc = await self._call("/v3/kv/deleterange", delete_json(req), idempotent=False)
        return decoded("delete", True, lambda: delete_response(doc, header_revision(doc)))

    async def _txn(self, req: TxnRequest) -> TxnResponse:
        doc = await self._call("/v3/kv/txn", txn_json(req), idempotent=False)
        return decoded("txn", True, lambda: txn_response(doc, header_revision(doc)))

    async def _compact(self, req: CompactRequest) -> CompactResponse:
        body: Json = {"revision": str(req.revision)}
        if req.physical:
            body["physical"] = True
        doc = await self._call("/v3/kv/compaction", body, idempotent=False)
        return CompactResponse(header_revision(doc))

    async def _watch_stream(
        self, index: int, create: WatchCreate
    ) -> AsyncGenerator[WatchResponse, None]:
        """One gateway watch stream; a broken one, an unreadable answer or a stream that fails
        (`{"error": ...}`, e.g. no leader) ends it, and `watch` resumes it elsewhere."""
        body: Json = {"key": b64(create.key)}
        if create.range_end:
            body["range_end"] = b64(create.range_end)
        if create.start_revision:
            body["start_revision"] = str(create.start_revision)
        if create.prev_kv:
            body["prev_kv"] = True
        if create.progress_notify:
            body["progress_notify"] = True
        if create.filters:
            body["filters"] = [WatchFilter(f).name for f in create.filters]
        data = json.dumps({"create_request": body}).encode()
        for attempt in (1, 2):
            token = None
            if self.credentials is not None:
                deadline = asyncio.get_running_loop().time() + self.timeout
                try:
                    token = await self._token_for(deadline)
                except EtcdAuthError:
                    raise
                except StoreUnavailableError:
                    return  # no member to authenticate with now: the watch resumes later
            stale = False
            conn: GatewayConn | None = None
            try:
                conn = await self._open(index, self.timeout)
                conn.keep_alive()
                self._streams.add(conn)
                conn.send(self._endpoints[index].host, "/v3/watch", data, token=token)
                status, headers = await asyncio.wait_for(conn.read_head(), self.timeout)
                if status != 200 or b"chunked" not in headers.get(b"transfer-encoding", b""):
                    raise LostError(f"watch answered HTTP {status}")
                async for doc in json_lines(conn):
                    if "result" not in doc:
                        break  # {"error": ...}: the stream failed (e.g. no leader)
                    resp = watch_response(cast(Json, doc["result"]))
                    if resp.canceled and _permission_denied(resp.cancel_reason):
                        # etcd refuses a watch our role may not read by cancelling it at
                        # creation: say who was refused, instead of a cancel that a
                        # list-watch would take for a broken stream and re-create for ever.
                        refused = self._user_refused(
                            "/v3/watch", resp.cancel_reason, _PERMISSION_DENIED
                        )
                        if refused is not None:
                            raise refused
                    if resp.canceled and _token_refused(resp.cancel_reason):
                        # Refused at creation, as a request would be: a fresh token, once.
                        if token is None or attempt == 2:
                            refused = self._user_refused("/v3/watch", resp.cancel_reason, 16)
                            assert refused is not None
                            raise refused
                        self._forget(token)
                        stale = True
                        break
                    yield resp
            except (
                ConnectError,
                LostError,
                OSError,
                EOFError,
                ValueError,
                TypeError,
                AttributeError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                TimeoutError,  # no answer head in time: resume elsewhere
            ):
                pass
            finally:
                if conn is not None:
                    self._streams.discard(conn)
                    conn.close()
            if not stale:
                return

    # --- leases --------------------------------------------------------------------------

    async def lease_grant(self, ttl: int, lease_id: int = 0) -> LeaseGrantResponse:
        req: Json = {"TTL": str(ttl)}
        if lease_id:
            req["ID"] = str(lease_id)
        doc = await self._call("/v3/lease/grant", req, idempotent=False)
        if doc.get("error"):
            raise StoreUnavailableError(f"lease grant: etcd refused: {doc['error']}")
        return LeaseGrantResponse(
            header_revision(doc), as_int(doc.get("ID")), as_int(doc.get("TTL"))
        )

    async def lease_keep_alive(self, lease_id: int) -> int:
        """One round of etcd's keep-alive stream (clientv3 `KeepAliveOnce`): TTL 0 is etcd's
        answer for a lease it does not know, raised as LEASE_NOT_FOUND as tabby-store does."""
        doc = await self._call("/v3/lease/keepalive", {"ID": str(lease_id)}, idempotent=True)
        result = doc.get("result")
        if not isinstance(result, dict):
            error = doc.get("error")
            raise StoreUnavailableError(f"lease keep-alive: etcd answered {error or doc!r}")
        ttl = as_int(result.get("TTL"))
        if ttl <= 0:
            raise KVError(ErrorKind.LEASE_NOT_FOUND)
        return ttl

    async def lease_revoke(self, lease_id: int) -> LeaseRevokeResponse:
        doc = await self._call("/v3/lease/revoke", {"ID": str(lease_id)}, idempotent=False)
        return LeaseRevokeResponse(header_revision(doc))

    async def lease_time_to_live(self, lease_id: int, keys: bool = False) -> LeaseTimeToLive:
        req: Json = {"ID": str(lease_id)}
        if keys:
            req["keys"] = True
        doc = await self._call("/v3/lease/timetolive", req, idempotent=True)
        return LeaseTimeToLive(
            as_int(doc.get("ID", lease_id)),
            as_int(doc.get("TTL")),
            as_int(doc.get("grantedTTL")),
            tuple(unb64(k) for k in as_list(doc.get("keys"))),
        )

    async def lease_list(self) -> tuple[int, ...]:
        doc = await self._call("/v3/lease/leases", {}, idempotent=True)
        return tuple(as_int(cast(Json, item).get("ID")) for item in as_list(doc.get("leases")))

    # --- maintenance ---------------------------------------------------------------------

    async def status(self) -> StoreStatus:
        """The status of the member this client talks to, with the alarms it knows of. Served
        by the member alone (no leader needed: a cut-off member still says what it thinks)."""
        doc = await self._call("/v3/maintenance/status", {}, idempotent=True, require_leader=False)
        alarms: list[AlarmType] = []
        for text in as_list(doc.get("errors")):  # "memberID:... alarm:NOSPACE " per alarm
            match = _ALARM.search(str(text))
            if match and match.group(1) in AlarmType.__members__:
                alarm = AlarmType[match.group(1)]
                if alarm is not AlarmType.NONE and alarm not in alarms:
                    alarms.append(alarm)
        header = cast(Json, doc.get("header", {}))
        return StoreStatus(
            member_id=as_int(header.get("member_id")),
            leader=as_int(doc.get("leader")),
            raft_term=as_int(doc.get("raftTerm")),
            raft_index=as_int(doc.get("raftIndex")),
            applied_index=as_int(doc.get("raftAppliedIndex", doc.get("raftIndex"))),
            revision=as_int(header.get("revision")),
            db_size=as_int(doc.get("dbSize")),
            is_learner=bool(doc.get("isLearner", False)),
            alarms=tuple(alarms),
        )

    async def alarm_list(self) -> tuple[AlarmType, ...]:
        doc = await self._call("/v3/maintenance/alarm", {"action": "GET"}, idempotent=True)
        out: list[AlarmType] = []
        for item in as_list(doc.get("alarms")):
            name = cast(Json, item).get("alarm", "NONE")
            alarm = AlarmType[name] if isinstance(name, str) else AlarmType(as_int(name))
            if alarm is not AlarmType.NONE and alarm not in out:
                out.append(alarm)
        return tuple(out)

    async def close(self) -> None:
        for idle in self._idle:
            for conn in idle:
                conn.close()
            idle.clear()
        for conn in list(self._streams):
            conn.close()
        self._streams.clear()
