"""Incremental planning (felixd/plan/incremental.py): one delta re-plans and re-diffs only the
entries it feeds, and is indistinguishable from a full plan (issue 10: one route change < 10 ms
with 10,000 installed; the full plan stays as the resync path).

The oracle is the full planner on a fresh state: after every delta of a random sequence the
incremental update equals it, and the touched-keys diff against a kernel that held the previous
plan equals the full diff.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from felixd.backends.recording import RecordingKernel
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
    RouteKind,
    WorkloadEndpoint,
    compare,
    plan,
)
from felixd.plan.diff import compare_touched
from felixd.plan.incremental import IncrementalPlanner
from felixd.plan.ops import AddRoute, DeleteRoute, ReplaceRoute
from felixd.plan.state import KINDS
from tests.felixd.plan.strategies import configs, inputs

LINKS = ("lo", "eth0", "eth1", "tunl0", "cali1", "cali2")

local_inputs = inputs.filter(lambda i: isinstance(i, BestPath | Block | WorkloadEndpoint))
steps = st.lists(
    st.tuples(st.booleans(), st.one_of(local_inputs, local_inputs, local_inputs, inputs)),
    max_size=12,
)


def _fresh(state: PlannerState) -> PlannerState:
    fresh = PlannerState(state.node_name, state.config)
    for kind in KINDS:
        fresh.snapshot(kind, state.items(kind))
    return fresh


@settings(max_examples=100)
@given(st.lists(inputs, max_size=14), steps, configs)
def test_incremental_plans_and_diffs_like_a_full_plan(
    initial: list[Input], deltas: list[tuple[bool, Input]], config: FelixConfig
) -> None:
    state = PlannerState("node-a", config)
    for item in initial:
        state.set(item)
    planner = IncrementalPlanner(state)
    kernel = RecordingKernel(LINKS)
    first = planner.update()
    assert first.touched is None and first.desired == plan(_fresh(state))
    kernel.apply(compare(first.desired, kernel.read()).ops)
    for delete, item in deltas:
        if delete:
            state.delete(type(item), item.key)
        else:
            state.set(item)
        update = planner.update()
        want = plan(_fresh(state))
        assert update.desired == want
        observed = kernel.read()
        full = compare(want, observed)
        if update.touched is not None:
            assert compare_touched(update.desired, observed, update.touched).ops == full.ops
        kernel.apply(full.ops)


def _cluster(paths: int) -> PlannerState:
    state = PlannerState("node-a")
    state.set(HostInterface("eth0", ("192.168.1.10/24",)))
    state.set(NodeInfo("node-a", ("192.168.1.10/24",), "10.244.0.1"))
    state.set(NodeInfo("node-b", ("192.168.1.11/24",), "10.244.1.1"))
    state.set(Pool("p", "10.128.0.0/9"))
    state.set(Pool("v", "10.96.0.0/16", vxlan_mode=EncapMode.ALWAYS))
    for i in range(paths):
        state.set(BestPath(f"10.{128 + i // 256}.{i % 256}.0/26", ("192.168.1.11",)))
    return state


def test_one_best_path_is_planned_and_diffed_alone() -> None:
    state = _cluster(300)
    planner = IncrementalPlanner(state)
    kernel = RecordingKernel(LINKS)
    kernel.apply(compare(planner.update().desired, kernel.read()).ops)
    key = (254, "10.128.5.0/26", 0)

    state.set(BestPath("10.128.5.0/26", ("192.168.1.12",)))
    update = planner.update()
    assert update.touched is not None and update.touched.routes == {key}
    ops = compare_touched(update.desired, kernel.read(), update.touched).ops
    assert [type(op) for op in ops] == [ReplaceRoute]

    state.delete(BestPath, "10.128.5.0/26")
    update = planner.update()
    assert update.touched is not None
    ops = compare_touched(update.desired, kernel.read(), update.touched).ops
    assert ops == (DeleteRoute(kernel.routes[key]),)
    assert planner.full_plans == 1 and planner.incremental_plans == 2


def test_a_local_block_hides_its_best_path_and_shows_it_again() -> None:
    """A blackhole for this node's block wins over bgpd's path for the same prefix (blocks are
    placed before best paths); when the block goes, the path is installed again."""
    state = _cluster(3)
    planner = IncrementalPlanner(state)
    planner.update()
    key = (254, "10.128.1.0/26", 0)
    state.set(Block("10.128.1.0/26", "node-a"))
    update = planner.update()
    assert update.touched is not None
    assert update.desired.routes[key].kind is RouteKind.BLACKHOLE
    state.delete(Block, "10.128.1.0/26")
    update = planner.update()
    assert update.touched is not None
    assert update.desired == plan(_fresh(state))
    assert update.desired.routes[key].gateway == "192.168.1.11"
    assert planner.full_plans == 1


def test_vxlan_blocks_share_their_node_vtep_entries() -> None:
    """The VTEP neighbour and FDB entry of a node serve all its blocks: removing one block
    keeps them, removing the last takes them away."""
    state = _cluster(0)
    planner = IncrementalPlanner(state)
    planner.update()
    state.set(Block("10.96.1.0/26", "node-b"))
    state.set(Block("10.96.1.64/26", "node-b"))
    assert planner.update().desired.fdb
    state.delete(Block, "10.96.1.0/26")
    update = planner.update()
    assert update.touched is not None and update.desired.fdb and update.desired.neighbours
    state.delete(Block, "10.96.1.64/26")
    update = planner.update()
    assert update.touched is not None and not update.desired.fdb
    assert not update.desired.neighbours
    assert update.desired == plan(_fresh(state))
    assert planner.full_plans == 1


def test_global_inputs_and_clashes_fall_back_to_a_full_plan() -> None:
    state = _cluster(3)
    planner = IncrementalPlanner(state)
    planner.update()
    state.set(Pool("q", "10.9.0.0/16"))
    assert planner.update().touched is None  # pools feed everything
    # A workload address that a best path also names: endpoints win, so a full plan decides.
    state.set(BestPath("10.244.0.5/32", ("192.168.1.11",)))
    assert planner.update().touched is not None
    state.set(WorkloadEndpoint("w", "cali1", ("10.244.0.5/32",)))
    update = planner.update()
    assert update.touched is None and update.desired == plan(_fresh(state))
    assert any("already planned" in p.reason for p in update.desired.problems)


def test_an_endpoint_is_planned_alone() -> None:
    state = _cluster(50)
    planner = IncrementalPlanner(state)
    kernel = RecordingKernel(LINKS)
    kernel.apply(compare(planner.update().desired, kernel.read()).ops)
    state.set(WorkloadEndpoint("w", "cali1", ("10.244.0.5/32",), "ee:ee:ee:ee:ee:01"))
    update = planner.update()
    assert update.touched is not None
    ops = compare_touched(update.desired, kernel.read(), update.touched).ops
    assert sum(isinstance(op, AddRoute) for op in ops) == 1
    assert len(ops) == 1 + 1 + 4  # route, neighbour, four IPv4 sysctls
    kernel.apply(ops)
    state.delete(WorkloadEndpoint, "w")
    update = planner.update()
    assert update.touched is not None
    ops = compare_touched(update.desired, kernel.read(), update.touched).ops
    assert len(ops) == 2  # the route and the neighbour go; sysctls go with the veth


# A tidy cluster where most deltas are exact incremental updates: valid paths, blocks and
# endpoints over a few keys, so that hides, shared VTEP entries, stale paths and the odd clash
# all happen.
PREFIXES = ("10.128.0.0/26", "10.128.0.64/26", "10.128.1.0/26", "10.96.1.0/26", "10.96.2.0/26")
tidy = st.one_of(
    st.builds(
        BestPath,
        st.sampled_from(PREFIXES),
        st.lists(st.sampled_from(("192.168.1.11", "192.168.1.12")), min_size=1, max_size=2).map(
            tuple
        ),
        st.booleans(),
    ),
    st.builds(
        Block,
        st.sampled_from(PREFIXES),
        st.sampled_from((None, "node-a", "node-b", "node-c")),
    ),
    st.builds(
        WorkloadEndpoint,
        st.sampled_from(("w1", "w2", "w3")),
        st.sampled_from(("cali1", "cali2")),
        st.lists(st.sampled_from(("10.128.9.1/32", "10.128.9.2/32")), max_size=1).map(tuple),
        st.sampled_from((None, "ee:ee:ee:ee:ee:01")),
    ),
)


@settings(max_examples=150)
@given(st.lists(st.tuples(st.integers(0, 3), tidy), max_size=25))
def test_incremental_in_a_tidy_cluster(deltas: list[tuple[int, Input]]) -> None:
    state = _cluster(0)
    state.set(NodeInfo("node-c", ("192.168.1.13/24",), "10.244.3.1", "66:00:00:00:00:0c"))
    planner = IncrementalPlanner(state)
    kernel = RecordingKernel(LINKS)
    kernel.apply(compare(planner.update().desired, kernel.read()).ops)
    for action, item in deltas:
        if action == 0:
            state.delete(type(item), item.key)
        else:
            state.set(item)
        update = planner.update()
        assert update.desired == plan(_fresh(state))
        observed = kernel.read()
        full = compare(update.desired, observed)
        if update.touched is not None:
            assert compare_touched(update.desired, observed, update.touched).ops == full.ops
        kernel.apply(full.ops)


BLOCK_POOL = [Block(f"10.96.{i}.0/26", a) for i in range(4) for a in (None, "node-a", "node-b")]
BLOCK_POOL += [Block("10.96.0.0/26", "node-a")]  # equal to another object of the pool


@given(
    st.lists(
        st.one_of(
            st.lists(st.sampled_from(BLOCK_POOL), max_size=6),
            st.tuples(st.booleans(), st.sampled_from(BLOCK_POOL)),
        ),
        max_size=10,
    )
)
def test_snapshot_keeps_its_meaning_when_objects_are_reused(
    rounds: list[list[Block] | tuple[bool, Block]],
) -> None:
    """`snapshot` compares object identities first (the store adapter hands back the same
    objects): the table is still {key: last item}, and the change log names exactly the keys
    whose value changed, also between single sets and deletes."""
    state = PlannerState("node-a")
    for step in rounds:
        before = dict(zip(state.blocks, state.blocks.values(), strict=True))
        if isinstance(step, tuple):
            delete, item = step
            if delete:
                changed = state.delete(Block, item.key)
                want = {k: v for k, v in before.items() if k != item.key}
            else:
                changed = state.set(item)
                want = {**before, item.key: item}
        else:
            changed = state.snapshot(Block, step)
            want = {b.key: b for b in step}
        assert dict(state.blocks) == want
        logged = state.take_changes().keys[Block]
        assert logged == {k for k in want.keys() | before.keys() if want.get(k) != before.get(k)}
        assert changed == bool(logged)
