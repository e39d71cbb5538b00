"""Configuration: validation errors name the field; the reload matrix covers every field."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bgpd.core.reload import GLOBAL_FIELDS, PEER_FIELDS, Apply, classify, strongest
from bgpd.daemon.config import BgpdConfig, PeerConfig
from bgpd.wire.context import IPV4_UNICAST, IPV6_UNICAST
from runtime.config import ConfigError, DaemonConfig, from_mapping


def load(peers: list[dict[str, Any]] | None = None, **top: Any) -> BgpdConfig:
    data: dict[str, Any] = {"router_id": "10.0.0.1", "local_as": 65000, "peers": peers or []}
    data.update(top)
    return from_mapping(BgpdConfig, data)


@pytest.mark.parametrize(
    ("top", "peer", "field"),
    [
        ({"router_id": "::1"}, None, "router_id"),
        ({"router_id": ""}, None, "router_id"),
        ({"local_as": 0}, None, "local_as"),
        ({"listen": [{"address": "nope"}]}, None, "listen[0].address"),
        ({"originate": ["10.0.0.1/24"]}, None, "originate[0]"),
        ({}, {"hold_time": 2}, "peers[0].hold_time"),
        ({}, {"address": "10.0.0.300"}, "peers[0].address"),
        ({}, {"remote_as": 2**32}, "peers[0].remote_as"),
        ({}, {"families": ["ipv4", "vpnv4"]}, "peers[0].families[1]"),
        ({}, {"required_capabilities": ["telepathy"]}, "peers[0].required_capabilities[0]"),
        ({}, {"local_address": "fe80::1"}, "peers[0].local_address"),
        ({}, {"password": "x" * 81}, "peers[0].password"),
        ({}, {"cluster_id": "1"}, "peers[0].cluster_id"),
        ({}, {"peer_type": "mesh"}, "peers[0].peer_type"),
        ({}, {"ttl_security": "yes"}, "peers[0].ttl_security"),
        ({}, {"colour": "blue"}, "peers[0].colour"),
    ],
)
def test_validation_errors_name_the_field(
    top: dict[str, Any], peer: dict[str, Any] | None, field: str
) -> None:
    peers = (
        [{"address": "10.0.0.2", "remote_as": 65000, **(peer or {})}] if peer is not None else None
    )
    with pytest.raises(ConfigError) as info:
        load(peers, **top)
    assert str(info.value).startswith(field + ":") or f"{field}:" in str(info.value), str(
        info.value
    )


def test_duplicate_session_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"peers\[1\]: same address"):
        load(
            [
                {"address": "10.0.0.2", "remote_as": 1},
                {"address": "10.0.0.2", "remote_as": 2, "name": "x"},
            ]
        )
    # A different local address or port is a different session.
    load(
        [
            {"address": "10.0.0.2", "remote_as": 1},
            {"address": "10.0.0.2", "remote_as": 1, "port": 1179},
        ]
    )


def test_calico_mesh_rule_compares_address_strings() -> None:
    cfg = load(
        [
            {"address": "10.0.0.10", "remote_as": 65000, "peer_type": "node-to-node mesh"},
            {"address": "10.0.0.2", "remote_as": 65000, "peer_type": "node-to-node mesh"},
            {"address": "10.0.0.3", "remote_as": 65000, "peer_type": "global"},
            {
                "address": "10.0.0.4",
                "remote_as": 65000,
                "peer_type": "node-to-node mesh",
                "passive": False,
            },
        ]
    )
    # As text both "10.0.0.10" and "10.0.0.2" are greater than our "10.0.0.1": we wait for them.
    assert [cfg.passive_for(p) for p in cfg.peers] == [True, True, False, False]
    cfg2 = load(
        [{"address": "10.0.0.10", "remote_as": 65000, "peer_type": "node-to-node mesh"}],
        router_id="10.0.0.9",
    )
    # As text "10.0.0.10" < "10.0.0.9", so the node with router id 10.0.0.9 connects.
    assert cfg2.passive_for(cfg2.peers[0]) is False


def test_session_params_follow_the_config() -> None:
    cfg = load(
        [
            {
                "address": "2001:db8::2",
                "remote_as": 4200000000,
                "hold_time": 9,
                "families": ["ipv4", "ipv6"],
            }
        ]
    )
    p = cfg.session_params(cfg.peers[0])
    assert (p.local_as, p.remote_as, p.hold_time, p.local_id) == (65000, 4200000000, 9, 0x0A000001)
    assert p.families == (IPV4_UNICAST, IPV6_UNICAST)
    cfg = load([{"address": "2001:db8::2", "remote_as": 1}])
    assert cfg.session_params(cfg.peers[0]).families == (IPV6_UNICAST,)


def test_reload_matrix_covers_every_field() -> None:
    assert set(PEER_FIELDS) == {f.name for f in dataclasses.fields(PeerConfig)}
    own = {f.name for f in dataclasses.fields(BgpdConfig)} - {
        f.name for f in dataclasses.fields(DaemonConfig)
    }
    assert set(GLOBAL_FIELDS) == own


def test_reload_classification_takes_the_strongest_change() -> None:
    old = PeerConfig(address="10.0.0.2", remote_as=1).as_dict()
    new = PeerConfig(address="10.0.0.2", remote_as=1, description="d", next_hop="self").as_dict()
    changes = classify(old, new, PEER_FIELDS)
    assert changes == {"description": Apply.HOT, "next_hop": Apply.SOFT}
    assert strongest(changes) is Apply.SOFT
    new = PeerConfig(address="10.0.0.2", remote_as=1, description="d", password="x").as_dict()
    assert strongest(classify(old, new, PEER_FIELDS)) is Apply.RESET
    assert strongest(classify(old, old, PEER_FIELDS)) is Apply.NONE
