"""WAL records: the frame each record is written in, and the payload of each record type.

Frame (little-endian), a 12-byte header then the payload:

    magic u16 | type u8 | flags u8 | length u32 | crc u32 | payload[length]

`crc` is CRC-32 (IEEE 802.3, `zlib.crc32`; not CRC-32C, which the standard library lacks) over
the first 8 header bytes and the payload. It is per record, not chained as in etcd, so that any
frame can be checked on its own: recovery uses that to tell a torn tail from damage followed by
records that were acknowledged (see segment.py).

Record types and payloads:

    ENTRY       index u64 | term u64 | kind u32 | data
    HARD_STATE  term u64 | vote u64 | commit u64
    SNAPSHOT    index u64 | term u64 | conf_state        (a snapshot marker, see replay.py)
    COMMIT      batch u64 | count u32                   (closes one save() batch)

A batch is every record written by one `WAL.save()`, closed by a COMMIT record that carries the
batch's sequence number and its record count. Recovery applies whole batches only, so a batch is
atomic: the hard state never runs ahead of the entries it was saved with.

Flag CARRIED marks the state records copied to the start of a new segment (the current hard
state and the newest snapshot marker) so that older segments can be deleted; they restate state
and never change the log.

Invariants: a frame whose CRC checks has a payload of the right shape for its type (else the
writer had a bug and recovery refuses); lengths above MAX_RECORD_BYTES are never written, so a
larger length read back is damage, not a reason to allocate.
"""

from __future__ import annotations

import struct
import zlib
from typing import Final, NamedTuple

EntryTuple = tuple[int, int, int, bytes]
"""(index, term, kind, data): one Raft log entry as the WAL stores it."""
HardStateTuple = tuple[int, int, int]
"""(term, vote, commit): Raft's persistent state (Raft paper, Figure 2)."""
SnapshotMetaTuple = tuple[int, int, bytes]
"""(index, term, conf_state): the last entry a snapshot includes and its membership."""

MAGIC: Final = 0x7AB1
ENTRY: Final = 1
HARD_STATE: Final = 2
SNAPSHOT: Final = 3
COMMIT: Final = 4
RECORD_TYPES: Final = {
    ENTRY: "entry",
    HARD_STATE: "hard_state",
    SNAPSHOT: "snapshot",
    COMMIT: "commit",
}

CARRIED: Final = 0x01
KNOWN_FLAGS: Final = CARRIED

# Raft entries are bounded well below this by the request limit (1.5 MiB) and MaxSizePerMsg;
# the bound exists so that a damaged length field is recognised instead of trusted.
MAX_RECORD_BYTES: Final = 64 << 20

_HEAD = struct.Struct("<HBBII")
_PRE = struct.Struct("<HBBI")
_CRC = struct.Struct("<I")
HEADER_SIZE: Final = _HEAD.size
_ENTRY = struct.Struct("<QQI")
_HARD_STATE = struct.Struct("<QQQ")
_SNAPSHOT = struct.Struct("<QQ")
_COMMIT = struct.Struct("<QI")
_U64_MAX: Final = (1 << 64) - 1
_U32_MAX: Final = (1 << 32) - 1

COMMIT_FRAME_SIZE: Final = HEADER_SIZE + _COMMIT.size
# The bytes every COMMIT frame starts with (magic, type): recovery searches for them.
COMMIT_PREFIX: Final = struct.pack("<HB", MAGIC, COMMIT)


