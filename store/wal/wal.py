"""The write-ahead log: group-committed batches in segment files, and recovery at open.

Durability contract (issue 6, "a crash at any instant loses nothing that was acknowledged"):
`save()` returns only after its batch's bytes are written and fdatasynced, and, when the batch
started a new segment file, after the directory is fsynced too. One `save()` = one batch = one
write and exactly one fdatasync of the segment (group commit, the Ready contract of
etcd-io/raft: persist entries and hard state before sending messages).

Recovery (`WAL.open`) reads every segment, applies whole batches only (see record.py), rebuilds
the logical log by replay.py's rules, repairs a torn tail of the last segment (truncate, or
delete a segment that never got a batch) and refuses with CorruptWALError on any other damage:
a missing segment, a bad header, a bad record followed by intact ones, or a log that does not
replay (gaps).

Preallocation: a new segment is reserved with posix_fallocate. A full disk then shows up when a
segment is created (the batch is not written at all, the WAL stays usable) rather than halfway
through a batch, and on ext4 an fdatasync that does not grow the file is cheaper (measured in
bench/store_wal.py). The reserved tail reads as zeros, which the scan treats as end of data.

A failed write or fdatasync poisons the WAL (WALFailedError from then on): after a failed fsync
the kernel may have dropped the dirty pages, so only a restart and recovery tell the truth.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

from runtime.log import get_logger
from store.wal.errors import CorruptWALError, StorageError, WALFailedError
from store.wal.fsutil import DirLock, ensure_dir, fsync_dir, preallocate, read_data
from store.wal.record import (
    CARRIED,
    COMMIT_FRAME_SIZE,
    ENTRY,
    HARD_STATE,
    SNAPSHOT,
    EntryTuple,
    Frame,
    HardStateTuple,
    SnapshotMetaTuple,
    decode_entry,
    decode_hard_state,
    decode_snapshot,
    encode_commit,
    encode_entry,
    encode_hard_state,
    encode_snapshot,
)
from store.wal.replay import LogShape
from store.wal.segment import (
    SegmentHeader,
    SegmentScan,
    encode_segment_header,
    parse_segment_name,
    scan_segment,
    segment_name,
)

DEFAULT_SEGMENT_SIZE = 64 << 20
# Snapshot markers restated at the head of each new segment (>= SnapshotStore's default keep).
CARRIED_MARKERS = 8
SLOW_SYNC_SECONDS = 1.0
_log = get_logger("store.wal")


@dataclass(frozen=True, slots=True)
class RecoveredState:
    """What the WAL held at open: the state to hand to the Raft core."""

    hard_state: HardStateTuple | None
    snapshot_meta: SnapshotMetaTuple | None
    """The newest snapshot marker saved (None if none is retained)."""
    entries: list[EntryTuple]
    """Every retained entry, in index order, including entries a snapshot already covers."""
    snapshots: tuple[tuple[int, int], ...] = ()
    """(index, term) of every snapshot marker in the retained segments, oldest first."""
    repairs: tuple[str, ...] = field(default=())
    """What recovery cut off (a torn tail), one sentence each; empty when the WAL was clean."""

    @property
    def first_index(self) -> int | None:
        return self.entries[0][0] if self.entries else None

    @property
    def last_index(self) -> int | None:
        return self.entries[-1][0] if self.entries else None

    def term_at(self, index: int) -> int | None:
        first = self.first_index
        if first is None or not first <= index < first + len(self.entries):
            return None
        return self.entries[index - first][1]


@dataclass(slots=True)
class WALStats:
    """Counters since open, for metrics (cf. etcd's wal_fsync_duration_seconds)."""

    saves: int = 0
    bytes_written: int = 0
    sync_seconds_total: float = 0.0
    sync_seconds_max: float = 0.0
    segments_created: int = 0
    segments_released: int = 0


@dataclass(slots=True)
class _Segment:
    seq: int
    first_index: int
    path: str


@dataclass(slots=True)
class _Replayed:
    shape: LogShape
    hard_state: HardStateTuple | None = None
    snapshot: SnapshotMetaTuple | None = None
    markers: list[SnapshotMetaTuple] = field(default_factory=list)


class WAL:
    """A single-writer write-ahead log in one directory. Build it with `WAL.open`."""

    def __init__(
        self,
        directory: str,
        lock: DirLock,
        segment_size: int,
        use_prealloc: bool,
        segments: list[_Segment],
        replayed: _Replayed,
        next_batch: int,
        offset: int,
    ) -> None:
        self.directory = directory
        self._lock = lock
        self._segment_size = segment_size
        self._prealloc = use_prealloc
        self._segments = segments
        self._shape = replayed.shape
        self._hard_state = replayed.hard_state
        self._snapshot = replayed.snapshot
        self._recent_markers = replayed.markers[-CARRIED_MARKERS:]
        self._next_batch = next_batch
        self._offset = offset
        self._fd: int | None = None
        self._failed: BaseException | None = None
        self._closed = False
        self.stats = WALStats()
        if segments:
            self._fd = os.open(segments[-1].path, os.O_WRONLY | os.O_CLOEXEC)
            if self._prealloc:
                try:
                    self._prealloc = preallocate(self._fd, segment_size)
                except OSError as exc:
                    # A full disk must not stop a member from starting (it still serves reads,
                    # deletes and compaction); writes will meet the error where it matters.
                    _log.warning("wal.preallocate_failed", path=segments[-1].path, error=str(exc))

    # ----------------------------------------------------------------- open and recovery

    @classmethod
    def open(
        cls,
        directory: str,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        preallocate: bool = True,
    ) -> tuple[WAL, RecoveredState]:
        """Lock `directory` (created if missing), recover its log and open it for appending.

        Raises DataDirLockedError if another opener holds it and CorruptWALError if the log is
        damaged anywhere a crash cannot explain; a torn tail is cut off and logged.
        """
        if segment_size < 4096:
            raise ValueError(f"segment_size {segment_size} is below 4096 bytes")
        ensure_dir(directory)
        lock = DirLock.acquire(directory)
        try:
            return cls._recover(directory, lock, segment_size, preallocate)
        except BaseException:
            lock.release()
            raise

    @classmethod
    def _recover(
        cls, directory: str, lock: DirLock, segment_size: int, use_prealloc: bool
    ) -> tuple[WAL, RecoveredState]:
        segments = _list_segments(directory)
        replayed = _Replayed(LogShape(keep_data=True))
        repairs: list[str] = []
        next_batch: int | None = None
        scans: list[SegmentScan] = []
        for position, seg in enumerate(segments):
            scan = scan_segment(read_data(seg.path), next_batch)
            last = position == len(segments) - 1
            _check_scan(seg, scan, last)
            for batch in scan.batches:
                _replay_batch(replayed, seg.path, batch.frames)
            if scan.header is not None:
                next_batch = scan.header.first_batch + len(scan.batches)
            scans.append(scan)

        # Every check passed: only now touch the disk to cut a torn tail.
        if segments:
            repair = _repair_tail(directory, segments[-1], scans[-1])
            if repair is not None:
                repairs.append(repair)
                if not scans[-1].batches:
                    segments.pop()
                    scans.pop()
        for text in repairs:
            _log.warning("wal.torn_tail_repaired", detail=text)

        recovered = RecoveredState(
            hard_state=replayed.hard_state,
            snapshot_meta=replayed.snapshot,
            entries=replayed.shape.entries,
            snapshots=tuple((index, term) for index, term, _conf in replayed.markers),
            repairs=tuple(repairs),
        )
        replayed.shape = replayed.shape.without_data()
        offset = next_batch = 0
        if scans:
            header = scans[-1].header
            assert header is not None  # a header-less segment is always the removed last one
            next_batch = header.first_batch + len(scans[-1].batches)
            offset = scans[-1].end
        wal = cls(
            directory, lock, segment_size, use_prealloc, segments, replayed, next_batch, offset
        )
        _log.info(
            "wal.opened",
            directory=directory,
            segments=len(segments),
            entries=len(recovered.entries),
            last_index=recovered.last_index,
            hard_state=recovered.hard_state,
        )
        return wal, recovered

    # ----------------------------------------------------------------- writing

    @property
    def last_index(self) -> int:
        return self._shape.last_index

    @property
    def segment_paths(self) -> list[str]:
        return [seg.path for seg in self._segments]

    def save(
        self,
        hard_state: HardStateTuple | None,
        entries: Sequence[EntryTuple],
        snapshot: SnapshotMetaTuple | None = None,
    ) -> None:
        """Durably write one Ready batch: an optional snapshot marker, entries, hard state.

        Entries at or below the last written index replace the log from that index (Raft
        overwriting an uncommitted suffix). Exactly one fdatasync; an empty batch writes
        nothing. Raises ValueError (nothing written) for a batch that would leave a gap.
        """
        self._check_usable()
        if hard_state is None and not entries and snapshot is None:
            return
        newest = self._snapshot[0] if self._snapshot is not None else 0
        problem = self._shape.batch_problem(
            [e[0] for e in entries], None if snapshot is None else snapshot[:2], newest
        )
        if problem is not None:
            raise ValueError(f"WAL batch refused: {problem}")
        frames: list[bytes] = []
        if snapshot is not None:
            frames.append(encode_snapshot(snapshot))
        frames.extend(encode_entry(index, term, kind, data) for index, term, kind, data in entries)
        if hard_state is not None:
            frames.append(encode_hard_state(hard_state))
        size = sum(map(len, frames)) + COMMIT_FRAME_SIZE

        header = b""
        if self._fd is None or self._offset + size > self._segment_size:
            first_index = self._shape.last_index + 1
            if entries:
                first_index = min(first_index, entries[0][0])
            header = self._start_segment(first_index, size)
            frames[:0] = self._carried()
        frames.append(encode_commit(self._next_batch, len(frames)))
        if header:
            frames.insert(0, header)
        data = b"".join(frames)

        fd = self._fd
        assert fd is not None
        try:
            _write_all(fd, data, self._offset)
            t0 = time.monotonic()
            os.fdatasync(fd)
            took = time.monotonic() - t0
            if header:
                fsync_dir(self.directory)
        except OSError as exc:
            self._failed = exc
            raise WALFailedError(
                f"WAL write to {self._segments[-1].path} failed ({exc}); the WAL is unusable "
                "until the server restarts and recovers it"
            ) from exc

        self._offset += len(data)
        self._next_batch += 1
        stats = self.stats
        stats.saves += 1
        stats.bytes_written += len(data)
        stats.sync_seconds_total += took
        stats.sync_seconds_max = max(stats.sync_seconds_max, took)
        if took > SLOW_SYNC_SECONDS:
            # etcd logs the same ("slow fdatasync"): a disk this slow costs leadership.
            _log.warning("wal.slow_fdatasync", seconds=round(took, 3), bytes=len(data))
        if snapshot is not None:
            self._shape.apply_snapshot(snapshot[0], snapshot[1])
            self._snapshot = snapshot
            self._recent_markers = [*self._recent_markers, snapshot][-CARRIED_MARKERS:]
        self._shape.extend(entries)
        if hard_state is not None:
            self._hard_state = hard_state

    def starts_segment(self, payload_bytes: int, entries: int = 1) -> bool:
        """Whether a batch carrying about `payload_bytes` of entry data would open a new
        segment (a file create, preallocation and directory fsync on top of the write).
        Errs towards yes: every record counts a generous 64 bytes of framing."""
        size = payload_bytes + 64 * (entries + 2) + COMMIT_FRAME_SIZE
        return self._fd is None or self._offset + size > self._segment_size

    def save_snapshot(self, index: int, term: int, conf_state: bytes) -> None:
        """Record that a snapshot at (index, term) exists (one batch, one fdatasync).

        Save the snapshot file first (SnapshotStore.save), then this marker: a marker must
        never name a snapshot file that a crash could have lost.
        """
        self.save(None, (), (index, term, conf_state))

    def release_to(self, index: int) -> int:
        """Delete the oldest segments whose entries are all at or below `index`.

        Call it with the index of the oldest snapshot you keep, so that a damaged newest
        snapshot can still be rebuilt from an older one plus the log. `index` must be
        committed: only committed entries are safe from being overwritten by a later batch.
        The current segment is never deleted. Returns the number of segments removed.
        """
        self._check_usable()
        removed: list[str] = []
        while len(self._segments) > 1 and self._segments[1].first_index <= index + 1:
            seg = self._segments.pop(0)
            os.unlink(seg.path)
            removed.append(os.path.basename(seg.path))
        if removed:
            self.stats.segments_released += len(removed)
            fsync_dir(self.directory)
            self._shape.release_below(self._segments[0].first_index)
            _log.info("wal.released", to_index=index, segments=",".join(removed))
        return len(removed)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
        self._lock.release()

    def __enter__(self) -> WAL:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- internals

    def _check_usable(self) -> None:
        if self._closed:
            raise StorageError(f"WAL in {self.directory} is closed")
        if self._failed is not None:
            raise WALFailedError(
                f"WAL in {self.directory} failed earlier ({self._failed}); restart to recover"
            )

    def _carried(self) -> list[bytes]:
        """Current state restated at the head of a new segment so older ones can go."""
        frames: list[bytes] = []
        # Several recent markers, not just the newest, so that an older snapshot kept for
        # fallback is still recognised as this WAL's after the segment holding its marker goes.
        frames.extend(encode_snapshot(meta, CARRIED) for meta in self._recent_markers)
        if self._hard_state is not None:
            frames.append(encode_hard_state(self._hard_state, CARRIED))
        return frames

    def _start_segment(self, first_index: int, batch_size: int) -> bytes:
        """Create the next segment file (not yet durable) and make it current; its header."""
        seq = self._segments[-1].seq + 1 if self._segments else 0
        path = os.path.join(self.directory, segment_name(seq, first_index))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            if self._prealloc:
                self._prealloc = preallocate(fd, max(self._segment_size, batch_size))
        except OSError:
            # Nothing of the batch is written yet, so the WAL is still whole: undo and report.
            os.close(fd)
            os.unlink(path)
            raise
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        self._offset = 0
        self._segments.append(_Segment(seq, first_index, path))
        self.stats.segments_created += 1
        header = SegmentHeader(seq, first_index, self._next_batch)
        _log.debug("wal.segment_created", path=path, first_batch=self._next_batch)
        return encode_segment_header(header)


def _repair_tail(directory: str, seg: _Segment, scan: SegmentScan) -> str | None:
    """Cut a torn tail off the last segment, or remove it if no batch of it completed."""
    if scan.damage is None and scan.batches:
        return None
    why, at = ("no committed batch", scan.end)
    if scan.damage is not None:
        why, at = (scan.damage.reason, scan.damage.offset)
    if not scan.batches:
        os.unlink(seg.path)
        fsync_dir(directory)
        return f"removed {seg.path}: {why} at offset {at}"
    size = os.path.getsize(seg.path)
    with open(seg.path, "r+b") as f:
        # Truncating (not just overwriting later) matters: stale frames past the new end
        # would otherwise be found by the next recovery's torn-tail classification.
        f.truncate(scan.end)
        os.fsync(f.fileno())
    return (
        f"truncated torn tail of {seg.path} at offset {scan.end} "
        f"({size - scan.end} bytes cut): {why} at offset {at}"
    )


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _list_segments(directory: str) -> list[_Segment]:
    found: list[_Segment] = []
    for name in os.listdir(directory):
        if not name.endswith(".wal"):
            continue
        parsed = parse_segment_name(name)
        if parsed is None:
            raise CorruptWALError(
                os.path.join(directory, name), 0, "file name is not <seq>-<first_index>.wal"
            )
        found.append(_Segment(parsed[0], parsed[1], os.path.join(directory, name)))
    found.sort(key=lambda seg: seg.seq)
    for before, after in itertools.pairwise(found):
        if after.seq != before.seq + 1:
            raise CorruptWALError(after.path, 0, f"segment {before.seq + 1} is missing before it")
    return found


def _check_scan(seg: _Segment, scan: SegmentScan, last: bool) -> None:
    header = scan.header
    if header is not None and (header.seq, header.first_index) != (seg.seq, seg.first_index):
        raise CorruptWALError(
            seg.path, 0, f"header says segment {header.seq} from index {header.first_index}"
        )
    damage = scan.damage
    if damage is not None and not (last and damage.torn):
        where = "in the last segment" if last else "in a segment that is not the last"
        raise CorruptWALError(seg.path, damage.offset, f"{damage.reason} ({where})")
    if damage is None and not last and not scan.batches:
        raise CorruptWALError(seg.path, scan.end, "segment holds no committed batch")


def _replay_batch(state: _Replayed, path: str, frames: tuple[Frame, ...]) -> None:
    """Apply one committed batch; a run of entries is checked and added in one go."""
    run: list[EntryTuple] = []
    run_at = 0
    for frame in frames:
        if frame.rtype == ENTRY:
            try:
                entry = decode_entry(frame.payload)
            except ValueError as exc:
                raise CorruptWALError(path, frame.offset, f"malformed record: {exc}") from exc
            if run and entry[0] != run[-1][0] + 1:
                raise CorruptWALError(
                    path, frame.offset, f"entry {entry[0]} follows {run[-1][0]} in one batch"
                )
            if not run:
                run_at = frame.offset
            run.append(entry)
            continue
        _replay_run(state, path, run_at, run)
        run = []
        _replay_state(state, path, frame)
    _replay_run(state, path, run_at, run)


def _replay_run(state: _Replayed, path: str, offset: int, run: list[EntryTuple]) -> None:
    if run:
        problem = state.shape.entry_problem(run[0][0])
        if problem is not None:
            raise CorruptWALError(path, offset, f"log does not replay: {problem}")
        state.shape.extend(run)


def _replay_state(state: _Replayed, path: str, frame: Frame) -> None:
    try:
        if frame.rtype == HARD_STATE:
            state.hard_state = decode_hard_state(frame.payload)
        elif frame.rtype == SNAPSHOT:
            meta = decode_snapshot(frame.payload)
            if not frame.flags & CARRIED:
                state.shape.apply_snapshot(meta[0], meta[1])
            if not any(m[:2] == meta[:2] for m in state.markers[-CARRIED_MARKERS:]):
                state.markers.append(meta)
            if state.snapshot is None or meta[0] >= state.snapshot[0]:
                state.snapshot = meta
        else:
            raise CorruptWALError(path, frame.offset, f"record type {frame.rtype} inside a batch")
    except ValueError as exc:
        raise CorruptWALError(path, frame.offset, f"malformed record: {exc}") from exc
