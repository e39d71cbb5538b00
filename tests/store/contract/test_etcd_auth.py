"""EtcdClient with etcd's user/password authentication, against a real etcd (Debian's 3.4).

One etcd with auth enabled (`etcdctl auth enable`) and simple tokens that expire after
`TTL` seconds unused (--auth-token-ttl); the user `tabby` has a role that may read and write
`/calico/` only. Its password is in a file named by the endpoint's `password-file=`, as a
daemon's `store_endpoints` would carry it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from store.backend import connect
from store.client import StoreUnavailableError, prefix_end
from store.etcd import EtcdAuthError, EtcdClient
from store.kv import Compare, PutRequest
from store.kv.messages import CompareResult, CompareTarget
from tests.store.contract.conftest import ETCD, EtcdProcess

pytestmark = [pytest.mark.slow, pytest.mark.debian(ETCD)]

ETCDCTL = "/usr/bin/etcdctl"
TTL = 2  # seconds a simple token lives unused


@dataclass
class AuthEtcd:
    etcd: EtcdProcess
    root: Path
    password_file: Path

    def endpoint(self, password_file: Path | None = None, user: str = "tabby") -> str:
        return f"{self.etcd.url}?user={user}&password-file={password_file or self.password_file}"

    def client(self, password_file: Path | None = None, user: str = "tabby") -> EtcdClient:
        kv = connect([self.endpoint(password_file, user)], timeout=10)
        assert isinstance(kv, EtcdClient)
        return kv


def _etcdctl(url: str, *args: str, root: bool = False, stdin: bytes = b"") -> None:
    auth = ["--user", "root:rootpw"] if root else []
    subprocess.run(
        [ETCDCTL, "--endpoints", url, *auth, *args],
        check=True,
        capture_output=True,
        input=stdin,
        timeout=30,
        env={**os.environ, "ETCDCTL_API": "3"},
    )


def _post(etcd: EtcdProcess, path: str, doc: object, token: str | None = None) -> tuple[int, str]:
    """One raw request to the gateway: (HTTP status, body)."""
    body = json.dumps(doc).encode()
    auth = b"Authorization: %s\r\n" % token.encode() if token else b""
    with socket.create_connection((etcd.host, etcd.client_port), timeout=5) as s:
        s.sendall(
            b"POST %s HTTP/1.1\r\nHost: e\r\nConnection: close\r\n%sContent-Length: %d\r\n\r\n%s"
            % (path.encode(), auth, len(body), body)
        )
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), rest.decode(errors="replace")


def _wait_answering(etcd: EtcdProcess, timeout: float = 30.0) -> None:
    """etcd answers HTTP again (with auth enabled its readiness probe is refused: any answer)."""
    for _ in range(int(timeout * 10)):
        assert etcd.proc is not None and etcd.proc.poll() is None, etcd.log()
        try:
            status, _ = _post(etcd, "/v3/kv/range", {"key": "AA=="})
            if status in (200, 400):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"etcd did not answer: {etcd.log()}")


@pytest.fixture(scope="module")
def auth_etcd() -> Iterator[AuthEtcd]:
    root = Path(tempfile.mkdtemp(prefix="tabby-etcd-auth-", dir="/tmp"))
    try:
        etcd = EtcdProcess(
            root, extra_args=["--auth-token", "simple", "--auth-token-ttl", str(TTL)]
        )
        try:
            etcd.start()
            etcd.wait_ready()
            url = etcd.url
            _etcdctl(url, "user", "add", "root:rootpw")
            _etcdctl(url, "role", "add", "root")
            _etcdctl(url, "user", "grant-role", "root", "root")
            _etcdctl(url, "user", "add", "tabby:s3cret")
            _etcdctl(url, "role", "add", "tabby")
            _etcdctl(
                url, "role", "grant-permission", "tabby", "--prefix=true", "readwrite", "/calico/"
            )
            _etcdctl(url, "user", "grant-role", "tabby", "tabby")
            _etcdctl(url, "auth", "enable")
            password_file = root / "etcd-password"
            password_file.write_text("s3cret\n")
            password_file.chmod(0o600)
            yield AuthEtcd(etcd, root, password_file)
        finally:
            etcd.kill()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def kv(auth_etcd: AuthEtcd) -> AsyncIterator[EtcdClient]:
    client = auth_etcd.client()
    try:
        yield client
    finally:
        await client.close()


async def test_put_get_txn_watch_and_leases_with_the_right_password(kv: EtcdClient) -> None:
    p = b"/calico/auth/rw/"
    first = await kv.put(p + b"a", b"1")
    got = await kv.get(p + b"a")
    assert got.kvs[0].value == b"1" and got.kvs[0].mod_revision == first.revision
    txn = await kv.txn(
        [Compare(p + b"a", CompareTarget.VERSION, CompareResult.EQUAL, 1)],
        [PutRequest(p + b"b", b"2")],
        [],
    )
    assert txn.succeeded
    lease = await kv.lease_grant(60)
    await kv.put(p + b"c", b"3", lease=lease.id)
    await kv.lease_revoke(lease.id)  # deletes c
    seen: list[tuple[bytes, int]] = []
    stream = kv.watch(p, prefix_end(p), start_revision=first.revision)
    try:
        async with asyncio.timeout(30):
            async for resp in stream:
                assert not resp.canceled, resp.cancel_reason
                seen += [(ev.kv.key, int(ev.type)) for ev in resp.events]
                if len(seen) == 4:
                    break
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    assert seen == [(p + b"a", 0), (p + b"b", 0), (p + b"c", 0), (p + b"c", 1)]
    assert (await kv.range(p, prefix_end(p), count_only=True)).count == 2
    assert kv.authentications >= 1


async def test_what_the_role_does_not_grant_is_refused_naming_the_user(kv: EtcdClient) -> None:
    with pytest.raises(EtcdAuthError, match="user 'tabby' is not permitted") as err:
        await kv.put(b"/other/k", b"v")
    assert err.value.user == "tabby"
    stream = kv.watch(b"/other/k")
    try:
        # etcd cancels the watch at creation; the client says who was refused (a plain cancel
        # would make a list-watch re-create it for ever).
        with pytest.raises(EtcdAuthError, match="user 'tabby' is not permitted"):
            await anext(stream)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


async def test_a_wrong_password_is_a_clear_error_naming_the_user(auth_etcd: AuthEtcd) -> None:
    wrong = auth_etcd.root / "wrong-password"
    wrong.write_text("not-it\n")
    for kv, user in [
        (auth_etcd.client(wrong), "tabby"),
        (auth_etcd.client(user="nobody"), "nobody"),
    ]:
        try:
            with pytest.raises(EtcdAuthError) as err:
                await kv.get(b"/calico/auth/k")
            assert isinstance(err.value, StoreUnavailableError)
            assert err.value.user == user
            assert f"etcd user {user!r}: authentication failed" in str(err.value)
            assert "not-it" not in str(err.value) and "s3cret" not in str(err.value)
            with pytest.raises(EtcdAuthError, match=f"'{user}'"):
                await anext(kv.watch(b"/calico/auth/k"))
        finally:
            await kv.close()
    anonymous = connect([auth_etcd.etcd.url], timeout=10)
    try:
        with pytest.raises(EtcdAuthError, match="user= and password-file="):
            await anonymous.range(b"/calico/auth/k")
        with pytest.raises(EtcdAuthError, match="user= and password-file="):
            await anext(anonymous.watch(b"/calico/auth/k"))
    finally:
        await anonymous.close()


async def test_an_expired_token_is_renewed_without_the_caller_noticing(
    auth_etcd: AuthEtcd, kv: EtcdClient
) -> None:
    p = b"/calico/auth/expiry/"
    rev = (await kv.put(p + b"a", b"1")).revision
    assert kv.authentications == 1
    old = kv._token
    assert old
    # Unused for longer than --auth-token-ttl, the token is gone from etcd (checked with a
    # raw request, which would itself keep a live token alive: hence the wait every round).
    for _ in range(10):
        await asyncio.sleep(TTL + 1.5)
        status, body = await asyncio.to_thread(
            _post, auth_etcd.etcd, "/v3/kv/range", {"key": base64.b64encode(p).decode()}, old
        )
        if status == 401:
            assert "invalid auth token" in body
            break
    else:
        pytest.fail("the token did not expire")
    # The watch is created first: its own refusal makes it authenticate again.
    stream = kv.watch(p, prefix_end(p), start_revision=rev)
    try:
        first = await anext(stream)
        assert [ev.kv.key for ev in first.events] == [p + b"a"]
        assert kv.authentications >= 2 and kv._token != old
        before = kv.authentications
        gets, _ = await asyncio.gather(
            asyncio.gather(*(kv.get(p + b"a") for _ in range(10))), kv.put(p + b"b", b"2")
        )
        assert all(r.kvs[0].value == b"1" for r in gets)
        assert kv.authentications - before <= 1  # concurrent calls share a renewal
        second = await anext(stream)
        assert [ev.kv.key for ev in second.events] == [p + b"b"]
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


async def test_a_running_watch_broken_by_a_restart_renews_its_invalidated_token(
    auth_etcd: AuthEtcd,
) -> None:
    """The user's tokens are invalidated (a password change: etcd drops them) while a watch
    runs, which does not touch the stream; then etcd restarts, which breaks it. The watch is
    created again, refused for its token, and goes on with a fresh one, with no gap and no
    repeat. (A restart alone keeps simple tokens: etcd re-applies the authentications in its
    log.)"""
    p = b"/calico/auth/restart/"
    watcher, writer = auth_etcd.client(), auth_etcd.client()
    stream = None
    try:
        rev = (await writer.put(p + b"a", b"1")).revision
        stream = watcher.watch(p, prefix_end(p), start_revision=rev)
        first = await anext(stream)
        assert [ev.kv.key for ev in first.events] == [p + b"a"]
        assert watcher.authentications == 1
        _etcdctl(
            auth_etcd.etcd.url,
            *("user", "passwd", "tabby", "--interactive=false"),
            root=True,
            stdin=b"s3cret\n",
        )
        auth_etcd.etcd.kill()
        auth_etcd.etcd.start()
        await asyncio.to_thread(_wait_answering, auth_etcd.etcd)
        await writer.put(p + b"b", b"2")  # the writer renews its own token
        async with asyncio.timeout(30):
            second = await anext(stream)
        assert [ev.kv.key for ev in second.events] == [p + b"b"]
        assert watcher.authentications == 2  # the watch alone got the watcher a new token
    finally:
        if stream is not None:
            await stream.aclose()  # type: ignore[attr-defined]
        await watcher.close()
        await writer.close()
