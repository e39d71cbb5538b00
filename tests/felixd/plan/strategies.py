"""Hypothesis strategies for the differ: desired dataplanes and arbitrary observed kernels.

The universe is small on purpose (a few prefixes, devices, gateways, MACs) so that collisions
between desired, owned and foreign entries are frequent: that is where differs go wrong.
"""

from __future__ import annotations

from hypothesis import strategies as st

from felixd.plan import (
    BestPath,
    Block,
    DesiredDataplane,
    EncapMode,
    FdbEntry,
    FelixConfig,
    HostInterface,
    Input,
    Neighbour,
    NextHop,
    NftTable,
    NodeInfo,
    ObservedState,
    Ownership,
    Pool,
    Route,
    RouteScope,
    RouteType,
    VxlanDevice,
    WorkloadEndpoint,
)
from felixd.plan.model import NftChain, NftMatch, NftRule, NftSet

DEVS = ("eth0", "eth1", "cali1", "cali2", "vxlan.calico", "tunl0")
DSTS = (
    "10.244.0.0/26",
    "10.244.1.0/26",
    "10.244.0.5/32",
    "10.244.0.6/32",
    "203.0.113.0/24",
    "0.0.0.0/0",
    "fd00::/64",
    "fd00::5/128",
)
GWS = ("192.168.1.11", "192.168.1.12", "10.244.1.1")
MACS = ("66:00:00:00:00:01", "66:00:00:00:00:02", "ee:ee:ee:ee:ee:ee")
NEIGH_IPS = ("10.244.0.5", "10.244.1.1", "10.244.2.1")
OWNER = Ownership()


def nft_table(name: str, variant: int) -> NftTable:
    rule = NftRule((NftMatch("ip saddr", "==", "@s"),), "masquerade" if variant else "return")
    chain = NftChain("postrouting", (rule,), "nat", "postrouting", 100, "accept")
    return NftTable("inet", name, (NftSet("s", "ipv4_addr", ("10.0.0.0/8",)),), (chain,))


@st.composite
def routes(draw: st.DrawFn, protocols: tuple[int, ...], tables: tuple[int, ...]) -> Route:
    dst = draw(st.sampled_from(DSTS))
    proto = draw(st.sampled_from(protocols))
    table = draw(st.sampled_from(tables))
    metric = draw(st.sampled_from((0, 1024)))
    shape = draw(st.sampled_from(("blackhole", "dev", "via", "multipath")))
    if shape == "blackhole":
        return Route(dst, proto, type=RouteType.BLACKHOLE, table=table, metric=metric)
    dev = draw(st.sampled_from(DEVS))
    if shape == "dev":
        return Route(dst, proto, scope=RouteScope.LINK, dev=dev, table=table, metric=metric)
    if shape == "via":
        gw, onlink = draw(st.sampled_from(GWS)), draw(st.booleans())
        return Route(dst, proto, dev=dev, gateway=gw, onlink=onlink, table=table, metric=metric)
    hops = draw(
        st.lists(
            st.builds(NextHop, st.sampled_from(GWS), st.sampled_from(DEVS), st.booleans()),
            min_size=2,
            max_size=3,
            unique=True,
        )
    )
    return Route(dst, proto, nexthops=tuple(sorted(hops)), table=table, metric=metric)


vxlan_devices = st.builds(
    VxlanDevice,
    name=st.just("vxlan.calico"),
    vni=st.sampled_from((4096, 5000)),
    port=st.just(4789),
    local=st.just("192.168.1.10"),
    parent=st.sampled_from(("eth0", "eth1")),
    mac=st.sampled_from(MACS),
    mtu=st.sampled_from((1450, 1400)),
    address=st.just("10.244.0.1/32"),
)


@st.composite
def desired_dataplanes(draw: st.DrawFn) -> DesiredDataplane:
    rs = draw(st.lists(routes((80,), (254,)), max_size=8))
    ns = draw(
        st.lists(
            st.builds(
                Neighbour,
                st.sampled_from(("cali1", "cali2", "vxlan.calico")),
                st.sampled_from(NEIGH_IPS),
                st.sampled_from(MACS),
            ),
            max_size=4,
        )
    )
    fdb = draw(
        st.lists(
            st.builds(
                FdbEntry,
                st.just("vxlan.calico"),
                st.sampled_from(MACS),
                st.sampled_from(GWS),
            ),
            max_size=3,
        )
    )
    dev = draw(st.none() | vxlan_devices)
    sysctls = draw(
        st.dictionaries(
            st.sampled_from(("net/ipv4/conf/cali1/proxy_arp", "net/ipv4/neigh/cali2/proxy_delay")),
            st.sampled_from(("0", "1")),
            max_size=2,
        )
    )
    table = draw(st.none() | st.builds(nft_table, st.just("tabby-nat"), st.integers(0, 1)))
    return DesiredDataplane(
        owner=OWNER,
        routes={r.key: r for r in rs},
        neighbours={n.key: n for n in ns},
        fdb={e.key: e for e in fdb},
        devices={dev.name: dev} if dev else {},
        sysctls=sysctls,
        nft_tables={table.key: table} if table else {},
    )


