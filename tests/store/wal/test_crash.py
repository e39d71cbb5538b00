"""Crash simulation: a child process writes batches and is SIGKILLed at random points.

Issue 6, Storage: "A crash at any instant loses nothing that was acknowledged." The child prints
`B first last term` before each save() and `A last` after it returns; every batch with an `A`
must be recovered, the one in flight may or may not be. The child also overwrites suffixes,
releases old segments and rolls segments often (small segment size), so kills land in those
paths too. SIGKILL keeps the page cache, so this checks process crashes; lost unsynced pages
(power loss) are the torn-tail tests in test_recovery.py.
"""

from __future__ import annotations

import random
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from store.wal import WAL
from store.wal.record import EntryTuple
from tests.store.wal.util import LogModel, payload

ROOT = str(Path(__file__).resolve().parents[3])
SEGMENT = 32768

CHILD = r"""
import os, random, sys
sys.path.insert(0, sys.argv[1])
from store.wal import WAL
from tests.store.wal.util import payload
wal_dir, seed, segment = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
wal, rec = WAL.open(wal_dir, segment_size=segment, preallocate=rng.random() < 0.5)
last = rec.last_index or 0
term = rec.hard_state[0] if rec.hard_state else 1
for _ in range(100000):
    count = rng.choice([1, 1, 3, 16, 64])
    start = last + 1
    if last > 5 and rng.random() < 0.15:
        start = last + 1 - rng.randint(1, 3)  # Raft overwrites an uncommitted suffix
        term += 1
    size = rng.choice([10, 256, 2000])
    batch = [(i, term, 0, payload(i, term, size)) for i in range(start, start + count)]
    hard = (term, 1, start - 1)
    # One write(2) per line: a pipe write below PIPE_BUF is atomic, so a kill never splits it.
    os.write(1, f"B {start} {start + count - 1} {term} {size}\n".encode())
    wal.save(hard, batch)
    os.write(1, f"A {start + count - 1}\n".encode())
    last = start + count - 1
    if rng.random() < 0.1:
        wal.release_to(last - 100)
"""


@dataclass
class _Batch:
    start: int
    last: int
    term: int
    size: int

    def entries(self) -> list[EntryTuple]:
        return [
            (i, self.term, 0, payload(i, self.term, self.size))
            for i in range(self.start, self.last + 1)
        ]


@dataclass
class _Run:
    acked: list[_Batch] = field(default_factory=list)
    in_flight: _Batch | None = None


def _run_child(wal_dir: str, seed: int, kill_on: tuple[str, int]) -> _Run:
    """Run the writer until the kill_on[1]-th line of kind kill_on[0], then SIGKILL it.

    Returns the batches it acknowledged and the one it was writing, read to the end of its
    output: the child may have gone on for a few batches before the signal landed.
    """
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, ROOT, wal_dir, str(seed), str(SEGMENT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    run = _Run()
    seen = 0
    try:
        assert child.stdout is not None
        for line in child.stdout:
            kind, *fields = line.split()
            if kind == "B":
                run.in_flight = _Batch(*map(int, fields))
            elif kind == "A":
                assert run.in_flight is not None and int(fields[0]) == run.in_flight.last
                run.acked.append(run.in_flight)
                run.in_flight = None
            if kind == kill_on[0]:
                seen += 1
                if seen == kill_on[1]:
                    # Lines already in the pipe were printed before death: keep reading them.
                    child.kill()
    finally:
        child.kill()
        child.wait(timeout=60)
        assert child.stderr is not None
        errors = child.stderr.read()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    assert child.returncode == -9, errors
    return run


@pytest.mark.slow
def test_sigkill_at_random_points_loses_no_acknowledged_batch(tmp_path: Path) -> None:
    rng = random.Random(6)
    wal_dir = str(tmp_path / "wal")
    model = LogModel()
    hard: tuple[int, int, int] | None = None
    for round_no in range(14):
        kill_on = (rng.choice("AB"), rng.randint(1, 40))
        run = _run_child(wal_dir, rng.randrange(1 << 30), kill_on)
        for batch in run.acked:
            model.save(batch.entries())
        wal, rec = WAL.open(wal_dir, segment_size=SEGMENT, preallocate=False)
        wal.close()
        first = rec.first_index or 1
        expect = [e for e in model.ordered() if e[0] >= first]
        if run.acked:
            hard = (run.acked[-1].term, 1, run.acked[-1].start - 1)
        if run.in_flight is not None and rec.entries != expect:
            # The batch in flight reached the disk before the kill: it must be whole.
            model.save(run.in_flight.entries())
            expect = [e for e in model.ordered() if e[0] >= first]
            b = run.in_flight
            hard = (b.term, 1, b.start - 1)
        assert rec.entries == expect, f"round {round_no}: recovered log differs"
        assert rec.hard_state == hard, f"round {round_no}"
