"""Renderers: bgpd's TOML loads into bgpd's own config schema; BIRD's config passes `bird -p`."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import pytest

from bgpd.daemon.config import BgpdConfig
from confd.render.bgpd_toml import render_bgpd_toml
from confd.render.bird import render_bird
from runtime.config import from_mapping
from tests.confd.test_plan import RR_TWO, plan_for


def test_bgpd_toml_is_accepted_by_bgpd_config_schema() -> None:
    plan = plan_for("rr-a", RR_TWO.replace("CLUSTER_B", "224.0.0.2"))
    text = render_bgpd_toml(plan, {"control_socket": "/run/tabby/bgpd.sock", "uvloop": True})
    config = from_mapping(BgpdConfig, tomllib.loads(text))
    assert config.router_id == "10.192.0.10"
    assert config.local_as == 64512
    by_address = {p.address: p for p in config.peers}
    assert set(by_address) == {"10.192.0.11", "10.192.0.2", "10.192.0.3", "10.192.0.4"}
    assert by_address["10.192.0.3"].rr_client and by_address["10.192.0.3"].cluster_id == "224.0.0.1"
    assert by_address["10.192.0.3"].peer_type == "node specific"
    assert by_address["10.192.0.3"].local_address == "10.192.0.10"


def test_bgpd_toml_is_deterministic() -> None:
    assert render_bgpd_toml(plan_for("kube-master")) == render_bgpd_toml(plan_for("kube-master"))


def test_bgpd_toml_mesh_passive_and_originate() -> None:
    config = from_mapping(BgpdConfig, tomllib.loads(render_bgpd_toml(plan_for("kube-master"))))
    assert config.originate == ["192.168.10.0/26"]
    assert [(p.name, p.passive, p.families) for p in config.peers] == [
        ("Mesh_10_192_0_3", True, ["ipv4"]),
        ("Mesh_10_192_0_4", True, ["ipv4"]),
        ("Mesh_fd00__3", True, ["ipv6"]),
    ]


@pytest.mark.debian("bird")
@pytest.mark.parametrize("node", ["kube-master", "rr-a", "kube-node-1"])
def test_bird_config_parses(node: str, tmp_path: Path) -> None:
    extra = RR_TWO.replace("CLUSTER_B", "224.0.0.2") if node == "rr-a" else ""
    conf = tmp_path / "bird.conf"
    conf.write_text(render_bird(plan_for(node, extra), loopback_next_hops=True))
    out = subprocess.run(
        ["bird", "-p", "-c", str(conf)], capture_output=True, text=True, timeout=30, check=False
    )
    assert out.returncode == 0, out.stderr + conf.read_text()


def test_bgpd_toml_carries_prefix_advertisement_communities() -> None:
    """Calico's prefixAdvertisements reach bgpd as `advertise` entries with communities."""
    from tests.confd.test_plan import plan_for

    extra = """
    ---
    apiVersion: projectcalico.org/v3
    kind: BGPConfiguration
    metadata: {name: default}
    spec:
      communities: [{name: pods, value: "65001:100"}]
      prefixAdvertisements: [{cidr: 192.168.0.0/16, communities: [pods, "65001:1:2"]}]
    """
    config = from_mapping(
        BgpdConfig, tomllib.loads(render_bgpd_toml(plan_for("kube-master", extra)))
    )
    assert config.originate == []
    assert [(a.prefix, a.communities, a.large_communities) for a in config.advertise] == [
        ("192.168.10.0/26", ["65001:100"], ["65001:1:2"])
    ]
