"""Planner properties over random (often invalid) inputs.

- Bad input never stops the dataplane: `plan` never raises, whatever the strings.
- The output is a function of the state: insertion order and snapshot-vs-deltas do not matter.
- Everything planned is felixd's (its protocol number, its devices), so the differ may own it.
- A kernel with every interface present takes the whole plan without a single error.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from felixd.backends.recording import RecordingKernel
from felixd.backends.sync import sync
from felixd.plan import (
    BestPath,
    Block,
    EncapMode,
    FelixConfig,
    HostInterface,
    Input,
    NodeInfo,
    PlannerState,
    Pool,
    diff,
    plan,
)
from felixd.plan.state import KINDS
from tests.felixd.plan.strategies import configs, inputs


def _state(items: list[Input], config: FelixConfig) -> PlannerState:
    state = PlannerState("node-a", config)
    for item in items:
        state.set(item)
    return state


@given(st.lists(inputs, max_size=14), configs, st.randoms(use_true_random=False))
def test_plan_is_total_and_a_function_of_the_state(
    items: list[Input], config: FelixConfig, rnd: random.Random
) -> None:
    desired = plan(_state(items, config))
    # The final state does not depend on the order of independent events: rebuild it from the
    # last value per key, shuffled, and as per-kind snapshots.
    last = {(type(i), i.key): i for i in items}
    shuffled = list(last.values())
    rnd.shuffle(shuffled)
    assert plan(_state(shuffled, config)) == desired
    snap = PlannerState("node-a", config)
    for kind in KINDS:
        snap.snapshot(kind, [i for i in shuffled if type(i) is kind])
    assert plan(snap) == desired

    owner = desired.owner
    assert all(r.protocol == 80 and owner.owns_route(r) for r in desired.routes.values())
    assert all(owner.owns_neighbour(n) for n in desired.neighbours.values())
    assert all(owner.owns_fdb(e) for e in desired.fdb.values())
    assert all(r.kind is not None for r in desired.routes.values())
    assert list(desired.problems) == sorted(set(desired.problems))


@given(st.lists(inputs, max_size=14), configs)
def test_a_complete_kernel_takes_the_whole_plan(items: list[Input], config: FelixConfig) -> None:
    desired = plan(_state(items, config))
    links = {"lo", "eth0", "eth1", "tunl0", "cali1", "cali2"}
    kernel = RecordingKernel(links)
    report = sync(desired, kernel, max_rounds=1)
    parents_present = all(d.parent in links for d in desired.devices.values())
    if parents_present:
        assert report.converged and not report.failures and not report.blocked
    assert diff(desired, kernel.read()) == []


def test_deltas_then_delete_return_to_the_empty_plan() -> None:
    state = PlannerState("node-a")
    empty = plan(state)
    state.set(Pool("p", "10.244.0.0/16", vxlan_mode=EncapMode.ALWAYS))
    state.set(Block("10.244.0.0/26", "node-a"))
    assert plan(state) != empty
    assert state.delete(Pool, "p") and state.delete(Block, "10.244.0.0/26")
    assert not state.delete(Block, "10.244.0.0/26")  # a repeated watch delete is harmless
    assert plan(state) == empty


def test_revision_moves_only_on_change() -> None:
    state = PlannerState("node-a")
    pool = Pool("p", "10.244.0.0/16")
    assert state.set(pool) and state.revision == 1
    assert not state.set(pool) and state.revision == 1
    assert not state.snapshot(Pool, [pool]) and state.revision == 1
    assert state.snapshot(Pool, []) and state.revision == 2
    assert not state.set_config(FelixConfig()) and state.set_config(FelixConfig(vxlan_vni=1))
    assert state.revision == 3


@given(st.lists(st.tuples(st.booleans(), inputs), max_size=20), configs)
def test_a_long_lived_state_plans_like_a_fresh_one(
    steps: list[tuple[bool, Input]], config: FelixConfig
) -> None:
    """The planner's memo is a cache, never an input: after every delta, planning the long-lived
    state equals planning a fresh state with the same content."""
    state = PlannerState("node-a", config)
    for delete, item in steps:
        if delete:
            state.delete(type(item), item.key)
        else:
            state.set(item)
        fresh = PlannerState("node-a", config)
        for kind in KINDS:
            fresh.snapshot(kind, state.items(kind))
        assert plan(state) == plan(fresh)


def test_memo_follows_what_a_best_path_depends_on() -> None:
    """Each change below alters one thing a memoised best path depends on, and only that."""
    state = PlannerState("node-a")
    state.set(HostInterface("eth0", ("192.168.1.10/24",)))
    state.set(BestPath("203.0.113.0/24", ("192.168.1.1",)))
    state.set(BestPath("198.51.100.0/24", ("192.168.1.1",)))
    key, external = (254, "203.0.113.0/24", 0), (254, "198.51.100.0/24", 0)
    assert plan(state).routes[key].dev == "eth0"
    # Connected subnets.
    state.set(HostInterface("eth0", ("10.9.9.9/24",)))
    state.set(HostInterface("eth1", ("192.168.1.10/24",)))
    assert plan(state).routes[key].dev == "eth1"
    # Pools.
    state.set(Pool("p", "203.0.113.0/24", ipip_mode=EncapMode.ALWAYS))
    assert plan(state).routes[key].mtu == 1480
    # Host MTU only (same addresses).
    state.set(HostInterface("eth0", ("10.9.9.9/24",), mtu=9000))
    state.set(HostInterface("eth1", ("192.168.1.10/24",), mtu=9000))
    assert plan(state).routes[key].mtu == 8980
    # Configuration only.
    assert external in plan(state).routes
    state.set_config(FelixConfig(install_external_routes=False))
    assert external not in plan(state).routes


def test_block_memo_follows_the_vxlan_device_and_the_node() -> None:
    state = PlannerState("node-a")
    state.set(HostInterface("eth0", ("192.168.1.10/24",)))
    state.set(Pool("p", "10.244.0.0/16", vxlan_mode=EncapMode.ALWAYS))
    state.set(Block("10.244.1.0/26", "node-b"))
    state.set(NodeInfo("node-b", ("192.168.1.11/24",), "10.244.1.1"))
    state.set(NodeInfo("node-a", ("192.168.1.10/24",)))
    key = (254, "10.244.1.0/26", 0)
    assert key not in plan(state).routes  # no local VTEP address yet: no device
    state.set(NodeInfo("node-a", ("192.168.1.10/24",), "10.244.0.1"))
    assert plan(state).routes[key].gateway == "10.244.1.1"
    state.set(NodeInfo("node-b", ("192.168.1.11/24",), "10.244.1.9"))
    assert plan(state).routes[key].gateway == "10.244.1.9"
    state.set(Pool("p", "10.244.0.0/16", vxlan_mode=EncapMode.CROSS_SUBNET))
    assert plan(state).routes[key].gateway == "192.168.1.11"


@pytest.mark.parametrize("encap", ["vxlan", "ipip"])
def test_memo_follows_the_local_subnet(encap: str) -> None:
    """calico.md §4.4: CrossSubnet compares with this node's own subnet; shrinking it (nothing
    else changes) turns a direct route into a tunnel route."""
    state = PlannerState("node-a")
    state.set(HostInterface("eth0", ("192.168.1.10/24",)))
    vxlan = EncapMode.CROSS_SUBNET if encap == "vxlan" else EncapMode.NEVER
    ipip = EncapMode.CROSS_SUBNET if encap == "ipip" else EncapMode.NEVER
    state.set(Pool("p", "10.244.0.0/16", ipip, vxlan))
    state.set(Block("10.244.1.0/26", "node-b"))
    state.set(BestPath("10.244.1.0/26", ("192.168.1.200",)))
    state.set(NodeInfo("node-b", ("192.168.1.200/24",), "10.244.1.1"))
    state.set(NodeInfo("node-a", ("192.168.1.10/24",), "10.244.0.1"))
    key = (254, "10.244.1.0/26", 0)
    assert plan(state).routes[key].dev == "eth0"
    state.set(NodeInfo("node-a", ("192.168.1.10/25",), "10.244.0.1"))
    assert plan(state).routes[key].dev == ("vxlan.calico" if encap == "vxlan" else "tunl0")
