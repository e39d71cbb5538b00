"""One synchronisation pass: read the kernel, diff, apply, and resync after any error.

This is the loop the daemon runs in its netlink thread at start-up, on every input change and
every `routeRefreshInterval` (calico.md §4.3). After a batch whose acknowledgements all came
back clean the kernel is trusted to match; after any error (EEXIST, ENODEV, a lost ack) the
kernel is read again and only the remaining difference is applied, up to `max_rounds` batches.

Invariant: with a correct backend and faults that heal, the pass ends converged; a blocked entry
(a foreign route on the key, an interface not there yet) is not an error, it is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from felixd.backends.base import DataplaneBackend, OpResult
from felixd.plan.diff import compare
from felixd.plan.model import DesiredDataplane, Problem


@dataclass(frozen=True, slots=True)
class SyncReport:
    converged: bool
    batches: int  # batches applied (0: the kernel already matched)
    applied: int  # operations acknowledged
    failures: tuple[OpResult, ...]  # every failed operation, in order
    blocked: tuple[Problem, ...]


def sync(desired: DesiredDataplane, backend: DataplaneBackend, max_rounds: int = 5) -> SyncReport:
    batches = applied = 0
    failures: list[OpResult] = []
    found = compare(desired, backend.read())
    while found.ops and batches < max_rounds:
        results = backend.apply(found.ops)
        batches += 1
        applied += sum(1 for r in results if r.ok)
        bad = [r for r in results if not r.ok]
        if not bad:
            return SyncReport(True, batches, applied, tuple(failures), found.blocked)
        failures.extend(bad)
        found = compare(desired, backend.read())  # resync: trust nothing after an error
    return SyncReport(not found.ops, batches, applied, tuple(failures), found.blocked)
