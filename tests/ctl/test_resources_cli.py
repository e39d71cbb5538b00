"""`tabbyctl apply/create/replace/delete/get/patch` against a real single-member store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ctl.main import main as tabbyctl
from ctl.resources import CommandError, parse_manifests
from tests.store_process import start_store, stop_all

POOL = """
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pool-a, labels: {tier: gold}}
spec: {cidr: 10.244.0.0/16, ipipMode: Never, natOutgoing: true}
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec: {asNumber: 64513, nodeToNodeMeshEnabled: true}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: node-1}
spec: {bgp: {ipv4Address: 127.0.10.1/8}}
---
apiVersion: projectcalico.org/v3
kind: BlockAffinity
metadata: {name: node-1-10-244-1-0-26}
spec: {state: confirmed, node: node-1, cidr: 10.244.1.0/26}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-web, namespace: prod}
spec: {selector: app == 'web', ingress: [{action: Allow}]}
"""


@pytest.fixture
def store(tmp_path: Path) -> Iterator[str]:
    records = asyncio.run(start_store(tmp_path))
    try:
        yield f"unix:{tmp_path}/store-1.sock"
    finally:
        stop_all(records)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = tabbyctl(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_apply_get_patch_delete_round_trip(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(POOL)
    code, out, err = run(capsys, "apply", "-f", str(manifest), "--store", store)
    assert code == 0, err
    assert out.splitlines() == [
        "IPPool pool-a created",
        "BGPConfiguration default created",
        "Node node-1 created",
        "BlockAffinity node-1-10-244-1-0-26 created",
        "NetworkPolicy allow-web created",
    ]
    # Every kind reads back equal to what was applied (defaults filled in, resourceVersion set).
    for doc in yaml.safe_load_all(POOL):
        args = ["get", doc["kind"], doc["metadata"]["name"], "-o", "json", "--store", store]
        if "namespace" in doc["metadata"]:
            args += ["-n", doc["metadata"]["namespace"]]
        code, out, err = run(capsys, *args)
        assert code == 0, err
        got = json.loads(out)
        assert got["kind"] == doc["kind"] and got["metadata"]["name"] == doc["metadata"]["name"]
        assert got["metadata"]["resourceVersion"].isdigit()
        for field, value in doc["spec"].items():
            assert got["spec"][field] == value
    code, out, _ = run(capsys, "get", "ippools", "-o", "wide", "--store", store)
    assert "10.244.0.0/16" in out and "pool-a" in out
    code, out, _ = run(capsys, "get", "ippool", "-l", "tier == 'silver'", "--store", store)
    assert "pool-a" not in out
    # apply again: configured, not created.
    code, out, _ = run(capsys, "apply", "-f", str(manifest), "--store", store)
    assert out.splitlines()[0] == "IPPool pool-a configured"
    code, out, err = run(
        capsys,
        "patch",
        "ippool",
        "pool-a",
        "-p",
        '{"spec": {"natOutgoing": false}}',
        "--store",
        store,
    )
    assert code == 0, err
    code, out, _ = run(capsys, "get", "ippool", "pool-a", "-o", "yaml", "--store", store)
    assert yaml.safe_load(out)["spec"].get("natOutgoing", False) is False  # defaults are omitted
    code, out, err = run(capsys, "delete", "ippool", "pool-a", "--store", store)
    assert (code, out.strip()) == (0, "IPPool pool-a deleted")
    code, _, err = run(capsys, "get", "ippool", "pool-a", "--store", store)
    assert code == 1 and "not found" in err


@pytest.mark.slow
def test_create_conflicts_and_immutable_fields(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "m.yaml"
    manifest.write_text(POOL)
    assert run(capsys, "create", "-f", str(manifest), "--store", store)[0] == 0
    code, _, err = run(capsys, "create", "-f", str(manifest), "--store", store)
    assert code == 1 and "already exists" in err
    changed = tmp_path / "changed.yaml"
    changed.write_text(POOL.replace("10.244.0.0/16", "10.245.0.0/16"))
    code, _, err = run(capsys, "apply", "-f", str(changed), "--store", store)
    assert code == 1 and "spec.cidr" in err and "nothing was changed" in err
    stale = tmp_path / "stale.yaml"
    stale.write_text(
        POOL.replace(
            "metadata: {name: pool-a, labels: {tier: gold}}",
            "metadata: {name: pool-a, resourceVersion: '1'}",
        )
    )
    code, _, err = run(capsys, "replace", "-f", str(stale), "--store", store)
    assert code == 1 and "conflict" in err


@pytest.mark.slow
def test_bad_document_in_a_batch_changes_nothing(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        POOL
        + "---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: broken}\nspec: {cidr: 10.0.0.0/8, ipipMode: Sometimes}\n"
    )
    code, _, err = run(capsys, "apply", "-f", str(bad), "--store", store)
    assert code == 1
    assert "document 6 (IPPool broken): spec.ipipMode" in err
    code, out, _ = run(capsys, "get", "ippools", "--store", store)
    assert "pool-a" not in out


def test_manifest_errors_name_document_and_field(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 10.0.0.0/8, colour: blue}\n"
    )
    with pytest.raises(CommandError) as info:
        parse_manifests([str(path)])
    assert f"{path} document 1 (IPPool p): spec.colour" in str(info.value)
    path.write_text("[unclosed\n")
    with pytest.raises(CommandError, match="not valid YAML"):
        parse_manifests([str(path)])


@pytest.mark.slow
def test_every_kind_round_trips_through_the_store(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 7: `tabbyctl` round trips for every kind (one canonical document each)."""
    from tests.resources.fixtures import CANONICAL

    manifest = tmp_path / "all.yaml"
    manifest.write_text(yaml.safe_dump_all(CANONICAL))
    code, out, err = run(capsys, "apply", "-f", str(manifest), "--store", store)
    assert code == 0, err
    assert len(out.splitlines()) == len(CANONICAL)
    ipam = {"IPAMBlock", "BlockAffinity", "IPAMHandle", "IPAMConfig"}
    for doc in CANONICAL:
        meta = doc["metadata"]
        assert isinstance(meta, dict)
        args = ["get", str(doc["kind"]), str(meta["name"]), "-o", "json", "--store", store]
        if "namespace" in meta:
            args += ["-n", str(meta["namespace"])]
        code, out, err = run(capsys, *args)
        assert code == 0, f"{doc['kind']}: {err}"
        got = json.loads(out)
        assert got["spec"] == doc["spec"], doc["kind"]
        if doc["kind"] not in ipam:  # Calico stores IPAM objects without metadata
            want = {k: v for k, v in meta.items() if k != "resourceVersion"}
            assert {k: v for k, v in got["metadata"].items() if k != "resourceVersion"} == want
