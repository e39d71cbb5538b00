"""`Speaker`: the tabby-bgpd daemon — listeners, one `PeerRunner` per peer, reload, status.

Listener: accept-then-match. A connection is matched to a configured peer by (source address,
destination address); one from an address that is not a configured peer is closed at once
without touching any session (BIRD logs "Unexpected connect from unknown address" here).
TCP-MD5 keys for every peer with a password are installed on each listening socket of the
peer's address family, so the kernel drops unsigned SYNs (RFC 2385).

Reload (`config.reload` RPC and SIGHUP): the new file is loaded and validated first — a file
that fails changes nothing — then new listeners are bound (a bind failure also changes
nothing), and only then are peers added, removed, and changed per `bgpd.core.reload`.

Graceful restart as the restarting speaker (RFC 4724 §4.1; docs/bgpd.md): a marker file
(`BgpdConfig.marker_path`, beside the control socket under /run, so a reboot — which also loses
the kernel's routes — is a cold start) is written at start, touched every `MARKER_TOUCH`
seconds, and removed on a clean stop. Finding it at start means bgpd died: its age is how long
we were away, and `bgpd.core.restart.restart_bits` turns that into the R and F bits per peer.
Peers with R set are then waited for (`RoutingSink.begin_restart`); when the deferral ends,
the R bit is cleared from the OPENs of later sessions. Any other start is a cold one: only the
best-path stream's first snapshot waits, for initial convergence (`begin_convergence`, at most
`startup_convergence_time`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
from collections.abc import Callable
from pathlib import Path

from bgpd.core.effects import DownKind
from bgpd.core.events import State
from bgpd.core.negotiation import SessionParams
from bgpd.core.reload import GLOBAL_FIELDS, PEER_FIELDS, Apply, classify, strongest
from bgpd.core.restart import RestartBits, restart_bits
from bgpd.daemon.config import BgpdConfig, PeerConfig, PeerKey
from bgpd.daemon.routing import RoutingSink
from bgpd.daemon.routing_api import register_routing_api
from bgpd.daemon.runner import Connection, PeerRunner
from bgpd.daemon.sink import CountingSink, RouteSink
from bgpd.daemon.sockets import family_of, listening_socket, set_gtsm, set_md5
from bgpd.daemon.status import neighbor_status
from bgpd.wire.errors import (
    ADMINISTRATIVE_RESET,
    CEASE,
    PEER_DE_CONFIGURED,
)
from bgpd.wire.messages import Notification
from ipc import RPCServer
from runtime.log import get_logger

log = get_logger("bgpd")

ListenKey = tuple[str, int]
MARKER_TOUCH = 5.0


def read_marker(path: Path, now: float) -> float | None:
    """Seconds since the marker was last touched (how long bgpd was away), None if absent."""
    try:
        return max(0.0, now - path.stat().st_mtime)
    except OSError:
        return None


class _Listener:
    def __init__(self, sock: socket.socket, server: asyncio.Server) -> None:
        self.sock = sock
        self.server = server
        self.keys: dict[str, str] = {}  # peer address -> installed TCP-MD5 password


class Speaker:
    name = "bgpd"

    def __init__(
        self,
        config: BgpdConfig,
        loader: Callable[[], BgpdConfig] | None = None,
        sink: RouteSink | None = None,
    ) -> None:
        self.config = config
        self.loader = loader
        self.sink: RouteSink = sink or RoutingSink(config)
        self.peers: dict[PeerKey, PeerRunner] = {}
        self.listeners: dict[ListenKey, _Listener] = {}
        self.rpc: RPCServer | None = None
        self.started = time.time()
        self.unknown_connections = 0
        self.reloads = 0
        self._reload_lock = asyncio.Lock()
        self.downtime: float | None = None  # how long bgpd was away, if it restarted
        self.restarting = False
        self._marker_timer: asyncio.TimerHandle | None = None

    # --- Daemon protocol -----------------------------------------------------------------------
    async def start(self) -> None:
        self._begin_restart_detection()
        self.listeners = await self._bind(self.config, {})
        self._install_keys(self.config)
        for peer in self.config.peers:
            self._add_peer(peer)
        self._begin_deferral()
        from bgpd.daemon.control import make_rpc_server

        self.rpc = make_rpc_server(self)
        if isinstance(self.sink, RoutingSink):
            register_routing_api(self.rpc, self.sink)
        await self.rpc.listen(f"unix:{self.config.control_socket}", mode=0o660)

    async def stop(self) -> None:
        # The control socket goes first: subscribers (felixd) must see the stream end, not a
        # withdrawal of every route caused by our own shutdown, so that graceful restart
        # keeps the kernel routes while bgpd restarts (RFC 4724, forwarding state kept).
        if self.rpc is not None:
            await self.rpc.close()
            self.rpc = None
        if self._marker_timer is not None:
            self._marker_timer.cancel()
            self._marker_timer = None
        planned = self.config.graceful_restart and self.config.graceful_stop
        with contextlib.suppress(OSError):
            if planned:
                # A planned restart: the marker says when we left; sessions close without a
                # NOTIFICATION, so the helpers keep our routes until we are back.
                self.config.marker_path().touch()
            else:
                # A clean stop: the next start is a cold one (no R bit).
                self.config.marker_path().unlink()
        log.info("stop", graceful_restart=planned)
        shutdown = None if planned else Notification.shutdown("tabby-bgpd stopping")
        await asyncio.gather(*(r.close(shutdown, DownKind.ADMIN_DOWN) for r in self.peers.values()))
        self.peers.clear()
        for lst in self.listeners.values():
            lst.server.close()
        self.listeners.clear()

    async def reload(self) -> None:
        if self.loader is None:
            raise RuntimeError("no configuration file to reload")
        await self.apply_config(self.loader())

    def status(self) -> str:
        up = sum(1 for r in self.peers.values() if r.core.state is State.ESTABLISHED)
        return f"{up}/{len(self.peers)} peers established"

    def healthy(self) -> bool:
        return all(r.task is not None and not r.task.done() for r in self.peers.values())

    # --- listeners ------------------------------------------------------------------------------
    async def _bind(
        self, config: BgpdConfig, keep: dict[ListenKey, _Listener]
    ) -> dict[ListenKey, _Listener]:
        """Listeners for `config`, reusing those in `keep`; all-or-nothing."""
        loop = asyncio.get_running_loop()
        out: dict[ListenKey, _Listener] = {}
        try:
            for lc in config.listen:
                key = (lc.address, lc.port)
                if key in keep:
                    out[key] = keep[key]
                    continue
                sock = listening_socket(lc.address, lc.port)
                server = await loop.create_server(
                    lambda: Connection(None, on_made=self._accepted), sock=sock
                )
                out[key] = _Listener(sock, server)
                log.info("listen", address=lc.address, port=lc.port)
        except OSError:
            for key, lst in out.items():
                if key not in keep:
                    lst.server.close()
            raise
        return out

    def _install_keys(self, config: BgpdConfig) -> None:
        wanted = {p.address: p.password for p in config.peers if p.password}
        for lst in self.listeners.values():
            fam = lst.sock.family
            for addr in set(lst.keys) | set(wanted):
                if fam == socket.AF_INET and family_of(addr) != socket.AF_INET:
                    continue
                pw = wanted.get(addr, "")
                if lst.keys.get(addr, "") != pw:
                    set_md5(lst.sock, addr, pw)
                    if pw:
                        lst.keys[addr] = pw
                    else:
                        lst.keys.pop(addr, None)

    def _accepted(self, conn: Connection) -> None:
        runner = self.match(conn.peer_address, conn.local_address)
        if runner is None:
            self.unknown_connections += 1
            log.info("connection.unknown_peer", peer=conn.peer_address, local=conn.local_address)
            conn.close()
            return
        if runner.config.ttl_security and conn.transport is not None:
            sock = conn.transport.get_extra_info("socket")
            if sock is not None:
                set_gtsm(sock)
        runner.accept(conn)

    def match(self, peer_address: str, local_address: str) -> PeerRunner | None:
        for (addr, local, _port), runner in self.peers.items():
            if addr == peer_address and local in ("", local_address):
                return runner
        return None

    # --- graceful restart, restarting side ---------------------------------------------------------
    def _begin_restart_detection(self) -> None:
        c = self.config
        path = c.marker_path()
        if c.graceful_restart:
            self.downtime = read_marker(path, time.time())
            with contextlib.suppress(OSError):
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"{time.time()}\n")
            self._touch_marker(path)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        self.restarting = self.downtime is not None and any(
            self.bits(p).restarting for p in c.peers
        )
        log.info(
            "gr.start",
            restarting=self.restarting,
            downtime=-1.0 if self.downtime is None else round(self.downtime, 3),
        )

    def _touch_marker(self, path: Path) -> None:
        with contextlib.suppress(OSError):
            path.touch()
        loop = asyncio.get_running_loop()
        self._marker_timer = loop.call_later(MARKER_TOUCH, self._touch_marker, path)

    def bits(self, peer: PeerConfig) -> RestartBits:
        c = self.config
        return restart_bits(
            enabled=c.graceful_restart,
            downtime=self.downtime,
            restart_time=peer.graceful_restart_time,
            forwarding_hold=c.forwarding_hold_time,
        )

    def params(self, config: BgpdConfig, peer: PeerConfig) -> SessionParams:
        """The session settings with our Graceful Restart R and F bits (RFC 4724 §3)."""
        b = self.bits(peer) if self.restarting else RestartBits(False, True)
        return dataclasses.replace(
            config.session_params(peer), gr_restarting=b.restarting, gr_forwarding=b.forwarding
        )

    def _begin_deferral(self) -> None:
        if not isinstance(self.sink, RoutingSink):
            self.restarting = False
            return
        if not self.restarting:
            # A cold start: only the stream's first snapshot waits (RoutingSink module doc).
            c = self.config
            waits = {p.key: p.restart_eor_wait for p in c.peers}
            self.sink.begin_convergence(waits, c.startup_convergence_time)
            return
        c = self.config
        waits = {p.key: p.restart_eor_wait for p in c.peers if self.bits(p).restarting}
        limit = c.graceful_restart_defer_time
        if self.downtime is not None and self.downtime <= c.forwarding_hold_time:
            # felixd drops our routes `forwarding_hold_time` after we went away: selection
            # must end (and its snapshot reach felixd) before that.
            limit = min(limit, max(0.0, c.forwarding_hold_time - self.downtime - 1.0))
        self.sink.on_restart_done = self._restart_done
        self.sink.begin_restart(waits, limit)

    def restart_status(self) -> dict[str, object]:
        """For `status`: how bgpd last started, and the deferral if it restarted."""
        deferral = self.sink.restart_status() if isinstance(self.sink, RoutingSink) else None
        convergence = self.sink.convergence_status() if isinstance(self.sink, RoutingSink) else None
        return {
            "restarted": self.downtime is not None,
            "downtime": self.downtime,
            "deferral": deferral,
            "convergence": convergence,
        }

    def _restart_done(self) -> None:
        """Selection is done: later OPENs carry R = 0 (RFC 4724 §4.1: R says we restarted);
        the settings apply when each session next starts, so no session is touched now."""
        self.restarting = False
        for runner in self.peers.values():
            runner.core.set_params(self.params(self.config, runner.config))

    # --- peers ------------------------------------------------------------------------------------
    def _add_peer(self, peer: PeerConfig) -> None:
        runner = PeerRunner(peer, self.params(self.config, peer), self.config.local_as, self.sink)
        self.peers[peer.key] = runner
        runner.start()

    def find(self, address: str, port: int = 0, local_address: str = "") -> list[PeerRunner]:
        return [
            r
            for (addr, local, p), r in self.peers.items()
            if addr == address and port in (0, p) and local_address in ("", local)
        ]

    def neighbors(self) -> list[dict[str, object]]:
        return [neighbor_status(r, self.sink) for r in self.peers.values()]

    # --- reload -----------------------------------------------------------------------------------
    async def apply_config(self, new: BgpdConfig) -> dict[str, object]:
        """Apply a validated configuration per the reload matrix; returns what changed."""
        async with self._reload_lock:
            old = self.config
            gchanges = classify(_globals(old), _globals(new), GLOBAL_FIELDS)
            listeners = await self._bind(new, self.listeners)  # may raise: nothing changed yet
            for key, lst in self.listeners.items():
                if key not in listeners:
                    lst.server.close()
            self.listeners = listeners
            self.config = new
            self._install_keys(new)
            if isinstance(self.sink, CountingSink):
                self.sink.originate = list(new.originate)
            elif isinstance(self.sink, RoutingSink):
                self.sink.reconfigure(new)
            summary: dict[str, list[str]] = {
                "added": [],
                "removed": [],
                "reset": [],
                "soft": [],
                "hot": [],
            }
            new_peers = {p.key: p for p in new.peers}
            for gone in [k for k in self.peers if k not in new_peers]:
                runner = self.peers.pop(gone)
                summary["removed"].append(runner.config.display_name)
                await runner.close(Notification(CEASE, PEER_DE_CONFIGURED), DownKind.CONFIG_CHANGED)
                if isinstance(self.sink, RoutingSink):
                    self.sink.restart_forget(gone)  # a removed peer is not waited for
            global_reset = strongest(gchanges) is Apply.RESET
            global_soft = strongest(gchanges) is Apply.SOFT
            for pkey, peer in new_peers.items():
                existing = self.peers.get(pkey)
                if existing is None:
                    self._add_peer(peer)
                    summary["added"].append(peer.display_name)
                    continue
                runner = existing
                changes = classify(runner.config.as_dict(), peer.as_dict(), PEER_FIELDS)
                params = self.params(new, peer)
                if params != runner.core.params and strongest(changes) < Apply.HOT:
                    changes["passive"] = Apply.HOT  # derived settings (mesh rule) moved
                how = Apply.RESET if global_reset else strongest(changes)
                if global_soft and how < Apply.SOFT:
                    how = Apply.SOFT
                runner.config = peer
                runner.local_as = new.local_as
                if how is Apply.NONE:
                    continue
                await runner.call(_applier(runner, params, how))
                summary[{Apply.HOT: "hot", Apply.SOFT: "soft", Apply.RESET: "reset"}[how]].append(
                    peer.display_name
                )
            self.reloads += 1
            log.info("config.reloaded", **{k: ",".join(v) for k, v in summary.items() if v})
            return dict(summary)


def _applier(runner: PeerRunner, params: SessionParams, how: Apply) -> Callable[[float], None]:
    def apply(now: float) -> None:
        runner.core.reconfigure(params, how, now)
        if how is Apply.SOFT:
            soft_reset_out(runner)

    return apply


def soft_reset_out(runner: PeerRunner) -> None:
    """Re-send the Adj-RIB-Out for every negotiated family (via the sink)."""
    from bgpd.daemon.runner import _Sender

    s = runner.core.primary
    if s.state is State.ESTABLISHED and s.negotiated is not None:
        for afi, safi in s.negotiated.families:
            runner.sink.on_route_refresh(runner.info, afi, safi, _Sender(s))
        runner._apply()


def hard_reset(runner: PeerRunner, message: str, graceful: bool = False) -> Callable[[float], None]:
    """Cease / Administrative Reset and restart. With the RFC 8538 N bit it goes inside a Hard
    Reset (the peer flushes our routes) unless `graceful` (the peer keeps them stale)."""

    def apply(now: float) -> None:
        runner.core.stop(
            now,
            Notification.shutdown(message, ADMINISTRATIVE_RESET),
            DownKind.ADMIN_RESET,
            restart=True,
            graceful=graceful,
        )

    return apply


def _globals(c: BgpdConfig) -> dict[str, object]:
    return {
        "router_id": c.router_id,
        "local_as": c.local_as,
        "cluster_id": c.cluster_id,
        "originate": list(c.originate),
        "advertise": [
            (a.prefix, tuple(a.communities), tuple(a.large_communities)) for a in c.advertise
        ],
        "listen": [(lc.address, lc.port) for lc in c.listen],
        "control_socket": str(c.control_socket),
    }
