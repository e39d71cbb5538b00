"""What an etcd endpoint URL in a daemon's `store_endpoints` says: where the member is, and
etcdctl's flags carried in its query (TLS files, the user and its password file), for
`store.etcd.EtcdClient`.

A daemon's config has only a list of store endpoints, so everything else about reaching an
etcd that wants client certificates or a user rides in the URL; the password itself never
does (it would be readable in the config file), only the name of a file holding it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ipc import TLSConfig
from runtime.log import get_logger

log = get_logger("store.etcd")

_MAX_PASSWORD_FILE = 4096


def is_etcd_endpoint(endpoint: str) -> bool:
    """etcd's client URLs (`http://host:2379`, `https://...`), as etcdctl --endpoints takes them."""
    return endpoint.startswith(("http://", "https://"))


@dataclass(frozen=True, slots=True)
class Credentials:
    """An etcd user (etcdctl --user) and its password: from a file (`password_file`), so that the
    secret stays out of the daemons' TOML, or given directly by a program (`password`)."""

    user: str
    password_file: Path | None = None
    password: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.user:
            raise ValueError("etcd credentials: the user name is empty")
        if (self.password is None) == (self.password_file is None):
            raise ValueError(
                f"etcd user {self.user!r}: give a password file or a password (one of the two)"
            )

    def read_password(self) -> str:
        """The password; ValueError naming the file when it cannot be used. One line ending at
        the end of the file is not part of the password (`echo secret > file`)."""
        if self.password is not None:
            return self.password
        assert self.password_file is not None
        path = self.password_file
        try:
            with path.open("rb") as f:
                data = f.read(_MAX_PASSWORD_FILE + 1)
        except OSError as exc:
            raise ValueError(
                f"etcd user {self.user!r}: password file {str(path)!r}: "
                f"{exc.strerror or type(exc).__name__}"
            ) from None
        if len(data) > _MAX_PASSWORD_FILE:
            raise ValueError(
                f"etcd user {self.user!r}: password file {str(path)!r} is larger than "
                f"{_MAX_PASSWORD_FILE} bytes"
            )
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(
                f"etcd user {self.user!r}: password file {str(path)!r} is not UTF-8 text"
            ) from None
        text = text.removesuffix("\n").removesuffix("\r")
        if not text:
            raise ValueError(f"etcd user {self.user!r}: password file {str(path)!r} is empty")
        return text


@dataclass(frozen=True, slots=True)
class EtcdEndpoint:
    url: str
    host: str
    port: int
    tls: bool
    tls_files: TLSConfig | None  # from the URL's query, see `options_from_query`
    credentials: Credentials | None  # likewise

    @classmethod
    def parse(cls, url: str) -> EtcdEndpoint:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"etcd endpoint {url!r}: expected http://host:port or https://...")
        if parts.path not in ("", "/"):
            raise ValueError(f"etcd endpoint {url!r}: no path expected")
        tls = parts.scheme == "https"
        files, credentials = options_from_query(url, parts.query) if parts.query else (None, None)
        if files is not None and not tls:
            raise ValueError(f"etcd endpoint {url!r}: certificate files need https://")
        bare = f"{parts.scheme}://{parts.netloc}"
        return cls(bare, parts.hostname, parts.port or 2379, tls, files, credentials)


_TLS_QUERY = {"cacert": "ca_file", "cert": "cert_file", "key": "key_file"}
_AUTH_QUERY = ("user", "password-file")


def options_from_query(url: str, query: str) -> tuple[TLSConfig | None, Credentials | None]:
    """etcdctl's flags carried in an endpoint's query, so that a daemon whose config has only a
    list of store endpoints can still reach an etcd that wants client certificates or a user:
    `https://host:2379?cacert=/etc/tabby/etcd-ca.crt&cert=...&key=...` (--cacert, --cert,
    --key) and `...?user=tabby&password-file=/etc/tabby/etcd-password` (--user, with the
    password in a file rather than in the config). Either part is None when not given."""
    given: dict[str, str] = {}
    for name, values in parse_qs(query, keep_blank_values=True, strict_parsing=True).items():
        if name == "password":
            raise ValueError(
                f"etcd endpoint {url!r}: a password does not go in the endpoint (it would be "
                "readable in the config file): write it to a file and name that file with "
                "password-file="
            )
        if (
            (name not in _TLS_QUERY and name not in _AUTH_QUERY)
            or len(values) != 1
            or not values[0]
        ):
            raise ValueError(
                f"etcd endpoint {url!r}: unknown or repeated parameter {name!r} "
                f"(known: {', '.join([*_TLS_QUERY, *_AUTH_QUERY])})"
            )
        given[name] = values[0]
    files = {_TLS_QUERY[k]: Path(v) for k, v in given.items() if k in _TLS_QUERY}
    if ("cert_file" in files) != ("key_file" in files):
        raise ValueError(f"etcd endpoint {url!r}: cert and key go together")
    if ("user" in given) != ("password-file" in given):
        raise ValueError(f"etcd endpoint {url!r}: user and password-file go together")
    tls = (
        TLSConfig(files.get("cert_file"), files.get("key_file"), files.get("ca_file"))
        if files
        else None
    )
    credentials = (
        Credentials(given["user"], password_file=Path(given["password-file"]))
        if "user" in given
        else None
    )
    return tls, credentials


def warn_about_exposure(creds: Credentials, plain: list[EtcdEndpoint]) -> None:
    """Say so once, at start-up, when the password can be read by others: sent over plain
    http (etcd's simple and JWT tokens travel in the clear too), or in a file that group or
    others may read."""
    if plain:
        log.warning(
            "etcd.credentials_in_cleartext",
            user=creds.user,
            endpoints=",".join(f"{ep.host}:{ep.port}" for ep in plain),
            hint="use https:// endpoints",
        )
    if creds.password_file is not None:
        with contextlib.suppress(OSError):
            mode = os.stat(creds.password_file).st_mode
            if mode & 0o077:
                log.warning(
                    "etcd.password_file_readable",
                    user=creds.user,
                    path=str(creds.password_file),
                    mode=oct(mode & 0o777),
                    hint="chmod 600",
                )
