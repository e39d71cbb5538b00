"""A one-shot ICMP echo (RFC 792) for namespaces: `python -m tests.felixd.netns.icmp DST [timeout]`
exits 0 when DST answers. The machines have no `ping` binary; a raw socket does the same job."""

from __future__ import annotations

import os
import select
import socket
import struct
import sys
import time


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int(word) for word in struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo(dst: str, timeout: float = 1.0) -> bool:
    ident = os.getpid() & 0xFFFF
    payload = b"tabby-felixd"
    header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
    packet = struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, 1) + payload
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        sock.sendto(packet, (dst, 0))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            data, (src, _) = sock.recvfrom(2048)
            ihl = (data[0] & 0x0F) * 4
            kind, _, _, got_id, _ = struct.unpack("!BBHHH", data[ihl : ihl + 8])
            if kind == 0 and got_id == ident and src == dst:  # echo reply
                return True
    return False


if __name__ == "__main__":
    sys.exit(0 if echo(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 1.0) else 1)
