"""RFC 7606 §7.5, §7.9 and §7.10 in the routing shell: a LOCAL_PREF, ORIGINATOR_ID or
CLUSTER_LIST of the wrong length is "attribute discard" when it comes from an external
neighbour (the route is kept without it) and "treat-as-withdraw" from an internal one (the
prefix goes). The codec cannot tell the two apart; `RoutingSink.on_update` does."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bgpd.daemon.config import BgpdConfig
from bgpd.daemon.routing import RoutingSink
from bgpd.wire.update import decode_update
from runtime.config import from_mapping
from tests.bgpd.daemon.test_policy_sink import CTX, FakePeer, info, loc_rib, negotiated

PEER = 1
PREFIX = "10.0.0.0/24"


def update_with(raw_attribute: bytes, as_path_asn: int) -> bytes:
    """An UPDATE message for 10.0.0.0/24: ORIGIN, AS_PATH [asn], NEXT_HOP 192.0.2.1, then the
    attribute under test, exactly as given."""
    asn = as_path_asn.to_bytes(4, "big")
    attrs = (
        b"\x40\x01\x01\x00"
        + b"\x40\x02\x06\x02\x01"
        + asn
        + b"\x40\x03\x04\xc0\x00\x02\x01"
        + raw_attribute
    )
    body = b"\x00\x00" + len(attrs).to_bytes(2, "big") + attrs + b"\x18\x0a\x00\x00"
    return b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body


BAD = {
    "local-pref": b"\x40\x05\x00",  # §7.5: LOCAL_PREF of length 0
    "originator-id": b"\x80\x09\x00",  # §7.9: ORIGINATOR_ID of length 0
    "cluster-list": b"\x80\x0a\x03\x01\x02\x03",  # §7.10: CLUSTER_LIST not a multiple of 4
}


def sink_with_peer(ibgp: bool) -> RoutingSink:
    remote_as = 65000 if ibgp else 65000 + PEER
    cfg: BgpdConfig = from_mapping(
        BgpdConfig,
        {
            "router_id": "127.0.0.100",
            "local_as": 65000,
            "peers": [{"address": f"127.0.0.{PEER}", "remote_as": remote_as}],
        },
    )
    sink = RoutingSink(cfg)
    peer = replace(info(PEER), remote_as=remote_as)
    sink.on_session_up(peer, replace(negotiated(PEER), remote_as=remote_as), FakePeer())
    return sink


@pytest.mark.parametrize("case", sorted(BAD))
def test_external_neighbour_discards_the_attribute_and_keeps_the_route(case: str) -> None:
    sink = sink_with_peer(ibgp=False)
    peer = replace(info(PEER), remote_as=65000 + PEER)
    sink.on_update(peer, decode_update(update_with(BAD[case], 65000 + PEER), CTX))
    rib = loc_rib(sink)
    assert PREFIX in rib
    local_pref = rib[PREFIX][0]
    assert local_pref in (None, 100)  # ours (default), never the peer's


@pytest.mark.parametrize("case", sorted(BAD))
def test_internal_neighbour_treats_the_update_as_withdraw(case: str) -> None:
    sink = sink_with_peer(ibgp=True)
    peer = replace(info(PEER), remote_as=65000)
    good = decode_update(update_with(b"\x40\x05\x04\x00\x00\x00\x64", 65001), CTX)
    sink.on_update(peer, good)
    assert PREFIX in loc_rib(sink)  # a well-formed iBGP route first
    sink.on_update(peer, decode_update(update_with(BAD[case], 65001), CTX))
    assert PREFIX not in loc_rib(sink)  # the malformed one withdraws it
