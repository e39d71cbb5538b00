"""The BGP decision process: RFC 4271 §9.1.2.2 with the RFC 4456 §9 tie-breaks.

Steps, in order (the first that differs decides, and its name is recorded as the reason):
  local       a locally originated path beats a learned one (as BIRD's static preference)
  local_pref  higher LOCAL_PREF, 100 when absent (RFC 4271 §9.1.1; a LOCAL_PREF received
              from an eBGP peer is dropped on import, §5.1.5, so one present on an eBGP
              path was set by our own import policy)
  as_path     shorter AS_PATH (AS_SET counts 1, confederation segments 0)
  origin      lower ORIGIN (IGP < EGP < INCOMPLETE)
  med         lower MULTI_EXIT_DISC, only between paths from the same neighbor AS (§9.1.2.2 c)
  ebgp        eBGP-learned over iBGP-learned
  router_id   lower BGP identifier; ORIGINATOR_ID stands in for it when present (RFC 4456 §9)
  cluster_list shorter CLUSTER_LIST (RFC 4456 §9)
  address     lower peer address
MED is not transitive across neighbor ASes, so "better" alone is not a total order. As in
"deterministic MED", paths are first grouped by neighbor AS and the best of each group is
found with MED; group winners are then compared without it. The result does not depend on
the order paths arrived in. Paths equal through `ebgp` form the ECMP set; it holds one path
per distinct next hop (two reflectors reflecting one client's route give one next hop, not
two), best first, then in decision order, at most `max_paths`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from bgpd.core.routing.paths import Path

DEFAULT_LOCAL_PREF = 100
# Steps whose equality makes two paths equal-cost (RFC 4271 leaves multipath to the
# implementation; like BIRD, everything up to the IGP/eBGP comparisons must tie).
ECMP_STEPS = ("local", "local_pref", "as_path", "origin", "med", "ebgp")


def _local_pref(p: Path) -> int:
    lp = p.attrs.local_pref
    return DEFAULT_LOCAL_PREF if lp is None else lp


def _router_id(p: Path) -> int:
    oid = p.attrs.originator_id
    return oid if oid is not None else p.router_id


def _step_values(p: Path) -> tuple[tuple[str, object], ...]:
    """(step, value) with smaller values better."""
    a = p.attrs
    return (
        ("local", 0 if p.local else 1),
        ("local_pref", -_local_pref(p)),
        ("as_path", a.as_path_length()),
        ("origin", a.origin if a.origin is not None else 2),
        ("med", a.med or 0),
        ("ebgp", 1 if p.ibgp else 0),
        ("router_id", _router_id(p)),
        ("cluster_list", len(a.cluster_list)),
        ("address", p.peer_address),
    )


def compare(x: Path, y: Path, *, use_med: bool = True) -> tuple[int, str]:
    """(-1 if x is better, 1 if y is, 0 if equal; the deciding step)."""
    for (step, vx), (_, vy) in zip(_step_values(x), _step_values(y), strict=True):
        if step == "med" and not use_med:
            continue
        if vx != vy:
            return (-1 if vx < vy else 1), step  # type: ignore[operator]
    return 0, "equal"


def _best_of(paths: Sequence[Path], use_med: bool) -> Path:
    best = paths[0]
    for p in paths[1:]:
        if compare(p, best, use_med=use_med)[0] < 0:
            best = p
    return best


class Decision(NamedTuple):
    """A NamedTuple, not a dataclass: a full table holds one per prefix and the single-path
    case shares one instance per attribute set (see table.py), so construction cost counts."""

    best: Path | None
    reason: str  # the step by which best beat the runner-up ("only path", "none")
    multipath: tuple[Path, ...]  # best first, then the other equal-cost paths


NO_ROUTE = Decision(None, "none", ())


def decide(candidates: Sequence[Path], max_paths: int = 1) -> Decision:
    if not candidates:
        return NO_ROUTE
    if len(candidates) == 1:
        return Decision(candidates[0], "only path", (candidates[0],))
    groups: dict[int, list[Path]] = {}
    for p in candidates:
        groups.setdefault(p.neighbor_as(), []).append(p)
    winners = [_best_of(g, use_med=True) for g in groups.values()]
    best = _best_of(winners, use_med=False)
    # The reason: how best beat the best of the rest (so the API can say why).
    rest = [p for p in candidates if p is not best]
    runner = _best_of(rest, use_med=False)
    same_as = runner.neighbor_as() == best.neighbor_as()
    _, reason = compare(best, runner, use_med=same_as)
    multipath: tuple[Path, ...] = (best,)
    if max_paths > 1:
        equal = [p for p in rest if _equal_cost(best, p)]
        equal.sort(key=_step_values)
        hops = {best.next_hop}
        chosen = [best]
        for p in equal:
            if len(chosen) == max_paths:
                break
            if p.next_hop not in hops:
                hops.add(p.next_hop)
                chosen.append(p)
        multipath = tuple(chosen)
    return Decision(best, reason, multipath)


def _equal_cost(a: Path, b: Path) -> bool:
    va, vb = _step_values(a), _step_values(b)
    for (step, x), (_, y) in zip(va, vb, strict=True):
        if step not in ECMP_STEPS:
            break
        if step == "med" and a.neighbor_as() != b.neighbor_as():
            continue
        if x != y:
            return False
    return True
