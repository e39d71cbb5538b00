"""`tabbyctl store ...` against a real member: etcdctl-like output, lease and maintenance
commands, and snapshot save/restore into a new cluster (issue 6 "snapshot save and restore for
disaster recovery")."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import Callable

import pytest

from ctl.store import main as store_main
from tests.store.server.cluster import Cluster

pytestmark = pytest.mark.slow


def ctl(c: Cluster, *args: str, ok: bool = True) -> str:
    """Run `tabbyctl store ...` in this process (the console entry point, argv and all)."""
    eps = ",".join(c.client_endpoint(i) for i in c.ids)
    out, err = io.BytesIO(), io.StringIO()
    stdout = io.TextIOWrapper(out, write_through=True)
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(err):
        code = store_main(["store", "--endpoints", eps, *args])
    stdout.flush()
    if ok:
        assert code == 0, err.getvalue()
    else:
        assert code != 0
    return out.getvalue().decode() + (err.getvalue() if not ok else "")


def test_ctl_get_put_del_lease_status_compact(make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster(1)
    c.start_all()
    asyncio.run(c.wait_leader())
    assert ctl(c, "put", "/a/1", "one") == "OK\n"
    ctl(c, "put", "/a/2", "two")
    assert ctl(c, "get", "/a/", "--prefix") == "/a/1\none\n/a/2\ntwo\n"
    assert ctl(c, "get", "/a/", "--prefix", "--keys-only") == "/a/1\n/a/2\n"
    assert ctl(c, "get", "/a/", "--prefix", "--count-only") == "2\n"
    out = ctl(c, "lease", "grant", "60")
    lease = out.split()[1]
    assert out == f"lease {lease} granted with TTL(60s)\n"
    ctl(c, "put", "/a/3", "three", "--lease", lease)
    assert "attached keys([/a/3])" in ctl(c, "lease", "timetolive", lease, "--keys")
    assert "keepalived with TTL(60)" in ctl(c, "lease", "keep-alive", lease, "--once")
    assert lease in ctl(c, "lease", "list")
    ctl(c, "lease", "revoke", lease)
    assert ctl(c, "get", "/a/3") == ""
    assert ctl(c, "del", "/a/1") == "1\n"
    assert "leader 1" in ctl(c, "status")
    assert "m1" in ctl(c, "member", "list")
    ctl(c, "compact", "3")
    err = ctl(c, "get", "/a/2", "--rev", "2", ok=False)
    assert "compacted" in err
    assert ctl(c, "alarm", "list") == ""
    # The revoke and a compaction free space that stays allocated until a defrag.
    ctl(c, "put", "/a/2", "two again")
    ctl(c, "compact", "7")
    before = ctl(c, "-w", "json", "status")
    assert ctl(c, "defrag").startswith("Finished defragmenting the cluster (db ")
    after = ctl(c, "-w", "json", "status")
    (b,), (a,) = json.loads(before), json.loads(after)
    assert b["db_size"] > b["db_size_in_use"] == a["db_size_in_use"] == a["db_size"]


def test_snapshot_save_and_restore_into_a_new_cluster(make_cluster: Callable[..., Cluster]) -> None:
    old = make_cluster(1)
    old.start_all()
    asyncio.run(old.wait_leader())
    for i in range(20):
        ctl(old, "put", f"/b/{i:02d}", f"v{i}")
    backup = old.root / "backup.snap"
    assert "Snapshot saved" in ctl(old, "snapshot", "save", str(backup))
    new = make_cluster(1)
    data_dir = new.root / "m1.data"
    out = ctl(
        old,
        "snapshot",
        "restore",
        str(backup),
        "--data-dir",
        str(data_dir),
        "--initial-cluster",
        f"1={new.peer[1]}",
    )
    assert "restored revision 21" in out
    old.kill(1)
    new.start(1)
    asyncio.run(new.wait_leader())
    assert ctl(new, "get", "/b/", "--prefix", "--count-only") == "20\n"
    assert ctl(new, "put", "/b/new", "x") == "OK\n"
    assert ctl(new, "-w", "json", "get", "/b/new").count('"mod_revision": 22') == 1
    damaged = old.root / "damaged.snap"
    damaged.write_bytes(backup.read_bytes()[:-1] + b"!")
    err = ctl(
        old,
        "snapshot",
        "restore",
        str(damaged),
        "--data-dir",
        str(new.root / "x"),
        "--initial-cluster",
        f"1={new.peer[1]}",
        ok=False,
    )
    assert "checksum mismatch" in err
