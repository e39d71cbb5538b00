"""Start real tabby-store members for tests that need a store (shared by several test areas)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from ctl.cluster.procs import NotifyListener, ProcessRecord, spawn, stop

ROOT = Path(__file__).resolve().parent.parent


def member_config(tmp: Path, member_id: int, ids: Sequence[int]) -> Path:
    peers = ", ".join(f'"{i}=unix:{tmp}/peer-{i}.sock"' for i in ids)
    conf = tmp / f"store-{member_id}.toml"
    conf.write_text(
        f'name = "m{member_id}"\nid = {member_id}\ndata_dir = "{tmp}/data-{member_id}"\n'
        f'client_endpoints = ["unix:{tmp}/store-{member_id}.sock"]\n'
        f'peer_endpoint = "unix:{tmp}/peer-{member_id}.sock"\n'
        f"initial_cluster = [{peers}]\n"
        f'run_dir = "{tmp}"\nstate_dir = "{tmp}"\n'
    )
    return conf


async def start_store(tmp: Path, members: int = 1, timeout: float = 30.0) -> list[ProcessRecord]:
    """Start `members` store processes and wait for each to send READY=1."""
    ids = list(range(1, members + 1))
    records: list[ProcessRecord] = []
    waits = []
    for i in ids:
        conf = member_config(tmp, i, ids)
        rec = ProcessRecord(
            node=f"m{i}",
            daemon="store",
            argv=[sys.executable, "-m", "store.main", "--config", str(conf)],
            log=str(tmp / f"store-{i}.log"),
            socket=f"unix:{tmp}/store-{i}.sock",
        )
        listener = NotifyListener(tmp / f"notify-store-{i}.sock")
        proc = spawn(rec, {"PYTHONPATH": str(ROOT)}, listener.path)
        records.append(rec)
        waits.append((listener, proc, rec))
    try:
        await asyncio.gather(
            *(listener.wait_ready(proc, rec, timeout) for listener, proc, rec in waits)
        )
    except BaseException:
        for rec in records:
            stop(rec)
        raise
    finally:
        for listener, _, _ in waits:
            listener.close()
    return records


def stop_all(records: Sequence[ProcessRecord]) -> None:
    for rec in records:
        stop(rec, timeout=10)
