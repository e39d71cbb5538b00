"""The store adapter's memo (felixd/inputs.py): the store watch yields the same object for an
unchanged value, so only what changed is adapted again, and the planner gets the very same
input objects (its snapshot then logs only the changed keys)."""

from __future__ import annotations

from felixd.inputs import StoreAdapter, inputs_from_resources
from felixd.plan import Block, PlannerState, WorkloadEndpoint
from resources.resource import parse_resource
from tests.felixd.daemon.test_daemon import block, resources


def test_unchanged_resources_give_the_same_inputs() -> None:
    adapter = StoreAdapter("n1")
    listed = resources()
    first = adapter.adapt(listed)
    assert first == inputs_from_resources("n1", listed)
    again = adapter.adapt(listed)
    assert all(a is b for a, b in zip(first.blocks, again.blocks, strict=True))
    assert all(a is b for a, b in zip(first.nodes, again.nodes, strict=True))

    state = PlannerState("n1")
    state.snapshot(Block, first.blocks)
    state.snapshot(WorkloadEndpoint, first.endpoints)
    state.take_changes()
    moved = parse_resource(block("10.244.1.0/26", "n3"))  # a new value for one key
    update = adapter.adapt([moved if r.name == "10-244-1-0-26" else r for r in listed])
    assert Block("10.244.1.0/26", "n3") in update.blocks
    state.snapshot(Block, update.blocks)
    state.snapshot(WorkloadEndpoint, update.endpoints)
    changes = state.take_changes()
    assert changes.keys[Block] == {"10.244.1.0/26"} and changes.count() == 1