@st.composite
def observed_states(draw: st.DrawFn) -> ObservedState:
    links = frozenset(draw(st.sets(st.sampled_from(DEVS))) | {"lo"})
    rs = draw(st.lists(routes((80, 12, 3, 2), (254, 100)), max_size=10))
    ns = draw(
        st.lists(
            st.builds(
                Neighbour,
                st.sampled_from(DEVS),
                st.sampled_from(NEIGH_IPS),
                st.sampled_from(MACS),
                st.booleans(),
            ),
            max_size=5,
        )
    )
    fdb = draw(
        st.lists(
            st.builds(
                FdbEntry,
                st.sampled_from(("vxlan.calico", "eth0")),
                st.sampled_from(MACS),
                st.sampled_from(GWS),
            ),
            max_size=3,
        )
    )
    devices = {}
    if "vxlan.calico" in links and draw(st.booleans()):
        devices["vxlan.calico"] = draw(vxlan_devices)
    sysctls = draw(
        st.dictionaries(
            st.sampled_from(
                (
                    "net/ipv4/conf/cali1/proxy_arp",
                    "net/ipv4/neigh/cali2/proxy_delay",
                    "net/ipv4/conf/eth0/forwarding",
                )
            ),
            st.sampled_from(("0", "1")),
            max_size=3,
        )
    )
    tables = draw(
        st.lists(
            st.sampled_from(
                (
                    nft_table("tabby-nat", 0),
                    nft_table("tabby-nat", 1),
                    nft_table("tabby-old", 0),
                    nft_table("filter", 1),
                )
            ),
            max_size=3,
        )
    )
    # A real kernel holds nothing on a link that does not exist.
    return ObservedState(
        routes={r.key: r for r in rs if r.devices <= links},
        neighbours={n.key: n for n in ns if n.dev in links},
        fdb={e.key: e for e in fdb if e.dev in links},
        links=links,
        devices=devices,
        sysctls={p: v for p, v in sysctls.items() if p.split("/")[3] in links},
        nft_tables={t.key: t for t in tables},
    )


# -- planner inputs: small universes, many of them invalid --------------------------------

NODES = ("node-a", "node-b", "node-c")
CIDRS = ("10.244.0.0/16", "10.244.0.0/24", "10.245.0.0/16", "fd00::/64", "10.1.0.1/16", "junk")
BLOCKS = ("10.244.0.0/26", "10.244.1.0/26", "10.245.0.0/26", "fd00::/122", "10.244.0.0/24")
ADDRS = ("192.168.1.10/24", "192.168.1.11/24", "192.168.2.12/24", "fd00:1::1/64", "bad")
HOPS = ("192.168.1.11", "192.168.2.12", "192.168.1.1", "fd00:1::2", "x")
POD_IPS = ("10.244.0.5", "10.244.0.6/32", "10.245.0.7", "fd00::5", "172.16.0.1", "nope")
modes = st.sampled_from(EncapMode)

inputs: st.SearchStrategy[Input] = st.one_of(
    st.builds(
        NodeInfo,
        st.sampled_from(NODES),
        st.lists(st.sampled_from(ADDRS), max_size=2).map(tuple),
        st.sampled_from((None, "10.244.0.1", "10.244.1.1", "10.245.0.1", "zz")),
        st.sampled_from((None, "66:00:00:00:00:01", "66:00:00:00:00:02", "bad")),
    ),
    st.builds(
        Pool,
        st.sampled_from(("p1", "p2", "p3")),
        st.sampled_from(CIDRS),
        modes,
        modes,
        st.booleans(),
        st.booleans(),
    ),
    st.builds(Block, st.sampled_from(BLOCKS), st.sampled_from((None, *NODES))),
    st.builds(
        WorkloadEndpoint,
        st.sampled_from(("w1", "w2", "w3")),
        st.sampled_from(("cali1", "cali2", "eth9", "cali/x")),
        st.lists(st.sampled_from(POD_IPS), max_size=2).map(tuple),
        st.sampled_from((None, "ee:ee:ee:ee:ee:ee", "bad")),
    ),
    st.builds(
        BestPath,
        st.sampled_from((*BLOCKS, "203.0.113.0/24", "0.0.0.0/0", "junk")),
        st.lists(st.sampled_from(HOPS), max_size=3).map(tuple),
        st.booleans(),
    ),
    st.builds(
        HostInterface,
        st.sampled_from(("eth0", "eth1")),
        st.lists(st.sampled_from(ADDRS), max_size=2).map(tuple),
        st.sampled_from((1500, 9000)),
        st.booleans(),
    ),
)
configs = st.builds(
    FelixConfig,
    install_external_routes=st.booleans(),
    nat_exclusions=st.lists(st.sampled_from(("10.0.0.0/8", "bad")), max_size=1).map(tuple),
)
