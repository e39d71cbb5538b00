"""Disaster recovery: `snapshot save` files and `snapshot restore` into a fresh data directory.

A backup file is `MAGIC | sha256(image) | image`, where image is a member's state image
(membership and KV state, `Member.snapshot_bytes`). Restoring follows `etcdctl snapshot restore`:
every member of the *new* cluster restores the same file with the same member list, which gives
each a data dir holding one snapshot at Raft index 1, term 1, whose configuration is the new
member list; the old cluster's log and membership are discarded, the keys, revisions and leases
are kept. Restoring refuses a damaged file and a data dir that already holds anything.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import msgpack

from store.kv import KVStateMachine
from store.raft import ConfState
from store.server.member import SNAPSHOT_FORMAT, MemberInfo, encode_conf_state
from store.wal import open_storage

MAGIC = b"TABBYSNAP1\n"


class BackupError(ValueError):
    """The backup file is damaged or the target is not empty."""


def encode_backup(image: bytes) -> bytes:
    return MAGIC + hashlib.sha256(image).digest() + image


def decode_backup(blob: bytes) -> bytes:
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 32:
        raise BackupError("not a tabby-store snapshot file")
    digest = blob[len(MAGIC) : len(MAGIC) + 32]
    image = blob[len(MAGIC) + 32 :]
    if hashlib.sha256(image).digest() != digest:
        raise BackupError("snapshot file checksum mismatch: the file is damaged")
    return image


def restore(blob: bytes, data_dir: Path, cluster: dict[int, str], names: dict[int, str]) -> int:
    """Write a data dir for one member of a new cluster; returns the restored KV revision."""
    image = decode_backup(blob)
    try:
        fmt, _members, kv = msgpack.unpackb(image)
    except Exception as exc:
        raise BackupError(f"snapshot image does not decode: {exc}") from None
    if fmt != SNAPSHOT_FORMAT:
        raise BackupError(f"snapshot format {fmt}, this build reads {SNAPSHOT_FORMAT}")
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BackupError(f"{data_dir} is not empty; restore needs a fresh data directory")
    machine = KVStateMachine.from_snapshot(kv)
    # The new log starts after index 1; entries the old cluster applied must not shadow it.
    machine.applied_index = 1
    members = [
        MemberInfo(mid, ep, names.get(mid, str(mid))).to_wire()
        for mid, ep in sorted(cluster.items())
    ]
    data: bytes = msgpack.packb(
        [SNAPSHOT_FORMAT, members, machine.to_snapshot()], use_bin_type=True
    )
    conf = encode_conf_state(ConfState(frozenset(cluster)))
    os.makedirs(data_dir, exist_ok=True)
    wal, snaps, _ = open_storage(str(data_dir))
    try:
        snaps.save(1, 1, conf, data)
        wal.save((1, 0, 1), [], (1, 1, conf))
    finally:
        wal.close()
        snaps.close()
    return machine.revision
