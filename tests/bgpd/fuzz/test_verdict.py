"""The verdict logic against recorded target behaviour (no daemon)."""

from __future__ import annotations

from bgpd.fuzz.verdict import (
    Observation,
    Route,
    judge_keepalives,
    judge_malformed,
    judge_propagation,
    summarize_liveness,
)
from bgpd.wire import MpReach, Notification, PathAttributes, Update, WireContext, make_prefix
from bgpd.wire.attributes import AS_SEQUENCE, AS_SET, OPTIONAL, PARTIAL, TRANSITIVE, RawAttribute
from bgpd.wire.errors import Action, MessageHeaderError, UpdateMessageError
from bgpd.wire.strategies import Expected

CTX = WireContext(four_octet_as=True)
PROBE = make_prefix("10.0.0.0/24")
BAD_LENGTH = Expected(CTX, MessageHeaderError, 1, 2, b"\x00\x05")
MED_LENGTH = Expected(CTX, None, 3, 5, b"\x80\x04\x01\x00", Action.TREAT_AS_WITHDRAW, "med-length")
AGGREGATOR = Expected(
    CTX, None, 3, 5, b"\xc0\x07\x00", Action.ATTRIBUTE_DISCARD, "aggregator-length"
)
FRAMING = Expected(
    CTX, UpdateMessageError, 3, 1, b"", Action.SESSION_RESET, "attribute-length-overrun"
)
BASE = PathAttributes(origin=0, as_path=((AS_SEQUENCE, (65001,)),), next_hop=b"\xc0\x00\x02\x01")


def down(code: int, subcode: int, data: bytes = b"") -> Observation:
    return Observation(Notification(code, subcode, data), session_down=True, barrier=False)


def test_rfc4271_s6_1_exact_notification_passes() -> None:
    assert judge_malformed(BAD_LENGTH, PROBE, down(1, 2, b"\x00\x05")) == []


def test_rfc4271_s6_1_wrong_subcode_or_data_is_a_finding() -> None:
    (f,) = judge_malformed(BAD_LENGTH, PROBE, down(1, 3, b"\x00\x05"))
    assert "1/2" in f.expected and "1/3" in f.observed
    (f,) = judge_malformed(BAD_LENGTH, PROBE, down(1, 2, b""))
    assert f.expected == "data=0005"


def test_rfc4271_s6_silent_close_or_acceptance_is_a_finding() -> None:
    (f,) = judge_malformed(BAD_LENGTH, PROBE, Observation(session_down=True, barrier=False))
    assert "without a NOTIFICATION" in f.observed
    (f,) = judge_malformed(FRAMING, PROBE, Observation())
    assert "accepted" in f.observed and f.rfc.startswith("RFC 4271 §6.3")


def test_rfc7606_s2_reset_for_treat_as_withdraw_is_a_finding() -> None:
    (f,) = judge_malformed(MED_LENGTH, PROBE, down(3, 5, b"\x80\x04\x01\x00"))
    assert f.rfc == "RFC 7606 §7.4" and "reset the session" in f.observed


def test_rfc7606_s2_treat_as_withdraw_removes_the_probe() -> None:
    kept = Observation(routes={PROBE: Route(BASE)})
    (f,) = judge_malformed(MED_LENGTH, PROBE, kept)
    assert "treat-as-withdraw" in f.rfc
    assert judge_malformed(MED_LENGTH, PROBE, Observation(routes={})) == []


def test_rfc7606_s2_attribute_discard_keeps_the_route() -> None:
    assert judge_malformed(AGGREGATOR, PROBE, Observation(routes={PROBE: Route(BASE)})) == []
    (f,) = judge_malformed(AGGREGATOR, PROBE, Observation(routes={}))
    assert "attribute discard" in f.rfc


def test_rfc4271_s6_crash_and_collateral_damage_are_findings() -> None:
    obs = Observation(
        Notification(1, 2, b"\x00\x05"), session_down=True, monitor_down=True, exit_status=-11
    )
    rfcs = [f.observed for f in judge_malformed(BAD_LENGTH, PROBE, obs)]
    assert rfcs == ["exited (-11)", "dropped the monitor's session"]


def test_rfc7606_stopped_forwarding_is_a_finding() -> None:
    (f,) = judge_malformed(MED_LENGTH, PROBE, Observation(barrier=False))
    assert "stopped forwarding" in f.observed


UNKNOWN = RawAttribute(OPTIONAL | TRANSITIVE, 200, b"xy")
SENT = Update(attributes=BASE._replace(med=5, communities=(1,), unknown=(UNKNOWN,)), nlri=(PROBE,))
GOOD = BASE._replace(
    as_path=((AS_SEQUENCE, (65000, 65001)),),
    communities=(1,),
    unknown=(RawAttribute(OPTIONAL | TRANSITIVE | PARTIAL, 200, b"xy"),),
)


def test_rfc4271_s5_conforming_propagation_passes() -> None:
    obs = Observation(routes={PROBE: Route(GOOD, {200: 0xE0})})
    assert judge_propagation(SENT, 65000, 65002, obs) == []


