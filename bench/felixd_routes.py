"""felixd's route programming at 10,000 routes against the real kernel, beside `ip -batch` in the
same run (issue 10's benchmark; ratios in one run, not a timed test). Needs root.

    .venv/bin/python -m bench.felixd_routes [--routes 10000]

In a private network namespace (deleted at the end) with one veth `eth0` 10.0.0.1/16:
1. `ip -batch` adds N no-encap block routes (`via ... dev eth0 onlink proto 80`); flushed after.
2. felixd (plan -> diff -> NetlinkBackend.apply, through `sync`) programs the same N routes from
   nothing: wall time, and the ratio to (1) (target <= 2x); also without the cold plan
   (read + diff + apply only).
3. A full resync of N routes that are already right (read + diff, no write): wall and CPU time.
4. One best path changes with N installed: wall time from the input change to the kernel's
   acknowledgement, once with a fresh read of the kernel (`one_change_with_read_s`), as a full
   re-plan + full diff against the daemon's cached kernel view (`one_change_full_plan_s`, the
   path before incremental planning) and as an incremental plan + touched-keys diff
   (`one_change_incremental_s`); medians of 20 (target < 10 ms).
5. End to end through the daemon (`tabby-felixd` in-process on the standard loop, its netlink
   worker in the namespace, a scripted bgpd stream): from a bgpd `delta` message to the moment
   a netlink route monitor in the namespace sees the kernel's RTM_NEWROUTE; median and max of
   20, with the incremental planner (`e2e_delta_to_kernel_s`) and with it replaced by a full
   plan every time (`e2e_full_plan_s`). Then one WorkloadEndpoint written to the store, which
   holds the N blocks too (its veth exists and is up): from the store update to its /32 in the
   kernel (`e2e_endpoint_to_kernel_s`, median of 10).
6. RSS of this process holding the planner state and the N-route plan.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import resource
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from felixd.backends.sync import sync
from felixd.daemon import Felixd, FelixdConfig
from felixd.kernel_cache import CachedKernel, sync_touched
from felixd.netlink import NetlinkBackend
from felixd.netlink.messages import RTA_DST, RTM_NEWROUTE, RTMSG, attrs, messages
from felixd.netlink.netns import enter_netns
from felixd.plan import BestPath, HostInterface, NodeInfo, PlannerState, Pool, plan
from felixd.plan.incremental import IncrementalPlanner, Update
from resources.resource import Resource, parse_resource

BASE = int(ipaddress.ip_address("10.128.0.0"))
ENDPOINTS = 10


def _cidr(index: int) -> str:
    return str(ipaddress.ip_network((BASE + index * 64, 26)))


def _hop(index: int) -> str:
    return f"10.0.1.{index // 50 % 200 + 1}"  # 200 nodes, 50 blocks each


def _sh(*args: str, stdin: str | None = None) -> None:
    subprocess.run(list(args), input=stdin, text=True, check=True, capture_output=True)


def run(n: int) -> dict[str, float]:
    ns = f"tbfbench{int(time.time()) % 100000}"
    _sh("ip", "netns", "add", ns)
    try:
        _sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
        _sh("ip", "-n", ns, "link", "set", "eth0", "up")
        _sh("ip", "-n", ns, "link", "set", "peer0", "up")
        _sh("ip", "-n", ns, "addr", "add", "10.0.0.1/16", "dev", "eth0")
        for i in range(ENDPOINTS):  # pods' veths for the endpoint measurement (peers in-ns)
            _sh(
                "ip", "-n", ns, "link", "add", f"caliw{i}", "type", "veth", "peer", "name", f"pw{i}"
            )
            _sh("ip", "-n", ns, "link", "set", f"caliw{i}", "up")
            _sh("ip", "-n", ns, "link", "set", f"pw{i}", "up")
        lines = "".join(
            f"route add {_cidr(i)} via {_hop(i)} dev eth0 onlink proto 80\n" for i in range(n)
        )
        start = time.perf_counter()
        _sh("ip", "-n", ns, "-batch", "-", stdin=lines)
        ip_batch = time.perf_counter() - start
        _sh("ip", "-n", ns, "route", "flush", "proto", "80")
        with ThreadPoolExecutor(1, initializer=enter_netns, initargs=(ns,)) as worker:
            found = {"ip_batch_s": ip_batch, **worker.submit(_felixd, n).result()}
        _sh("ip", "-n", ns, "route", "flush", "proto", "80")
        found.update(asyncio.run(_daemon(ns, n)))
        return found
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def _felixd(n: int) -> dict[str, float]:
    state = PlannerState("node-0")
    state.set(HostInterface("eth0", ("10.0.0.1/16",), 1500))
    state.set(NodeInfo("node-0", ("10.0.0.1/16",), None))
    state.set(Pool("p", "10.128.0.0/9"))
    for i in range(n):
        state.set(BestPath(_cidr(i), (_hop(i),)))
    backend = NetlinkBackend()
    backend.read()  # open the sockets outside the measurement
    start = time.perf_counter()
    desired = plan(state)
    planned = time.perf_counter()
    report = sync(desired, backend)
    program = time.perf_counter() - start
    write = time.perf_counter() - planned
    assert report.converged and report.applied == n, report

    start, cpu = time.perf_counter(), time.process_time()
    report = sync(plan(state), backend)
    resync, resync_cpu = time.perf_counter() - start, time.process_time() - cpu
    assert report.batches == 0, report

    start = time.perf_counter()
    state.set(BestPath(_cidr(0), ("10.0.0.2",)))
    report = sync(plan(state), backend)
    change = time.perf_counter() - start
    assert report.applied == 1, report

    # The daemon's path: its cached kernel view (felixd.kernel_cache.CachedKernel), so a change is
    # plan + diff + one netlink message and its acknowledgement; first as it was (a full plan
    # and a full diff), then incremental (only the changed best path, only its route key).
    kernel = CachedKernel(backend)
    kernel.read()
    full_changes = []
    for i in range(20):
        start = time.perf_counter()
        state.set(BestPath(_cidr(i), (f"10.0.0.{3 + i % 2}",)))
        report = sync(plan(state), kernel)
        full_changes.append(time.perf_counter() - start)
        assert report.applied == 1 and report.converged, report
    planner = IncrementalPlanner(state)
    planner.update()
    changes = []
    for i in range(20):
        start = time.perf_counter()
        state.set(BestPath(_cidr(i), (f"10.0.0.{5 + i % 2}",)))
        update = planner.update()
        assert update.touched is not None
        found = sync_touched(update.desired, update.touched, kernel)
        changes.append(time.perf_counter() - start)
        assert found is not None and found.applied == 1 and found.converged, found
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    backend.close()
    return {
        "felixd_program_s": program,
        "felixd_read_diff_apply_s": write,
        "resync_noop_s": resync,
        "resync_noop_cpu_s": resync_cpu,
        "one_change_with_read_s": change,
        "one_change_full_plan_s": statistics.median(full_changes),
        "one_change_incremental_s": statistics.median(changes),
        "max_rss_mb": rss_mb,
    }


def _store(n: int) -> list[Resource[object]]:
    docs: list[dict[str, object]] = [
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "Node",
            "metadata": {"name": "node-0"},
            "spec": {"bgp": {"ipv4Address": "10.0.0.1/16"}},
        },
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "IPPool",
            "metadata": {"name": "pods"},
            "spec": {"cidr": "10.128.0.0/9"},
        },
    ]
    for i in range(n):  # every remote block in the store too, as calico-ipam keeps them
        cidr = _cidr(i)
        docs.append(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "IPAMBlock",
                "metadata": {"name": cidr.replace(".", "-").replace("/", "-")},
                "spec": {
                    "cidr": cidr,
                    "affinity": f"host:node-{i // 50 % 200 + 1}",
                    "allocations": [None] * 64,
                    "unallocated": list(range(64)),
                },
            }
        )
    return [parse_resource(d) for d in docs]


def _endpoint(index: int) -> Resource[object]:
    return parse_resource(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "WorkloadEndpoint",
            "metadata": {"name": f"node-0-k8s-pod{index}-eth0", "namespace": "default"},
            "spec": {
                "node": "node-0",
                "orchestrator": "k8s",
                "workload": f"pod{index}",
                "endpoint": "eth0",
                "interfaceName": f"caliw{index}",
                "ipNetworks": [f"10.255.255.{index + 1}/32"],
            },
        }
    )


def _path(index: int, hop: str) -> dict[str, object]:
    return {"prefix": _cidr(index), "next_hops": [hop], "local": False, "stale": False}


class RouteMonitor:
    """A netlink route monitor in the namespace, in its own thread: records when the kernel
    announces (RTM_NEWROUTE) each destination, as `ip monitor route` would see it."""

    def __init__(self, ns: str) -> None:
        with ThreadPoolExecutor(1, initializer=enter_netns, initargs=(ns,)) as worker:
            self.sock = worker.submit(self._open).result()
        self.seen: dict[str, float] = {}
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def _open() -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind((0, 0x40))  # RTMGRP_IPV4_ROUTE
        sock.settimeout(0.5)
        return sock

    def _run(self) -> None:
        while self.sock.fileno() >= 0:
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.perf_counter()
            for kind, _flags, _seq, payload in messages(data):
                if kind != RTM_NEWROUTE or len(payload) < RTMSG.size:
                    continue
                dst = attrs(payload, RTMSG.size).get(RTA_DST)
                if dst is not None and len(dst) == 4:
                    text = f"{socket.inet_ntop(socket.AF_INET, dst)}/{payload[1]}"
                    with self.cond:
                        self.seen[text] = now
                        self.cond.notify_all()

    def wait(self, dst: str, after: float, timeout: float = 10.0) -> float:
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.seen.get(dst, -1.0) < after:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no RTM_NEWROUTE for {dst}")
                self.cond.wait(left)
            return self.seen[dst]

    def close(self) -> None:
        self.sock.close()


async def _daemon(ns: str, n: int) -> dict[str, float]:
    """bgpd delta -> kernel route, through the whole daemon (debounce, planner, worker)."""
    bgpd: asyncio.Queue[dict[str, object]] = asyncio.Queue()

    listed = _store(n)
    updates: asyncio.Queue[list[Resource[object]]] = asyncio.Queue()

    async def store() -> AsyncIterator[list[Resource[object]]]:
        yield listed
        while True:  # as store.resourcewatch does: the whole list, unchanged values the same
            yield await updates.get()

    async def stream() -> AsyncIterator[dict[str, object]]:
        while True:
            yield await bgpd.get()

    monitor = RouteMonitor(ns)
    loop = asyncio.get_running_loop()
    found: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="tabby-bench-") as tmp:
        config = FelixdConfig(
            node_name="node-0",
            control_socket=Path(tmp) / "felixd.sock",
            pod_mtu_file=Path(tmp) / "mtu",
            state_dir=Path(tmp),
            netns=ns,
            nftables=False,
            status_ttl=0,
        )
        await bgpd.put({"type": "snapshot", "routes": [_path(i, _hop(i)) for i in range(n)]})
        daemon = Felixd(config, store=store, bgpd=stream)
        try:
            await daemon.start()
            last = _cidr(n - 1)
            await loop.run_in_executor(None, monitor.wait, last, 0.0, 60.0)
            planner_update = daemon.planner.update
            for label, incremental in (("e2e_delta_to_kernel", True), ("e2e_full_plan", False)):
                if not incremental:
                    daemon.planner.update = lambda *, full=False: Update(  # type: ignore[method-assign]
                        plan(daemon.state), None
                    )
                times = []
                for i in range(20):
                    await asyncio.sleep(0.1)  # a quiet spell, as between two real changes
                    hop = f"10.0.0.{3 + i % 2 + (0 if incremental else 2)}"
                    start = time.perf_counter()
                    await bgpd.put({"type": "delta", "routes": [_path(i, hop)], "withdrawn": []})
                    seen = await loop.run_in_executor(None, monitor.wait, _cidr(i), start)
                    times.append(seen - start)
                found[f"{label}_s"] = statistics.median(times)
                found[f"{label}_max_s"] = max(times)
            # One WorkloadEndpoint written to the store (its veth is there, up) among the N
            # blocks: store update -> adapted -> planned -> its /32 in the kernel.
            daemon.planner.update = planner_update  # type: ignore[method-assign]
            times = []
            for i in range(ENDPOINTS):
                await asyncio.sleep(0.1)
                listed = [*listed, _endpoint(i)]
                start = time.perf_counter()
                await updates.put(listed)
                seen = await loop.run_in_executor(
                    None, monitor.wait, f"10.255.255.{i + 1}/32", start
                )
                times.append(seen - start)
            found["e2e_endpoint_to_kernel_s"] = statistics.median(times)
            found["e2e_endpoint_to_kernel_max_s"] = max(times)
            found["e2e_incremental_syncs"] = float(daemon.incremental_syncs)
        finally:
            await daemon.stop()
            monitor.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=10_000)
    args = parser.parse_args()
    found = run(args.routes)
    for key, value in found.items():
        print(f"{key:26} {value:.4f}")
    batch = found["ip_batch_s"]
    print(f"{'ratio felixd/ip-batch':26} {found['felixd_program_s'] / batch:.2f}")
    print(f"{'ratio write/ip-batch':26} {found['felixd_read_diff_apply_s'] / batch:.2f}")


if __name__ == "__main__":
    main()
