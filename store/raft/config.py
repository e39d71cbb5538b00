"""Tunables of one Raft node, with etcd's defaults.

Timing is in ticks: the shell calls `RaftNode.tick()` every `tick_interval` seconds (etcd's
`--heartbeat-interval`, 100 ms), so the default election timeout of 10 ticks is etcd's 1 s
`--election-timeout`. Randomized election timeouts are drawn from
[election_tick, 2 * election_tick) (Raft paper §5.2).

Invariants (checked by `validate`): heartbeat_tick < election_tick, positive sizes, id != 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from store.raft.types import NONE


class ConfigError(ValueError):
    """A configuration value is out of range."""


@dataclass(frozen=True, slots=True)
class Config:
    id: int
    election_tick: int = 10
    heartbeat_tick: int = 1
    # Seconds per tick; the core never reads a clock, this is for the shell's timer.
    tick_interval: float = 0.1
    # Thesis §9.6: a node first checks that it could win before bumping its term.
    pre_vote: bool = True
    # Thesis §6.2: a leader that has not heard from a quorum within an election timeout
    # steps down, and followers ignore vote requests while they hear from a leader.
    check_quorum: bool = True
    max_size_per_msg: int = 1 << 20
    max_inflight_msgs: int = 256
    max_committed_size_per_ready: int = 64 << 20
    snapshot_chunk_size: int = 1 << 20
    # A learner is promoted only once its matchIndex is within this many entries of the commit.
    learner_promotion_lag: int = 64
    # The index the shell's state machine already reflects at start (never below the snapshot).
    applied: int = 0

    def validate(self) -> None:
        checks = {
            "id must not be 0": self.id != NONE and self.id > 0,
            "heartbeat_tick must be positive": self.heartbeat_tick > 0,
            "election_tick must exceed heartbeat_tick": self.election_tick > self.heartbeat_tick,
            "max_size_per_msg must be positive": self.max_size_per_msg > 0,
            "max_inflight_msgs must be positive": self.max_inflight_msgs > 0,
            "max_committed_size_per_ready must be positive": self.max_committed_size_per_ready > 0,
            "snapshot_chunk_size must be positive": self.snapshot_chunk_size > 0,
            "learner_promotion_lag must not be negative": self.learner_promotion_lag >= 0,
            "tick_interval must be positive": self.tick_interval > 0,
        }
        for message, ok in checks.items():
            if not ok:
                raise ConfigError(message)
