"""The BGP-4 wire codec: bytes to typed messages and back, with RFC 7606 error classes.

Pure (sans-IO). Public API, re-exported here:

- `decode_message(data, ctx) -> Message`, `encode_message(msg, ctx) -> bytes`
- `Framer(ctx)`: `feed(bytes)`, `next_frame()`, `next_message()`, iteration
- messages: `Open`, `Update`, `Notification`, `Keepalive`, `RouteRefresh`
- `WireContext` (negotiated 4-octet AS, ADD-PATH, extended message) and `negotiate`
- `PathAttributes`, `MpReach`, `MpUnreach`, `RawAttribute`; capabilities in `capabilities`
- `Prefix` (bytes in wire form) with `make_prefix` / `format_prefix`
- `pack_updates` / `pack_withdrawals` for Adj-RIB-Out
- errors: `BGPError` and subclasses, `Action` (RFC 7606), `Malformation`
"""

from bgpd.wire.attributes import MpReach, MpUnreach, PathAttributes, RawAttribute
from bgpd.wire.capabilities import negotiate
from bgpd.wire.codec import decode_message, encode_message
from bgpd.wire.context import DEFAULT, AttributeCache, WireContext
from bgpd.wire.errors import (
    Action,
    BGPError,
    MessageHeaderError,
    OpenMessageError,
    RouteRefreshMessageError,
    UpdateMessageError,
)
from bgpd.wire.framer import Framer
from bgpd.wire.messages import (
    KEEPALIVE_MESSAGE,
    Keepalive,
    Message,
    Notification,
    Open,
    RouteRefresh,
    Update,
    end_of_rib,
)
from bgpd.wire.prefix import Prefix, format_prefix, make_prefix
from bgpd.wire.rfc7606 import Malformation
from bgpd.wire.update import pack_updates, pack_withdrawals

__all__ = [
    "DEFAULT",
    "KEEPALIVE_MESSAGE",
    "Action",
    "AttributeCache",
    "BGPError",
    "Framer",
    "Keepalive",
    "Malformation",
    "Message",
    "MessageHeaderError",
    "MpReach",
    "MpUnreach",
    "Notification",
    "Open",
    "OpenMessageError",
    "PathAttributes",
    "Prefix",
    "RawAttribute",
    "RouteRefresh",
    "RouteRefreshMessageError",
    "Update",
    "UpdateMessageError",
    "WireContext",
    "decode_message",
    "encode_message",
    "end_of_rib",
    "format_prefix",
    "make_prefix",
    "negotiate",
    "pack_updates",
    "pack_withdrawals",
]
