"""One rtnetlink socket: batched requests with one acknowledgement pass per chunk, and dumps.

A batch is sent as few large sendmsg() calls (the kernel's netlink_rcv_skb walks every message
in one buffer, in order), each message with its own sequence number. Only the last message of a
chunk asks for an acknowledgement (NLM_F_ACK): the kernel answers every failed message with an
NLMSG_ERROR whether or not it was asked, so once the last message's answer arrives, every
message without an error message before it succeeded. One recv per chunk instead of one per
message (a recv returns one datagram, and per-message acks cost 10,000 syscalls for 10,000
routes). NETLINK_CAP_ACK keeps an error from echoing the whole request, and a large receive
buffer keeps a chunk's errors from overrunning it; if it overruns anyway (ENOBUFS on recv), the outcome of every message still
unacknowledged is unknown and is reported as ENOBUFS so the caller resyncs (base.py).

Invariants: `request_batch` returns one errno-or-None per message, in order; the socket is
synchronous and used by one thread (the daemon's netlink worker).
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterator, Sequence

from felixd.netlink.messages import (
    HDR,
    NLM_F_ACK,
    NLMSG_DONE,
    NLMSG_ERROR,
    error_code,
    messages,
)

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
CHUNK_MESSAGES = 1024  # even if all fail, a chunk's errors fit the receive buffer
BUFFER = 8 << 20
FLAGS = struct.Struct("=H")
FLAGS_OFFSET = 6  # nlmsghdr: u32 len, u16 type, u16 flags
RECV = 1 << 20


class Channel:
    def __init__(self) -> None:
        self.sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE
        )
        for force, plain in (
            (SO_RCVBUFFORCE, socket.SO_RCVBUF),
            (SO_SNDBUFFORCE, socket.SO_SNDBUF),
        ):
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, force, BUFFER)
            except PermissionError:
                self.sock.setsockopt(socket.SOL_SOCKET, plain, BUFFER)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self.sock.bind((0, 0))
        self.seq = 1

    def close(self) -> None:
        self.sock.close()

    def next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0x7FFFFFFF or 1
        return self.seq

    def request_batch(self, batch: Sequence[tuple[int, bytes]]) -> list[int | None]:
        """Send (seq, message) pairs; the errno (None = acknowledged) of each, in order."""
        results: list[int | None] = []
        for start in range(0, len(batch), CHUNK_MESSAGES):
            results.extend(self._chunk(batch[start : start + CHUNK_MESSAGES]))
        return results

    def _chunk(self, chunk: Sequence[tuple[int, bytes]]) -> list[int | None]:
        index = {seq: i for i, (seq, _) in enumerate(chunk)}
        last = chunk[-1][0]
        results: list[int | None] = [None] * len(chunk)
        parts = [_without_ack(msg) for _, msg in chunk[:-1]]
        parts.append(chunk[-1][1])
        data = b"".join(parts)
        try:
            sent = self.sock.send(data)
        except OSError as exc:
            return [exc.errno or errno.EIO] * len(chunk)
        if sent != len(data):
            return [errno.EIO] * len(chunk)
        while True:
            try:
                buf = self.sock.recv(RECV)
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    # Answers lost: the outcome of every message is unknown; resync (base.py).
                    return [errno.ENOBUFS] * len(chunk)
                raise
            for kind, _flags, seq, payload in messages(buf):
                if kind == NLMSG_ERROR and seq in index:
                    results[index[seq]] = error_code(payload) or None
                    if seq == last:
                        return results

    def dump(self, request: bytes, seq: int) -> Iterator[tuple[int, bytes]]:
        """(type, payload) of every message a dump request answers."""
        self.sock.send(request)
        while True:
            buf = self.sock.recv(RECV)
            for kind, _flags, got, payload in messages(buf):
                if got != seq:
                    continue
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    code = error_code(payload)
                    if code:
                        raise OSError(code, f"netlink dump: {errno.errorcode.get(code, code)}")
                    return
                yield kind, payload


def _without_ack(msg: bytes) -> bytes:
    (flags,) = FLAGS.unpack_from(msg, FLAGS_OFFSET)
    return msg[:FLAGS_OFFSET] + FLAGS.pack(flags & ~NLM_F_ACK) + msg[FLAGS_OFFSET + FLAGS.size :]


__all__ = ["HDR", "Channel"]
