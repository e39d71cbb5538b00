"""tabby-bgpd configuration: one TOML file, validated field by field (errors name the field).

Peers are keyed by (address, local_address, port) — the session key — so renaming a peer or
changing its `peer_type` (mesh, global, node specific) never flaps it. `passive` unset means the
Calico convention for mesh peers (passive toward a greater address string) and active otherwise.
Import/export policies, the prefix lists they use and RFC 8212's default deny are declared in
`policy_config.py`; they are compiled and cross-checked here, with the peers that name them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bgpd.core.negotiation import FAMILY_NAMES, REQUIRABLE, SessionParams
from bgpd.core.peer import mesh_passive
from bgpd.core.routing.policy import Policy
from bgpd.daemon.policy_config import (
    PolicyConfig,
    PrefixListConfig,
    check_peer_policy,
    compile_policies,
    effective,
)
from runtime.config import ConfigError, DaemonConfig

PeerType = Literal["node-to-node mesh", "global", "node specific"]
PeerKey = tuple[str, str, int]  # (peer address, local address, peer port)


def _ip(value: str, where: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not an IP address") from None


def _cluster_id(value: str, where: str) -> None:
    if value and not isinstance(_ip(value, where), ipaddress.IPv4Address):
        raise ConfigError(f"{where}: a cluster id is written as an IPv4 address")


@dataclass(kw_only=True)
class ListenConfig:
    address: str = "0.0.0.0"
    port: int = 179


@dataclass(kw_only=True)
class PeerConfig:
    address: str
    remote_as: int
    port: int = 179
    local_address: str = ""  # source address of our connections; "" lets the kernel choose
    name: str = ""
    description: str = ""
    peer_type: PeerType = "global"
    passive: bool | None = None  # None: Calico mesh rule for mesh peers, active otherwise
    password: str = ""  # TCP-MD5 (RFC 2385)
    ttl_security: bool = False  # GTSM (RFC 5082)
    hold_time: int = 90
    keepalive_time: int = 0  # 0: a third of the negotiated hold time
    connect_retry_time: float = 5.0
    delay_open_time: float = 0.0
    idle_hold_time: float = 5.0
    idle_hold_max: float = 30.0
    graceful_restart_time: int = 120  # 0: no Graceful Restart capability
    graceful_restart_notification: bool = True  # RFC 8538 N bit
    # Restarting (RFC 4724 §4.1): how long to wait for this peer's End-of-RIB, from its
    # session coming up (or from our start while it is not back yet).
    restart_eor_wait: float = 30.0
    enhanced_route_refresh: bool = True  # RFC 7313 capability
    # Minimum Route Advertisement Interval (RFC 4271 §9.2.1.1), seconds; 0: off (as BIRD and
    # Calico run). Withdrawals are never delayed.
    mrai: float = 0.0
    families: list[str] = field(default_factory=list)  # ipv4, ipv6; empty: the address's own
    required_capabilities: list[str] = field(default_factory=list)
    extended_message: bool = False
    rr_client: bool = False
    cluster_id: str = ""
    next_hop: Literal["auto", "self", "keep"] = "auto"
    import_policy: str = ""  # a name from `policies`; "": accept-all (RFC 8212: see config)
    export_policy: str = ""

    @property
    def key(self) -> PeerKey:
        return (str(ipaddress.ip_address(self.address)), self.local_address, self.port)

    @property
    def display_name(self) -> str:
        return self.name or f"{self.address}" + (f":{self.port}" if self.port != 179 else "")

    def family_list(self) -> list[str]:
        if self.families:
            return list(self.families)
        return ["ipv6" if ipaddress.ip_address(self.address).version == 6 else "ipv4"]

    def check(self, where: str) -> None:
        addr = _ip(self.address, f"{where}.address")
        if self.local_address:
            local = _ip(self.local_address, f"{where}.local_address")
            if local.version != addr.version:
                raise ConfigError(f"{where}.local_address: not the same IP version as address")
        if not 0 < self.port < 65536:
            raise ConfigError(f"{where}.port: {self.port} is not a port number")
        if not 0 < self.remote_as < 2**32:
            raise ConfigError(f"{where}.remote_as: must be 1..4294967295")
        if self.hold_time in (1, 2) or not 0 <= self.hold_time <= 65535:
            raise ConfigError(f"{where}.hold_time: must be 0 or 3..65535 (RFC 4271 §4.2)")
        if self.keepalive_time < 0 or (self.hold_time and self.keepalive_time > self.hold_time):
            raise ConfigError(f"{where}.keepalive_time: must be 0..hold_time")
        for name in ("connect_retry_time", "idle_hold_time", "idle_hold_max"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{where}.{name}: must be positive")
        if self.delay_open_time < 0:
            raise ConfigError(f"{where}.delay_open_time: must not be negative")
        if not 0 <= self.graceful_restart_time <= 4095:
            raise ConfigError(f"{where}.graceful_restart_time: must be 0..4095 (RFC 4724 §3)")
        if self.restart_eor_wait < 0:
            raise ConfigError(f"{where}.restart_eor_wait: must not be negative")
        if not 0 <= self.mrai <= 3600:
            raise ConfigError(f"{where}.mrai: must be 0..3600 seconds")
        for i, fam in enumerate(self.families):
            if fam not in FAMILY_NAMES:
                raise ConfigError(f"{where}.families[{i}]: {fam!r} is not one of ipv4, ipv6")
        for i, cap in enumerate(self.required_capabilities):
            if cap not in REQUIRABLE:
                known = ", ".join(sorted(REQUIRABLE))
                raise ConfigError(f"{where}.required_capabilities[{i}]: {cap!r} (known: {known})")
        if len(self.password.encode()) > 80:
            raise ConfigError(f"{where}.password: at most 80 octets (TCP_MD5SIG_MAXKEYLEN)")
        _cluster_id(self.cluster_id, f"{where}.cluster_id")

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclass(kw_only=True)
class Advertisement:
    """One originated prefix with the communities it carries (RFC 1997, RFC 8092)."""

    prefix: str
    communities: list[str] = field(default_factory=list)  # aa:nn
    large_communities: list[str] = field(default_factory=list)  # aa:nn:mm

    def check(self, where: str) -> None:
        from bgpd.core.routing.policy import PolicyError, parse_community, parse_large_community

        try:
            ipaddress.ip_network(self.prefix)
        except ValueError as exc:
            raise ConfigError(f"{where}.prefix: {exc}") from None
        try:
            for c in self.communities:
                parse_community(c)
            for c in self.large_communities:
                parse_large_community(c)
        except PolicyError as exc:
            raise ConfigError(f"{where}: {exc}") from None


@dataclass(kw_only=True)
class BgpdConfig(DaemonConfig):
    router_id: str = ""
    local_as: int = 0
    listen: list[ListenConfig] = field(default_factory=lambda: [ListenConfig()])
    control_socket: Path = Path("/run/tabby/bgpd.sock")
    cluster_id: str = ""
    originate: list[str] = field(default_factory=list)
    # Originated prefixes with communities (Calico's prefixAdvertisements); a prefix here
    # need not also be in `originate`.
    advertise: list[Advertisement] = field(default_factory=list)
    peers: list[PeerConfig] = field(default_factory=list)
    # Graceful restart as the restarting speaker (RFC 4724 §4.1; docs/bgpd.md): a marker file
    # ("" : the control socket's path with the suffix .running) exists while bgpd runs and is
    # removed on a clean stop; finding it at start means bgpd died and is restarting.
    graceful_restart: bool = True
    restart_marker: str = ""
    graceful_restart_defer_time: float = 60.0  # upper bound on deferring route selection
    forwarding_hold_time: float = 120.0  # how long felixd keeps our routes (F bit)
    # Cold start (no restart marker): the first subscribe snapshot waits for End-of-RIB from
    # each peer (its own bound: restart_eor_wait), at most this long; 0: sent at once.
    startup_convergence_time: float = 10.0
    # A stop (SIGTERM) is a planned restart: no NOTIFICATIONs, the marker stays (docs/bgpd.md).
    graceful_stop: bool = False
    # RFC 8212: an eBGP peer without an import (export) policy imports (exports) nothing.
    ebgp_default_deny: bool = False
    prefix_lists: list[PrefixListConfig] = field(default_factory=list)
    policies: list[PolicyConfig] = field(default_factory=list)

    def validate(self) -> None:
        super().validate()
        rid = _ip(self.router_id, "router_id") if self.router_id else None
        if rid is None or rid.version != 4 or int(rid) == 0:
            raise ConfigError("router_id: a non-zero IPv4 address is required (RFC 6286)")
        if not 0 < self.local_as < 2**32:
            raise ConfigError("local_as: required, 1..4294967295")
        for i, lc in enumerate(self.listen):
            _ip(lc.address, f"listen[{i}].address")
            if not 0 <= lc.port < 65536:
                raise ConfigError(f"listen[{i}].port: {lc.port} is not a port number")
        _cluster_id(self.cluster_id, "cluster_id")
        if (
            min(self.graceful_restart_defer_time, self.forwarding_hold_time) < 0
            or self.startup_convergence_time < 0
        ):
            raise ConfigError(
                "graceful_restart_defer_time, forwarding_hold_time, startup_convergence_time: "
                "must not be negative"
            )
        for i, prefix in enumerate(self.originate):
            try:
                ipaddress.ip_network(prefix)
            except ValueError as exc:
                raise ConfigError(f"originate[{i}]: {exc}") from None
        for i, adv in enumerate(self.advertise):
            adv.check(f"advertise[{i}]")
        seen: dict[PeerKey, int] = {}
        for i, peer in enumerate(self.peers):
            peer.check(f"peers[{i}]")
            if peer.key in seen:
                raise ConfigError(
                    f"peers[{i}]: same address, local_address and port as peers[{seen[peer.key]}]"
                )
            seen[peer.key] = i
        compiled = self.compiled_policies()
        for i, peer in enumerate(self.peers):
            ibgp = peer.remote_as == self.local_as
            check_peer_policy(
                compiled, peer.import_policy, f"peers[{i}].import_policy", export_to_ebgp=False
            )
            check_peer_policy(
                compiled, peer.export_policy, f"peers[{i}].export_policy", export_to_ebgp=not ibgp
            )

    def compiled_policies(self) -> dict[str, Policy]:
        """The named policies as the routing core runs them (raises ConfigError)."""
        return compile_policies(self.prefix_lists, self.policies)

    def peer_policies(self) -> dict[PeerKey, tuple[Policy, Policy]]:
        """(import, export) policy per session key, defaults applied (RFC 8212)."""
        compiled = self.compiled_policies()
        out = {}
        for peer in self.peers:
            ibgp = peer.remote_as == self.local_as
            out[peer.key] = (
                effective(
                    compiled,
                    peer.import_policy,
                    ibgp=ibgp,
                    ebgp_default_deny=self.ebgp_default_deny,
                ),
                effective(
                    compiled,
                    peer.export_policy,
                    ibgp=ibgp,
                    ebgp_default_deny=self.ebgp_default_deny,
                ),
            )
        return out

    def passive_for(self, peer: PeerConfig) -> bool:
        if peer.passive is not None:
            return peer.passive
        if peer.peer_type == "node-to-node mesh":
            return mesh_passive(peer.local_address or self.router_id, peer.address)
        return False

    def session_params(self, peer: PeerConfig) -> SessionParams:
        return SessionParams(
            local_as=self.local_as,
            remote_as=peer.remote_as,
            local_id=int(ipaddress.IPv4Address(self.router_id)),
            hold_time=peer.hold_time,
            keepalive_time=peer.keepalive_time,
            connect_retry_time=peer.connect_retry_time,
            delay_open_time=peer.delay_open_time,
            idle_hold_time=peer.idle_hold_time,
            idle_hold_max=peer.idle_hold_max,
            passive=self.passive_for(peer),
            families=tuple(FAMILY_NAMES[f] for f in peer.family_list()),
            required_capabilities=frozenset(peer.required_capabilities),
            graceful_restart_time=peer.graceful_restart_time,
            extended_message=peer.extended_message,
            gr_notification=peer.graceful_restart_notification,
            enhanced_route_refresh=peer.enhanced_route_refresh,
        )

    def marker_path(self) -> Path:
        return (
            Path(self.restart_marker)
            if self.restart_marker
            else self.control_socket.with_suffix(".running")
        )
