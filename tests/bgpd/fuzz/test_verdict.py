"""The verdict logic against recorded target behaviour (no daemon)."""

from __future__ import annotations

from bgpd.fuzz.verdict import Observation, Route, judge_malformed, judge_propagation
from bgpd.wire import Notification, PathAttributes, Update, WireContext, make_prefix
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
