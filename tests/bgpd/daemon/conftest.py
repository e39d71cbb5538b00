"""Fixtures for daemon tests: in-process speakers on 127.0.0.x high ports, stopped afterwards."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import pytest

from bgpd.daemon.config import BgpdConfig, ListenConfig, PeerConfig
from bgpd.daemon.sink import RouteSink
from bgpd.daemon.speaker import Speaker
from runtime.config import from_mapping


def free_port(address: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def config(
    tmp: Path, address: str, port: int, peers: list[dict[str, Any]], **extra: Any
) -> BgpdConfig:
    data: dict[str, object] = {
        "router_id": address,
        "local_as": 65000,
        "uvloop": False,
        "control_socket": str(tmp / f"bgpd-{address}.sock"),
        "listen": [{"address": address, "port": port}],
        "peers": peers,
        **extra,
    }
    return from_mapping(BgpdConfig, data)


def peer(address: str, port: int, **kw: Any) -> dict[str, Any]:
    return {
        "address": address,
        "port": port,
        "local_address": kw.pop("local_address", ""),
        "remote_as": kw.pop("remote_as", 65000),
        "hold_time": kw.pop("hold_time", 3),
        "idle_hold_time": kw.pop("idle_hold_time", 0.2),
        "idle_hold_max": kw.pop("idle_hold_max", 1.0),
        "connect_retry_time": kw.pop("connect_retry_time", 0.5),
        **kw,
    }


async def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll a condition (bounded); daemon tests run real sockets, not a fake clock."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class SpeakerFactory(Protocol):
    def __call__(self, cfg: BgpdConfig, sink: RouteSink | None = None) -> Awaitable[Speaker]: ...


@pytest.fixture
async def speakers() -> AsyncIterator[SpeakerFactory]:
    started: list[Speaker] = []

    async def make(cfg: BgpdConfig, sink: RouteSink | None = None) -> Speaker:
        sp = Speaker(cfg, loader=None, sink=sink)
        started.append(sp)
        await sp.start()
        return sp

    try:
        yield make
    finally:
        for sp in started:
            await sp.stop()


__all__ = ["ListenConfig", "PeerConfig", "config", "free_port", "peer", "wait_for"]
