"""One rtnetlink socket: batched requests with one acknowledgement pass per chunk, and dumps.

A batch is sent as few large sendmsg() calls (the kernel's rtnetlink_rcv walks every message in
one buffer), each message with NLM_F_ACK and its own sequence number, then the acknowledgements
of the chunk are read back and matched by sequence number. NETLINK_CAP_ACK keeps an error
acknowledgement from echoing the whole request, and a large receive buffer keeps a chunk's acks
from overrunning it; if it overruns anyway (ENOBUFS on recv), the outcome of every message still
unacknowledged is unknown and is reported as ENOBUFS so the caller resyncs (base.py).

Invariants: `request_batch` returns one errno-or-None per message, in order; the socket is
synchronous and used by one thread (the daemon's netlink worker).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator, Sequence

from felixd.netlink.messages import HDR, NLMSG_DONE, NLMSG_ERROR, error_code, messages

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32
CHUNK_MESSAGES = 512  # acks of one chunk fit the receive buffer many times over
BUFFER = 8 << 20
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
        pending = {seq: i for i, (seq, _) in enumerate(chunk)}
        results: list[int | None] = [errno.ENOBUFS] * len(chunk)
        data = b"".join(msg for _, msg in chunk)
        try:
            sent = self.sock.send(data)
        except OSError as exc:
            return [exc.errno or errno.EIO] * len(chunk)
        if sent != len(data):
            return [errno.EIO] * len(chunk)
        while pending:
            try:
                buf = self.sock.recv(RECV)
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    return results  # acks lost: unknown outcome for what is still pending
                raise
            for kind, _flags, seq, payload in messages(buf):
                if kind == NLMSG_ERROR and seq in pending:
                    code = error_code(payload)
                    results[pending.pop(seq)] = code or None
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


__all__ = ["HDR", "Channel"]
