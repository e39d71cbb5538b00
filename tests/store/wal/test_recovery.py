"""WAL recovery: a torn tail is cut and logged, any other damage refuses to start.

Issue 6, Storage: "recovery truncates a torn tail and refuses, with a clear error, to start on
corruption anywhere else".
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.wal import WAL, CorruptWALError
from store.wal.segment import SECTOR, Batch, scan_segment
from tests.store.wal.util import entries, last_segment


def _build(
    wal_dir: str, batches: int, per_batch: int = 1, size: int = 40, prealloc: bool = False
) -> None:
    wal, _ = WAL.open(wal_dir, preallocate=prealloc, segment_size=_SEGMENT)
    for b in range(batches):
        first = b * per_batch + 1
        wal.save((1, 1, first - 1), entries(first, first + per_batch - 1, 1, size))
    wal.close()


def _batches(path: str) -> tuple[Batch, ...]:
    with open(path, "rb") as f:
        return scan_segment(f.read(), None).batches


_SEGMENT = 16384


def _recover(
    wal_dir: str, prealloc: bool = False
) -> tuple[list[int], tuple[int, int, int] | None, tuple[str, ...]]:
    wal, rec = WAL.open(wal_dir, preallocate=prealloc, segment_size=_SEGMENT)
    wal.close()
    return [e[0] for e in rec.entries], rec.hard_state, rec.repairs


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def test_torn_tail_at_every_byte_of_the_last_record_recovers_to_the_last_full_one(
    tmp_path: Path,
) -> None:
    """Cut the file at every offset inside the last batch: the batches before it survive."""
    wal_dir = str(tmp_path / "wal")
    _build(wal_dir, batches=4)
    seg = last_segment(wal_dir)
    last = _batches(seg)[-1]
    with open(seg, "rb") as f:
        full = f.read()
    assert last.end == len(full)
    for cut in range(last.start + 1, last.end):
        _write(seg, full[:cut])
        indices, hard, repairs = _recover(wal_dir)
        assert indices == [1, 2, 3], cut
        assert hard == (1, 1, 2)
        assert len(repairs) == 1 and "truncated torn tail" in repairs[0]
        assert os.path.getsize(seg) == last.start  # the torn bytes are gone from disk
    _write(seg, full)
    assert _recover(wal_dir)[0] == [1, 2, 3, 4]


def test_zero_filled_tail_at_every_byte_of_the_last_record(tmp_path: Path) -> None:
    """Preallocated segments: an unwritten tail reads as zeros, not as a short file."""
    wal_dir = str(tmp_path / "wal")
    _build(wal_dir, batches=3, prealloc=True)
    seg = last_segment(wal_dir)
    last = _batches(seg)[-1]
    with open(seg, "rb") as f:
        full = f.read()
    assert len(full) > last.end  # preallocated
    for cut in range(last.start, last.end):
        _write(seg, full[:cut] + bytes(len(full) - cut))
        indices, _hard, repairs = _recover(wal_dir, prealloc=True)
        if any(full[cut : last.end]):
            assert indices == [1, 2], cut
            assert bool(repairs) == (cut > last.start)
        else:  # the bytes zeroed were zeros already (high bytes of the COMMIT's count)
            assert indices == [1, 2, 3] and repairs == ()


@given(st.data())
def test_torn_multi_record_batch_at_any_offset(data: st.DataObject) -> None:
    """A 64-entry batch cut anywhere: the batch is atomic, none of its entries replay."""
    src = _template(64)
    seg = last_segment(src)
    last = _batches(seg)[-1]
    cut = data.draw(st.integers(last.start + 1, last.end - 1))
    work = src + f"-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(src, work)
    try:
        with open(last_segment(work), "r+b") as f:
            f.truncate(cut)
        indices, hard, repairs = _recover(work)
        assert indices == list(range(1, 129)) and hard == (1, 1, 64) and repairs
    finally:
        shutil.rmtree(work)


_TEMPLATES: dict[int, str] = {}


def _template(per_batch: int) -> str:
    """A WAL of three batches, built once per session under a private temp dir."""
    if per_batch not in _TEMPLATES:
        import tempfile

        base = tempfile.mkdtemp(prefix="tabby-wal-template-")
        wal_dir = os.path.join(base, "wal")
        _build(wal_dir, batches=3, per_batch=per_batch)
        os.unlink(os.path.join(wal_dir, "LOCK"))
        _TEMPLATES[per_batch] = wal_dir
    return _TEMPLATES[per_batch]


@pytest.fixture(scope="module", autouse=True)
def _drop_templates() -> object:
    yield None
    for path in _TEMPLATES.values():
        shutil.rmtree(os.path.dirname(path), ignore_errors=True)
    _TEMPLATES.clear()


def test_crc_failure_in_the_final_record_is_a_torn_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wal_dir = str(tmp_path / "wal")
    _build(wal_dir, batches=3)
    seg = last_segment(wal_dir)
    with open(seg, "r+b") as f:
        f.seek(-3, os.SEEK_END)  # inside the final COMMIT record
        byte = f.read(1)
        f.seek(-3, os.SEEK_END)
        f.write(bytes([byte[0] ^ 0x40]))
    monkeypatch.setattr(logging.getLogger("tabby"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="tabby.store.wal"):
        indices, _hard, repairs = _recover(wal_dir)
    assert indices == [1, 2] and "crc mismatch" in repairs[0]
    assert any("wal.torn_tail_repaired" in r.getMessage() for r in caplog.records)


def test_crc_failure_before_acknowledged_records_refuses(tmp_path: Path) -> None:
    """Damage in an earlier record of the last segment: later batches were acknowledged."""
    wal_dir = str(tmp_path / "wal")
    _build(wal_dir, batches=5)
    seg = last_segment(wal_dir)
    second = _batches(seg)[1]
    bad_at = second.frames[0].offset
    with open(seg, "r+b") as f:
        f.seek(bad_at + 20)
        f.write(b"\xff")
    before = Path(seg).read_bytes()
    with pytest.raises(CorruptWALError) as info:
        WAL.open(wal_dir)
    assert info.value.path == seg and info.value.offset == bad_at
    assert seg in str(info.value) and f"offset {bad_at}" in str(info.value)
    assert Path(seg).read_bytes() == before  # refusing touches nothing


def test_damage_in_an_earlier_segment_refuses_even_at_its_end(tmp_path: Path) -> None:
    wal_dir = str(tmp_path / "wal")
    wal, _ = WAL.open(wal_dir, segment_size=4096, preallocate=False)
    for i in range(1, 60):
        wal.save((1, 1, i - 1), entries(i, i, 1, size=200))
    first_seg = wal.segment_paths[0]
    wal.close()
    with open(first_seg, "r+b") as f:
        f.seek(-2, os.SEEK_END)  # the final record of a segment that is not the last
        f.write(b"\x00\x01")
    with pytest.raises(CorruptWALError, match="not the last") as info:
        WAL.open(wal_dir)
    assert info.value.path == first_seg


def test_missing_segment_refuses(tmp_path: Path) -> None:
    wal_dir = str(tmp_path / "wal")
    wal, _ = WAL.open(wal_dir, segment_size=4096)
    for i in range(1, 60):
        wal.save((1, 1, i - 1), entries(i, i, 1, size=200))
    paths = wal.segment_paths
    wal.close()
    os.unlink(paths[1])
    with pytest.raises(CorruptWALError, match="missing"):
        WAL.open(wal_dir)


def test_unwritten_sector_inside_the_last_batch_is_torn(tmp_path: Path) -> None:
    """Pages of the in-flight write land in any order: a zero sector before an intact COMMIT."""
    wal_dir = str(tmp_path / "wal")
    _build(wal_dir, batches=3, per_batch=16, size=200)
    seg = last_segment(wal_dir)
    last = _batches(seg)[-1]
    sector = (last.start // SECTOR + 2) * SECTOR
    assert sector + SECTOR < last.end - 24
    with open(seg, "r+b") as f:
        f.seek(sector)
        f.write(bytes(SECTOR))
    indices, _hard, repairs = _recover(wal_dir)
    assert indices == list(range(1, 33)) and "partly unwritten" in repairs[0]


def test_garbage_inside_an_acknowledged_last_batch_refuses(tmp_path: Path) -> None:
    """Non-zero damage before an intact COMMIT is not what a torn write leaves: refuse."""
    wal_dir = str(tmp_path / "wal")
    _build(wal_dir, batches=3, per_batch=16, size=200)
    seg = last_segment(wal_dir)
    last = _batches(seg)[-1]
    with open(seg, "r+b") as f:
        f.seek(last.frames[3].offset + 30)
        f.write(b"\xa5" * 8)
    with pytest.raises(CorruptWALError, match="intact records"):
        WAL.open(wal_dir)


def test_torn_new_segment_is_removed_and_the_previous_one_continues(tmp_path: Path) -> None:
    """A crash right after a rollover created a file whose header or first batch is torn."""
    wal_dir = str(tmp_path / "wal")
    wal, _ = WAL.open(wal_dir, segment_size=4096, preallocate=False)
    i = 1
    while len(wal.segment_paths) < 2:
        wal.save((1, 1, i - 1), entries(i, i, 1, size=200))
        i += 1
    newest = wal.segment_paths[-1]
    wal.close()
    for keep in (0, 10, 60, os.path.getsize(newest) - 1):
        data = Path(newest).read_bytes()
        _write(newest, data[:keep])
        wal, rec = WAL.open(wal_dir, segment_size=4096, preallocate=False)
        assert rec.last_index == i - 2 and not os.path.exists(newest)
        assert "removed" in rec.repairs[0]
        wal.save((1, 1, i - 2), entries(i - 1, i - 1, 1, size=200))  # rolls over again
        assert wal.segment_paths[-1] == newest
        wal.close()
    wal, rec = WAL.open(wal_dir, segment_size=4096)
    assert rec.last_index == i - 1 and rec.repairs == ()
    wal.close()


def test_damaged_header_of_a_segment_with_acknowledged_batches_refuses(tmp_path: Path) -> None:
    wal_dir = str(tmp_path / "wal")
    _build(wal_dir, batches=3)
    seg = last_segment(wal_dir)
    with open(seg, "r+b") as f:
        f.seek(12)
        f.write(b"\x07")
    with pytest.raises(CorruptWALError, match="intact records"):
        WAL.open(wal_dir)


def test_writing_after_a_repair_leaves_no_stale_bytes(tmp_path: Path) -> None:
    wal_dir = str(tmp_path / "wal")
    _build(wal_dir, batches=3, per_batch=8)
    seg = last_segment(wal_dir)
    last = _batches(seg)[-1]
    with open(seg, "r+b") as f:
        f.truncate(last.end - 5)
    wal, rec = WAL.open(wal_dir, preallocate=False)
    assert rec.last_index == 16
    wal.save((2, 2, 16), entries(17, 17, 2, size=10))  # shorter than the cut batch
    wal.close()
    wal, rec = WAL.open(wal_dir)
    assert rec.last_index == 17 and rec.repairs == () and rec.hard_state == (2, 2, 16)
    wal.close()


def test_zero_bytes_after_the_last_batch_lose_nothing(tmp_path: Path) -> None:
    wal_dir = str(tmp_path / "wal")
    _build(wal_dir, batches=3)
    with open(last_segment(wal_dir), "ab") as f:
        f.write(bytes(5000))
    indices, _hard, repairs = _recover(wal_dir)
    assert indices == [1, 2, 3] and repairs == ()


def test_foreign_file_name_refuses(tmp_path: Path) -> None:
    wal_dir = str(tmp_path / "wal")
    _build(wal_dir, batches=1)
    Path(wal_dir, "junk.wal").write_bytes(b"")
    with pytest.raises(CorruptWALError, match="file name"):
        WAL.open(wal_dir)


def test_duplicated_batch_with_valid_crc_refuses(tmp_path: Path) -> None:
    """A whole intact batch written twice is not a torn write: its sequence number gives it away."""
    wal_dir = str(tmp_path / "wal")
    _build(wal_dir, batches=3)
    seg = last_segment(wal_dir)
    last = _batches(seg)[-1]
    data = Path(seg).read_bytes()
    Path(seg).write_bytes(data + data[last.start : last.end])
    with pytest.raises(CorruptWALError, match="commit record says batch 2") as info:
        WAL.open(wal_dir)
    assert info.value.offset == len(data) + (last.end - last.start) - 24


@given(
    st.lists(st.tuples(st.integers(1, 8), st.integers(0, 600)), min_size=1, max_size=3),
    st.integers(1, 40),
    st.integers(0, 700),
    st.booleans(),
    st.data(),
)
def test_power_loss_in_the_last_save_never_refuses_and_keeps_acknowledged_batches(
    prior: list[tuple[int, int]],
    count: int,
    size: int,
    prealloc: bool,
    data: st.DataObject,
) -> None:
    """Lose any subset of the sectors of the last, unacknowledged save (and, without
    preallocation, any part of its file growth): recovery yields the log before that save, or
    after it if every byte landed, and never mistakes the torn write for corruption."""
    import tempfile
    from unittest import mock

    # The crash is crafted from the bytes below, so real flushes would only cost time.
    with (
        tempfile.TemporaryDirectory() as tmp,
        mock.patch.object(os, "fdatasync", _no_flush),
        mock.patch.object(os, "fsync", _no_flush),
    ):
        wal_dir = os.path.join(tmp, "wal")
        wal, _ = WAL.open(wal_dir, segment_size=1 << 16, preallocate=prealloc)
        index = 1
        for n, psize in prior:
            wal.save((1, 1, index - 1), entries(index, index + n - 1, 1, psize))
            index += n
        seg = wal.segment_paths[-1]
        old = Path(seg).read_bytes()
        old_end = _batches(seg)[-1].end
        wal.save((2, 1, index - 1), entries(index, index + count - 1, 2, size))
        new = Path(seg).read_bytes()
        new_end = _batches(seg)[-1].end
        wal.close()

        crashed = bytearray(new)
        first_sector, last_sector = old_end // SECTOR, (new_end - 1) // SECTOR
        landed = data.draw(
            st.lists(
                st.booleans(),
                min_size=last_sector - first_sector + 1,
                max_size=last_sector - first_sector + 1,
            )
        )
        for k, ok in enumerate(landed):
            if not ok:  # the sector keeps what the disk held before: old bytes, else zeros
                start = (first_sector + k) * SECTOR
                stop = min(start + SECTOR, len(crashed))
                crashed[start:stop] = old[start:stop].ljust(stop - start, b"\0")
        if not prealloc:
            crashed = crashed[: data.draw(st.integers(old_end, len(crashed)))]
        Path(seg).write_bytes(bytes(crashed))

        wal, rec = WAL.open(wal_dir, segment_size=1 << 16, preallocate=prealloc)
        wal.close()
        before = index - 1
        complete = bytes(crashed[old_end:new_end]) == new[old_end:new_end]
        assert rec.last_index == (index + count - 1 if complete else before)
        assert rec.hard_state == ((2, 1, before) if complete else (1, 1, before - prior[-1][0]))


def _no_flush(fd: object) -> None:
    """Stands in for fdatasync/fsync where the test builds the post-crash bytes itself."""


def test_zero_data_before_the_damage_does_not_excuse_it(tmp_path: Path) -> None:
    """Zeros inside records that check out are data, not an unwritten page: damage after them
    in an acknowledged final batch still refuses."""
    wal_dir = str(tmp_path / "wal")
    wal, _ = WAL.open(wal_dir, preallocate=False, segment_size=_SEGMENT)
    wal.save((1, 1, 0), entries(1, 2, 1))
    zeros = (3, 1, 0, bytes(2048))  # a value of zeros spans whole sectors
    wal.save((1, 1, 2), [zeros, *entries(4, 8, 1, size=300)])
    wal.close()
    seg = last_segment(wal_dir)
    last = _batches(seg)[-1]
    victim = last.frames[3]  # entry 6, after the zero-valued entry 3
    with open(seg, "r+b") as f:
        f.seek(victim.offset + 40)
        f.write(b"\x5a")
    with pytest.raises(CorruptWALError, match="intact records") as info:
        WAL.open(wal_dir)
    assert info.value.offset == victim.offset
