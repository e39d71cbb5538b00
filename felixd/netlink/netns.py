"""Enter a named network namespace (`/run/netns/<name>`, as `ip netns add` makes it) for the
calling thread only.

setns(2) with CLONE_NEWNET moves one thread; sockets it opens afterwards, files it opens under
/proc/sys/net and processes it forks all belong to that namespace. felixd's netlink worker is one
thread, so the daemon can drive a namespace without being started inside it (the tests and the
benchmark use this; in production felixd runs in the host namespace and never calls it).
Python 3.11 has no os.setns, hence ctypes.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def enter_netns(name: str) -> None:
    """Move the calling thread into network namespace `name` (raises OSError)."""
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({name}): {os.strerror(err)}")
    finally:
        os.close(fd)
