"""felixd's pure planner: inputs → desired dataplane → diff (no asyncio, socket, time or os).

- `inputs`: the frozen input values (Node, IPPool, block, WorkloadEndpoint, best path, host
  interface, FelixConfiguration);
- `state`: `PlannerState`, fed as snapshot + deltas;
- `planner`: `plan(state) -> DesiredDataplane` (calico.md §4);
- `model`: the dataplane data model shared by desired and observed state, and ownership;
- `ops` / `diff`: `diff(desired, observed) -> list[Op]`, the ordered batch;
- `text`: the dataplane in iproute2 notation; `nftjson`: nft tables as libnftables JSON;
- `incremental`: `IncrementalPlanner`, one delta re-planned alone (exact, checked against `plan`),
  with `diff.compare_touched` diffing only the keys it touched;
- `links`: what a link event means (a per-interface resync, or how much else to resync).
"""

from felixd.plan.diff import Diff, blocked, compare, diff
from felixd.plan.inputs import (
    BestPath,
    Block,
    EncapMode,
    FelixConfig,
    HostInterface,
    Input,
    NodeInfo,
    Pool,
    WorkloadEndpoint,
)
from felixd.plan.model import (
    DesiredDataplane,
    FdbEntry,
    Neighbour,
    NextHop,
    NftTable,
    ObservedState,
    Ownership,
    Problem,
    Route,
    RouteKind,
    RouteScope,
    RouteType,
    VxlanDevice,
)
from felixd.plan.ops import Op
from felixd.plan.planner import ownership, plan
from felixd.plan.state import PlannerState

__all__ = [
    "BestPath",
    "Block",
    "DesiredDataplane",
    "Diff",
    "EncapMode",
    "FdbEntry",
    "FelixConfig",
    "HostInterface",
    "Input",
    "Neighbour",
    "NextHop",
    "NftTable",
    "NodeInfo",
    "ObservedState",
    "Op",
    "Ownership",
    "PlannerState",
    "Pool",
    "Problem",
    "Route",
    "RouteKind",
    "RouteScope",
    "RouteType",
    "VxlanDevice",
    "WorkloadEndpoint",
    "blocked",
    "compare",
    "diff",
    "ownership",
    "plan",
]
