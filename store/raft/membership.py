"""Rules for single-server membership changes (Raft thesis §4.1, §4.2.1; etcd-io/raft).

One change at a time: add a learner, promote a learner (ADD_NODE on a learner), add a voter or
remove a member. The proposal-time checks live here so that the node only has to ask "why not?".

Invariants: a voter is never demoted to learner by ADD_LEARNER; the last voter is never
removed; a learner is promoted only when its matchIndex is within `lag` entries of the commit
index, so the new majority can make progress at once (thesis §4.2.1).
"""

from __future__ import annotations

from store.raft.types import ConfChange, ConfChangeKind, ConfState


def quorum(voters: frozenset[int]) -> int:
    """The size of a majority of `voters` (§5.2: "a majority of the servers")."""
    return len(voters) // 2 + 1


def refusal(
    change: ConfChange, conf: ConfState, learner_match: int, committed: int, lag: int
) -> str | None:
    """Why `change` may not be proposed now, or None if it may.

    `learner_match` is the leader's matchIndex for `change.node_id` (0 if unknown)."""
    node = change.node_id
    checks: dict[ConfChangeKind, list[tuple[bool, str]]] = {
        ConfChangeKind.ADD_NODE: [
            (node in conf.voters, f"node {node} is already a voter"),
            (
                node in conf.learners and learner_match + lag < committed,
                f"learner {node} has not caught up (match {learner_match}, commit {committed})",
            ),
        ],
        ConfChangeKind.ADD_LEARNER: [
            (node in conf.members(), f"node {node} is already a member"),
        ],
        ConfChangeKind.REMOVE_NODE: [
            (node not in conf.members(), f"node {node} is not a member"),
            (conf.voters == {node}, "cannot remove the last voter"),
        ],
    }
    for failed, reason in checks[change.kind]:
        if failed:
            return reason
    return None
