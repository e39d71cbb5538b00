"""A linearizability checker for register histories (the Porcupine approach, in Python).

Wing & Gong's search with Lowe's memoization, as anishathalye/porcupine implements it: walk the
history's call/return events in time order; at a call, try to linearize that operation now
(the model must accept it from the current state) and lift it out of the list; at a return of an
operation not yet linearized, backtrack. A (set of linearized ops, state) pair already explored
is never explored again. Linearizability is local (Herlihy & Wing, P-compositionality), so a
history over several keys is checked one key at a time.

Operations with an unknown outcome (a write whose client timed out or lost its connection) get
a return time of +infinity: the search may place their effect anywhere after their call,
including "after everything", which is the same as never having happened.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Op:
    """One register operation: kind "put" (value written) or "get" (value read; None: absent)."""

    client: int
    key: bytes
    kind: str
    value: bytes | None
    call: float
    ret: float = math.inf  # math.inf: outcome unknown


class _Node:
    __slots__ = ("call", "match", "next", "op", "prev")

    def __init__(self, op: int, call: bool) -> None:
        self.op = op
        self.call = call
        self.match: _Node | None = None
        self.prev: _Node | None = None
        self.next: _Node | None = None


def _step(state: bytes | None, op: Op) -> tuple[bool, bytes | None]:
    if op.kind == "put":
        return True, op.value
    return op.value == state, state


def check_register(ops: list[Op], initial: bytes | None = None) -> bool:
    """True if the single-register history `ops` is linearizable."""
    if not ops:
        return True
    events: list[tuple[float, int, int]] = []  # (time, 0 call / 1 return, op index)
    for i, op in enumerate(ops):
        events.append((op.call, 0, i))
        events.append((op.ret, 1, i))
    # At equal times calls sort first: overlapping is the permissive reading of a tie.
    events.sort()
    head = _Node(-1, False)
    prev = head
    calls: dict[int, _Node] = {}
    for _, kind, i in events:
        node = _Node(i, kind == 0)
        if kind == 0:
            calls[i] = node
        else:
            calls[i].match = node
        node.prev = prev
        prev.next = node
        prev = node

    def lift(node: _Node) -> None:
        for n in (node, node.match):
            assert n is not None and n.prev is not None
            n.prev.next = n.next
            if n.next is not None:
                n.next.prev = n.prev

    def unlift(node: _Node) -> None:
        for n in (node.match, node):
            assert n is not None and n.prev is not None
            n.prev.next = n
            if n.next is not None:
                n.next.prev = n

    state = initial
    linearized = 0
    cache: set[tuple[int, bytes | None]] = set()
    stack: list[tuple[_Node, bytes | None]] = []
    entry = head.next
    while head.next is not None:
        assert entry is not None
        if entry.call:
            ok, new_state = _step(state, ops[entry.op])
            if ok:
                new_lin = linearized | (1 << entry.op)
                if (new_lin, new_state) not in cache:
                    cache.add((new_lin, new_state))
                    stack.append((entry, state))
                    state, linearized = new_state, new_lin
                    lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
        else:
            if not stack:
                return False
            node, state = stack.pop()
            linearized &= ~(1 << node.op)
            unlift(node)
            entry = node.next
    return True


def check_history(ops: list[Op]) -> list[bytes]:
    """Keys whose sub-history is not linearizable (empty: the whole history is)."""
    by_key: dict[bytes, list[Op]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    return [key for key, key_ops in sorted(by_key.items()) if not check_register(key_ops)]
