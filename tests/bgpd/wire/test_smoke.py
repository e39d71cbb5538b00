"""First round trips through the public API (RFC 4271 §4)."""

from __future__ import annotations

from bgpd.wire import (
    KEEPALIVE_MESSAGE,
    Framer,
    Message,
    Notification,
    Open,
    PathAttributes,
    Update,
    WireContext,
    decode_message,
    encode_message,
    make_prefix,
)
from bgpd.wire.capabilities import Multiprotocol, RouteRefreshCapability


def test_open_update_keepalive_round_trip_rfc4271_s4() -> None:
    ctx = WireContext(four_octet_as=True)
    msgs: list[Message] = [
        Open.build(70000, 90, 0x01020304, (Multiprotocol(1, 1), RouteRefreshCapability())),
        Update(
            nlri=(make_prefix("10.0.0.0/24"),),
            attributes=PathAttributes(origin=0, as_path=((2, (65000,)),), next_hop=b"\n\0\0\1"),
        ),
        KEEPALIVE_MESSAGE,
        Notification(6, 2, b"\x03bye"),
    ]
    framer = Framer(ctx)
    framer.feed(b"".join(encode_message(m, ctx) for m in msgs))
    assert list(framer) == msgs
    for m in msgs:
        assert decode_message(encode_message(m, ctx), ctx) == m
