"""Link and address events (RTMGRP_LINK, RTMGRP_IPV4/IPV6_IFADDR) into the daemon's resyncs.

A module of its own because it is the daemon's one input that is not a stream of resources:
a netlink socket read on the loop, whose messages `LinkTracker` (felixd/plan/links.py) turns
into a resync of one workload interface (mirrored into the cached kernel view in the worker
thread), a re-read of the host interfaces, or a full resync. `Felixd` (daemon.py) extends
`LinkEvents`; the sync loop consumes `_link_changes` and `_hosts_dirty`.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

from felixd.backends.base import DataplaneBackend
from felixd.kernel_cache import CachedKernel, _Keys
from felixd.plan import Ownership
from felixd.plan.links import LinkChange, LinkMessage, LinkTracker, Resync, parse_link_messages
from runtime.log import get_logger

if TYPE_CHECKING:
    from felixd.daemon import FelixdConfig

log = get_logger("felixd")  # the daemon's logger: these are its events

T = TypeVar("T")

RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100
RTM_GETLINK = 18
NLM_F_REQUEST_DUMP = 0x1 | 0x300


def _link_socket() -> socket.socket:
    """Link and address events, and one dump of the links (answered on the same socket, with
    our sequence number) so the tracker knows what was there before the first event."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
    ifinfo = bytes(16)
    sock.send(
        struct.pack("=IHHII", 16 + len(ifinfo), RTM_GETLINK, NLM_F_REQUEST_DUMP, 1, 0) + ifinfo
    )
    sock.setblocking(False)
    return sock


class LinkEvents:
    """The link-event half of `Felixd`, which sets the attributes below (`__init__`)."""

    # Its own state.
    _link_events: socket.socket | None
    links: LinkTracker
    _link_changes: list[tuple[LinkChange, str]]
    _hosts_dirty: bool
    # The daemon's.
    config: FelixdConfig
    _backend: DataplaneBackend | None
    _kernel: CachedKernel | None
    _owner: Ownership | None
    force_resync: bool
    wake: asyncio.Event

    if TYPE_CHECKING:

        async def _in_worker(self, fn: Callable[[], T]) -> T: ...

    def _mirror_links(self, changes: list[tuple[LinkChange, str]]) -> _Keys | None:
        """In the worker: apply what the kernel did on each changed workload interface to the
        cached view; None when there is no view (the full read sees it all)."""
        keys = _Keys()
        kernel = self._kernel
        if kernel is None:
            return None
        devices = self._owner.devices if self._owner is not None else frozenset()
        for change, name in changes:
            mirror = kernel.device_changed if name in devices else kernel.link_changed
            if not mirror(change, name, keys):
                return None
        if any(change is LinkChange.NEW for change, _ in changes):
            refresh = getattr(self._backend, "refresh_links", None)
            if callable(refresh):
                refresh()  # the new interface's index, for the messages that name it
        return keys

    async def _watch_links(self) -> None:
        """Link up/down/rename/add/delete (RTMGRP_LINK) forces a full resync: a pod's veth that
        appeared can now take its routes, one that went took them with it (issue 10). The
        socket is opened in the worker thread so it belongs to the worker's namespace."""
        if not self.config.link_events or self._link_events is not None:
            return
        try:
            sock = await self._in_worker(_link_socket)
        except OSError as exc:
            log.warning("link_events.unavailable", error=str(exc))
            return
        self._link_events = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_link_event)

    def _on_link_event(self) -> None:
        sock = self._link_events
        if sock is None:
            return
        for _ in range(1000):  # bounded: the rest waits for the next callback
            try:
                data = sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                # ENOBUFS: events were lost; a full resync is the only right answer.
                log.info("link_events.overrun", error=str(exc))
                self.force_resync = True
                self.wake.set()
                continue
            if not data:
                break
            found, addresses = parse_link_messages(data)
            self.on_link_messages(found, addresses)

    def on_link_messages(self, found: Sequence[LinkMessage], addresses: bool = False) -> None:
        """Decide per message: a workload interface's change resyncs that interface only; a
        host interface's change re-reads the host interfaces (or everything, when the kernel
        may have flushed routes through it)."""
        wake = addresses
        if addresses:
            self._hosts_dirty = True
        for msg in found:
            outcome = self.links.feed(msg)
            if isinstance(outcome, LinkChange):
                self._link_changes.append((outcome, msg.name))
                log.info("link.changed", interface=msg.name, change=outcome.value)
                wake = True
            elif outcome is Resync.HOSTS:
                self._hosts_dirty = wake = True
            elif outcome is Resync.FULL:
                self._hosts_dirty = self.force_resync = wake = True
                log.info("link.resync", interface=msg.name)
        if wake:
            self.wake.set()
