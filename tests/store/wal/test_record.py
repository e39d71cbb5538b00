"""WAL record frames: round trips, total decoding, and CRC-32 catching every single-bit flip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.wal.record import (
    COMMIT,
    ENTRY,
    HEADER_SIZE,
    MAX_RECORD_BYTES,
    BadFrame,
    decode_commit,
    decode_entry,
    decode_frame,
    decode_hard_state,
    decode_snapshot,
    encode_commit,
    encode_entry,
    encode_frame,
    encode_hard_state,
    encode_snapshot,
)

u64 = st.integers(0, (1 << 64) - 1)


@given(u64, u64, st.integers(0, (1 << 32) - 1), st.binary(max_size=300))
def test_entry_record_round_trips(index: int, term: int, kind: int, data: bytes) -> None:
    frame = decode_frame(encode_entry(index, term, kind, data), 0)
    assert frame.rtype == ENTRY
    assert decode_entry(frame.payload) == (index, term, kind, data)


@given(u64, u64, u64, st.sampled_from([0, 1]))
def test_hard_state_record_round_trips(term: int, vote: int, commit: int, flags: int) -> None:
    frame = decode_frame(encode_hard_state((term, vote, commit), flags), 0)
    assert frame.flags == flags
    assert decode_hard_state(frame.payload) == (term, vote, commit)


@given(u64, u64, st.binary(max_size=100))
def test_snapshot_marker_record_round_trips(index: int, term: int, conf: bytes) -> None:
    assert decode_snapshot(decode_frame(encode_snapshot((index, term, conf)), 0).payload) == (
        index,
        term,
        conf,
    )


def test_commit_record_round_trips() -> None:
    frame = decode_frame(encode_commit(7, 65), 0)
    assert frame.rtype == COMMIT
    assert decode_commit(frame.payload) == (7, 65)


@given(st.binary(max_size=200), st.integers(0, 10))
def test_arbitrary_bytes_decode_or_raise_bad_frame(buf: bytes, pos: int) -> None:
    """Total decoding: whatever is on disk, the decoder returns a frame or BadFrame."""
    try:
        frame = decode_frame(buf, pos)
    except BadFrame:
        return
    assert frame.offset == pos and frame.end <= len(buf)


def test_crc32_detects_every_single_bit_flip() -> None:
    """Each record has a checksum (issue 6, Storage): any one flipped bit is refused."""
    good = encode_entry(12, 3, 0, b"value-bytes")
    for bit in range(len(good) * 8):
        bad = bytearray(good)
        bad[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(BadFrame):
            decode_frame(bytes(bad), 0)


def test_every_truncation_of_a_frame_is_refused() -> None:
    good = encode_entry(12, 3, 0, b"value-bytes")
    for cut in range(len(good)):
        with pytest.raises(BadFrame):
            decode_frame(good[:cut], 0)


def test_oversized_length_is_damage_not_an_allocation() -> None:
    head = encode_frame(ENTRY, 0, b"")[:HEADER_SIZE]
    bad = bytearray(head)
    bad[4:8] = (MAX_RECORD_BYTES + 1).to_bytes(4, "little")
    with pytest.raises(BadFrame, match="limit"):
        decode_frame(bytes(bad), 0)


def test_values_that_do_not_fit_are_refused_before_writing() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        encode_entry(1 << 64, 1, 0, b"")
    with pytest.raises(ValueError, match="record limit"):
        encode_entry(1, 1, 0, bytes(MAX_RECORD_BYTES))
