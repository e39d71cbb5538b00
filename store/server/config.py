"""Configuration of one tabby-store member (`/etc/tabby/store.toml`, every scalar also a flag).

Example:

    name = "s1"
    id = 1
    data_dir = "/var/lib/tabby/store"
    client_endpoints = ["unix:/run/tabby/store.sock", "tls://10.0.0.1:2379"]
    peer_endpoint = "tls://10.0.0.1:2380"
    initial_cluster = ["1=tls://10.0.0.1:2380", "2=tls://10.0.0.2:2380", "3=tls://10.0.0.3:2380"]
    initial_cluster_state = "new"      # or "existing" to join (after `tabbyctl store member add`)

Timing follows etcd (`--heartbeat-interval` 100 ms, `--election-timeout` 1000 ms). Invariants
checked by `validate`: the member's own id appears in `initial_cluster` with its
`peer_endpoint`, ids are positive and unique, election timeout > heartbeat.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

from ipc import TLSConfig, parse_endpoint
from runtime.config import ConfigError, DaemonConfig


def parse_initial_cluster(items: list[str]) -> dict[int, str]:
    """`["1=unix:/x", "2=tcp://h:p"]` -> {1: "unix:/x", 2: "tcp://h:p"}; raises ConfigError."""
    out: dict[int, str] = {}
    for i, item in enumerate(items):
        ident, sep, endpoint = item.partition("=")
        if not sep or not ident.strip().isdigit() or int(ident) <= 0:
            raise ConfigError(f"initial_cluster[{i}]: expected ID=ENDPOINT, got {item!r}")
        try:
            parse_endpoint(endpoint)
        except ValueError as exc:
            raise ConfigError(f"initial_cluster[{i}]: {exc}") from None
        if int(ident) in out:
            raise ConfigError(f"initial_cluster[{i}]: member id {ident} appears twice")
        out[int(ident)] = endpoint
    return out


@dataclasses.dataclass(kw_only=True)
class StoreConfig(DaemonConfig):
    name: str = "default"
    id: int = 1
    data_dir: Path = Path("/var/lib/tabby/store")
    client_endpoints: list[str] = dataclasses.field(
        default_factory=lambda: ["unix:/run/tabby/store.sock"]
    )
    peer_endpoint: str = "unix:/run/tabby/store-peer.sock"
    initial_cluster: list[str] = dataclasses.field(default_factory=list)
    initial_cluster_state: Literal["new", "existing"] = "new"
    heartbeat_interval: float = 0.1  # seconds per Raft tick (etcd --heartbeat-interval)
    election_timeout: float = 1.0  # seconds (etcd --election-timeout)
    snapshot_count: int = 10_000  # applied entries between snapshots (etcd --snapshot-count)
    snapshot_catchup_entries: int = 5_000  # entries kept behind a snapshot for slow followers
    quota_bytes: int = 2 * 1024**3
    max_watch_buffer: int = 8192  # events buffered per caught-up watcher before it is cancelled
    progress_notify_interval: float = 600.0  # etcd's default progress notification period
    request_timeout: float = 7.0  # a proposal or read waits at most this long
    wal_inline_entries: int = 8  # WAL batches up to this size are saved on the loop thread
    # Tests only: serve `debug.partition(ids)`, which drops all Raft traffic to and from the
    # listed members (a network partition without namespaces). Never enable in production.
    debug_fault_injection: bool = False
    # Client TLS (for tls:// client endpoints): a client CA file turns on mutual TLS.
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    client_ca_file: Path | None = None
    # Peer TLS (for tls:// peer endpoints): always mutual, both sides present certificates.
    peer_cert_file: Path | None = None
    peer_key_file: Path | None = None
    peer_ca_file: Path | None = None
    # The certificate presented when dialling peers (etcd --peer-client-cert-file), for PKIs
    # whose certificates carry either the server or the client usage but not both.
    peer_client_cert_file: Path | None = None
    peer_client_key_file: Path | None = None

    def validate(self) -> None:
        super().validate()
        if self.id <= 0:
            raise ConfigError("id: must be a positive integer")
        if self.heartbeat_interval <= 0:
            raise ConfigError("heartbeat_interval: must be positive")
        if self.election_timeout <= self.heartbeat_interval:
            raise ConfigError("election_timeout: must exceed heartbeat_interval")
        if self.snapshot_count <= 0 or self.snapshot_catchup_entries < 0:
            raise ConfigError("snapshot_count: must be positive")
        if self.wal_inline_entries < 0:
            raise ConfigError("wal_inline_entries: must not be negative")
        if not self.client_endpoints:
            raise ConfigError("client_endpoints: at least one is needed")
        for i, ep in enumerate([*self.client_endpoints, self.peer_endpoint]):
            try:
                parse_endpoint(ep)
            except ValueError as exc:
                raise ConfigError(f"endpoints[{i}]: {exc}") from None
        cluster = self.cluster()
        if not cluster:
            raise ConfigError("initial_cluster: must list at least this member")
        if self.id not in cluster:
            raise ConfigError(f"initial_cluster: does not name this member's id {self.id}")
        if cluster[self.id] != self.peer_endpoint:
            raise ConfigError(
                f"initial_cluster: member {self.id} is {cluster[self.id]!r} but peer_endpoint "
                f"is {self.peer_endpoint!r}"
            )

    def cluster(self) -> dict[int, str]:
        if not self.initial_cluster:
            return {self.id: self.peer_endpoint}
        return parse_initial_cluster(self.initial_cluster)

    @property
    def election_ticks(self) -> int:
        return max(2, round(self.election_timeout / self.heartbeat_interval))

    def client_tls(self) -> TLSConfig | None:
        if self.client_cert_file is None:
            return None
        return TLSConfig(self.client_cert_file, self.client_key_file, self.client_ca_file)

    def peer_tls(self) -> TLSConfig | None:
        if self.peer_cert_file is None:
            return None
        return TLSConfig(self.peer_cert_file, self.peer_key_file, self.peer_ca_file)

    def peer_client_tls(self) -> TLSConfig | None:
        if self.peer_client_cert_file is None:
            return self.peer_tls()
        return TLSConfig(self.peer_client_cert_file, self.peer_client_key_file, self.peer_ca_file)
