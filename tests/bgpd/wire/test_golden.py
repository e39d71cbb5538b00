"""Golden vectors written by hand from the RFC message layouts; each decodes to the stated value
and (where our encoding is the canonical one) encodes back to the same octets."""

from __future__ import annotations

import pytest

from bgpd.wire import (
    KEEPALIVE_MESSAGE,
    Message,
    MpReach,
    MpUnreach,
    Notification,
    Open,
    PathAttributes,
    RouteRefresh,
    Update,
    WireContext,
    decode_message,
    encode_message,
    make_prefix,
)
from bgpd.wire.capabilities import (
    AddPath,
    FourOctetAs,
    GracefulRestart,
    Multiprotocol,
    RouteRefreshCapability,
    UnknownCapability,
)

M = "ff" * 16
FOUR = WireContext(four_octet_as=True)
TWO = WireContext()
ADDPATH = WireContext(True, frozenset({(1, 1)}), frozenset({(1, 1)}))


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


GOLDEN: list[tuple[str, WireContext, str, Message]] = [
    ("keepalive (RFC 4271 §4.4)", TWO, M + "0013 04", KEEPALIVE_MESSAGE),
    (
        "open with capabilities (RFC 4271 §4.2, RFC 5492 §4)",
        TWO,
        M + "002d 01 04 fde9 00b4 c0000201 1002 0e 01 04 0001 00 01 02 00 41 04 0000fde9",
        Open(
            65001,
            180,
            0xC0000201,
            (Multiprotocol(1, 1), RouteRefreshCapability(), FourOctetAs(65001)),
        ),
    ),
    (
        "open with graceful restart R+N bits and ADD-PATH (RFC 4724 §3, RFC 8538, RFC 7911 §4)",
        TWO,
        M + "0033 01 04 5ba0 005a 0a000001 16"
        "02 14 40 06 c078 0001 01 80 45 04 0001 01 03 41 04 00011170",
        Open(
            23456,
            90,
            0x0A000001,
            (
                GracefulRestart(True, True, 120, ((1, 1, 0x80),)),
                AddPath(((1, 1, 3),)),
                FourOctetAs(70000),
            ),
        ),
    ),
    (
        "ipv4 update (RFC 4271 §4.3, RFC 1997)",
        FOUR,
        M + "0047 02 0003 10c0a8 0026"
        "40 01 01 00"
        "40 02 0a 02 02 0000fde9 0000fdea"
        "40 03 04 c0000201"
        "80 04 04 00000064"
        "c0 08 04 ffffff01"
        "18 0a0000 10 0a01",
        Update(
            withdrawn=(make_prefix("192.168.0.0/16"),),
            attributes=PathAttributes(
                origin=0,
                as_path=((2, (65001, 65002)),),
                next_hop=h("c0000201"),
                med=100,
                communities=(0xFFFFFF01,),
            ),
            nlri=(make_prefix("10.0.0.0/24"), make_prefix("10.1.0.0/16")),
        ),
    ),
    (
        "ipv6 MP_REACH_NLRI with a link-local next hop (RFC 4760 §3, RFC 2545 §3)",
        FOUR,
        M + "004b 02 0000 0034"
        "80 0e 2a 0002 01 20 20010db8000000000000000000000001 fe800000000000000000000000000001 00"
        "20 20010db8"
        "40 01 01 00"
        "40 02 00",
        Update(
            attributes=PathAttributes(origin=0, as_path=()),
            mp_reach=MpReach(
                2,
                1,
                h("20010db8000000000000000000000001 fe800000000000000000000000000001"),
                (make_prefix("2001:db8::/32"),),
            ),
        ),
    ),
    (
        "ipv6 End-of-RIB (RFC 4724 §2)",
        FOUR,
        M + "001d 02 0000 0006 80 0f 03 0002 01",
        Update(mp_unreach=MpUnreach(2, 1)),
    ),
    ("ipv4 End-of-RIB (RFC 4724 §2)", FOUR, M + "0017 02 0000 0000", Update()),
    (
        "ADD-PATH NLRI and withdrawn routes (RFC 7911 §3)",
        ADDPATH,
        M + "0034 02 0007 00000007 10c0a8 000e"
        "40 01 01 02 40 02 00 40 03 04 0a000001"
        "00000001 180a0000",
        Update(
            withdrawn=(make_prefix("192.168.0.0/16"),),
            withdrawn_path_ids=(7,),
            attributes=PathAttributes(origin=2, as_path=(), next_hop=h("0a000001")),
            nlri=(make_prefix("10.0.0.0/24"),),
            nlri_path_ids=(1,),
        ),
    ),
    (
        "cease with shutdown communication (RFC 4271 §4.5, RFC 9003 §2)",
        FOUR,
        M + "0019 03 06 02 03 627965",
        Notification(6, 2, b"\x03bye"),
    ),
    (
        "route refresh BoRR (RFC 2918 §3, RFC 7313 §3.2)",
        FOUR,
        M + "0017 05 0002 01 01",
        RouteRefresh(2, 1, 1),
    ),
]


@pytest.mark.parametrize(("name", "ctx", "hexdata", "expected"), GOLDEN, ids=[g[0] for g in GOLDEN])
def test_golden_vector(name: str, ctx: WireContext, hexdata: str, expected: Message) -> None:
    data = h(hexdata)
    assert decode_message(data, ctx) == expected
    assert encode_message(expected, ctx) == data


def test_as4_path_reconstruction_rfc6793_s4_2_3() -> None:
    """AS_PATH (65002, 23456, 65001) with AS4_PATH (70000, 65001) from a 2-octet speaker: the
    leading AS of AS_PATH is kept and AS4_PATH follows."""
    data = h(
        M + "003e 02 0000 0023"
        "40 01 01 00"
        "40 02 08 02 03 fdea 5ba0 fde9"
        "40 03 04 0a000001"
        "c0 11 0a 02 02 00011170 0000fde9"
        "18 0a0000"
    )
    msg = decode_message(data, TWO)
    assert isinstance(msg, Update) and msg.attributes is not None
    assert msg.attributes.as_path == ((2, (65002,)), (2, (70000, 65001)))
    assert msg.attributes.as_path_length() == 3


def test_as4_aggregator_replaces_as_trans_rfc6793_s4_2_3() -> None:
    data = h(
        M + "003d 02 0000 0022"
        "40 01 01 00 40 02 00 40 03 04 0a000001"
        "c0 07 06 5ba0 0a000002"
        "c0 12 08 00011170 0a000002"
        "18 0a0000"
    )
    msg = decode_message(data, TWO)
    assert isinstance(msg, Update) and msg.attributes is not None
    assert msg.attributes.aggregator == (70000, h("0a000002"))


def test_extended_length_attribute_both_ways_rfc4271_s4_3() -> None:
    communities = tuple(range(100))  # 400 octets: needs the Extended Length bit
    u = Update(
        attributes=PathAttributes(
            origin=0, as_path=(), next_hop=h("0a000001"), communities=communities
        ),
        nlri=(make_prefix("10.0.0.0/8"),),
    )
    raw = encode_message(u, FOUR)
    assert h("d0 08 0190") in raw
    assert decode_message(raw, FOUR) == u


def test_open_with_extended_optional_parameters_rfc9072_s2() -> None:
    caps = tuple(UnknownCapability(200 + i % 50, bytes(40)) for i in range(8))  # > 255 octets
    o = Open(65001, 90, 1, caps)
    raw = encode_message(o, TWO)
    assert raw[28:30] == b"\xff\xff"  # Non-Ext OP Len = 255, Non-Ext OP Type = 255
    assert decode_message(raw, TWO) == o
