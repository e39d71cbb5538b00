"""`EtcdClient`'s user/password authentication against a scripted fake of etcd's gateway.

etcd's rules (rpctypes, clientv3's shouldRefreshToken) as the fake plays them: a token from
/v3/auth/authenticate goes in the Authorization header; a token etcd no longer takes is renewed
and the request sent again, once; a wrong password is an error that names the user; an etcd
without auth enabled answers "authentication is not enabled" and is used without a token.
The same rules against a real etcd: tests/store/contract/test_etcd_auth.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from store.backend import connect
from store.client import StoreUnavailableError
from store.etcd import EtcdAuthError, EtcdClient
from store.etcd_endpoint import Credentials
from tests.store.test_etcd_client import (
    HEADER,
    KV,
    FakeGateway,
    answer,
    answer_chunked,
    grpc_error,
)

AUTH_FAILED = "etcdserver: authentication failed, invalid user ID or password"


class FakeAuth:
    """etcd's auth store as the gateway shows it: users, live tokens, enabled or not."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.users = {"tabby": "s3cret"}
        self.valid: set[str] = set()
        self.refuse_every_token = False
        self._serial = itertools.count(1)
        self.gw = FakeGateway(self.handle)

    async def handle(self, path: str, body: dict[str, object], w: asyncio.StreamWriter) -> bool:
        token = self.gw.tokens[-1]
        if path == "/v3/auth/authenticate":
            if not self.enabled:
                grpc_error(w, 9, "etcdserver: authentication is not enabled")
            elif self.users.get(str(body["name"])) == body["password"]:
                new = f"tok{next(self._serial)}.{body['name']}"
                self.valid.add(new)
                answer(w, {**HEADER, "token": new})
            else:
                grpc_error(w, 3, AUTH_FAILED)
            return True
        refusal = self._refusal(token)
        if path == "/v3/watch":
            if refusal is not None:
                reason = f"rpc error: code = {refusal[2]} desc = {refusal[1]}"
                answer_chunked(
                    w, [{"result": {**HEADER, "watch_id": "-1", "created": True,
                                    "canceled": True, "cancel_reason": reason}}]
                )  # fmt: skip
            else:
                answer_chunked(
                    w,
                    [
                        {"result": {**HEADER, "created": True}},
                        {"result": {**HEADER, "events": [{"kv": KV}]}},
                    ],
                    end=False,
                )
            return True
        if refusal is not None:
            grpc_error(w, refusal[0], refusal[1])
        elif path == "/v3/kv/put" and str(body["key"]).startswith("L290aGVy"):  # b"/other"
            grpc_error(w, 7, "etcdserver: permission denied")
        else:
            answer(w, {**HEADER, "count": "0"})
        return True

    def _refusal(self, token: str | None) -> tuple[int, str, str] | None:
        if not self.enabled:
            return None
        if token is None:
            return 3, "etcdserver: user name is empty", "InvalidArgument"
        if token not in self.valid or self.refuse_every_token:
            return 16, "etcdserver: invalid auth token", "Unauthenticated"
        return None

    def paths(self) -> list[str]:
        return [p.rsplit("/", 1)[1] for p, _ in self.gw.requests]


@contextlib.asynccontextmanager
async def _client(fake: FakeAuth) -> AsyncIterator[EtcdClient]:
    """The fake gateway serving, and a client with the right password."""
    async with fake.gw as gw:
        kv = EtcdClient(gw.url, timeout=5, user="tabby", password="s3cret")
        try:
            yield kv
        finally:
            await kv.close()


async def test_the_token_goes_with_every_request_and_is_renewed_once_when_refused() -> None:
    fake = FakeAuth()
    async with _client(fake) as kv:
        await kv.put(b"/calico/k", b"v")
        fake.valid.clear()  # expired (simple token TTL) or issued by another member
        await kv.range(b"/calico/k")
        assert fake.paths() == ["authenticate", "put", "range", "authenticate", "range"]
        assert fake.gw.tokens == [None, "tok1.tabby", "tok1.tabby", None, "tok2.tabby"]
        assert kv.authentications == 2


async def test_a_token_refused_right_after_it_was_issued_is_an_auth_error() -> None:
    """Renewed once, not in a loop: the second refusal names the user."""
    fake = FakeAuth()
    fake.refuse_every_token = True
    async with _client(fake) as kv:
        with pytest.raises(EtcdAuthError, match="'tabby'") as err:
            await kv.put(b"/calico/k", b"v")
        assert err.value.user == "tabby" and not err.value.outcome_unknown
        assert fake.paths() == ["authenticate", "put", "authenticate", "put"]


async def test_wrong_password_is_an_error_naming_the_user_and_the_file(tmp_path: Path) -> None:
    fake = FakeAuth()
    secret = tmp_path / "etcd-password"
    secret.write_text("wrong\n")
    async with fake.gw as gw:
        kv = connect([f"{gw.url}?user=tabby&password-file={secret}"], timeout=5)
        try:
            with pytest.raises(EtcdAuthError) as err:
                await kv.range(b"/calico/k")
            assert isinstance(err.value, StoreUnavailableError)
            text = str(err.value)
            assert "'tabby'" in text and str(secret) in text and "wrong\n" not in text
            assert fake.paths() == ["authenticate"]  # not retried: a person must fix it
            # The file is read again for the next authentication: a corrected one is taken.
            secret.write_text("s3cret\n")
            assert (await kv.range(b"/calico/k")).revision == 7
            assert fake.gw.requests[-2][1] == {"name": "tabby", "password": "s3cret"}
        finally:
            await kv.close()


