"""The decision process (RFC 4271 §9.1.2.2, RFC 4456 §9) against a naive oracle."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bgpd.core.routing.decision import decide
from bgpd.core.routing.paths import Path
from bgpd.wire.attributes import PathAttributes


def path(
    source: str = "p",
    *,
    lp: int | None = None,
    as_path: tuple[int, ...] = (),
    origin: int = 0,
    med: int | None = None,
    ibgp: bool = True,
    rid: int = 1,
    originator: int | None = None,
    clusters: tuple[int, ...] = (),
    addr: int = 1,
) -> Path:
    attrs = PathAttributes(
        origin=origin,
        as_path=((2, as_path),) if as_path else (),
        med=med,
        local_pref=lp,
        originator_id=originator,
        cluster_list=clusters,
    )
    return Path(
        source,
        attrs,
        bytes((127, 0, addr >> 8, addr & 0xFF)),
        ibgp=ibgp,
        router_id=rid,
        peer_address=addr.to_bytes(4, "big"),
    )


def test_each_step_decides_and_is_named() -> None:
    cases = [
        ("local_pref", path("a", lp=200), path("b", lp=100)),
        ("as_path", path("a", as_path=(1,)), path("b", as_path=(1, 2))),
        ("origin", path("a", origin=0), path("b", origin=2)),
        ("med", path("a", as_path=(7,), med=5), path("b", as_path=(7,), med=10)),
        ("ebgp", path("a", ibgp=False), path("b", ibgp=True)),
        ("router_id", path("a", rid=1), path("b", rid=2)),
        ("router_id", path("a", rid=9, originator=1), path("b", rid=2)),  # RFC 4456 §9
        ("cluster_list", path("a", clusters=(1,)), path("b", clusters=(1, 2))),
        ("address", path("a", addr=1), path("b", addr=2)),
    ]
    for step, winner, loser in cases:
        for order in ([winner, loser], [loser, winner]):
            d = decide(order)
            assert d.best is winner, step
            assert d.reason == step


def test_med_only_compared_within_a_neighbor_as() -> None:
    """§9.1.2.2(c): a lower MED from another AS does not win; router id decides instead."""
    a = path("a", as_path=(1,), med=100, rid=1)
    b = path("b", as_path=(2,), med=1, rid=2)
    assert decide([a, b]).best is a
    assert decide([b, a]).best is a


def test_local_path_wins_and_single_path_reason() -> None:
    local = Path("", PathAttributes(origin=2, as_path=()), b"\x00" * 4)
    learned = path("a", lp=1000)
    assert decide([learned, local]).best is local
    assert decide([learned]).reason == "only path"


def test_ecmp_set_contains_equal_cost_paths_up_to_max() -> None:
    a, b, c = path("a", rid=1, addr=1), path("b", rid=2, addr=2), path("c", rid=3, addr=3)
    worse = path("d", as_path=(5,), rid=0, addr=0)
    d = decide([c, worse, b, a], max_paths=2)
    assert d.best is a and d.multipath == (a, b)
    assert decide([c, worse, b, a], max_paths=8).multipath == (a, b, c)


# --- the oracle: RFC 4271 §9.1.2.2's elimination, step by step --------------------------


def oracle(paths: list[Path]) -> Path:
    s = list(paths)

    def keep(key: Callable[[Path], Any]) -> None:
        nonlocal s
        best = min(key(p) for p in s)
        s = [p for p in s if key(p) == best]

    keep(lambda p: 0 if p.local else 1)
    keep(lambda p: -(p.attrs.local_pref if p.attrs.local_pref is not None else 100))
    keep(lambda p: p.attrs.as_path_length())
    keep(lambda p: p.attrs.origin)
    # (c) remove a path when another from the same neighbour AS has a lower MED.
    s = [
        p
        for p in s
        if not any(
            q.neighbor_as() == p.neighbor_as() and (q.attrs.med or 0) < (p.attrs.med or 0)
            for q in s
        )
    ]
    keep(lambda p: 1 if p.ibgp else 0)
    keep(lambda p: p.attrs.originator_id if p.attrs.originator_id is not None else p.router_id)
    keep(lambda p: len(p.attrs.cluster_list))
    keep(lambda p: p.peer_address)
    assert len(s) == 1
    return s[0]


@st.composite
def candidate_sets(draw: st.DrawFn) -> list[Path]:
    n = draw(st.integers(1, 7))
    addrs = draw(st.lists(st.integers(1, 1000), min_size=n, max_size=n, unique=True))
    out = []
    for i, addr in enumerate(addrs):
        ibgp = draw(st.booleans())
        out.append(
            path(
                f"p{i}",
                lp=draw(st.sampled_from([None, 50, 100, 200])) if ibgp else None,
                as_path=tuple(draw(st.lists(st.sampled_from([65001, 65002, 65003]), max_size=3))),
                origin=draw(st.integers(0, 2)),
                med=draw(st.sampled_from([None, 0, 10, 20])),
                ibgp=ibgp,
                rid=draw(st.integers(1, 5)),
                originator=draw(st.sampled_from([None, 1, 3])),
                clusters=tuple(draw(st.lists(st.integers(1, 3), max_size=2))),
                addr=addr,
            )
        )
    return out


@given(candidate_sets(), st.randoms(use_true_random=False))
def test_decision_matches_the_rfc_elimination_in_any_order(paths: list[Path], rnd) -> None:  # type: ignore[no-untyped-def]
    expected = oracle(paths)
    shuffled = list(paths)
    rnd.shuffle(shuffled)
    assert decide(shuffled).best is expected
