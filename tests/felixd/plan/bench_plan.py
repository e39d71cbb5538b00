"""Planner and differ cost at 10,000 routes (not a test: run by hand, CPU time, best of 7).

    .venv/bin/python -m tests.felixd.plan.bench_plan

Measures, for a no-encap cluster (routes from best paths) and a VXLAN one (routes from blocks
and nodes): the first plan, the first diff against an empty kernel, a re-plan with nothing
changed, a diff against a kernel that is already right, one input change re-planned and
diffed in full, and one input change (a best path; a block for VXLAN) planned incrementally
and diffed on its touched keys (felixd/plan/incremental.py). The kernel-side figures are in
bench/felixd_routes.py.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable

from felixd.backends.recording import RecordingKernel
from felixd.plan import (
    BestPath,
    Block,
    EncapMode,
    HostInterface,
    NodeInfo,
    PlannerState,
    Pool,
    diff,
    plan,
)
from felixd.plan.diff import compare_touched
from felixd.plan.incremental import IncrementalPlanner

BLOCKS = 10_000
NODES = 200
BASE = int(ipaddress.ip_address("10.128.0.0"))


def _cidr(index: int) -> str:
    return str(ipaddress.ip_network((BASE + index * 64, 26)))


def cluster(vxlan: bool) -> PlannerState:
    state = PlannerState("node-0")
    state.set(HostInterface("eth0", ("10.0.0.1/16",), 1500))
    mode = EncapMode.ALWAYS if vxlan else EncapMode.NEVER
    state.set(Pool("p", "10.128.0.0/9", vxlan_mode=mode))
    state.set(NodeInfo("node-0", ("10.0.0.1/16",), "10.128.0.1"))
    per_node = BLOCKS // NODES
    for n in range(1, NODES + 1):
        vtep = str(ipaddress.ip_address(BASE + n * 64 * per_node + 1))
        state.set(NodeInfo(f"node-{n}", (f"10.0.{n // 250}.{n % 250 + 1}/16",), vtep))
    for i in range(per_node, BLOCKS + per_node):
        state.set(Block(_cidr(i), f"node-{i // per_node}"))
        if not vxlan:
            state.set(BestPath(_cidr(i), (f"10.0.0.{i // per_node + 1}",)))
    return state


def best_of(run: Callable[[], object], times: int = 7) -> float:
    costs = []
    for _ in range(times):
        start = time.process_time()
        run()
        costs.append(time.process_time() - start)
    return min(costs) * 1000


def measure(vxlan: bool) -> str:
    state = cluster(vxlan)
    start = time.process_time()
    desired = plan(state)
    cold = (time.process_time() - start) * 1000
    kernel = RecordingKernel(["lo", "eth0"])
    start = time.process_time()
    ops = diff(desired, kernel.read())
    first_diff = (time.process_time() - start) * 1000
    kernel.apply(ops)
    observed = kernel.read()
    warm = best_of(lambda: plan(state))
    right = best_of(lambda: diff(desired, observed))
    flip = [0]

    def one_change() -> None:
        flip[0] += 1
        if vxlan:
            vtep = "10.128.12.1" if flip[0] % 2 else "10.128.12.2"
            state.set(NodeInfo("node-1", ("10.0.0.2/16",), vtep))
        else:
            state.set(BestPath(_cidr(BLOCKS // NODES), (f"10.0.0.{2 + flip[0] % 2}",)))
        diff(plan(state), observed)

    change = best_of(one_change)
    planner = IncrementalPlanner(state)
    planner.update()

    def one_delta() -> None:
        flip[0] += 1
        if vxlan:
            state.set(Block(_cidr(BLOCKS + BLOCKS // NODES), f"node-{1 + flip[0] % 2}"))
        else:
            state.set(BestPath(_cidr(BLOCKS // NODES), (f"10.0.0.{2 + flip[0] % 2}",)))
        update = planner.update()
        assert update.touched is not None
        compare_touched(update.desired, observed, update.touched)

    delta = best_of(one_delta) * 1000
    return (
        f"{'vxlan' if vxlan else 'no-encap'}: {len(desired.routes)} routes | first plan "
        f"{cold:.0f} ms, first diff {first_diff:.0f} ms ({len(ops)} ops) | re-plan {warm:.1f} "
        f"ms, diff already right {right:.1f} ms | one change plan+diff {change:.1f} ms | "
        f"incremental {delta:.0f} us"
    )


def main() -> None:
    for vxlan in (False, True):
        print(measure(vxlan))


if __name__ == "__main__":
    main()
