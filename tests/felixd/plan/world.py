"""A three-node test world shared by the planner and differ tests.

node-a (this node) 192.168.1.10/24 and node-b 192.168.1.11/24 share a subnet; node-c
192.168.2.12/24 sits behind the fabric router 192.168.1.1. Pool 10.244.0.0/16, one /26 block per
node, one pod on node-a.
"""

from __future__ import annotations

from felixd.plan import (
    BestPath,
    Block,
    EncapMode,
    FelixConfig,
    HostInterface,
    NodeInfo,
    PlannerState,
    Pool,
    WorkloadEndpoint,
)

ME = "node-a"
POD_MAC = "ee:ee:ee:ee:ee:01"


def world(
    *,
    vxlan: EncapMode = EncapMode.NEVER,
    ipip: EncapMode = EncapMode.NEVER,
    nat: bool = False,
    config: FelixConfig | None = None,
) -> PlannerState:
    state = PlannerState(ME, config)
    state.set(
        NodeInfo("node-a", ("192.168.1.10/24",), "10.244.0.1", "66:00:00:00:00:0a", "10.244.0.1")
    )
    state.set(
        NodeInfo("node-b", ("192.168.1.11/24",), "10.244.1.1", "66:00:00:00:00:0b", "10.244.1.1")
    )
    state.set(
        NodeInfo("node-c", ("192.168.2.12/24",), "10.244.2.1", "66:00:00:00:00:0c", "10.244.2.1")
    )
    state.set(HostInterface("lo", ("127.0.0.1/8",), 65536))
    state.set(HostInterface("eth0", ("192.168.1.10/24",), 1500))
    state.set(Pool("default-pool", "10.244.0.0/16", ipip, vxlan, nat_outgoing=nat))
    state.set(Block("10.244.0.0/26", "node-a"))
    state.set(Block("10.244.1.0/26", "node-b"))
    state.set(Block("10.244.2.0/26", "node-c"))
    state.set(WorkloadEndpoint("node-a-k8s-pod1-eth0", "cali1111", ("10.244.0.5/32",), POD_MAC))
    return state


def bgp_paths(state: PlannerState) -> None:
    """bgpd's best paths for the two remote blocks (mesh: next hop = the peer's node IP)."""
    state.set(BestPath("10.244.1.0/26", ("192.168.1.11",)))
    state.set(BestPath("10.244.2.0/26", ("192.168.2.12",)))


LINKS = ("lo", "eth0", "cali1111", "cali2222")
