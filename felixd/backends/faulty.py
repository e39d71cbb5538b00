"""FaultyBackend: wraps a backend and makes chosen operations fail, to prove that the daemon
survives by retrying and resyncing (issue 10, "Shell and backends").

The faults are the ones a real netlink socket gives felix: EEXIST (someone created the key
between our read and our write), ENODEV (the interface vanished), ENETUNREACH (the gateway is
not reachable when the route goes in) and ENOBUFS (the netlink receive buffer overran, so the
acknowledgements of the rest of the batch are lost; the kernel may or may not have applied
them). Faults are either scripted (`Fault`: an errno, a predicate on the operation, how many
times) or random from a seeded `random.Random` with a budget, so every run is repeatable and
every run ends with the faults healed.

Invariant: an operation that "fails" with EEXIST, ENODEV or ENETUNREACH is not applied; after an
ENOBUFS the remaining operations are applied (or not, per `overrun_applies`) and all report
ENOBUFS.
"""

from __future__ import annotations

import errno
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from felixd.backends.base import DataplaneBackend, OpResult
from felixd.plan.model import ObservedState
from felixd.plan.ops import Op

FAULTS = (errno.EEXIST, errno.ENODEV, errno.ENETUNREACH, errno.ENOBUFS)


def _any_op(op: Op) -> bool:
    del op
    return True


@dataclass(slots=True)
class Fault:
    """Fail the next `times` operations that `when` selects with `error`."""

    error: int
    when: Callable[[Op], bool] = _any_op
    times: int = 1
    hits: int = field(default=0)

    @property
    def spent(self) -> bool:
        return self.hits >= self.times


class FaultyBackend:
    def __init__(
        self,
        inner: DataplaneBackend,
        faults: Iterable[Fault] = (),
        *,
        rng: random.Random | None = None,
        rate: float = 0.0,
        budget: int = 0,
        errors: Sequence[int] = FAULTS,
        overrun_applies: bool = True,
    ) -> None:
        self.inner = inner
        self.faults = list(faults)
        self.rng = rng
        self.rate = rate
        self.budget = budget
        self.errors = tuple(errors)
        self.overrun_applies = overrun_applies
        self.injected: list[OpResult] = []

    def read(self) -> ObservedState:
        return self.inner.read()

    def _fault_for(self, op: Op) -> int | None:
        for fault in self.faults:
            if not fault.spent and fault.when(op):
                fault.hits += 1
                return fault.error
        if self.rng is not None and self.budget > 0 and self.rng.random() < self.rate:
            self.budget -= 1
            return self.rng.choice(self.errors)
        return None

    def apply(self, ops: Sequence[Op]) -> list[OpResult]:
        results: list[OpResult] = []
        run: list[Op] = []  # untouched operations go to the inner backend as one batch

        def flush() -> None:
            if run:
                results.extend(self.inner.apply(run))
                run.clear()

        for index, op in enumerate(ops):
            error = self._fault_for(op)
            if error is None:
                run.append(op)
                continue
            flush()
            if error == errno.ENOBUFS:
                rest = list(ops[index:])
                if self.overrun_applies:
                    self.inner.apply(rest)
                lost = [OpResult(o, errno.ENOBUFS) for o in rest]
                self.injected.append(lost[0])
                return results + lost
            result = OpResult(op, error)
            self.injected.append(result)
            results.append(result)
        flush()
        return results
