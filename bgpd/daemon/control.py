"""The control API of tabby-bgpd on its unix socket (msgpack-RPC via `ipc`).

Methods: `status`, `neighbors [address]`, `neighbor.reset address [mode] [message]`
(mode "hard": Cease / Administrative Reset and restart, inside an RFC 8538 Hard Reset when the
N bit was negotiated; "graceful": the same without the Hard Reset, so that a peer with the N bit
keeps our routes stale meanwhile; "soft": ROUTE-REFRESH to the peer and re-send of our
Adj-RIB-Out), `neighbor.shutdown address [message]` (Cease / Administrative
Shutdown with an RFC 9003 Shutdown Communication; the peer stays down), `neighbor.enable
address`, `neighbor.refresh address [direction]` (direction "in": ask the peer for a
ROUTE-REFRESH of every negotiated family — answered with BoRR/EoRR when it negotiated RFC 7313
enhanced route refresh, which sweeps what it did not re-send; "out": re-send our Adj-RIB-Out;
"both"), `config.reload`. Errors: `not_found` (no such neighbor), `invalid_params`,
`config` (the new file is invalid; nothing was changed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from bgpd.core.effects import DownKind
from bgpd.core.negotiation import family_name
from bgpd.daemon.speaker import hard_reset, soft_reset_out
from bgpd.wire.messages import Notification
from ipc import RPCServer
from ipc.errors import INVALID_PARAMS, RPCError
from runtime.config import ConfigError

if TYPE_CHECKING:
    from bgpd.daemon.config import BgpdConfig
    from bgpd.daemon.runner import PeerRunner
    from bgpd.daemon.speaker import Speaker

NOT_FOUND = "not_found"
CONFIG = "config"


def make_rpc_server(speaker: Speaker) -> RPCServer:
    server = RPCServer(name="bgpd")

    def runners(address: object) -> list[PeerRunner]:
        if not isinstance(address, str):
            raise RPCError(INVALID_PARAMS, "address must be a string")
        found = speaker.find(address)
        if not found:
            raise RPCError(NOT_FOUND, f"no neighbor {address}")
        return found

    async def status() -> dict[str, object]:
        c = speaker.config
        states: dict[str, int] = {}
        for r in speaker.peers.values():
            states[r.core.state.value] = states.get(r.core.state.value, 0) + 1
        return {
            "router_id": c.router_id,
            "local_as": c.local_as,
            "listen": [f"{lc.address}:{lc.port}" for lc in c.listen],
            "peers": len(speaker.peers),
            "states": states,
            "started": speaker.started,
            "uptime": time.time() - speaker.started,
            "reloads": speaker.reloads,
            "unknown_connections": speaker.unknown_connections,
            "graceful_restart": speaker.restart_status(),
        }

    async def neighbors(address: str = "") -> list[dict[str, object]]:
        rows = speaker.neighbors()
        return [r for r in rows if not address or r["address"] == address]

    async def reset(address: str, mode: str = "hard", message: str = "") -> int:
        if mode not in ("hard", "graceful", "soft"):
            raise RPCError(INVALID_PARAMS, "mode is hard, graceful or soft")
        found = runners(address)
        for r in found:
            if mode in ("hard", "graceful"):
                await r.call(hard_reset(r, message, graceful=mode == "graceful"))
            else:
                await r.call(_soft_call(r))
        return len(found)

    async def shutdown(address: str, message: str = "") -> int:
        found = runners(address)
        for r in found:
            await r.call(_stop_call(r, Notification.shutdown(message)))
        return len(found)

    async def enable(address: str) -> int:
        found = runners(address)
        for r in found:
            await r.call(r.core.start)
        return len(found)

    async def refresh(address: str, direction: str = "in") -> dict[str, object]:
        if direction not in ("in", "out", "both"):
            raise RPCError(INVALID_PARAMS, "direction is in, out or both")
        asked: list[str] = []
        for r in runners(address):
            sent = await r.call(_refresh_call(r, direction))
            assert isinstance(sent, list)
            asked.extend(str(f) for f in sent)
        return {"requested": asked, "direction": direction}

    async def reload() -> dict[str, object]:
        try:
            return await speaker.apply_config(_load(speaker))
        except ConfigError as exc:
            raise RPCError(CONFIG, str(exc)) from None
        except OSError as exc:
            raise RPCError(CONFIG, f"cannot bind: {exc}") from None

    server.register("status", status)
    server.register("neighbors", neighbors)
    server.register("neighbor.reset", reset)
    server.register("neighbor.shutdown", shutdown)
    server.register("neighbor.enable", enable)
    server.register("neighbor.refresh", refresh)
    server.register("config.reload", reload)
    return server


def _load(speaker: Speaker) -> BgpdConfig:
    if speaker.loader is None:
        raise ConfigError("the daemon was started without a config file")
    return speaker.loader()


def _soft(r: PeerRunner) -> None:
    s = r.core.primary
    if s.negotiated is not None:
        for afi, safi in s.negotiated.families:
            s.send_route_refresh(afi, safi)
    soft_reset_out(r)


def _soft_call(r: PeerRunner) -> Callable[[float], None]:
    return lambda now: _soft(r)


def _refresh_call(r: PeerRunner, direction: str) -> Callable[[float], list[str]]:
    """ROUTE-REFRESH to the peer (RFC 2918 §3) and/or our re-send; the families asked for."""

    def run(now: float) -> list[str]:
        s = r.core.primary
        asked: list[str] = []
        if direction in ("in", "both") and s.negotiated is not None:
            for afi, safi in s.negotiated.families:
                if s.send_route_refresh(afi, safi):
                    asked.append(family_name((afi, safi)))
        if direction in ("out", "both"):
            soft_reset_out(r)
        return asked

    return run


def _stop_call(r: PeerRunner, n: Notification) -> Callable[[float], None]:
    def stop(now: float) -> None:
        r.core.stop(now, n, DownKind.ADMIN_DOWN)

    return stop
