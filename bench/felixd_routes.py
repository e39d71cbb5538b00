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
   acknowledgement, once with a fresh read of the kernel (`one_change_with_read_s`) and as the
   daemon does it between resyncs, from its cached kernel view (median of 20; target < 10 ms).
5. RSS of this process holding the planner state and the N-route plan.
"""

from __future__ import annotations

import argparse
import ipaddress
import resource
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from felixd.backends.sync import sync
from felixd.daemon import CachedKernel
from felixd.netlink import NetlinkBackend
from felixd.netlink.netns import enter_netns
from felixd.plan import BestPath, HostInterface, NodeInfo, PlannerState, Pool, plan

BASE = int(ipaddress.ip_address("10.128.0.0"))


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
        lines = "".join(
            f"route add {_cidr(i)} via {_hop(i)} dev eth0 onlink proto 80\n" for i in range(n)
        )
        start = time.perf_counter()
        _sh("ip", "-n", ns, "-batch", "-", stdin=lines)
        ip_batch = time.perf_counter() - start
        _sh("ip", "-n", ns, "route", "flush", "proto", "80")
        with ThreadPoolExecutor(1, initializer=enter_netns, initargs=(ns,)) as worker:
            return {"ip_batch_s": ip_batch, **worker.submit(_felixd, n).result()}
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

    # The daemon's path: its cached kernel view (felixd.daemon.CachedKernel), so a change is
    # plan + diff + one netlink message and its acknowledgement.
    kernel = CachedKernel(backend)
    kernel.read()
    changes = []
    for i in range(20):
        start = time.perf_counter()
        state.set(BestPath(_cidr(i), (f"10.0.0.{3 + i % 2}",)))
        report = sync(plan(state), kernel)
        changes.append(time.perf_counter() - start)
        assert report.applied == 1 and report.converged, report
    change_only = sorted(changes)[len(changes) // 2]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    backend.close()
    return {
        "felixd_program_s": program,
        "felixd_read_diff_apply_s": write,
        "resync_noop_s": resync,
        "resync_noop_cpu_s": resync_cpu,
        "one_change_with_read_s": change,
        "one_change_median_s": change_only,
        "max_rss_mb": rss_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=10_000)
    args = parser.parse_args()
    found = run(args.routes)
    for key, value in found.items():
        print(f"{key:24} {value:.4f}")
    batch = found["ip_batch_s"]
    print(f"{'ratio felixd/ip-batch':24} {found['felixd_program_s'] / batch:.2f}")
    print(f"{'ratio write/ip-batch':24} {found['felixd_read_diff_apply_s'] / batch:.2f}")


if __name__ == "__main__":
    main()
