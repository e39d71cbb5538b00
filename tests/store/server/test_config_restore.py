"""Config validation (every mistake names its key) and backup files (damage is refused)."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from runtime.config import ConfigError
from store.kv import KVStateMachine, PutRequest
from store.server.config import StoreConfig, parse_initial_cluster
from store.server.member import SNAPSHOT_FORMAT
from store.server.restore import BackupError, decode_backup, encode_backup, restore
from store.wal import open_storage


def test_initial_cluster_parses_and_rejects_bad_items() -> None:
    assert parse_initial_cluster(["1=unix:/a", "2=tcp://127.0.0.1:2380"]) == {
        1: "unix:/a",
        2: "tcp://127.0.0.1:2380",
    }
    for bad in (["x=unix:/a"], ["0=unix:/a"], ["1=ftp://h"], ["1=unix:/a", "1=unix:/b"]):
        with pytest.raises(ConfigError, match="initial_cluster"):
            parse_initial_cluster(bad)


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"id": 0}, "id"),
        ({"election_timeout": 0.05}, "election_timeout"),
        ({"initial_cluster": ["2=unix:/p"]}, "initial_cluster"),
        ({"initial_cluster": ["1=unix:/other"]}, "initial_cluster"),
        ({"client_endpoints": []}, "client_endpoints"),
    ],
)
def test_config_mistakes_name_the_key(settings: dict[str, object], key: str) -> None:
    base: dict[str, object] = {"id": 1, "peer_endpoint": "unix:/p"}
    with pytest.raises(ConfigError, match=key):
        StoreConfig(**{**base, **settings}).validate()  # type: ignore[arg-type]


def test_default_config_is_a_cluster_of_one() -> None:
    cfg = StoreConfig(id=3, peer_endpoint="unix:/p")
    cfg.validate()
    assert cfg.cluster() == {3: "unix:/p"} and cfg.election_ticks == 10


def _image() -> bytes:
    m = KVStateMachine()
    m.apply(5, PutRequest(b"k", b"v"))
    data: bytes = msgpack.packb([SNAPSHOT_FORMAT, [], m.to_snapshot()], use_bin_type=True)
    return data


def test_backup_checksum_refuses_any_flipped_byte() -> None:
    blob = encode_backup(_image())
    assert decode_backup(blob) == _image()
    for i in range(0, len(blob), max(1, len(blob) // 17)):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises(BackupError):
            decode_backup(bytes(bad))


def test_restore_writes_a_snapshot_at_index_one_with_the_new_members(tmp_path: Path) -> None:
    d = tmp_path / "data"
    assert restore(encode_backup(_image()), d, {1: "unix:/a", 2: "unix:/b"}, {}) == 2
    wal, snaps, restored = open_storage(str(d))
    try:
        assert restored.snapshot is not None
        assert (restored.snapshot.index, restored.snapshot.term) == (1, 1)
        assert restored.hard_state == (1, 0, 1)
    finally:
        wal.close()
        snaps.close()
    with pytest.raises(BackupError, match="not empty"):
        restore(encode_backup(_image()), d, {1: "unix:/a"}, {})
