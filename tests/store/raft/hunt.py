"""Hunt mode for the Raft simulator: many random fault schedules, far more than CI runs.

    .venv/bin/python -m tests.store.raft.hunt FIRST_SEED COUNT

Each seed builds one schedule from the same actions the hypothesis tests use (odd seeds add
membership changes), runs it with the Figure 3 checks after every step, then requires liveness
once faults stop. It stops at the first failure and prints the seed and the schedule, which can
be pasted into a fixed test. Not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import random
import sys
import traceback

from store.raft import ConfChangeKind
from tests.store.raft.sim import Cluster
from tests.store.raft.test_sim_fuzz import _apply, _check_reads, _final_liveness

Action = tuple[object, ...]


def random_action(r: random.Random, membership: bool) -> Action:
    ops = [
        "run", "tick", "ready", "deliver", "drop", "dup", "propose", "propose_many", "lag",
        "crash", "send_then_crash", "restart", "partition", "heal", "block", "compact", "read", "transfer",
    ]  # fmt: skip
    if membership:
        ops += ["conf", "conf"]
    op = r.choice(ops)
    node = r.randint(1, 5)
    table: dict[str, Action] = {
        "run": ("run", r.randint(1, 25)),
        "deliver": ("deliver", r.randint(0, 63)),
        "drop": ("drop", r.randint(0, 63)),
        "dup": ("dup", r.randint(0, 63)),
        "propose": ("propose", bytes([r.randint(0, 255)])),
        "propose_many": ("propose_many", r.randint(1, 12)),
        "lag": ("lag", node, r.randint(1, 12)),
        "partition": ("partition", frozenset(r.sample(range(1, 6), r.randint(0, 2)))),
        "heal": ("heal", 0),
        "block": ("block", node, r.randint(1, 5)),
        "conf": ("conf", r.choice(list(ConfChangeKind)), r.randint(1, 7)),
    }
    return table.get(op, (op, node))


def run_seed(seed: int) -> None:
    r = random.Random(seed)
    membership = seed % 2 == 1
    voters = r.choice([3, 5]) if membership else r.choice([1, 3, 5])
    pre_vote = membership or r.random() < 0.5
    actions = [random_action(r, membership) for _ in range(r.randint(10, 60))]
    cluster = Cluster(voters, seed, pre_vote=pre_vote, check_quorum=pre_vote)
    reads: dict[bytes, int] = {}
    done: list[Action] = []
    try:
        cluster.elect()
        for action in actions:
            done.append(action)
            _apply(cluster, action, reads)
            cluster.check()
            _check_reads(cluster, reads)
        _final_liveness(cluster)
    except Exception:
        print(f"FAIL seed={seed} voters={voters} pre_vote={pre_vote}")
        print(f"actions={done!r}")
        traceback.print_exc()
        raise


def main(argv: list[str]) -> int:
    first, count = int(argv[1]), int(argv[2])
    for seed in range(first, first + count):
        try:
            run_seed(seed)
        except Exception:
            return 1
    print(f"ok: seeds {first}..{first + count - 1}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
