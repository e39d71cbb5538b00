"""`Deferral` (RFC 4724 §4.1) under arbitrary event sequences (hypothesis): every wait is
bounded — by the peer's own deadline and by the upper bound — a released peer stays released
with the reason it first got, and a finished deferral stays finished and waits for nobody."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bgpd.core.restart import Deferral
from bgpd.wire.context import IPV4_UNICAST, IPV6_UNICAST

PEERS = ("a", "b", "c")
FAMILIES = (IPV4_UNICAST, IPV6_UNICAST)

events = st.lists(
    st.one_of(
        st.tuples(
            st.just("up"),
            st.sampled_from(PEERS),
            st.booleans(),
            st.booleans(),
            st.lists(st.sampled_from(FAMILIES), min_size=1, max_size=2, unique=True),
        ),
        st.tuples(st.just("eor"), st.sampled_from(PEERS), st.sampled_from(FAMILIES)),
        st.tuples(st.just("down"), st.sampled_from(PEERS)),
        st.tuples(st.just("forget"), st.sampled_from(PEERS)),
        st.tuples(st.just("tick"), st.floats(0.0, 20.0)),
    ),
    max_size=40,
)


@given(
    limit=st.floats(0.0, 60.0),
    waits=st.fixed_dictionaries({p: st.floats(0.0, 40.0) for p in PEERS}),
    script=events,
)
def test_rfc4724_4_1_deferral_is_bounded_per_peer_and_overall(
    limit: float, waits: dict[str, float], script: list[tuple[object, ...]]
) -> None:
    now = 0.0
    d = Deferral(now, limit, waits)
    released: dict[str, str] = dict(d.released)
    done = d.finished
    for event in script:
        kind = event[0]
        if kind == "up":
            _, pid, gr, restarting, fams = event
            d.session_up(str(pid), now, tuple(fams), bool(gr), bool(restarting))  # type: ignore[arg-type]
        elif kind == "eor":
            d.end_of_rib(str(event[1]), event[2], now)  # type: ignore[arg-type]
        elif kind == "down":
            d.session_down(str(event[1]))
        elif kind == "forget":
            d.forget(str(event[1]), now)
        else:
            step = float(event[1])  # type: ignore[arg-type]
            timer = d.get_timer()
            now += step
            d.handle_timer(now)
            if timer is not None and now >= timer:
                # whatever was due is gone: nothing still waited for has a passed deadline
                assert all(w.deadline > now for w in d.pending.values())
        # invariants after every step
        assert set(d.pending).isdisjoint(d.released)
        assert set(d.pending) | set(d.released) <= set(PEERS)
        for pid, how in released.items():
            assert d.released[pid] == how  # released once, reason kept
        released = dict(d.released)
        if done:
            assert d.finished  # stays finished
        done = d.finished
        if d.finished:
            assert not d.pending and d.get_timer() is None and d.ended_at is not None
        else:
            timer = d.get_timer()
            assert timer is not None and timer <= d.deadline
            assert all(w.deadline <= d.deadline for w in d.pending.values())
    # The upper bound: at the deadline, everyone is released.
    d.handle_timer(max(now, d.deadline))
    assert d.finished and not d.pending
