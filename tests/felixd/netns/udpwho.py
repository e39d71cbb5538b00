"""Which source address does a packet arrive with? A UDP pair for the natOutgoing tests.

`python -m tests.felixd.netns.udpwho serve PORT [LIFETIME]` answers every datagram with the
source address it saw, and prints `ready` once bound; it exits after LIFETIME seconds (default
120) so a test that dies cannot leave it behind for long. `python -m tests.felixd.netns.udpwho
ask DST PORT [TIMEOUT]` sends one datagram (a few times, UDP may lose the first while the
neighbour is resolved) and prints the answer; exit 1 when none came.

The listener sits where the packet ends up (an "outside" namespace or a pod), so the test sees
what the network saw, masqueraded or not, instead of inferring it from rules.
"""

from __future__ import annotations

import socket
import sys
import time


def serve(port: int, lifetime: float) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("0.0.0.0", port))
        print("ready", flush=True)
        deadline = time.monotonic() + lifetime
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                _, (src, sport) = sock.recvfrom(2048)
            except TimeoutError:
                break
            sock.sendto(src.encode(), (src, sport))
    return 0


def ask(dst: str, port: int, timeout: float) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout / 4)
        for _ in range(4):
            sock.sendto(b"who am i", (dst, port))
            try:
                data, _ = sock.recvfrom(2048)
            except TimeoutError:
                continue
            print(data.decode())
            return 0
    return 1


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "serve":
        return serve(int(argv[1]), float(argv[2]) if len(argv) > 2 else 120.0)
    if len(argv) >= 3 and argv[0] == "ask":
        return ask(argv[1], int(argv[2]), float(argv[3]) if len(argv) > 3 else 2.0)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
