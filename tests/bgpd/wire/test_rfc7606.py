"""One test per RFC 7606 case of `rfc7606.CASES`, plus the behaviours RFC 7606 §2-3 require:
treat-as-withdraw keeps the NLRI to withdraw, attribute discard drops the attribute, the most
severe approach wins, AFI/SAFI disable names the family."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgpd.wire import Action, Update, UpdateMessageError, WireContext, decode_message, make_prefix
from bgpd.wire.attributes import PathAttributes
from bgpd.wire.rfc7606 import CASES, INTERNAL_ONLY, Malformation, external_action
from bgpd.wire.section import encode_attributes
from bgpd.wire.strategies import UPDATE_CASE_BUILDERS, attr, malformed_updates, update_bytes
from bgpd.wire.update import from_external_peer

FOUR = WireContext(four_octet_as=True)
BASE = PathAttributes(origin=0, as_path=((2, (65001,)),), next_hop=b"\xc0\x00\x02\x01")
NLRI = make_prefix("10.0.0.0/24")


def test_every_case_has_a_builder_and_a_section() -> None:
    assert set(UPDATE_CASE_BUILDERS) == set(CASES)
    for case in CASES.values():
        assert case.section.startswith("RFC")
        assert case.data in ("attribute", "type", "empty")


@pytest.mark.parametrize("case", sorted(CASES))
@settings(max_examples=10)
@given(data=st.data())
def test_rfc7606_case(case: str, data: st.DataObject) -> None:
    """Each case reaches its RFC 7606 action with the exact NOTIFICATION code/subcode/data."""
    m = data.draw(malformed_updates(case))
    assert m.expected.matches(m.data), (case, m.data.hex())
    if CASES[case].action is Action.SESSION_RESET:
        with pytest.raises(UpdateMessageError) as info:
            decode_message(m.data, m.expected.context)
        assert info.value.action is Action.SESSION_RESET
        assert info.value.case == case
    else:
        msg = decode_message(m.data, m.expected.context)
        assert isinstance(msg, Update)
        assert any(f.case == case and f.action is CASES[case].action for f in msg.malformations)


def _decode(attrs: bytes, nlri: bytes = NLRI) -> Update:
    msg = decode_message(update_bytes(b"", attrs, nlri), FOUR)
    assert isinstance(msg, Update)
    return msg


def test_treat_as_withdraw_keeps_nlri_rfc7606_s2_s7_1() -> None:
    bad_origin = attr(0x40, 1, b"\x05")
    msg = _decode(bad_origin + encode_attributes(BASE._replace(origin=None), FOUR))
    assert msg.treat_as_withdraw
    assert msg.nlri == (NLRI,)
    assert msg.malformations == (Malformation("origin-value", 1, bad_origin),)
    assert msg.action is Action.TREAT_AS_WITHDRAW
    err = msg.malformations[0].to_error()
    assert (err.code, err.subcode, err.data) == (3, 6, bad_origin)


def test_attribute_discard_drops_the_attribute_rfc7606_s7_6() -> None:
    bad = attr(0x40, 6, b"\x01")
    msg = _decode(encode_attributes(BASE, FOUR) + bad)
    assert not msg.treat_as_withdraw
    assert msg.attributes is not None and msg.attributes.atomic_aggregate is False
    assert msg.malformations == (Malformation("atomic-aggregate-length", 6, bad),)
    assert msg.action is Action.ATTRIBUTE_DISCARD


def test_duplicates_keep_the_first_rfc7606_s3g() -> None:
    msg = _decode(encode_attributes(BASE, FOUR) + attr(0x40, 1, b"\x02"))
    assert msg.attributes is not None and msg.attributes.origin == 0
    assert [m.case for m in msg.malformations] == ["duplicate-attribute"]


def test_most_severe_approach_wins_rfc7606_s3() -> None:
    msg = _decode(
        encode_attributes(BASE._replace(origin=None), FOUR)
        + attr(0x40, 6, b"\x01")  # discard
        + attr(0x40, 1, b"\x07")  # treat-as-withdraw
    )
    assert {m.action for m in msg.malformations} == {
        Action.ATTRIBUTE_DISCARD,
        Action.TREAT_AS_WITHDRAW,
    }
    assert msg.action is Action.TREAT_AS_WITHDRAW
    assert msg.treat_as_withdraw


def test_afi_safi_disable_names_the_family_rfc7606_s7_11() -> None:
    bad = attr(0x80, 14, b"\x00\x02\x01\x05" + b"\x20" * 5 + b"\x00")
    msg = _decode(bad + encode_attributes(BASE, FOUR), b"")
    assert msg.disabled_families == ((2, 1),)
    assert msg.mp_reach is None
    assert msg.action is Action.AFISAFI_DISABLE


def test_missing_next_hop_only_matters_with_ipv4_nlri_rfc4760_s3() -> None:
    attrs = encode_attributes(BASE._replace(next_hop=None), FOUR)
    reach = attr(0x80, 14, b"\x00\x02\x01\x10" + b"\x20" * 16 + b"\x00" + b"\x20\x20\x01\x0d\xb8")
    assert _decode(reach + attrs, b"").malformations == ()
    withdraw = _decode(attrs)
    assert withdraw.malformations == (Malformation("missing-well-known", 3, b"\x03"),)


def test_unknown_optional_transitive_passes_with_partial_bit_rfc4271_s5() -> None:
    msg = _decode(encode_attributes(BASE, FOUR) + attr(0xC0, 99, b"xyz") + attr(0x80, 98, b"q"))
    assert msg.attributes is not None
    (raw,) = msg.attributes.unknown  # the non-transitive one is quietly dropped
    assert (raw.flags, raw.type_code, raw.value) == (0xE0, 99, b"xyz")


def test_extended_length_flag_accepted_on_short_values_rfc4271_s4_3() -> None:
    origin_ext = bytes((0x50, 1, 0, 1, 0))
    msg = _decode(origin_ext + encode_attributes(BASE._replace(origin=None), FOUR))
    assert msg.malformations == ()
    assert msg.attributes is not None and msg.attributes.origin == 0


@pytest.mark.parametrize(
    ("code", "flags", "value"),
    [(5, 0x40, b"\x00\x00\x00"), (9, 0x80, b""), (10, 0x80, b"\x00\x00\x00\x01\x02")],
    ids=["local-pref", "originator-id", "cluster-list"],
)
def test_internal_only_lengths_rfc7606_s7_5_s7_9_s7_10(code: int, flags: int, value: bytes) -> None:
    """The codec gives the internal outcome (treat-as-withdraw); from an external neighbour
    the same UPDATE keeps its route with the attribute discarded."""
    msg = _decode(encode_attributes(BASE, FOUR) + attr(flags, code, value))
    assert msg.treat_as_withdraw and msg.nlri == (NLRI,)
    ext = from_external_peer(msg)
    assert not ext.treat_as_withdraw and ext.malformations == ()
    assert ext.nlri == (NLRI,) and ext.attributes == BASE
    for case in INTERNAL_ONLY:
        assert external_action(case) is Action.ATTRIBUTE_DISCARD


def test_external_peer_drops_well_formed_ibgp_attributes_rfc7606_rfc4271_s5_1_5() -> None:
    """Well-formed LOCAL_PREF / ORIGINATOR_ID / CLUSTER_LIST from eBGP are discarded too; an
    UPDATE without them, or with other malformations, is returned as it is."""
    full = BASE._replace(local_pref=100, originator_id=0x01020304, cluster_list=(7,))
    msg = _decode(encode_attributes(full, FOUR))
    assert from_external_peer(msg).attributes == BASE
    clean = _decode(encode_attributes(BASE, FOUR))
    assert from_external_peer(clean) is clean
    bad_origin = _decode(
        attr(0x40, 1, b"\x05") + encode_attributes(BASE._replace(origin=None), FOUR)
    )
    assert from_external_peer(bad_origin) is bad_origin
    assert external_action("origin-value") is Action.TREAT_AS_WITHDRAW