def test_rfc4271_s5_partial_bit_must_be_set_on_unknown_transitive() -> None:
    obs = Observation(routes={PROBE: Route(GOOD, {200: 0xC0})})
    (f,) = judge_propagation(SENT, 65000, 65002, obs)
    assert "Partial" in f.expected and f.observed == "sent flags 0xc0"


def test_rfc4271_s5_1_2_and_s5_1_4_path_prepend_and_med() -> None:
    bad = GOOD._replace(as_path=((AS_SEQUENCE, (65001,)),), med=5)
    obs = Observation(routes={PROBE: Route(bad, {200: 0xE0})})
    rfcs = sorted(f.rfc for f in judge_propagation(SENT, 65000, 65002, obs))
    assert rfcs == ["RFC 4271 §5.1.2", "RFC 4271 §5.1.4"]


def test_rfc4271_s5_dropped_transitive_and_missing_route() -> None:
    obs = Observation(routes={PROBE: Route(GOOD._replace(communities=(), unknown=()))})
    observed = sorted(f.observed for f in judge_propagation(SENT, 65000, 65002, obs))
    assert observed == ["advertised []", "dropped it"]
    (f,) = judge_propagation(SENT, 65000, 65002, Observation(routes={}))
    assert f.rfc == "RFC 4271 §9.2"


def test_rfc4271_s6_3_reset_on_well_formed_update_is_a_finding() -> None:
    (f,) = judge_propagation(SENT, 65000, 65002, down(3, 1))
    assert "reset the session" in f.observed


def test_rfc4271_s4_3_as_set_order_does_not_matter() -> None:
    sent = Update(
        attributes=BASE._replace(as_path=((AS_SEQUENCE, (65001,)), (AS_SET, (7, 3)))), nlri=(PROBE,)
    )
    got = BASE._replace(as_path=((AS_SEQUENCE, (65000, 65001)), (AS_SET, (3, 7))))
    assert judge_propagation(sent, 65000, 65002, Observation(routes={PROBE: Route(got)})) == []


MP_REACH_ATTR = b"\x80\x0e\x0a\x00\x02\x01\x05" + b"\x20" * 5 + b"\x00"
MP_REACH_V4_ATTR = b"\x80\x0e\x03\x00\x01\x01"
MP_DISABLE = Expected(CTX, None, 3, 9, MP_REACH_ATTR, Action.AFISAFI_DISABLE, "mp-reach-malformed")
MP_DISABLE_V4 = Expected(
    CTX, None, 3, 9, MP_REACH_V4_ATTR, Action.AFISAFI_DISABLE, "mp-reach-malformed"
)


def test_rfc4760_s7_session_reset_with_optional_attribute_error_passes() -> None:
    """RFC 7606 §3(j), §7.11: "session reset" or "AFI/SAFI disable"; RFC 4760 §7: 3/9."""
    assert judge_malformed(MP_DISABLE, PROBE, down(3, 9, MP_REACH_ATTR)) == []


def test_rfc4760_s7_reset_with_another_code_or_data_is_a_finding() -> None:
    (f,) = judge_malformed(MP_DISABLE, PROBE, down(3, 1))
    assert f.rfc == "RFC 4760 §7" and "3/1" in f.observed
    (f,) = judge_malformed(MP_DISABLE, PROBE, down(3, 9, b""))
    assert f.rfc == "RFC 4271 §6.3"
    (f,) = judge_malformed(MP_DISABLE, PROBE, Observation(session_down=True, barrier=False))
    assert "without" in f.observed


def test_rfc4760_s7_disable_of_another_family_keeps_ipv4_working() -> None:
    kept = {PROBE: Route(BASE)}
    assert judge_malformed(MP_DISABLE, PROBE, Observation(routes=kept)) == []
    (f,) = judge_malformed(MP_DISABLE, PROBE, Observation())
    assert "withdrew the IPv4 probe" in f.observed
    (f,) = judge_malformed(MP_DISABLE, PROBE, Observation(barrier=False, routes=kept))
    assert "stopped forwarding" in f.observed


def test_rfc4760_s7_disable_of_ipv4_removes_its_routes_and_may_ignore_more() -> None:
    assert judge_malformed(MP_DISABLE_V4, PROBE, Observation(barrier=False)) == []
    (f,) = judge_malformed(
        MP_DISABLE_V4, PROBE, Observation(barrier=False, routes={PROBE: Route(BASE)})
    )
    assert "still advertises" in f.observed


def test_rfc4271_s4_4_silence_past_the_hold_time_is_a_finding() -> None:
    (f,), (w,) = judge_keepalives("monitor", 30, 31.0, 30.5)
    assert f.rfc == "RFC 4271 §4.4" and "30.5" in f.observed
    assert w.rfc == "RFC 4271 §10"


def test_rfc4271_s10_keepalives_past_a_third_of_the_hold_time_are_a_warning() -> None:
    assert judge_keepalives("fuzzer", 30, 11.5, 11.5) == ([], [])
    findings, (w,) = judge_keepalives("fuzzer", 30, 12.5, 12.5)
    assert findings == [] and "12.5" in w.observed


