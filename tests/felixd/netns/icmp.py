"""A one-shot ICMP echo (RFC 792) for namespaces: `python -m tests.felixd.netns.icmp DST... [T]`
echoes each DST once (T seconds each, default 1), prints the ones that did not answer and exits
0 when all answered. The machines have no `ping` binary; a raw socket does the same job, and one
process per source pod keeps an all-pairs check to a few interpreter starts."""

from __future__ import annotations

import ipaddress
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


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def main(argv: list[str]) -> int:
    targets = [a for a in argv if _is_address(a)]
    rest = [a for a in argv if not _is_address(a)]
    timeout = float(rest[0]) if rest else 1.0
    silent = [dst for dst in targets if not echo(dst, timeout)]
    print(" ".join(silent))
    return 1 if silent or not targets else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
