"""MemoryStorage and RaftLog: the stable-log contract the WAL layer fills on restart (§5.3, §7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.raft import ConfState, Entry, HardState, MemoryStorage, Snapshot, SnapshotMeta
from store.raft.config import Config, ConfigError
from store.raft.log import RaftLog
from store.raft.storage import (
    CompactedError,
    SnapshotOutOfDateError,
    StorageError,
    UnavailableError,
    bootstrap,
)
from store.raft.types import ConfChange, ConfChangeDecodeError, ConfChangeKind


def _log(n: int, term: int = 1) -> MemoryStorage:
    storage = MemoryStorage()
    storage.append([Entry(term, i, data=b"%d" % i) for i in range(1, n + 1)])
    return storage


def test_append_truncates_a_conflicting_suffix() -> None:
    """Figure 2 AppendEntries rule 3: "delete the existing entry and all that follow it"."""
    storage = _log(5)
    storage.append([Entry(2, 3), Entry(2, 4)])
    assert storage.last_index() == 4
    assert [storage.term(i) for i in range(1, 5)] == [1, 1, 2, 2]


def test_append_with_a_gap_is_refused() -> None:
    storage = _log(3)
    with pytest.raises(UnavailableError):
        storage.append([Entry(1, 6)])


def test_compaction_keeps_the_sentinel_and_refuses_old_indexes() -> None:
    """§7: entries up to the snapshot index are discarded; their terms are gone except the
    last one, which AppendEntries consistency checks still need."""
    storage = _log(10)
    storage.create_snapshot(6, ConfState(frozenset({1})), b"image")
    storage.compact(6)
    assert storage.first_index() == 7
    assert storage.term(6) == 1
    with pytest.raises(CompactedError):
        storage.term(5)
    with pytest.raises(CompactedError):
        storage.entries(6, 8)
    assert [e.index for e in storage.entries(7, 11)] == [7, 8, 9, 10]
    with pytest.raises(StorageError):
        storage.compact(9)  # beyond the snapshot: a follower could need these


def test_entries_respects_the_size_budget_but_returns_at_least_one() -> None:
    storage = MemoryStorage()
    storage.append([Entry(1, i, data=b"x" * 100) for i in range(1, 6)])
    assert len(storage.entries(1, 6, max_size=1)) == 1
    assert len(storage.entries(1, 6, max_size=300)) == 2


def test_apply_snapshot_replaces_the_log_and_refuses_older_ones() -> None:
    storage = _log(3)
    snap = Snapshot(SnapshotMeta(20, 4, ConfState(frozenset({1, 2}))), b"s")
    storage.apply_snapshot(snap)
    assert (storage.first_index(), storage.last_index()) == (21, 20)
    assert storage.initial_state() == (HardState(), ConfState(frozenset({1, 2})))
    with pytest.raises(SnapshotOutOfDateError):
        storage.apply_snapshot(Snapshot(SnapshotMeta(10, 4), b""))


def test_bootstrap_writes_the_initial_members_as_committed_conf_changes() -> None:
    storage = bootstrap([3, 1, 2])
    assert storage.hard_state == HardState(term=1, vote=0, commit=3)
    changes = [ConfChange.decode(e.data) for e in storage.entries(1, 4)]
    assert [(c.kind, c.node_id) for c in changes] == [
        (ConfChangeKind.ADD_NODE, n) for n in (1, 2, 3)
    ]


def test_conf_change_codec_round_trips_and_rejects_junk() -> None:
    change = ConfChange(ConfChangeKind.ADD_LEARNER, 7, b"peer-url")
    assert ConfChange.decode(change.encode()) == change
    for junk in (b"", b"\x09" + b"\x00" * 8, b"\x00" * 9):
        with pytest.raises(ConfChangeDecodeError):
            ConfChange.decode(junk)


def test_raft_log_hands_out_only_stable_committed_entries() -> None:
    log = RaftLog(_log(3))
    log.append([Entry(1, 4), Entry(1, 5)])
    log.commit_to(5)
    assert [e.index for e in log.next_committed_entries(1 << 20)] == [1, 2, 3]
    log.storage.append(log.unstable)
    log.stable_to(5, 1)
    assert [e.index for e in log.next_committed_entries(1 << 20)] == [1, 2, 3, 4, 5]


def test_stable_to_ignores_a_tail_replaced_in_the_meantime() -> None:
    log = RaftLog(_log(3))
    log.append([Entry(1, 4)])
    log.append([Entry(2, 4)])
    log.stable_to(4, 1)
    assert log.unstable == [Entry(2, 4)]


@pytest.mark.parametrize(
    "bad",
    [
        {"id": 0},
        {"id": 1, "heartbeat_tick": 0},
        {"id": 1, "election_tick": 1},
        {"id": 1, "max_inflight_msgs": 0},
        {"id": 1, "snapshot_chunk_size": 0},
        {"id": 1, "learner_promotion_lag": -1},
    ],
)
def test_config_validation(bad: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        Config(**bad).validate()  # type: ignore[arg-type]


def test_defaults_are_etcds() -> None:
    """etcd: --heartbeat-interval 100 ms, --election-timeout 1000 ms, pre-vote and
    check-quorum on."""
    config = Config(id=1)
    assert config.heartbeat_tick * config.tick_interval == pytest.approx(0.1)
    assert config.election_tick * config.tick_interval == pytest.approx(1.0)
    assert config.pre_vote and config.check_quorum


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.integers(1, 40), st.integers(1, 5), st.integers(1, 9)),
            st.tuples(st.just("compact"), st.integers(1, 40), st.just(0), st.just(0)),
        ),
        max_size=30,
    )
)
def test_memory_storage_matches_a_list_model(ops: list[tuple[str, int, int, int]]) -> None:
    """Differential test: MemoryStorage against a plain dict of index -> term."""
    storage = MemoryStorage()
    model: dict[int, int] = {}
    snapshot_index = 0
    for op, index, count, term in ops:
        last = storage.last_index()
        if op == "append":
            start = min(index, last + 1)
            if start <= snapshot_index:
                continue
            new = [Entry(term, start + i) for i in range(count)]
            storage.append(new)
            model = {i: t for i, t in model.items() if i < start}
            model.update({e.index: e.term for e in new})
        elif snapshot_index < index <= last:
            storage.create_snapshot(index, ConfState(), b"")
            storage.compact(index)
            snapshot_index = index
        assert storage.last_index() == max(model, default=0)
        assert storage.first_index() == snapshot_index + 1
        for i in range(snapshot_index + 1, storage.last_index() + 1):
            assert storage.term(i) == model[i]
