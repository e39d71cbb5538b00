"""Where a daemon listens and a client connects: ``unix:PATH``, ``tcp://HOST:PORT``, ``tls://HOST:PORT``.

One string per endpoint keeps config files and flags simple; a client given several tries
them in order (failover). TLS endpoints take their certificates from a `TLSConfig`.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Endpoint:
    scheme: str  # "unix", "tcp" or "tls"
    path: str = ""
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_endpoint(text: str) -> Endpoint:
    """Parse an endpoint string; a bare path is a Unix socket."""
    if text.startswith("unix:"):
        path = text[5:]
        if path.startswith("//"):
            path = path[2:]
        if not path:
            raise ValueError(f"endpoint {text!r}: empty socket path")
        return Endpoint("unix", path=path)
    if text.startswith(("/", "./")):
        return Endpoint("unix", path=text)
    for scheme in ("tcp", "tls"):
        prefix = f"{scheme}://"
        if text.startswith(prefix):
            rest = text[len(prefix) :]
            if rest.startswith("["):
                host, sep, port_text = rest[1:].partition("]:")
            else:
                host, sep, port_text = rest.rpartition(":")
            if not sep or not host:
                raise ValueError(f"endpoint {text!r}: expected {scheme}://HOST:PORT")
            try:
                port = int(port_text)
            except ValueError:
                raise ValueError(f"endpoint {text!r}: port {port_text!r} is not a number") from None
            if not 0 <= port < 65536:
                raise ValueError(f"endpoint {text!r}: port {port} out of range")
            return Endpoint(scheme, host=host, port=port)
    raise ValueError(f"endpoint {text!r}: expected unix:PATH, tcp://HOST:PORT or tls://HOST:PORT")


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """Certificates for one side of a TLS connection.

    On a server, `ca_file` set means clients must present a certificate signed by that CA
    (mutual authentication). On a client, `ca_file` verifies the server and `cert_file` /
    `key_file` are presented when the server asks.
    """

    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    server_hostname: str | None = None

    def server_context(self) -> ssl.SSLContext:
        if self.cert_file is None or self.key_file is None:
            raise ValueError("a TLS server needs cert_file and key_file")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, self.key_file)
        if self.ca_file is not None:
            ctx.load_verify_locations(self.ca_file)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.ca_file is not None:
            ctx.load_verify_locations(self.ca_file)
        else:
            ctx.load_default_certs()
        if self.cert_file is not None and self.key_file is not None:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        return ctx
