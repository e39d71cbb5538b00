"""The backend protocol: read the kernel's state, apply a batch of operations.

Synchronous on purpose: netlink cannot run on uvloop (peers-on-loopback.md), so the daemon
drives its backend from one worker thread and every backend, real or fake, has the same shape.

Invariants: `apply` returns one result per operation, in order; an operation's failure does not
stop the rest of the batch (each netlink message has its own acknowledgement), but later
operations may fail because of it (a route on a link that was not created fails with ENODEV).
ENOBUFS means the acknowledgements were lost to a receive-buffer overrun: the outcome of that
operation and of the ones after it is unknown, and the caller must re-read before it trusts
anything (a resync).
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from felixd.plan.model import ObservedState
from felixd.plan.ops import Op


@dataclass(frozen=True, slots=True)
class OpResult:
    op: Op
    error: int | None = None  # an errno value, None on success

    @property
    def ok(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        if self.error is None:
            return f"{type(self.op).__name__}: ok"
        return f"{type(self.op).__name__}: {errno.errorcode.get(self.error, str(self.error))}"


class DataplaneBackend(Protocol):
    def read(self) -> ObservedState:
        """Everything the differ compares: routes, neighbours, FDB, links, felixd's devices,
        the sysctls of owned interfaces, nftables tables."""
        ...

    def apply(self, ops: Sequence[Op]) -> list[OpResult]:
        """Apply the batch in order; one result per operation."""
        ...
