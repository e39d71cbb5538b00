"""WAL segment files: header, names, and the scan that splits a segment into committed batches.

A segment is named `<seq:016x>-<first_index:016x>.wal` (etcd's scheme): `seq` counts segments
from 0 without gaps, `first_index` is a lower bound of the entry indices it holds, which is what
`WAL.release_to` needs. It starts with a 40-byte header:

    magic "TABBYWAL" | version u16 | reserved u16 | seq u64 | first_index u64 | first_batch u64
    | crc u32 (CRC-32 of the preceding 36 bytes)

then frames (record.py) grouped in batches, each closed by a COMMIT record. A segment may end in
zero bytes (preallocated space) after its last batch.

Telling a torn tail from damage. A crash can only tear the batch whose `save()` had not returned
(its fdatasync had not finished): pages of that one write may have landed in any order, the rest
reads as zeros (new or preallocated blocks; segments are never recycled, and recovery truncates
the file after a repair, so no stale frames linger). So the first bad frame at offset X in the
last segment is a torn tail when, after X,

- no intact COMMIT frame follows (the batch never completed: a partial record, a bad CRC in the
  final record, a zero-filled tail), or
- exactly one intact COMMIT follows, it closes this very batch, only zeros come after it, and
  from X on, before the COMMIT's sector, some sector reads as zeros (an unwritten page; the idea
  of etcd's torn-entry check).

Anything else is damage to data a completed `save()` had made durable: recovery refuses.
Limit: a final batch whose acknowledged bytes are damaged at X *and* hold a real zero sector
between X and their COMMIT looks torn; only a second copy could tell the two apart.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from typing import Final

from store.wal.record import COMMIT, COMMIT_PREFIX, BadFrame, Frame, decode_commit, decode_frame

SEGMENT_MAGIC: Final = b"TABBYWAL"
SEGMENT_VERSION: Final = 1
_SEG_HEAD = struct.Struct("<8sHHQQQ")
SEGMENT_HEADER_SIZE: Final = _SEG_HEAD.size + 4
SECTOR: Final = 512
_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.wal$")


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    seq: int
    first_index: int
    first_batch: int


@dataclass(frozen=True, slots=True)
class Batch:
    """The frames of one save(), COMMIT excluded, and where the batch lies in the file."""

    seq: int
    start: int
    end: int
    frames: tuple[Frame, ...]


@dataclass(frozen=True, slots=True)
class Damage:
    offset: int
    reason: str
    torn: bool


@dataclass(frozen=True, slots=True)
class SegmentScan:
    header: SegmentHeader | None
    batches: tuple[Batch, ...]
    end: int
    """Offset just past the last committed batch (the header's end if there is none)."""
    damage: Damage | None


def segment_name(seq: int, first_index: int) -> str:
    return f"{seq:016x}-{first_index:016x}.wal"


def parse_segment_name(name: str) -> tuple[int, int] | None:
    match = _NAME.match(name)
    if match is None:
        return None
    return (int(match.group(1), 16), int(match.group(2), 16))


def encode_segment_header(header: SegmentHeader) -> bytes:
    head = _SEG_HEAD.pack(
        SEGMENT_MAGIC, SEGMENT_VERSION, 0, header.seq, header.first_index, header.first_batch
    )
    return head + struct.pack("<I", zlib.crc32(head))


def decode_segment_header(buf: bytes) -> SegmentHeader:
    if len(buf) < SEGMENT_HEADER_SIZE:
        raise BadFrame(f"segment header is {len(buf)} bytes, shorter than {SEGMENT_HEADER_SIZE}")
    magic, version, _reserved, seq, first_index, first_batch = _SEG_HEAD.unpack_from(buf)
    (crc,) = struct.unpack_from("<I", buf, _SEG_HEAD.size)
    if magic != SEGMENT_MAGIC:
        raise BadFrame("not a tabby WAL segment (bad magic)")
    if zlib.crc32(buf[: _SEG_HEAD.size]) != crc:
        raise BadFrame("segment header crc mismatch")
    if version != SEGMENT_VERSION:
        raise BadFrame(f"segment format version {version}, this build reads {SEGMENT_VERSION}")
    return SegmentHeader(seq, first_index, first_batch)


def _all_zero(buf: bytes, start: int, end: int) -> bool:
    return buf.count(0, start, end) == end - start


def _has_unwritten_sector(buf: bytes, bad_at: int, commit_at: int) -> bool:
    """A sector that reads as zeros from the first bad frame on, before the COMMIT's sector.

    Frames before `bad_at` checked out, so an unwritten sector must overlap the bad frame or
    come later; zeros inside the good frames are data and prove nothing. The COMMIT's own
    sector is excluded: the COMMIT is intact, so that sector was written.
    """
    limit = commit_at - commit_at % SECTOR
    pos = bad_at
    while pos < limit:
        # The first piece is partial: bytes of its sector before bad_at are older or good data.
        stop = min(pos - pos % SECTOR + SECTOR, limit)
        if _all_zero(buf, pos, stop):
            return True
        pos = stop
    return False


def _intact_commits(buf: bytes, start: int) -> list[Frame]:
    found: list[Frame] = []
    pos = buf.find(COMMIT_PREFIX, start)
    while pos != -1:
        try:
            frame = decode_frame(buf, pos)
        except BadFrame:
            frame = None
        if frame is not None and frame.rtype == COMMIT:
            found.append(frame)
        pos = buf.find(COMMIT_PREFIX, pos + 1)
    return found


def classify_tail(buf: bytes, bad_at: int, reason: str, next_batch: int | None) -> Damage:
    """Is the first bad frame, at `bad_at`, part of a torn tail?"""
    commits = _intact_commits(buf, bad_at)
    if not commits:
        return Damage(bad_at, reason, torn=True)
    first = commits[0]
    seq, _count = decode_commit(first.payload)
    if (
        len(commits) == 1
        and (next_batch is None or seq == next_batch)
        and _all_zero(buf, first.end, len(buf))
        and _has_unwritten_sector(buf, bad_at, first.offset)
    ):
        return Damage(bad_at, f"{reason} (batch {seq} partly unwritten)", torn=True)
    return Damage(
        bad_at, f"{reason}; intact records written after it follow at offset {first.offset}", False
    )


def scan_segment(buf: bytes, next_batch: int | None) -> SegmentScan:
    """Split a segment into committed batches, and say where and how it is damaged, if at all.

    `next_batch` is the batch sequence the previous segment ends before (None for the oldest
    retained segment): a header that disagrees is damage.
    """
    try:
        header = decode_segment_header(buf)
    except BadFrame as exc:
        if _all_zero(buf, 0, len(buf)):
            reason = "segment header never written (empty or zero-filled file)"
        else:
            reason = exc.reason
        return SegmentScan(None, (), 0, classify_tail(buf, 0, reason, next_batch))
    if next_batch is not None and header.first_batch != next_batch:
        mismatch = Damage(
            0, f"segment starts at batch {header.first_batch}, expected {next_batch}", False
        )
        return SegmentScan(header, (), SEGMENT_HEADER_SIZE, mismatch)

    batches: list[Batch] = []
    pending: list[Frame] = []
    seq = header.first_batch
    batch_start = pos = SEGMENT_HEADER_SIZE
    damage: Damage | None = None
    while True:
        try:
            frame = decode_frame(buf, pos)
        except BadFrame as exc:
            if not pending and _all_zero(buf, pos, len(buf)):
                break  # end of data, or preallocated space after the last batch
            reason = exc.reason
            if pos == len(buf):
                reason = "batch ends without its commit record"
            damage = classify_tail(buf, pos, reason, seq)
            break
        if frame.rtype == COMMIT:
            try:
                got_seq, count = decode_commit(frame.payload)
            except ValueError as exc:
                damage = Damage(frame.offset, str(exc), torn=False)
                break
            if got_seq != seq or count != len(pending):
                damage = Damage(
                    frame.offset,
                    f"commit record says batch {got_seq} of {count} records, "
                    f"expected batch {seq} of {len(pending)}",
                    torn=False,
                )
                break
            batches.append(Batch(seq, batch_start, frame.end, tuple(pending)))
            pending = []
            seq += 1
            batch_start = frame.end
        else:
            pending.append(frame)
        pos = frame.end
    return SegmentScan(header, tuple(batches), batch_start, damage)
