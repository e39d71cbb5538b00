"""tabby-felixd: keeps this host's routes, neighbours, FDB, VXLAN device, sysctls and NAT table
as the store and bgpd say they should be (calico.md §4; docs/felixd.md).

The shell around the pure planner. Three tasks feed one `PlannerState` (STYLE.md rule 2: only
the event loop mutates it): the store pump (list-then-watch of nodes, pools, IPAM blocks,
workload endpoints and FelixConfiguration), the bgpd pump (the `subscribe` stream, reconnected
with back-off) and the sync loop, which plans and applies in one worker thread (netlink never
runs on the loop; the thread may enter a named network namespace). Between full resyncs a
change is planned incrementally and diffed on its touched keys against the cached kernel view
(`sync_touched`), and a workload link event resyncs that interface alone; a full resync
(`felixd.backends.sync.sync` after reading the kernel, with a full plan) runs every
`routeRefreshInterval`, on request, and after any error.

Graceful restart (RFC 4724 §4.2 as felix/BIRD apply it): when bgpd's stream ends, its best
paths are kept and marked stale; a new snapshot replaces them; if bgpd is not back within
`graceful_restart_time`, the stale ones are swept. At start, the first sync waits for bgpd's
first snapshot (`bgpd_startup_wait`, or `bgpd_snapshot_wait` once bgpd's stream is open: bgpd
holds the snapshot until it has converged), so that it deletes no route bgpd is about to send.

The kernel view kept between full resyncs is `CachedKernel` (kernel_cache.py); link and
address events reach the daemon through `LinkEvents` (link_events.py), which it extends.

Invariants: the first sync completes before `start` returns (the runner then sends READY);
a failing sync never stops the loop; nothing but the worker thread touches the kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol, TypeVar

from felixd.backends.base import DataplaneBackend
from felixd.backends.sync import SyncReport, sync
from felixd.inputs import StoreAdapter, best_paths, store_snapshots
from felixd.kernel_cache import CachedKernel, _Keys, sync_touched
from felixd.link_events import LinkEvents
from felixd.plan import (
    BestPath,
    Block,
    DesiredDataplane,
    HostInterface,
    NodeInfo,
    Ownership,
    PlannerState,
    Pool,
    WorkloadEndpoint,
    ownership,
)
from felixd.plan.incremental import IncrementalPlanner
from felixd.plan.links import LinkChange, LinkTracker
from felixd.plan.model import Problem, Touched, sysctl_interface
from ipc import RPCClient, RPCServer
from ipc.client import ClientOptions
from ipc.errors import RPCError
from resources.resource import Resource
from runtime.config import ConfigError, DaemonConfig
from runtime.log import get_logger
from runtime.sdnotify import Notifier
from store.backend import connect
from store.kv.messages import LeaseGrantResponse

log = get_logger("felixd")

StoreSource = Callable[[], AsyncIterator[Sequence[Resource[object]]]]
BgpdSource = Callable[[], AsyncIterator[Mapping[str, object]]]
BackendFactory = Callable[[Ownership], DataplaneBackend]


class StatusKV(Protocol):
    """The part of the store client the status reporter uses (StoreClient has it)."""

    async def lease_grant(self, ttl: int, lease_id: int = 0) -> LeaseGrantResponse: ...
    async def lease_keep_alive(self, lease_id: int) -> int: ...
    async def put(self, key: bytes, value: bytes, *, lease: int = 0) -> object: ...


ERROR_RETRY = 1.0  # first retry after a failed sync; doubles up to MAX_RETRY while it fails
MAX_RETRY = 30.0
T = TypeVar("T")


@dataclasses.dataclass(kw_only=True)
class FelixdConfig(DaemonConfig):
    node_name: str = ""  # "" = this host's name
    store_endpoints: list[str] = dataclasses.field(
        default_factory=lambda: ["unix:/run/tabby/store.sock"]
    )
    store_prefix: str = "/calico"
    control_socket: Path = Path("/run/tabby/felixd.sock")
    bgpd_socket: Path = Path("/run/tabby/bgpd.sock")
    bgpd: bool = True  # follow bgpd's best paths (off: VXLAN-only clusters)
    graceful_restart_time: float = 120.0  # keep bgpd's routes this long after it went away
    # At start, wait this long for bgpd's first snapshot before the first sync, so a restart
    # of felixd does not delete the routes bgpd is about to send again.
    bgpd_startup_wait: float = 5.0
    # ... and while bgpd answers but holds its first snapshot (it is converging after a start,
    # or deferring after a restart), up to this long in all: its routes are only late. Longer
    # than bgpd's `graceful_restart_defer_time` (60 s), so that felixd and bgpd restarted
    # together after a crash do not sync without the BGP routes still in the kernel.
    bgpd_snapshot_wait: float = 65.0
    debounce: float = 0.05
    netns: str = ""  # run the netlink worker in this named namespace (tests)
    pod_mtu_file: Path = Path("/var/lib/tabby/felixd/mtu")
    nftables: bool = True
    link_events: bool = True  # resync when links come, go or change state (RTMGRP_LINK)
    endpoint_grace: float = 10.0  # a workload interface may be missing this long unreported
    status_interval: float = 30.0  # Calico's reportingInterval: the status key's refresh
    status_ttl: int = 90  # Calico's reportingTTL: the lease on the status key (0: no key)

    def validate(self) -> None:
        super().validate()
        waits = (self.debounce, self.graceful_restart_time, self.endpoint_grace)
        if min(*waits, self.bgpd_startup_wait, self.bgpd_snapshot_wait) < 0:
            raise ConfigError(
                "debounce, graceful_restart_time, endpoint_grace, bgpd_startup_wait, "
                "bgpd_snapshot_wait: must not be negative"
            )
        if not self.store_endpoints:
            raise ConfigError("store_endpoints: at least one endpoint is needed")

    @property
    def node(self) -> str:
        return self.node_name or socket.gethostname()


def _blocked_names(touched: Touched) -> set[tuple[str, str]]:
    """The (kind, name) a blocked entry of each touched key is reported under (see diff.py)."""
    names = {("Route", dst) for _table, dst, _metric in touched.routes}
    names |= {("Neighbour", f"{address} on {dev}") for dev, address in touched.neighbours}
    names |= {("FDB", f"{mac} on {dev}") for dev, mac in touched.fdb}
    names |= {("Sysctl", path) for path in touched.sysctls}
    return names


def _blocked_interface(problem: Problem) -> str | None:
    """The interface a blocked entry waits for, if it is blocked for a missing interface."""
    if problem.kind == "Route" and problem.reason.startswith("interface "):
        return problem.reason.split()[1]
    if problem.reason != "interface is missing":
        return None
    if problem.kind == "Sysctl":
        return sysctl_interface(problem.name)
    return problem.name.rpartition(" on ")[2]


class Felixd(LinkEvents):
    name = "felixd"

    def __init__(
        self,
        config: FelixdConfig,
        *,
        store: StoreSource | None = None,
        bgpd: BgpdSource | None = None,
        backend: BackendFactory | None = None,
        status_kv: StatusKV | None = None,
    ) -> None:
        self.config = config
        self.node = config.node
        self.state = PlannerState(self.node)
        self.planner = IncrementalPlanner(self.state)
        self._adapter = StoreAdapter(self.node)
        self.blocked: set[Problem] = set()  # entries the kernel cannot take now, all of them
        self._store = store
        self._bgpd = bgpd
        self._backend_factory = backend or self._default_backend
        self._status_kv = status_kv
        self.started = time.time()
        self._backend: DataplaneBackend | None = None
        self._kernel: CachedKernel | None = None
        self._link_events: socket.socket | None = None
        self._owner: Ownership | None = None
        self._worker: ThreadPoolExecutor | None = None
        self.server = RPCServer(name="felixd")
        self.server.register("status", self.status_rpc)
        self.server.register("resync", self.resync_rpc)
        self.notifier = Notifier()
        self.tasks: list[asyncio.Task[None]] = []
        self.ready = asyncio.Event()
        self.wake = asyncio.Event()
        self.store_synced = False
        self.bgpd_connected = False
        self.stale_deadline: float | None = None
        self._bgpd_wait_until: float | None = None
        self._bgpd_started = 0.0  # time.monotonic() at start, for bgpd_snapshot_wait
        self.bgpd_open = False  # bgpd's stream is open (its snapshot may still be held)
        self.force_resync = True
        self.retry_delay = ERROR_RETRY
        self.desired: DesiredDataplane | None = None
        self.last_report: SyncReport | None = None
        self.last_resync = 0.0  # time.time() of the last full sync
        self.last_sync_end = 0.0  # time.monotonic() when the last sync finished
        self.last_sync_s = 0.0  # how long it took, input seen to kernel acknowledged
        self.incremental_syncs = 0
        self.last_error = ""
        self.syncs = 0
        self.errors = 0
        self.store_problems: list[str] = []
        self._pod_mtu_written: int | None = None
        self._hosts_dirty = True
        self.links = LinkTracker()
        self._link_changes: list[tuple[LinkChange, str]] = []
        self.full_syncs = 0
        self.interface_syncs = 0  # per-interface resyncs (a workload link came, went, flapped)
        # Workload interfaces of valid endpoints that are missing or down, since when
        # (time.monotonic()): reported in status only after `endpoint_grace`.
        self.missing_since: dict[str, float] = {}

    def _default_backend(self, owner: Ownership) -> DataplaneBackend:
        from felixd.netlink import NetlinkBackend
        from felixd.nft import NftBackend

        state = self.config.state_dir / "felixd" / "nft-tables.json"
        nft = NftBackend(state_file=state) if self.config.nftables else None
        return NetlinkBackend(owner, nft)

    # -- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        netns = self.config.netns
        if netns:
            from felixd.netlink.netns import enter_netns

            self._worker = ThreadPoolExecutor(1, "felixd-netlink", enter_netns, (netns,))
        else:
            self._worker = ThreadPoolExecutor(1, "felixd-netlink")
        await self.server.listen(f"unix:{self.config.control_socket}")
        loop = asyncio.get_running_loop()
        self.tasks.append(loop.create_task(self._store_pump()))
        if self.config.bgpd or self._bgpd is not None:
            self.tasks.append(loop.create_task(self._bgpd_pump()))
            self._bgpd_started = time.monotonic()
            self._bgpd_wait_until = self._bgpd_started + self.config.bgpd_startup_wait
        self.tasks.append(loop.create_task(self._sync_loop()))
        if self.config.status_ttl > 0 and (self._store is None or self._status_kv is not None):
            self.tasks.append(loop.create_task(self._report_status()))
        self.notifier.status("waiting for the store")
        await self.ready.wait()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.server.close()
        if self._link_events is not None:
            asyncio.get_running_loop().remove_reader(self._link_events.fileno())
            self._link_events.close()
            self._link_events = None
        if self._worker is not None:
            backend = self._backend
            close = getattr(backend, "close", None)
            if callable(close):
                with contextlib.suppress(Exception):
                    await asyncio.get_running_loop().run_in_executor(self._worker, close)
            self._worker.shutdown(wait=True)
        self.notifier.close()

    async def reload(self) -> None:
        self.force_resync = True
        self.wake.set()

    def healthy(self) -> bool:
        return True

    def status(self) -> str:
        if not self.store_synced:
            return "waiting for the store"
        counts = self.desired.route_counts() if self.desired else {}
        routes = sum(counts.values())
        return f"node {self.node}: {routes} routes, {self.syncs} syncs, last error: {self.last_error or 'none'}"

    # -- inputs --------------------------------------------------------------------------

    async def _store_source(self) -> AsyncIterator[Sequence[Resource[object]]]:
        if self._store is not None:
            async for snap in self._store():
                yield snap
            return
        async for snap in store_snapshots(self.config.store_endpoints, self.config.store_prefix):
            yield snap

    async def _store_pump(self) -> None:
        # The source retries a store outage itself; anything else that ends it is logged and
        # the source started again (the dataplane keeps its last state meanwhile).
        delay = 0.5
        while True:
            try:
                async for resources in self._store_source():
                    self._on_store(resources)
                    delay = 0.5
                log.warning("store.stream_ended")
            except Exception as exc:
                self.last_error = f"store: {exc}"
                log.exception("store.failed", error=str(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _on_store(self, resources: Sequence[Resource[object]]) -> None:
        found = self._adapter.adapt(resources)
        self.state.set_config(found.config)
        self.state.snapshot(NodeInfo, found.nodes)
        self.state.snapshot(Pool, found.pools)
        self.state.snapshot(Block, found.blocks)
        self.state.snapshot(WorkloadEndpoint, found.endpoints)
        self.store_problems = [str(p) for p in found.problems]
        if not self.store_synced:
            self.store_synced = True
            self.notifier.status("store listed, programming the dataplane")
        self.wake.set()

    async def _bgpd_source(self) -> AsyncIterator[Mapping[str, object]]:
        if self._bgpd is not None:
            async for item in self._bgpd():
                yield item
            return
        opts = ClientOptions(connect_deadline=1.0, timeout=10.0)
        client = RPCClient(f"unix:{self.config.bgpd_socket}", options=opts)
        try:
            async with client.stream("subscribe") as sub:
                # bgpd answers: the first sync may wait longer for a snapshot it holds.
                yield {"type": "open"}
                async for raw in sub:
                    if isinstance(raw, Mapping):
                        yield {str(k): v for k, v in raw.items()}
        finally:
            await client.close()

    async def _bgpd_pump(self) -> None:
        delay = 0.2
        while True:
            try:
                async for msg in self._bgpd_source():
                    self._on_bgpd(msg)
                    delay = 0.2
            except (RPCError, OSError) as exc:
                log.info("bgpd.unavailable", detail=str(exc))
            except Exception as exc:  # a malformed stream must not end the pump
                log.exception("bgpd.stream_failed", error=str(exc))
            self.bgpd_open = False
            if self.bgpd_connected:
                self.bgpd_connected = False
                marked = self.state.mark_stale()
                self.stale_deadline = time.monotonic() + self.config.graceful_restart_time
                log.info("bgpd.lost", stale=marked, keep_for=self.config.graceful_restart_time)
                self.wake.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _on_bgpd(self, msg: Mapping[str, object]) -> None:
        kind = msg.get("type")
        if kind == "open":
            self.bgpd_open = True
            self.wake.set()  # the wait for the first snapshot may be longer now
            return
        routes = msg.get("routes")
        routes = routes if isinstance(routes, list) else []
        if kind in ("snapshot", "resync"):
            self.bgpd_connected = True
            self.stale_deadline = None
            self.state.snapshot(BestPath, best_paths(routes))
        elif kind == "delta":
            for path in best_paths(routes):
                self.state.set(path)
            for route in routes:  # a prefix now only local is no longer a remote path
                if isinstance(route, Mapping) and route.get("local"):
                    self.state.delete(BestPath, str(route.get("prefix", "")))
            withdrawn = msg.get("withdrawn")
            for prefix in withdrawn if isinstance(withdrawn, list) else []:
                self.state.delete(BestPath, str(prefix))
        self.wake.set()

    # -- the sync loop -------------------------------------------------------------------

    async def _sync_loop(self) -> None:
        planned_revision = -1
        while True:
            timeout = self._next_timeout()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
            # arrives as the wake fires, and stop() then waits out the whole stop_timeout.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.wake.wait()
            # A change after a quiet spell is planned at once; within `debounce` of the last
            # sync it waits out the rest, so a burst plans once per debounce interval. Either
            # way the loop yields once, so inputs already received join this plan.
            quiet = time.monotonic() - self.last_sync_end
            await asyncio.sleep(max(0.0, self.config.debounce - quiet))
            self.wake.clear()
            if self.stale_deadline is not None and time.monotonic() >= self.stale_deadline:
                gone = self.state.sweep_stale()
                self.stale_deadline = None
                log.info("bgpd.stale_swept", prefixes=len(gone))
            if not self.store_synced:
                continue
            if self._bgpd_wait_until is not None:
                if not self.bgpd_connected and time.monotonic() < self._bgpd_first_wait_end():
                    continue  # bgpd's snapshot first: its routes are not withdrawn meanwhile
                self._bgpd_wait_until = None
            refresh = self.state.config.route_refresh_interval
            due = time.time() - self.last_resync >= refresh
            pending = self.force_resync or due or self._link_changes or self._hosts_dirty
            if self.state.revision == planned_revision and not pending:
                continue
            try:
                planned_revision = await self.sync_once()
                self.last_sync_end = time.monotonic()
            except Exception as exc:
                self.last_sync_end = time.monotonic()
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.force_resync = True
                self.retry_delay = min(self.retry_delay * 2, MAX_RETRY)
                log.exception("sync.failed", error=self.last_error)
                await self._drop_backend()  # a broken socket is not reused: open new ones

    def _next_timeout(self) -> float | None:
        """How long the sync loop may sleep without an input: until the next refresh, the
        retry after a failed sync, the graceful-restart sweep or the end of the wait for bgpd;
        None (until woken) while the store has not been listed."""
        waits = []
        now = time.monotonic()
        if self.store_synced:
            if self.last_resync:
                refresh = self.state.config.route_refresh_interval
                waits.append(max(0.0, self.last_resync + refresh - time.time()))
            if self.force_resync:
                waits.append(self.retry_delay)
            if self._bgpd_wait_until is not None:
                waits.append(max(0.0, self._bgpd_first_wait_end() - now))
        if self.stale_deadline is not None:
            waits.append(max(0.0, self.stale_deadline - now))
        return min(waits) if waits else None

    def _bgpd_first_wait_end(self) -> float:
        """When the first sync stops waiting for bgpd's snapshot: `bgpd_startup_wait` after
        start, or `bgpd_snapshot_wait` while bgpd's stream is open (bgpd holds its snapshot
        until it has converged, docs/bgpd.md; a sync without it would delete the routes
        still in the kernel from before a restart of both daemons, only to add them back)."""
        assert self._bgpd_wait_until is not None
        if self.bgpd_open:
            return max(self._bgpd_wait_until, self._bgpd_started + self.config.bgpd_snapshot_wait)
        return self._bgpd_wait_until

    async def _in_worker(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn)

    async def sync_once(self) -> int:
        """Plan and sync once; returns the planner revision that was applied."""
        owner = ownership(self.state.config)
        if self._backend is None or self._kernel is None or owner != self._owner:
            self._owner = owner
            self._backend = await self._in_worker(lambda: self._backend_factory(owner))
            self._kernel = CachedKernel(self._backend, self.links.down)
            await self._watch_links()
        backend, kernel = self._backend, self._kernel
        started = time.monotonic()
        if (
            self.force_resync
            or time.time() - self.last_resync >= self.state.config.route_refresh_interval
        ):
            kernel.invalidate()
            full = True
        else:
            full = False
        hosts = getattr(backend, "host_interfaces", None)
        if callable(hosts) and (full or self._hosts_dirty or self._link_events is None):
            self._hosts_dirty = False
            found: list[HostInterface] = await self._in_worker(hosts)
            # A down interface without addresses feeds nothing in the plan (a pod's veth peer
            # on its way into the pod): leaving it out keeps CNI churn from re-planning all.
            self.state.snapshot(HostInterface, [h for h in found if h.up or h.addresses])
        self.links.prefix = self.state.config.interface_prefix
        self.links.devices = owner.devices
        link_changes, self._link_changes = self._link_changes, []
        link_keys: _Keys | None = None
        if link_changes and not full:
            link_keys = await self._in_worker(lambda: self._mirror_links(link_changes))
        revision = self.state.revision
        # A full resync plans everything again too (mark and sweep), as a safety net under
        # the incremental planner; between resyncs a delta plans and diffs only its keys.
        update = self.planner.update(full=full)
        desired, touched = update.desired, update.touched
        if link_keys is not None and link_keys.whole:
            touched = None  # felixd's device came or went: everything, against the view
            self.interface_syncs += 1
        elif link_keys is not None and touched is not None:
            # Per-interface resync: that interface's desired and (formerly) observed entries.
            for _change, name in link_changes:
                mine = self.planner.interface_keys(name)
                link_keys.routes.update(mine.routes)
                link_keys.neighbours.update(mine.neighbours)
                link_keys.sysctls.update(mine.sysctls)
            touched = Touched(
                touched.routes | link_keys.routes,
                touched.neighbours | link_keys.neighbours,
                touched.fdb,
                touched.sysctls | link_keys.sysctls,
            )
            self.interface_syncs += 1
        report: SyncReport | None = None
        if touched is not None and not full:
            part = touched
            report = await self._in_worker(lambda: sync_touched(desired, part, kernel))
            if report is not None and report.failures:
                first = report
                again = await self._in_worker(lambda: sync(desired, kernel))
                report = SyncReport(
                    again.converged,
                    first.batches + again.batches,
                    first.applied + again.applied,
                    first.failures + again.failures,
                    again.blocked,
                )
                touched = None
            elif report is not None:
                self.incremental_syncs += 1
        if report is None:
            report = await self._in_worker(lambda: sync(desired, kernel))
            touched = None
            self.full_syncs += 1
        if touched is None:
            self.blocked = set(report.blocked)
        else:
            gone = _blocked_names(touched)
            self.blocked = {p for p in self.blocked if (p.kind, p.name) not in gone}
            self.blocked.update(report.blocked)
        report = dataclasses.replace(report, blocked=tuple(sorted(self.blocked)))
        self.desired, self.last_report = desired, report
        self._track_missing(kernel)
        self.syncs += 1
        self.last_sync_s = time.monotonic() - started
        if full:
            self.last_resync = time.time()
        self.force_resync = not report.converged
        self.retry_delay = ERROR_RETRY if report.converged else min(self.retry_delay * 2, MAX_RETRY)
        if report.failures:
            self.errors += 1
            self.last_error = "; ".join(str(f) for f in report.failures[:5])
            log.warning("sync.errors", failures=len(report.failures), first=self.last_error)
        if report.batches:
            log.info(
                "sync.applied",
                batches=report.batches,
                ops=report.applied,
                converged=report.converged,
            )
        for problem in desired.problems:
            log.debug("plan.problem", problem=str(problem))
        self._write_pod_mtu(desired.pod_mtu)
        if not self.ready.is_set():
            self.ready.set()
        return revision

    def _track_missing(self, kernel: CachedKernel) -> None:
        """Since when each valid endpoint's interface has been missing (or down)."""
        copy = kernel.copy
        if copy is None:
            return
        now = time.monotonic()
        wanted = self.planner.endpoint_interfaces()
        live = copy.links - kernel.down
        missing = {name for name in wanted if name not in live}
        for name in missing:
            self.missing_since.setdefault(name, now)
        for name in list(self.missing_since):
            if name not in missing:
                del self.missing_since[name]

    def problem_lines(self) -> list[str]:
        """Status problems: planner problems, blocked entries and skipped store values. Entries
        on a workload interface that vanished (the CNI plugin may be re-creating it) are not
        listed; once it has been missing longer than `endpoint_grace`, its endpoint is."""
        desired, report = self.desired, self.last_report
        lines = [str(p) for p in desired.problems] if desired else []
        now = time.monotonic()
        held = set(self.missing_since)
        for problem in report.blocked if report else ():
            if _blocked_interface(problem) not in held:
                lines.append(str(problem))
        owners = self.planner.endpoint_interfaces()
        for name, since in sorted(self.missing_since.items()):
            age = now - since
            if age >= self.config.endpoint_grace:
                state = "down" if name in self.links.down else "missing"
                lines.append(
                    f"WorkloadEndpoint {owners.get(name, '?')!r}: interface {name} "
                    f"{state} for {age:.0f}s"
                )
        return lines + self.store_problems

    async def _drop_backend(self) -> None:
        backend, self._backend, self._kernel = self._backend, None, None
        close = getattr(backend, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                await self._in_worker(close)

    def status_key(self) -> bytes:
        """Calico's felix status key (`/calico/felix/v2/<region>/host/<node>/status`)."""
        prefix = self.config.store_prefix.rstrip("/")
        return f"{prefix}/felix/v2/no-region/host/{self.node}/status".encode()

    async def _report_status(self) -> None:
        """Keep the status key alive under a lease: it vanishes `status_ttl` seconds after
        felixd stops reporting (Calico's reportingInterval / reportingTTL)."""
        kv: StatusKV = self._status_kv or connect(self.config.store_endpoints)
        lease = 0
        try:
            await self.ready.wait()
            while True:
                try:
                    if lease and await kv.lease_keep_alive(lease) <= 0:
                        lease = 0  # expired while we were away
                    if not lease:
                        lease = (await kv.lease_grant(self.config.status_ttl)).id
                    await kv.put(self.status_key(), self._status_value(), lease=lease)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a status report must never stop the dataplane
                    lease = 0
                    log.info("status_key.failed", error=str(exc))
                await asyncio.sleep(self.config.status_interval)
        finally:
            if self._status_kv is None:
                with contextlib.suppress(Exception):
                    await kv.close()  # type: ignore[attr-defined]

    def _status_value(self) -> bytes:
        desired = self.desired
        return json.dumps(
            {
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "uptime": round(time.time() - self.started, 1),
                "ready": self.ready.is_set(),
                "routes": desired.route_counts() if desired else {},
                "pod_mtu": desired.pod_mtu if desired else None,
                "last_resync": self.last_resync,
                "last_error": self.last_error,
            },
            sort_keys=True,
        ).encode()

    def _write_pod_mtu(self, mtu: int) -> None:
        if mtu == self._pod_mtu_written:
            return
        path = self.config.pod_mtu_file
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(f"{mtu}\n")
            os.replace(tmp, path)
            self._pod_mtu_written = mtu
        except OSError as exc:
            log.warning("pod_mtu.not_written", path=str(path), error=str(exc))

    # -- control socket ------------------------------------------------------------------

    async def status_rpc(self) -> dict[str, object]:
        desired, report = self.desired, self.last_report
        problems = self.problem_lines()
        return {
            "node": self.node,
            "ready": self.ready.is_set(),
            "store_synced": self.store_synced,
            "bgpd_connected": self.bgpd_connected,
            "routes": desired.route_counts() if desired else {},
            "stale_routes": len(desired.stale_prefixes) if desired else 0,
            "pod_mtu": desired.pod_mtu if desired else None,
            "tunnels": {
                **{
                    d.name: {"vni": d.vni, "port": d.port, "local": d.local, "mtu": d.mtu}
                    for d in (desired.devices.values() if desired else ())
                },
                **{
                    t.name: {"mtu": t.mtu, "address": t.address}
                    for t in (desired.tunnels.values() if desired else ())
                },
            },
            "last_resync": self.last_resync,
            "last_resync_ago": time.time() - self.last_resync if self.last_resync else None,
            "converged": report.converged if report else False,
            "syncs": self.syncs,
            "errors": self.errors,
            "last_error": self.last_error,
            "problems": problems,
        }

    async def resync_rpc(self) -> bool:
        self.force_resync = True
        self.wake.set()
        return True
