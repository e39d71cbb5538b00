"""bgpd's policy configuration: prefix lists, named policies, per-peer import/export policies and
RFC 8212's default deny, loaded from TOML with errors that name the field."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bgpd.core.routing.policy import ACCEPT_ALL, REJECT_ALL, PolicyError, PrefixMatch
from bgpd.daemon.config import BgpdConfig
from bgpd.daemon.policy_config import PrefixEntry
from bgpd.wire.attributes import PathAttributes
from bgpd.wire.context import IPV4_UNICAST, IPV6_UNICAST
from bgpd.wire.prefix import make_prefix
from runtime.config import ConfigError, from_mapping

CALICO = """
router_id = "10.0.0.1"
local_as = 64512

[[prefix_lists]]
name = "pools"
prefixes = [
  {prefix = "10.244.0.0/16", le = 26},
  {prefix = "fd00:244::/48", le = 122},
]

[[prefix_lists]]
name = "no-export-pools"
prefixes = [{prefix = "10.99.0.0/16", ge = 16}]

[[policies]]
name = "calico-export"
[[policies.terms]]
prefix_lists = ["no-export-pools"]
action = "reject"
[[policies.terms]]
prefix_lists = ["pools"]
add_communities = ["64512:100"]
action = "accept"

[[policies]]
name = "tor-import"
default = "accept"
[[policies.terms]]
communities = ["65001:200"]
set_local_pref = 200
[[policies.terms]]
families = ["ipv6"]
as_path_min = 3
action = "reject"

[[peers]]
address = "10.0.0.2"
remote_as = 64512
export_policy = "calico-export"