def test_rfc4271_s4_2_zero_hold_time_means_no_keepalives_expected() -> None:
    assert judge_keepalives("fuzzer", 0, 100.0, 100.0) == ([], [])


def test_liveness_summary_shows_the_session_closest_to_its_hold_time() -> None:
    lv = summarize_liveness("fuzzer", [(30, 10.0, 10.0), (3, 1.0, 3.5), (30, 3.0, 3.0)])
    assert (lv.sessions, lv.hold_time, lv.hold_gap) == (3, 3, 3.5)
    assert len(lv.findings) == 1 and lv.warnings == ()


V6 = make_prefix("2001:db8:4000::/48")
V6_SENT = Update(
    attributes=BASE._replace(next_hop=None),
    mp_reach=MpReach(2, 1, b"\x20\x01\x0d\xb8" + b"\x00" * 11 + b"\x01", (V6,)),
)
V6_GOT = BASE._replace(next_hop=None, as_path=((AS_SEQUENCE, (65000, 65001)),))


def test_rfc4760_ipv6_route_must_reach_the_monitor_with_an_ipv6_next_hop() -> None:
    nh = b"\x20\x01\x0d\xb8" + b"\x00" * 11 + b"\xff"
    ok = Observation(routes6={V6: Route(V6_GOT, {}, nh)})
    assert judge_propagation(V6_SENT, 65000, 65002, ok) == []
    (f,) = judge_propagation(V6_SENT, 65000, 65002, Observation())
    assert "2001:db8:4000::/48" in f.expected and "RFC 4760" in f.rfc
    (f,) = judge_propagation(
        V6_SENT, 65000, 65002, Observation(routes6={V6: Route(V6_GOT, {}, b"\x7f\x00\x00\x01")})
    )
    assert f.rfc == "RFC 2545 §3"
    # an IPv4 route with the same bytes is not the IPv6 one
    assert judge_propagation(V6_SENT, 65000, 65002, Observation(routes={V6: Route(V6_GOT)}))


def test_rfc7911_both_paths_of_a_prefix_reach_the_monitor() -> None:
    """RFC 7911 §1, §3: a second path identifier is a second path, not a replacement."""
    p = make_prefix("10.64.0.0/24")
    sent = Update(attributes=BASE, nlri=(p, p), nlri_path_ids=(1, 2))
    got = Route(BASE._replace(as_path=((AS_SEQUENCE, (65000, 65001)),), next_hop=None))
    assert judge_propagation(sent, 65000, 65002, Observation(routes={p: got}, paths={p: 2})) == []
    (f,) = judge_propagation(sent, 65000, 65002, Observation(routes={p: got}, paths={p: 1}))
    assert f.rfc == "RFC 7911 §1, §3" and f.observed == "advertised 1"


# RFC 7606 §7.9: a zero-length ORIGINATOR_ID (the data is the attribute: flags, type, length).
ORIGINATOR_ID_LENGTH = Expected(
    CTX, None, 3, 5, b"\x80\x09\x00", Action.TREAT_AS_WITHDRAW, "originator-id-length"
)


def test_rfc7606_s7_9_originator_id_from_ebgp_is_attribute_discard() -> None:
    """From an external neighbour the attribute is discarded whatever its length: the
    route stays (BIRD's behaviour is right), and withdrawing it is the departure."""
    kept = Observation(routes={PROBE: Route(BASE)})
    assert judge_malformed(ORIGINATOR_ID_LENGTH, PROBE, kept, ebgp=True) == []
    (f,) = judge_malformed(ORIGINATOR_ID_LENGTH, PROBE, Observation(routes={}), ebgp=True)
    assert "§7.9 (attribute discard)" in f.rfc


def test_rfc7606_s7_9_originator_id_from_ibgp_is_treat_as_withdraw() -> None:
    kept = Observation(routes={PROBE: Route(BASE)})
    (f,) = judge_malformed(ORIGINATOR_ID_LENGTH, PROBE, kept, ebgp=False)
    assert "§7.9 (treat-as-withdraw)" in f.rfc
    assert judge_malformed(ORIGINATOR_ID_LENGTH, PROBE, Observation(routes={}), ebgp=False) == []


def test_rfc7606_s7_5_s7_10_depend_on_the_session_type_other_cases_do_not() -> None:
    kept = Observation(routes={PROBE: Route(BASE)})
    for case in ("local-pref-length", "cluster-list-length"):
        exp = Expected(CTX, None, 3, 5, b"", Action.TREAT_AS_WITHDRAW, case)
        assert judge_malformed(exp, PROBE, kept, ebgp=True) == []
        assert len(judge_malformed(exp, PROBE, kept, ebgp=False)) == 1
    (f,) = judge_malformed(MED_LENGTH, PROBE, kept, ebgp=True)  # §7.4: no eBGP exception
    assert "treat-as-withdraw" in f.rfc