async def test_calls_waiting_for_a_token_share_one_authentication() -> None:
    fake = FakeAuth()
    async with _client(fake) as kv:
        await asyncio.gather(*(kv.range(b"/calico/%d" % i) for i in range(20)))
        assert kv.authentications == 1
        fake.valid.clear()
        await asyncio.gather(*(kv.range(b"/calico/%d" % i) for i in range(20)))
        assert kv.authentications == 2
        assert fake.paths().count("authenticate") == 2


async def test_an_etcd_without_auth_is_used_without_a_token_until_auth_is_enabled() -> None:
    fake = FakeAuth(enabled=False)
    async with _client(fake) as kv:
        await kv.range(b"/calico/k")
        assert fake.paths() == ["authenticate", "range"] and fake.gw.tokens == [None, None]
        fake.enabled = True  # etcdctl auth enable: "user name is empty" from now on
        await kv.range(b"/calico/k")
        assert fake.paths()[2:] == ["range", "authenticate", "range"]
        assert fake.gw.tokens[-1] == "tok1.tabby"


async def test_a_watch_refused_for_its_token_is_created_again_with_a_fresh_one() -> None:
    fake = FakeAuth()
    async with _client(fake) as kv:
        await kv.range(b"/calico/k")
        fake.valid.clear()
        stream = kv.watch(b"k", start_revision=7)
        resp = await anext(stream)  # the cancel for the old token is not shown
        assert not resp.canceled and resp.events[0].kv.key == b"k"
        await stream.aclose()  # type: ignore[attr-defined]
        assert fake.paths() == ["authenticate", "range", "watch", "authenticate", "watch"]
        assert fake.gw.tokens[-1] == "tok2.tabby"


async def test_refusals_of_who_we_are_are_said_with_the_user() -> None:
    fake = FakeAuth()
    async with fake.gw as gw:
        kv = EtcdClient(gw.url, timeout=5, user="tabby", password="s3cret")
        anonymous = EtcdClient(gw.url, timeout=5)
        try:
            with pytest.raises(EtcdAuthError, match="user 'tabby' is not permitted"):
                await kv.put(b"/other/k", b"v")
            with pytest.raises(EtcdAuthError, match="user= and password-file=") as err:
                await anonymous.range(b"/calico/k")
            assert err.value.user is None
            with pytest.raises(EtcdAuthError, match="user= and password-file="):
                await anext(anonymous.watch(b"/calico/k"))
        finally:
            await kv.close()
            await anonymous.close()


def test_credentials_in_the_endpoint_query(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\r\n")
    url = f"http://127.0.0.1:1?user=tabby&password-file={secret}"
    kv = connect([url, f"http://127.0.0.2:1?password-file={secret}&user=tabby"])
    assert isinstance(kv, EtcdClient)
    assert kv.credentials == Credentials("tabby", password_file=secret)
    assert kv.credentials.read_password() == "s3cret"
    assert kv.endpoints == ["http://127.0.0.1:1", "http://127.0.0.2:1"]
    tls = EtcdClient(f"https://127.0.0.1:1?user=tabby&password-file={secret}")
    assert tls.credentials is not None and tls.credentials.user == "tabby"

    with pytest.raises(ValueError, match="password-file="):
        EtcdClient("http://127.0.0.1:1?user=tabby&password=s3cret")
    with pytest.raises(ValueError, match="user and password-file go together"):
        EtcdClient("http://127.0.0.1:1?user=tabby")
    with pytest.raises(ValueError, match="the same user="):
        EtcdClient([url, "http://127.0.0.2:1"])
    with pytest.raises(ValueError, match=r"'tabby'.*No such file"):
        EtcdClient(f"http://127.0.0.1:1?user=tabby&password-file={tmp_path / 'missing'}")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ValueError, match="is empty"):
        EtcdClient(f"http://127.0.0.1:1?user=tabby&password-file={tmp_path / 'empty'}")
    with pytest.raises(ValueError, match="one of the two"):
        EtcdClient("http://127.0.0.1:1", user="tabby")
    assert "s3cret" not in repr(Credentials("tabby", password="s3cret"))


def test_a_password_others_can_read_is_warned_about_once_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Sent over plain http (the token too) or kept in a file group or others may read."""
    caplog.set_level(logging.WARNING)
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    EtcdClient(f"http://127.0.0.1:1?user=tabby&password-file={secret}")
    events = [getattr(r, "tabby_event", "") for r in caplog.records]
    assert events == ["etcd.credentials_in_cleartext", "etcd.password_file_readable"]
    caplog.clear()
    secret.chmod(0o600)
    EtcdClient(f"https://127.0.0.1:1?user=tabby&password-file={secret}")
    assert not caplog.records
