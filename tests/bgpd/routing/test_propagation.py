"""Propagation scenarios over a simulated network: mesh, route reflection, eBGP (RFC 4271 §9,
RFC 4456). Each scenario checks who has which route, from whom, with which attributes."""

from __future__ import annotations

from bgpd.wire.attributes import PathAttributes
from bgpd.wire.context import IPV4_UNICAST
from bgpd.wire.prefix import make_prefix
from tests.bgpd.routing.net import Network, rid

BLOCKS = {f"n{i}": f"10.244.{i}.0/26" for i in range(1, 6)}


def attrs_at(net: Network, name: str, prefix: str):  # type: ignore[no-untyped-def]
    d = net.speakers[name].table.decisions[(IPV4_UNICAST, make_prefix(prefix))]
    assert d.best is not None
    return d.best


def test_full_mesh_every_node_learns_every_block_directly() -> None:
    net = Network()
    for i in range(1, 4):
        net.add(f"n{i}", f"127.0.10.{i}")
    for a, b in (("n1", "n2"), ("n1", "n3"), ("n2", "n3")):
        net.link(a, b)
    for name in ("n1", "n2", "n3"):
        net.originate(name, BLOCKS[name])
    net.run()
    for name in ("n1", "n2", "n3"):
        routes = net.speakers[name].routes()
        assert routes == {BLOCKS[n]: ("" if n == name else n) for n in ("n1", "n2", "n3")}


def test_ibgp_split_horizon_without_reflection() -> None:
    """RFC 4271 §9.2: n1 does not pass n2's route to n3 over iBGP (no n2-n3 session)."""
    net = Network()
    for i in range(1, 4):
        net.add(f"n{i}", f"127.0.10.{i}")
    net.link("n1", "n2")
    net.link("n1", "n3")
    net.originate("n2", BLOCKS["n2"])
    net.run()
    assert BLOCKS["n2"] in net.speakers["n1"].routes()
    assert BLOCKS["n2"] not in net.speakers["n3"].routes()


def _rr_topology(cluster_b: str) -> Network:
    net = Network()
    net.add("rr1", "127.0.10.101", cluster_id="224.0.0.1")
    net.add("rr2", "127.0.10.102", cluster_id=cluster_b)
    for i in range(1, 4):
        net.add(f"n{i}", f"127.0.10.{i}")
        net.link("rr1", f"n{i}", a_reflects_b=True)
        net.link("rr2", f"n{i}", a_reflects_b=True)
    same = cluster_b == "224.0.0.1"
    net.link("rr1", "rr2", a_reflects_b=not same, b_reflects_a=not same)
    for i in range(1, 4):
        net.originate(f"n{i}", BLOCKS[f"n{i}"])
    net.run()
    return net


def test_two_reflectors_same_cluster_reflect_client_routes() -> None:
    """RFC 4456 §6: client routes go to all clients; ORIGINATOR_ID and CLUSTER_LIST set (§8)."""
    net = _rr_topology("224.0.0.1")
    for i in range(1, 4):
        routes = net.speakers[f"n{i}"].routes()
        assert set(routes) == {BLOCKS[f"n{j}"] for j in range(1, 4)}
    best = attrs_at(net, "n1", BLOCKS["n2"])
    assert best.attrs.originator_id == rid("127.0.10.2")
    assert best.attrs.cluster_list == (rid("224.0.0.1"),)
    assert best.next_hop == bytes([127, 0, 10, 2])  # reflection keeps the next hop
    # The reflectors themselves do not loop routes between each other (§8 cluster-list check).
    assert net.speakers["rr1"].routes()[BLOCKS["n1"]] == "n1"


def test_two_reflectors_different_clusters() -> None:
    net = _rr_topology("224.0.0.2")
    for i in range(1, 4):
        assert set(net.speakers[f"n{i}"].routes()) == {BLOCKS[f"n{j}"] for j in range(1, 4)}
    # rr2 reflects rr1's copy too, but the client prefers the shorter CLUSTER_LIST.
    best = attrs_at(net, "n3", BLOCKS["n1"])
    assert len(best.attrs.cluster_list) == 1


def test_reflector_failure_leaves_the_other_serving() -> None:
    net = _rr_topology("224.0.0.1")
    net.kill("rr1")
    net.run()
    for i in range(1, 4):
        routes = net.speakers[f"n{i}"].routes()
        assert set(routes) == {BLOCKS[f"n{j}"] for j in range(1, 4)}
        assert all(src in ("", "rr2") for src in routes.values())


def test_withdrawal_propagates_through_reflectors() -> None:
    net = _rr_topology("224.0.0.1")
    net.withdraw("n2", BLOCKS["n2"])
    net.run()
    for name in ("n1", "n3", "rr1", "rr2"):
        assert BLOCKS["n2"] not in net.speakers[name].routes()


def test_ebgp_prepends_as_sets_next_hop_self_and_drops_med() -> None:
    """RFC 4271 §5.1.2-5.1.4 on an eBGP session, and AS-path loop detection (§9.1.2)."""
    net = Network()
    net.add("a", "127.0.10.1", asn=65001)
    net.add("b", "127.0.10.2", asn=65002)
    net.add("c", "127.0.10.3", asn=65003)
    net.link("a", "b")
    net.link("b", "c")
    net.link("c", "a")
    net.originate("a", "192.0.2.0/24", med=50)
    net.run()
    at_b = attrs_at(net, "b", "192.0.2.0/24")
    assert at_b.attrs.as_path == ((2, (65001,)),)
    assert at_b.attrs.med == 50  # a's own MED reaches its neighbour
    assert at_b.next_hop == bytes([127, 0, 10, 1])
    at_c = attrs_at(net, "c", "192.0.2.0/24")
    assert at_c.source == "a"  # the direct path is shorter than via b
    # b passes the route on to c without a's MED (§5.1.4), and a never accepts its own route back.
    b_copy = net.speakers["c"].table.candidates[(IPV4_UNICAST, make_prefix("192.0.2.0/24"))]["b"]
    assert b_copy.attrs.med is None and b_copy.attrs.as_path == ((2, (65002, 65001)),)
    assert net.speakers["a"].routes() == {"192.0.2.0/24": ""}
    # A path carrying a's own AS is refused on import (loop detection, RFC 4271 §9.1.2).
    looped = PathAttributes(
        origin=0, as_path=((2, (65002, 65001)),), next_hop=bytes([127, 0, 10, 2])
    )
    table = net.speakers["a"].table
    assert (
        table.receive(
            "b", IPV4_UNICAST, [make_prefix("198.51.100.0/24")], looped, bytes([127, 0, 10, 2])
        )
        == []
    )
    assert table.peers["b"].rejected == 1
