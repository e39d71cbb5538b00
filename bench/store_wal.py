"""WAL benchmark: batches/s and fdatasync cost for 1- and 64-entry batches of 256-byte values.

Run: `.venv/bin/python -m bench.store_wal [--batches N] [--dir PATH] [--repeat R]`

For each batch shape and for preallocated vs. growing segments it reports save() throughput,
the latency of save() (p50/p99), the mean time inside fdatasync, the CPU per batch (user +
system, so the kernel's share of the flush is in it), the cost of save() with fdatasync stubbed
out (encode + write only: not durable, measured to show where the time goes), and how long
recovering the written WAL takes. Medians over `--repeat` runs. The directory must be on the
disk the server will use (the default is the system temp dir).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass

from store.wal import WAL

VALUE = 256


@dataclass(frozen=True, slots=True)
class Result:
    per_batch: int
    prealloc: bool
    batches_per_s: float
    entries_per_s: float
    p50_ms: float
    p99_ms: float
    fdatasync_ms: float
    cpu_us: float
    nosync_us: float
    recover_ms: float


def _quantile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _no_sync_cost(base: str, per_batch: int, batches: int, prealloc: bool) -> float:
    """Seconds per save() with fdatasync stubbed out: the encode + write part alone."""
    wal_dir = tempfile.mkdtemp(prefix="wal-nosync-", dir=base)
    real_sync = os.fdatasync
    wal, _ = WAL.open(wal_dir, preallocate=prealloc)
    value = os.urandom(VALUE)
    wal.save((1, 1, 0), [(1, 1, 0, value)])
    index = 2
    os.fdatasync = _skip_sync
    try:
        t0 = time.perf_counter()
        for _ in range(batches):
            wal.save((1, 1, index - 1), [(i, 1, 0, value) for i in range(index, index + per_batch)])
            index += per_batch
        elapsed = time.perf_counter() - t0
    finally:
        os.fdatasync = real_sync
    wal.close()
    shutil.rmtree(wal_dir)
    return elapsed / batches


def _skip_sync(fd: object) -> None:
    """Stands in for os.fdatasync to measure everything but the disk flush."""


def run_once(base: str, per_batch: int, batches: int, prealloc: bool) -> Result:
    wal_dir = tempfile.mkdtemp(prefix="wal-", dir=base)
    sync_times: list[float] = []
    real_sync = os.fdatasync

    def timed_sync(fd: object) -> None:
        t0 = time.perf_counter()
        real_sync(fd)  # type: ignore[arg-type]
        sync_times.append(time.perf_counter() - t0)

    wal, _ = WAL.open(wal_dir, preallocate=prealloc)
    value = os.urandom(VALUE)
    # Warm up: create the first segment so its creation is not in the timings.
    wal.save((1, 1, 0), [(1, 1, 0, value)])
    index = 2
    latencies: list[float] = []
    os.fdatasync = timed_sync
    try:
        cpu0 = time.process_time()
        t_start = time.perf_counter()
        for _ in range(batches):
            batch = [(i, 1, 0, value) for i in range(index, index + per_batch)]
            t0 = time.perf_counter()
            wal.save((1, 1, index - 1), batch)
            latencies.append(time.perf_counter() - t0)
            index += per_batch
        elapsed = time.perf_counter() - t_start
        cpu = time.process_time() - cpu0
    finally:
        os.fdatasync = real_sync
    wal.close()
    t0 = time.perf_counter()
    wal, recovered = WAL.open(wal_dir, preallocate=prealloc)
    recover = time.perf_counter() - t0
    wal.close()
    assert recovered.last_index == index - 1
    shutil.rmtree(wal_dir)
    latencies.sort()
    return Result(
        per_batch=per_batch,
        prealloc=prealloc,
        batches_per_s=batches / elapsed,
        entries_per_s=batches * per_batch / elapsed,
        p50_ms=_quantile(latencies, 0.50) * 1e3,
        p99_ms=_quantile(latencies, 0.99) * 1e3,
        fdatasync_ms=statistics.mean(sync_times) * 1e3,
        # process_time counts user and system CPU (the kernel's share of fdatasync included),
        # not the time spent waiting for the disk.
        cpu_us=cpu / batches * 1e6,
        nosync_us=_no_sync_cost(base, per_batch, batches, prealloc) * 1e6,
        recover_ms=recover * 1e3,
    )


def interleaved(base: str, per_batch: int, saves: int) -> dict[bool, list[float]]:
    """save() latencies of a preallocated and a growing WAL, alternating op by op.

    Whole runs one after another see a shared disk's load drift; alternating single saves
    exposes both kinds to the same moments, which is the fair way to compare them.
    """
    wals = {p: WAL.open(tempfile.mkdtemp(dir=base), preallocate=p)[0] for p in (True, False)}
    value = os.urandom(VALUE)
    index = dict.fromkeys(wals, 1)
    latencies: dict[bool, list[float]] = {p: [] for p in wals}
    for i in range(saves):
        order = (True, False) if i % 2 else (False, True)
        for p in order:
            first = index[p]
            batch = [(j, 1, 0, value) for j in range(first, first + per_batch)]
            t0 = time.perf_counter()
            wals[p].save((1, 1, first - 1), batch)
            latencies[p].append(time.perf_counter() - t0)
            index[p] += per_batch
    for wal in wals.values():
        wal.close()
    return latencies


def _median(results: list[Result]) -> Result:
    def med(name: str) -> float:
        return statistics.median(float(getattr(r, name)) for r in results)

    first = results[0]
    return Result(
        first.per_batch,
        first.prealloc,
        med("batches_per_s"),
        med("entries_per_s"),
        med("p50_ms"),
        med("p99_ms"),
        med("fdatasync_ms"),
        med("cpu_us"),
        med("nosync_us"),
        med("recover_ms"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write (default: system temp)")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="tabby-bench-wal-", dir=args.dir)
    try:
        configs = [(per_batch, prealloc) for per_batch in (1, 64) for prealloc in (True, False)]
        runs: dict[tuple[int, bool], list[Result]] = {config: [] for config in configs}
        # Interleaved, so that a disk that is busy for a while slows every configuration alike.
        for _ in range(args.repeat):
            for per_batch, prealloc in configs:
                runs[per_batch, prealloc].append(run_once(base, per_batch, args.batches, prealloc))
        rows = [_median(runs[config]) for config in configs]
        pairs = {n: interleaved(base, n, args.batches // 2) for n in (1, 64)}
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(f"WAL save(): {args.batches} batches of {VALUE}-byte values, median of {args.repeat}")
    print(f"directory: {base} ({os.uname().sysname} {os.uname().release})")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    header = (
        f"{'entries/batch':>13} {'prealloc':>8} {'batches/s':>10} {'entries/s':>10} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'fdatasync ms':>12} {'CPU us/batch':>12} "
        f"{'no-sync us':>10} {'recover ms':>10}"
    )
    print(header)
    for r in rows:
        print(
            f"{r.per_batch:>13} {'yes' if r.prealloc else 'no':>8} {r.batches_per_s:>10.0f} "
            f"{r.entries_per_s:>10.0f} {r.p50_ms:>7.3f} {r.p99_ms:>7.3f} "
            f"{r.fdatasync_ms:>12.3f} {r.cpu_us:>12.1f} {r.nosync_us:>10.1f} "
            f"{r.recover_ms:>10.1f}"
        )
    print(f"\nPreallocated vs growing segment, saves alternating ({args.batches // 2} each):")
    print(f"{'entries/batch':>13} {'prealloc':>8} {'p50 ms':>7} {'mean ms':>8} {'p90 ms':>7}")
    for n, lat in pairs.items():
        for p in (True, False):
            values = sorted(lat[p])
            print(
                f"{n:>13} {'yes' if p else 'no':>8} {_quantile(values, 0.5) * 1e3:>7.3f} "
                f"{statistics.mean(values) * 1e3:>8.3f} {_quantile(values, 0.9) * 1e3:>7.3f}"
            )


if __name__ == "__main__":
    main()
