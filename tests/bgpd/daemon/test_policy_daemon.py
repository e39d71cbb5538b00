"""Policies on running speakers (in process, 127.0.0.x): an export policy decides what a peer
receives, an import policy sets LOCAL_PREF, and a reload applies changed policies without a
session reset (only the difference is sent; a new import policy asks for a route refresh,
RFC 2918). RFC 8212's default deny on an eBGP session."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from bgpd.core.events import State
from bgpd.daemon.config import BgpdConfig
from bgpd.daemon.policy_config import PolicyConfig, PrefixEntry, PrefixListConfig, TermConfig
from bgpd.daemon.routing import RoutingSink
from bgpd.daemon.sink_state import peer_id
from bgpd.daemon.speaker import Speaker
from tests.bgpd.daemon.conftest import SpeakerFactory, config, free_port, peer, wait_for

A, B = "127.0.0.2", "127.0.0.3"

POOLS = {"name": "pools", "prefixes": [{"prefix": "10.244.0.0/16", "le": 26}]}
EXPORT_POOLS = {
    "name": "export",
    "terms": [{"prefix_lists": ["pools"], "action": "accept"}],
}


def sink(sp: Speaker) -> RoutingSink:
    assert isinstance(sp.sink, RoutingSink)
    return sp.sink


def rib(sp: Speaker) -> dict[str, Any]:
    routes: list[dict[str, Any]] = sink(sp).rib()["routes"]  # type: ignore[assignment]
    return {r["prefix"]: r for r in routes if not r["local"]}


def runner(sp: Speaker) -> Any:
    (r,) = sp.peers.values()
    return r


def up(sp: Speaker) -> bool:
    return all(r.core.state is State.ESTABLISHED for r in sp.peers.values())


def adj_out(sp: Speaker) -> set[str]:
    import ipaddress

    (tables,) = sink(sp).table.peers.values()
    out = set()
    for (family, prefix), _ in tables.adj_out.items():
        raw = prefix[1:].ljust(4 if family[0] == 1 else 16, b"\x00")
        out.add(f"{ipaddress.ip_address(raw)}/{prefix[0]}")
    return out


def with_policies(
    cfg: BgpdConfig, lists: list[dict[str, Any]], policies: list[dict[str, Any]]
) -> BgpdConfig:
    new = dataclasses.replace(
        cfg,
        prefix_lists=[
            PrefixListConfig(name=pl["name"], prefixes=[PrefixEntry(**e) for e in pl["prefixes"]])
            for pl in lists
        ],
        policies=[
            PolicyConfig(
                name=p["name"],
                default=p.get("default", "reject"),
                terms=[TermConfig(**t) for t in p["terms"]],
            )
            for p in policies
        ],
    )
    new.validate()
    return new


async def test_export_filters_import_sets_local_pref_and_reload_changes_both_without_reset(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    pa, pb = free_port(A), free_port(B)
    a = await speakers(
        config(
            tmp_path,
            A,
            pa,
            [peer(B, pb, local_address=A, export_policy="export")],
            originate=["10.244.1.0/26", "10.244.1.5/32", "192.168.7.0/24"],
            prefix_lists=[POOLS],
            policies=[EXPORT_POOLS],
        )
    )
    prefer = {
        "name": "prefer",
        "default": "accept",
        "terms": [{"prefix_lists": ["pools"], "set_local_pref": 200}],
    }
    b = await speakers(
        config(
            tmp_path,
            B,
            pb,
            [peer(A, pa, local_address=B, import_policy="prefer")],
            prefix_lists=[POOLS],
            policies=[prefer],
        )
    )
    await wait_for(lambda: up(a) and up(b) and "10.244.1.0/26" in rib(b))
    # Calico's rule: the block goes out, the /32 inside it and the non-pool prefix do not.
    assert adj_out(a) == {"10.244.1.0/26"}
    assert set(rib(b)) == {"10.244.1.0/26"}
    assert rib(b)["10.244.1.0/26"]["local_pref"] == 200
    ra, rb = runner(a), runner(b)
    established = (ra.core.primary.established_count, rb.core.primary.established_count)

    # A wider export policy: the new prefix follows, nothing else is re-sent or reset.
    wider = with_policies(
        a.config,
        [POOLS, {"name": "extra", "prefixes": [{"prefix": "192.168.7.0/24"}]}],
        [{"name": "export", "terms": [{"prefix_lists": ["pools", "extra"], "action": "accept"}]}],
    )
    summary = await a.apply_config(wider)
    assert not summary["reset"]
    await wait_for(lambda: "192.168.7.0/24" in rib(b))
    assert set(rib(b)) == {"10.244.1.0/26", "192.168.7.0/24"}
    assert rib(b)["192.168.7.0/24"]["local_pref"] == 100  # outside `pools`: not preferred

    # Narrowed again: the prefix is withdrawn (a full re-send would have left it at B).
    narrow = with_policies(a.config, [POOLS], [EXPORT_POOLS])
    await a.apply_config(narrow)
    await wait_for(lambda: "192.168.7.0/24" not in rib(b))
    assert adj_out(a) == {"10.244.1.0/26"}

    # B's import policy changes: B asks A for a route refresh and the new value applies.
    stronger = with_policies(
        b.config,
        [POOLS],
        [{**prefer, "terms": [{"prefix_lists": ["pools"], "set_local_pref": 300}]}],
    )
    refreshes_before = ra.core.primary.messages_in.get("ROUTEREFRESH", 0)
    await b.apply_config(stronger)
    await wait_for(lambda: rib(b)["10.244.1.0/26"]["local_pref"] == 300)
    assert ra.core.primary.messages_in.get("ROUTEREFRESH", 0) > refreshes_before
    assert up(a) and up(b)
    assert (ra.core.primary.established_count, rb.core.primary.established_count) == established


async def test_rfc8212_ebgp_without_policy_neither_imports_nor_exports(
    tmp_path: Path, speakers: SpeakerFactory
) -> None:
    pa, pb = free_port(A), free_port(B)
    a = await speakers(
        config(
            tmp_path,
            A,
            pa,
            [peer(B, pb, local_address=A, remote_as=65001)],
            originate=["10.244.1.0/26"],
            ebgp_default_deny=True,
        )
    )
    b = await speakers(
        config(
            tmp_path,
            B,
            pb,
            [peer(A, pa, local_address=B, remote_as=65000)],
            local_as=65001,
            originate=["10.9.0.0/24"],
        )
    )
    await wait_for(lambda: up(a) and up(b))
    pid = peer_id(runner(a).config.key)
    # B's route arrives and is refused by the default deny; A sends B nothing.
    await wait_for(lambda: sink(a).table.peers[pid].rejected >= 1)
    assert rib(a) == {} and adj_out(a) == set() and rib(b) == {}

    # Naming a policy lifts the default for that direction only.
    opened = dataclasses.replace(
        a.config, peers=[dataclasses.replace(a.config.peers[0], export_policy="accept-all")]
    )
    await a.apply_config(opened)
    await wait_for(lambda: "10.244.1.0/26" in rib(b))
    assert rib(a) == {}
    assert runner(a).core.primary.established_count == 1
