"""Differ properties over arbitrary kernels (issue 10 "Tests"; calico.md §4.3 ownership).

For ANY observed state, including foreign routes, neighbours, FDB entries and nft tables that
collide with what felixd wants, applying `diff(desired, observed)` to a kernel holding exactly
`observed`:
1. succeeds operation by operation;
2. leaves every entry felixd does not own as it was;
3. makes felixd's own entries equal the programmable part of `desired` (not blocked by a
   foreign key holder or a missing interface);
4. is idempotent: the diff of the result is empty;
5. is minimal: no add or replace writes what was already there, nothing still wanted is deleted;
6. is deterministic: the order in which the kernel listed its state does not matter.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from felixd.backends.recording import RecordingKernel
from felixd.backends.sync import sync
from felixd.plan import (
    DesiredDataplane,
    Input,
    ObservedState,
    PlannerState,
    VxlanDevice,
    diff,
    plan,
)
from felixd.plan.model import sysctl_interface
from felixd.plan.ops import (
    AddFdb,
    AddNeighbour,
    AddRoute,
    DeleteLink,
    DeleteRoute,
    ReplaceFdb,
    ReplaceNeighbour,
    ReplaceRoute,
)
from felixd.plan.text import op_text
from tests.felixd.plan.strategies import OWNER, desired_dataplanes, inputs, observed_states


def _expected_devices(desired: DesiredDataplane, observed: ObservedState) -> dict[str, VxlanDevice]:
    want = dict(desired.devices)
    for name, dev in desired.devices.items():
        if dev.parent not in observed.links:  # blocked: whatever was there stays
            want.pop(name)
            if name in observed.devices:
                want[name] = observed.devices[name]
    return want


def _reversed(observed: ObservedState) -> ObservedState:
    return ObservedState(
        routes=dict(reversed(list(observed.routes.items()))),
        neighbours=dict(reversed(list(observed.neighbours.items()))),
        fdb=dict(reversed(list(observed.fdb.items()))),
        links=observed.links,
        devices=observed.devices,
        sysctls=dict(reversed(list(observed.sysctls.items()))),
        nft_tables=dict(reversed(list(observed.nft_tables.items()))),
    )


@given(desired_dataplanes(), observed_states())
def test_diff_reaches_desired_leaves_foreign_and_is_idempotent(
    desired: DesiredDataplane, observed: ObservedState
) -> None:
    kernel = RecordingKernel.from_state(observed)
    ops = diff(desired, observed)
    # 6. Deterministic: the order in which the kernel listed its state does not matter.
    assert diff(desired, _reversed(observed)) == ops
    assert all(op_text(op) for op in ops)  # every operation has a log line
    results = kernel.apply(ops)
    assert all(r.ok for r in results), [str(r) for r in results if not r.ok]
    after = kernel.read()
    deleted = {op.name for op in ops if isinstance(op, DeleteLink)}

    # 2. Foreign state untouched (unless it sat on a link felixd deleted, which it owns).
    for key, route in observed.routes.items():
        if not OWNER.owns_route(route) and not route.devices & deleted:
            assert after.routes.get(key) == route
    for nkey, neigh in observed.neighbours.items():
        if neigh.dev in deleted or OWNER.owns_neighbour(neigh) or nkey in desired.neighbours:
            continue
        assert after.neighbours.get(nkey) == neigh
    for fkey, entry in observed.fdb.items():
        if not OWNER.owns_fdb(entry):
            assert after.fdb.get(fkey) == entry
    for tkey, table in observed.nft_tables.items():
        if not OWNER.owns_nft_table(*tkey):
            assert after.nft_tables.get(tkey) == table
    for path, value in observed.sysctls.items():
        if path not in desired.sysctls and sysctl_interface(path) not in deleted:
            assert after.sysctls.get(path) == value

    # 3. Owned state equals the programmable part of desired.
    foreign_keys = {
        k for k, r in observed.routes.items() if not OWNER.owns_route(r) and not r.devices & deleted
    }
    assert {k: r for k, r in after.routes.items() if OWNER.owns_route(r)} == {
        k: r
        for k, r in desired.routes.items()
        if k not in foreign_keys and r.devices <= after.links
    }
    assert {k: n for k, n in after.neighbours.items() if OWNER.owns_neighbour(n)} == {
        k: n for k, n in desired.neighbours.items() if n.dev in after.links
    }
    assert {k: e for k, e in after.fdb.items() if OWNER.owns_fdb(e)} == {
        k: e for k, e in desired.fdb.items() if e.dev in after.links
    }
    assert dict(after.devices) == _expected_devices(desired, observed)
    for path, value in desired.sysctls.items():
        if sysctl_interface(path) in after.links:
            assert after.sysctls[path] == value
    assert {k: t for k, t in after.nft_tables.items() if OWNER.owns_nft_table(*k)} == dict(
        desired.nft_tables
    )

    # 4. Idempotent.
    assert diff(desired, after) == []

    # 5. Minimal.
    for op in ops:
        if isinstance(op, (AddRoute, ReplaceRoute)) and not op.route.devices & deleted:
            assert observed.routes.get(op.route.key) != op.route
        if isinstance(op, (AddNeighbour, ReplaceNeighbour)) and op.neighbour.dev not in deleted:
            assert observed.neighbours.get(op.neighbour.key) != op.neighbour
        if isinstance(op, (AddFdb, ReplaceFdb)) and op.entry.dev not in deleted:
            assert observed.fdb.get(op.entry.key) != op.entry
        if isinstance(op, DeleteRoute):
            assert after.routes.get(op.route.key) != op.route


@given(st.lists(inputs, max_size=12), observed_states())
def test_planned_dataplane_over_any_kernel_converges_and_spares_foreign_routes(
    items: list[Input], observed: ObservedState
) -> None:
    """The same properties with a desired state the planner made from random resources."""
    state = PlannerState("node-a")
    for item in items:
        state.set(item)
    desired = plan(state)
    kernel = RecordingKernel.from_state(observed)
    report = sync(desired, kernel, max_rounds=1)
    assert not report.failures
    after = kernel.read()
    assert diff(desired, after) == []
    for key, route in observed.routes.items():
        if not desired.owner.owns_route(route) and not route.devices & {"vxlan.calico"}:
            assert after.routes.get(key) == route