[[peers]]
address = "10.0.0.254"
remote_as = 65001
import_policy = "tor-import"
export_policy = "calico-export"
"""


def load(text: str, **override: Any) -> BgpdConfig:
    data = tomllib.loads(text)
    data.update(override)
    return from_mapping(BgpdConfig, data)


def test_calico_export_policy_from_toml_exports_blocks_never_the_addresses_inside() -> None:
    cfg = load(CALICO)
    _, export = cfg.peer_policies()[cfg.peers[0].key]
    attrs = PathAttributes(origin=0)
    for net, ok in (
        ("10.244.3.64/26", True),
        ("10.244.0.0/16", True),  # the pool itself (Calico: `net ~ pool`)
        ("10.244.3.65/32", False),
        ("10.99.1.0/26", False),  # disableBGPExport pool
        ("192.168.0.0/24", False),
        ("fd00:244::40/122", True),
        ("fd00:244::41/128", False),
    ):
        family = IPV6_UNICAST if ":" in net else IPV4_UNICAST
        got = export.evaluate(family, make_prefix(net), attrs)
        assert (got is not None) == ok, net
        if got is not None:
            assert got.communities == (64512 << 16 | 100,)


def test_import_policy_sets_local_pref_on_a_community_and_bounds_ipv6_paths() -> None:
    cfg = load(CALICO)
    imp, _ = cfg.peer_policies()[cfg.peers[1].key]
    tagged = PathAttributes(origin=0, as_path=((2, (65001,)),), communities=(65001 << 16 | 200,))
    assert imp.evaluate(IPV4_UNICAST, make_prefix("192.0.2.0/24"), tagged) == tagged._replace(
        local_pref=200
    )
    long = PathAttributes(origin=0, as_path=((2, (65001, 1, 2)),))
    assert imp.evaluate(IPV6_UNICAST, make_prefix("2001:db8::/32"), long) is None
    assert imp.evaluate(IPV4_UNICAST, make_prefix("192.0.2.0/24"), long) is long


def test_peers_without_a_policy_accept_all_and_rfc8212_denies_ebgp_only() -> None:
    base = {"router_id": "10.0.0.1", "local_as": 64512}
    peers = [{"address": "10.0.0.2", "remote_as": 64512}, {"address": "10.0.0.3", "remote_as": 1}]
    cfg = from_mapping(BgpdConfig, {**base, "peers": peers})
    assert set(cfg.peer_policies().values()) == {(ACCEPT_ALL, ACCEPT_ALL)}
    cfg = from_mapping(BgpdConfig, {**base, "peers": peers, "ebgp_default_deny": True})
    by_key = cfg.peer_policies()
    assert by_key[cfg.peers[0].key] == (ACCEPT_ALL, ACCEPT_ALL)
    assert by_key[cfg.peers[1].key] == (REJECT_ALL, REJECT_ALL)
    # A named policy overrides the RFC 8212 default; the built-in names can be used directly.
    peers[1] = {**peers[1], "export_policy": "accept-all"}
    cfg = from_mapping(BgpdConfig, {**base, "peers": peers, "ebgp_default_deny": True})
    assert cfg.peer_policies()[cfg.peers[1].key] == (REJECT_ALL, ACCEPT_ALL)


BAD = [
    (
        {
            "peers": [
                {"address": "10.0.0.2", "remote_as": 64512},
                {"address": "10.0.0.3", "remote_as": 1, "export_policy": "x"},
            ]
        },
        'peers[1].export_policy: unknown policy "x"',
    ),
    (
        {"peers": [{"address": "10.0.0.3", "remote_as": 1, "import_policy": "nope"}]},
        'peers[0].import_policy: unknown policy "nope"',
    ),
    (
        {
            "policies": [{"name": "lp", "terms": [{"set_local_pref": 200}]}],
            "peers": [{"address": "10.0.0.3", "remote_as": 1, "export_policy": "lp"}],
        },
        'peers[0].export_policy: policy "lp" sets local_pref, which is never sent to an eBGP peer',
    ),
    (
        {"prefix_lists": [{"name": "a", "prefixes": [{"prefix": "10.0.0.0/33"}]}]},
        "prefix_lists[0].prefixes[0].prefix:",
    ),
    (
        {"prefix_lists": [{"name": "a", "prefixes": [{"prefix": "10.0.0.0/16", "le": 8}]}]},
        "prefix_lists[0].prefixes[0].le: 8 outside 16..32",
    ),
    (
        {
            "prefix_lists": [
                {"name": "a", "prefixes": [{"prefix": "10.0.0.0/16", "ge": 28, "le": 24}]}
            ]
        },
        "prefix_lists[0].prefixes[0]: ge 28 is greater than le 24",
    ),
    (
        {"prefix_lists": [{"name": "a"}, {"name": "a"}]},
        'prefix_lists[1].name: prefix list "a" is defined twice',
    ),
    (
        {"policies": [{"name": "p", "terms": [{"prefix_lists": ["zz"]}]}]},
        'policies[0].terms[0].prefix_lists[0]: unknown prefix list "zz"',
    ),
    (
        {"policies": [{"name": "p", "terms": [{"add_communities": ["1:2", "x"]}]}]},
        "policies[0].terms[0].add_communities[1]: 'x'",
    ),
    (
        {"policies": [{"name": "p", "terms": [{"families": ["ipv5"]}]}]},
        "policies[0].terms[0].families[0]: 'ipv5' is not one of ipv4, ipv6",
    ),
    (
        {"policies": [{"name": "p", "terms": [{"action": "drop"}]}]},
        "policies[0].terms[0].action: must be one of accept, reject, next",
    ),
    (
        {"policies": [{"name": "p", "terms": [{"set_med": -1}]}]},
        "policies[0].terms[0].set_med: must be 0..4294967295",
    ),
    (
        {"policies": [{"name": "p", "terms": [{"as_path_min": 3, "as_path_max": 1}]}]},
        "policies[0].terms[0].as_path_min: greater than as_path_max",
    ),
    ({"policies": [{"name": "reject-all"}]}, 'policies[0].name: "reject-all" is built in'),
    ({"policies": [{"name": "p"}, {"name": "p"}]}, 'policies[1].name: policy "p" is defined twice'),
    (
        {"policies": [{"name": "p", "terms": [{"set_localpref": 1}]}]},
        "policies[0].terms[0].set_localpref: unknown setting",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD)
def test_errors_name_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping(BgpdConfig, {"router_id": "10.0.0.1", "local_as": 64512, **data})
    assert message in str(err.value)


def test_ipv6_prefix_list_defaults_exact_and_ge_alone_opens_to_the_maximum() -> None:
    cfg = load(
        CALICO,
        prefix_lists=[
            {
                "name": "p",
                "prefixes": [{"prefix": "2001:db8::/32"}, {"prefix": "10.0.0.0/8", "ge": 24}],
            }
        ],
        policies=[],
        peers=[],
    )
    lists = cfg.compiled_policies()
    assert set(lists) == {"accept-all", "reject-all"}
    (exact, ge) = (e.compile("x") for e in cfg.prefix_lists[0].prefixes)
    assert (exact.ge, exact.le) == (32, 32) and (ge.ge, ge.le) == (24, 32)


@given(
    st.sampled_from(["10.244.0.0/16", "192.0.2.0/24", "0.0.0.0/0", "fd00:244::/48"]),
    st.none() | st.integers(0, 128),
    st.none() | st.integers(0, 128),
)
def test_toml_entry_means_what_the_router_syntax_says(
    net: str, ge: int | None, le: int | None
) -> None:
    """`{prefix, ge, le}` and `NET ge N le M` (FRR/Cisco prefix-list syntax, PrefixMatch.parse)
    accept and refuse the same entries and give the same ranges."""
    text = " ".join(
        [net, *([f"ge {ge}"] if ge is not None else []), *([f"le {le}"] if le is not None else [])]
    )
    try:
        want = PrefixMatch.parse(text)
    except PolicyError:
        want = None
    try:
        got = PrefixEntry(prefix=net, ge=ge, le=le).compile("e")
    except ConfigError:
        got = None
    assert got == want