class BadFrame(Exception):
    """The bytes at an offset are not a whole, intact frame; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Frame(NamedTuple):
    # A NamedTuple rather than a frozen dataclass: recovery builds one per record, and a
    # frozen dataclass's __init__ costs several times more.
    rtype: int
    flags: int
    payload: bytes
    offset: int
    end: int


def encode_frame(rtype: int, flags: int, payload: bytes) -> bytes:
    """One record in its frame, CRC included."""
    head = _PRE.pack(MAGIC, rtype, flags, len(payload))
    crc = zlib.crc32(payload, zlib.crc32(head))
    return b"".join((head, _CRC.pack(crc), payload))


def decode_frame(buf: bytes, pos: int) -> Frame:
    """The frame at `pos`, or BadFrame if it is short, malformed or fails its CRC."""
    if len(buf) - pos < HEADER_SIZE:
        raise BadFrame("short frame header" if pos < len(buf) else "end of data")
    magic, rtype, flags, length, crc = _HEAD.unpack_from(buf, pos)
    if magic != MAGIC:
        raise BadFrame("zero bytes" if magic == 0 and rtype == 0 else "bad magic")
    if rtype not in RECORD_TYPES:
        raise BadFrame(f"unknown record type {rtype}")
    if flags & ~KNOWN_FLAGS:
        raise BadFrame(f"unknown flags {flags:#x}")
    if length > MAX_RECORD_BYTES:
        raise BadFrame(f"length {length} over the {MAX_RECORD_BYTES}-byte limit")
    start = pos + HEADER_SIZE
    end = start + length
    if end > len(buf):
        raise BadFrame(f"payload of {length} bytes runs past the end of the file")
    # Plain bytes slices: cheaper than memoryviews for record-sized pieces.
    payload = buf[start:end]
    if zlib.crc32(payload, zlib.crc32(buf[pos : pos + 8])) != crc:
        raise BadFrame("crc mismatch")
    return Frame(rtype, flags, payload, pos, end)


def _check_u64(name: str, value: int) -> None:
    if not 0 <= value <= _U64_MAX:
        raise ValueError(f"{name}={value} does not fit in an unsigned 64-bit field")


def encode_entry(index: int, term: int, kind: int, data: bytes) -> bytes:
    # The hot path of save(): packs and checksums the pieces without building the payload.
    try:
        body = _ENTRY.pack(index, term, kind)
    except struct.error as exc:
        raise ValueError(
            f"entry ({index}, {term}, {kind}) does not fit its fields: {exc}"
        ) from None
    length = _ENTRY.size + len(data)
    if length > MAX_RECORD_BYTES:
        raise ValueError(f"entry {index} of {len(data)} bytes is over the record limit")
    head = _PRE.pack(MAGIC, ENTRY, 0, length)
    crc = zlib.crc32(data, zlib.crc32(body, zlib.crc32(head)))
    return b"".join((head, _CRC.pack(crc), body, data))


def encode_hard_state(hard_state: HardStateTuple, flags: int = 0) -> bytes:
    term, vote, commit = hard_state
    for name, value in (("term", term), ("vote", vote), ("commit", commit)):
        _check_u64(name, value)
    return encode_frame(HARD_STATE, flags, _HARD_STATE.pack(term, vote, commit))


def encode_snapshot(meta: SnapshotMetaTuple, flags: int = 0) -> bytes:
    index, term, conf_state = meta
    _check_u64("index", index)
    _check_u64("term", term)
    if len(conf_state) + _SNAPSHOT.size > MAX_RECORD_BYTES:
        raise ValueError("snapshot conf_state is over the record limit")
    return encode_frame(SNAPSHOT, flags, _SNAPSHOT.pack(index, term) + conf_state)


def encode_commit(batch: int, count: int) -> bytes:
    return encode_frame(COMMIT, 0, _COMMIT.pack(batch, count))


def decode_entry(payload: bytes) -> EntryTuple:
    if len(payload) < _ENTRY.size:
        raise ValueError(f"entry payload of {len(payload)} bytes is shorter than its header")
    index, term, kind = _ENTRY.unpack_from(payload)
    return (index, term, kind, payload[_ENTRY.size :])


def decode_hard_state(payload: bytes) -> HardStateTuple:
    if len(payload) != _HARD_STATE.size:
        raise ValueError(f"hard state payload is {len(payload)} bytes, not {_HARD_STATE.size}")
    term, vote, commit = _HARD_STATE.unpack(payload)
    return (term, vote, commit)


def decode_snapshot(payload: bytes) -> SnapshotMetaTuple:
    if len(payload) < _SNAPSHOT.size:
        raise ValueError(f"snapshot payload of {len(payload)} bytes is shorter than its header")
    index, term = _SNAPSHOT.unpack_from(payload)
    return (index, term, payload[_SNAPSHOT.size :])


def decode_commit(payload: bytes) -> tuple[int, int]:
    if len(payload) != _COMMIT.size:
        raise ValueError(f"commit payload is {len(payload)} bytes, not {_COMMIT.size}")
    batch, count = _COMMIT.unpack(payload)
    return (batch, count)
