"""Streaming framer: a TCP byte stream in, whole BGP messages out (RFC 4271 §4.1, RFC 8654).

`feed(data)` appends bytes and checks every header as soon as its octets arrive: a bad marker is
rejected on the first wrong octet, a bad length or type as soon as the 19-octet header is there,
so a peer cannot make us buffer a body behind a broken header. The length bound is the current
context's (4,096, or 65,535 once RFC 8654 extended messages are negotiated). `next_frame()` returns the next
complete message as bytes; `next_message()` decodes it with the current `context` (which the
session replaces when the OPENs are exchanged, e.g. to allow RFC 8654 extended messages).

Invariants: the frames (and messages) produced are the same however the stream is split into
`feed` calls. After an error the framer is dead: every later call raises the same error.
"""

from __future__ import annotations

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

    __slots__ = ("_buf", "_error", "_pos", "_scan", "context")

    def __init__(self, context: WireContext = DEFAULT) -> None:
        self.context = context
        self._buf = bytearray()
        self._pos = 0  # start of the first message not yet returned
        self._scan = 0  # start of the first message whose header is not yet checked
        self._error: BGPError | None = None

    def feed(self, data: bytes) -> None:
        """Append received bytes; raises `MessageHeaderError` on a bad header."""
        if self._error is not None:
            raise self._error
        self._buf += data
        buf = self._buf
        n = len(buf)
        scan = self._scan
        limit = self.context.max_message
        try:
            while scan < n:
                avail = n - scan
                if avail < HEADER_LENGTH:
                    k = min(avail, 16)
                    if buf[scan : scan + k] != MARKER[:k]:
                        raise MessageHeaderError(
                            CONNECTION_NOT_SYNCHRONIZED, b"", "marker is not all ones"
                        )
                    break
                # The current context bounds the length. A peer can only send an extended
                # message after our KEEPALIVE, which we send after its OPEN set the context.
                if buf.startswith(MARKER, scan):
                    # Fast path for the common, valid header; check_header gives the errors.
                    length = buf[scan + 16] << 8 | buf[scan + 17]
                    mtype = buf[scan + 18]
                    if (
                        MIN_LENGTH.get(mtype, 65536)
                        <= length
                        <= min(FIXED_MAX.get(mtype, limit), limit)
                    ):
                        scan += length
                        continue
                length, _ = check_header(bytes(buf[scan : scan + HEADER_LENGTH]), limit)
                scan += length
        except BGPError as err:
            self._error = err
            raise
        self._scan = scan

    def next_frame(self) -> bytes | None:
        """The next complete message as bytes, or None if more data is needed."""
        if self._error is not None:
            raise self._error
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < HEADER_LENGTH:
            return None
        length = buf[pos + 16] << 8 | buf[pos + 17]
        # `feed` checked everything but the negotiated size (RFC 8654 §4).
        if length > self.context.max_message:
            self._error = bad_length(length)
            raise self._error
        if len(buf) - pos < length:
            return None
        frame = bytes(buf[pos : pos + length])
        pos += length
        if pos == len(buf):
            buf.clear()
            self._scan -= pos
            pos = 0
        elif pos >= _COMPACT_AT:
            del buf[:pos]
            self._scan -= pos
            pos = 0
        self._pos = pos
        return frame

    def next_message(self) -> Message | None:
        """The next decoded message, or None. Raises the codec's `BGPError` subclasses."""
        frame = self.next_frame()
        if frame is None:
            return None
        return DECODERS[frame[18]](frame, self.context)

    def __iter__(self) -> Iterator[Message]:
        """All complete messages buffered so far."""
        while True:
            msg = self.next_message()
            if msg is None:
                return
            yield msg

    @property
    def buffered(self) -> int:
        """Octets received but not yet returned as frames."""
        return len(self._buf) - self._pos
