"""Fault injection: the retry + resync loop converges after EEXIST, ENODEV, ENETUNREACH and a
netlink buffer overrun (ENOBUFS) (issue 10, "Shell and backends"; calico.md §4.3: resync on
errors)."""

from __future__ import annotations

import errno
import random
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from felixd.backends.faulty import FAULTS, Fault, FaultyBackend
from felixd.backends.recording import RecordingKernel
from felixd.backends.sync import sync
from felixd.plan import DesiredDataplane, EncapMode, Route, diff, plan
from felixd.plan.ops import AddRoute, AddVxlanDevice, Op
from tests.felixd.plan.world import LINKS, bgp_paths, world


def _desired() -> DesiredDataplane:
    state = world(vxlan=EncapMode.CROSS_SUBNET, nat=True)
    bgp_paths(state)
    return plan(state)


def _is_route(dst: str) -> Callable[[Op], bool]:
    def match(op: Op) -> bool:
        return isinstance(op, AddRoute) and op.route.dst == dst

    return match


@pytest.mark.parametrize("error", [errno.EEXIST, errno.ENODEV, errno.ENETUNREACH])
def test_failed_op_is_retried_after_a_resync(error: int) -> None:
    kernel = RecordingKernel(LINKS)
    backend = FaultyBackend(kernel, [Fault(error, _is_route("10.244.2.0/26"))])
    report = sync(_desired(), backend)
    assert report.converged and report.batches == 2
    assert [r.error for r in report.failures] == [error]
    assert diff(_desired(), kernel.read()) == []
    # The retry batch holds only what failed: the resync found everything else in place,
    # so every operation of the first full batch was applied exactly once.
    assert len(kernel.applied) == len(diff(_desired(), RecordingKernel(LINKS).read()))


def test_device_failure_cascades_then_converges() -> None:
    """The device fails, so the kernel refuses its FDB, neighbour and route (ENODEV too)."""
    kernel = RecordingKernel(LINKS)
    backend = FaultyBackend(
        kernel, [Fault(errno.ENODEV, lambda op: isinstance(op, AddVxlanDevice))]
    )
    report = sync(_desired(), backend)
    assert report.converged and report.batches == 2
    assert [type(r.op).__name__ for r in report.failures] == [
        "AddVxlanDevice",
        "AddFdb",
        "AddNeighbour",
        "AddRoute",
    ]
    assert {r.error for r in report.failures} == {errno.ENODEV}
    assert diff(_desired(), kernel.read()) == []


@pytest.mark.parametrize("applied", [True, False])
def test_buffer_overrun_loses_acks_resync_finds_the_truth(applied: bool) -> None:
    kernel = RecordingKernel(LINKS)
    backend = FaultyBackend(
        kernel, [Fault(errno.ENOBUFS, _is_route("10.244.0.5/32"))], overrun_applies=applied
    )
    first = diff(_desired(), kernel.read())
    results = backend.apply(first)
    index = next(i for i, r in enumerate(results) if r.error == errno.ENOBUFS)
    assert all(r.error == errno.ENOBUFS for r in results[index:])
    assert all(r.ok for r in results[:index])
    # Re-reading shows what really happened: nothing left to do if the kernel took the rest.
    left = diff(_desired(), kernel.read())
    assert (left == []) == applied
    assert sync(_desired(), backend).converged


def test_persistent_fault_is_reported_not_looped_forever() -> None:
    kernel = RecordingKernel(LINKS)
    backend = FaultyBackend(
        kernel, [Fault(errno.ENETUNREACH, _is_route("10.244.1.0/26"), times=99)]
    )
    report = sync(_desired(), backend, max_rounds=3)
    assert not report.converged and report.batches == 3
    assert {r.error for r in report.failures} == {errno.ENETUNREACH}
    # Everything else is programmed.
    assert len(diff(_desired(), kernel.read())) == 1


def test_a_foreign_route_appearing_mid_batch_is_not_clobbered() -> None:
    """EEXIST from a real race: someone adds the key between our read and our write."""
    kernel = RecordingKernel(LINKS)
    intruder = Route("10.244.2.0/26", 12, gateway="192.168.1.1", dev="eth0")

    ops = diff(_desired(), kernel.read())
    kernel.preload(intruder)
    results = kernel.apply(ops)
    assert [r.error for r in results if not r.ok] == [errno.EEXIST]
    report = sync(_desired(), kernel)
    assert report.converged and kernel.routes[intruder.key] == intruder
    assert [p.name for p in report.blocked] == ["10.244.2.0/26"]


@given(st.integers(0, 2**32 - 1), st.sampled_from([0.1, 0.3, 0.6]), st.integers(0, 12))
def test_random_faults_with_a_budget_always_converge(seed: int, rate: float, budget: int) -> None:
    kernel = RecordingKernel(LINKS)
    backend = FaultyBackend(
        kernel, rng=random.Random(seed), rate=rate, budget=budget, errors=FAULTS
    )
    report = sync(_desired(), backend, max_rounds=budget + 2)
    assert report.converged
    assert diff(_desired(), kernel.read()) == []
    assert len(backend.injected) <= budget
