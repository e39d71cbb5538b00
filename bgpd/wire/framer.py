"""Streaming framer: a TCP byte stream in, whole BGP messages out (RFC 4271 §4.1, RFC 8654).

`feed(data)` appends bytes and checks the header of the next message to be taken as soon as its
octets arrive: a bad marker is rejected on the first wrong octet, a bad length or type as soon
as the header is there, so a peer cannot make us wait for (and buffer) a body behind a broken
header. Headers behind it are checked when their turn comes. The length bound is
the current context's (4,096, or 65,535 once RFC 8654 extended messages are negotiated). `next_frame()` returns the next
complete message as bytes; `next_message()` decodes it with the current `context` (which the
session replaces when the OPENs are exchanged, e.g. to allow RFC 8654 extended messages).

Invariants: the frames (and messages) produced are the same however the stream is split into
`feed` calls. After an error the framer is dead: every later call raises the same error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bgpd.wire.codec import (
    DECODERS,
    FIXED_MAX,
    HEADER_LENGTH,
    MARKER,
    MIN_LENGTH,
    bad_length,
    check_header,
)
from bgpd.wire.context import DEFAULT, WireContext
from bgpd.wire.errors import CONNECTION_NOT_SYNCHRONIZED, BGPError, MessageHeaderError
from bgpd.wire.messages import Message

_COMPACT_AT = 1 << 16


class Framer:
    """Sans-IO message framer for one direction of one session."""

    __slots__ = ("_buf", "_error", "_pos", "context")

    def __init__(self, context: WireContext = DEFAULT) -> None:
        self.context = context
        self._buf = bytearray()
        self._pos = 0  # start of the first message not yet returned
        self._error: BGPError | None = None

    def feed(self, data: bytes) -> None:
        """Append received bytes; raises `MessageHeaderError` when the header of the first
        message not yet taken is bad (as far as it has arrived)."""
        if self._error is not None:
            raise self._error
        self._buf += data
        self._check_head()

    def _check_head(self) -> None:
        """Check the (possibly partial) header at the read position: the marker octet by
        octet, then length and type, before any body is waited for."""
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        try:
            if avail >= HEADER_LENGTH:
                self._check(buf, pos)
            elif avail > 0:
                k = min(avail, 16)
                if buf[pos : pos + k] != MARKER[:k]:
                    raise MessageHeaderError(
                        CONNECTION_NOT_SYNCHRONIZED, b"", "marker is not all ones"
                    )
                if avail >= 18:
                    length = buf[pos + 16] << 8 | buf[pos + 17]
                    if length < HEADER_LENGTH or length > self.context.max_message:
                        raise bad_length(length)
        except BGPError as err:
            self._error = err
            raise

    def _check(self, buf: bytearray, pos: int) -> int:
        """Validate the complete header at `pos` and return the message length."""
        if buf.startswith(MARKER, pos):
            # Fast path for the common, valid header; check_header builds the errors.
            length = buf[pos + 16] << 8 | buf[pos + 17]
            limit = self.context.max_message
            if (
                MIN_LENGTH.get(buf[pos + 18], 65536)
                <= length
                <= min(FIXED_MAX.get(buf[pos + 18], limit), limit)
            ):
                return length
        # The current context bounds the length. A peer can only send an extended message
        # after our KEEPALIVE, which we send after its OPEN set the context.
        length, _ = check_header(bytes(buf[pos : pos + HEADER_LENGTH]), self.context.max_message)
        return length

    def next_frame(self) -> bytes | None:
        """The next complete message as bytes, or None if more data is needed."""
        if self._error is not None:
            raise self._error
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail < HEADER_LENGTH:
            return None
        length = buf[pos + 16] << 8 | buf[pos + 17]
        limit = self.context.max_message
        mtype = buf[pos + 18]
        # Inlined fast path of `_check` (this runs once per message of a full table).
        if not (
            length <= limit
            and MIN_LENGTH.get(mtype, 65536) <= length <= FIXED_MAX.get(mtype, limit)
            and buf.startswith(MARKER, pos)
        ):
            try:
                self._check(buf, pos)
            except BGPError as err:
                self._error = err
                raise
        if avail < length:
            return None
        frame = bytes(buf[pos : pos + length])
        pos += length
        if pos == len(buf):
            buf.clear()
            pos = 0
        elif pos >= _COMPACT_AT:
            del buf[:pos]
            pos = 0
        self._pos = pos
        if len(buf) - pos < HEADER_LENGTH:
            # A partial header is checked as far as it goes; an error is kept for the next
            # call so that this good frame is still delivered (chunking invariance).
            with contextlib.suppress(BGPError):
                self._check_head()
        return frame

    def next_message(self) -> Message | None:
        """The next decoded message, or None. Raises the codec's `BGPError` subclasses."""
        frame = self.next_frame()
        if frame is None:
            return None
        return DECODERS[frame[18]](frame, self.context)

    def __iter__(self) -> Iterator[Message]:
        """All complete messages buffered so far."""
        decoders = DECODERS
        while (frame := self.next_frame()) is not None:
            yield decoders[frame[18]](frame, self.context)

    @property
    def buffered(self) -> int:
        """Octets received but not yet returned as frames."""
        return len(self._buf) - self._pos
