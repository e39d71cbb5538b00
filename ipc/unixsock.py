"""Unix socket files: permissions, and telling a stale socket from a live one.

A daemon that crashed leaves its socket file behind; the next start must replace it. A
socket that still answers belongs to a running daemon and must not be stolen: starting a
second copy fails with a clear error instead.
"""

from __future__ import annotations

import contextlib
import grp
import os
import socket
import stat
from pathlib import Path


class SocketInUseError(OSError):
    """Another live process is listening on the socket path."""


def claim_socket_path(path: Path) -> None:
    """Make `path` free for a new listener, or raise if a live listener holds it."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise SocketInUseError(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        # Nobody accepts on it: a leftover from a process that died.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    except OSError as exc:
        raise SocketInUseError(f"{path}: cannot tell whether it is live ({exc})") from exc
    finally:
        probe.close()
    raise SocketInUseError(f"{path} is in use by a running process")


def set_socket_permissions(path: Path, mode: int = 0o660, group: str | None = None) -> None:
    """Apply mode (0660 by default) and, when named, the owning group to a socket file."""
    if group is not None:
        gid = grp.getgrnam(group).gr_gid
        os.chown(path, -1, gid)
    os.chmod(path, mode)
