"""BGP protocol errors as exceptions that carry their NOTIFICATION (RFC 4271 §4.5, §6).

Every decoder in `bgpd.wire` raises only `BGPError` subclasses, whatever the bytes. An error
carries the NOTIFICATION `code`, `subcode` and `data` exactly as RFC 4271 §6.1-6.3 (and the later
RFCs that registered subcodes) prescribe, so a session can send `Notification.from_error(err)`
without looking inside. UPDATE errors also carry their RFC 7606 action.

Invariants: `data` is the exact NOTIFICATION data field; `code`/`subcode` are integers from the
IANA "BGP Error (Notification) Codes" registry (names in `ERROR_CODES` / `ERROR_SUBCODES`).
"""

from __future__ import annotations

import enum

# NOTIFICATION error codes (RFC 4271 §4.5, RFC 6608, RFC 7313).
MESSAGE_HEADER_ERROR = 1
OPEN_MESSAGE_ERROR = 2
UPDATE_MESSAGE_ERROR = 3
HOLD_TIMER_EXPIRED = 4
FSM_ERROR = 5
CEASE = 6
ROUTE_REFRESH_MESSAGE_ERROR = 7

ERROR_CODES: dict[int, str] = {
    MESSAGE_HEADER_ERROR: "Message Header Error",
    OPEN_MESSAGE_ERROR: "OPEN Message Error",
    UPDATE_MESSAGE_ERROR: "UPDATE Message Error",
    HOLD_TIMER_EXPIRED: "Hold Timer Expired",
    FSM_ERROR: "Finite State Machine Error",
    CEASE: "Cease",
    ROUTE_REFRESH_MESSAGE_ERROR: "ROUTE-REFRESH Message Error",
}

# Subcodes: RFC 4271 §4.5 and §6, RFC 5492 (7), RFC 9234 (11), RFC 6608 (FSM), RFC 4486,
# RFC 8538 (Hard Reset), RFC 9384 (BFD Down), RFC 7313 (ROUTE-REFRESH).
ERROR_SUBCODES: dict[int, dict[int, str]] = {
    MESSAGE_HEADER_ERROR: {
        0: "Unspecific",
        1: "Connection Not Synchronized",
        2: "Bad Message Length",
        3: "Bad Message Type",
    },
    OPEN_MESSAGE_ERROR: {
        0: "Unspecific",
        1: "Unsupported Version Number",
        2: "Bad Peer AS",
        3: "Bad BGP Identifier",
        4: "Unsupported Optional Parameter",
        5: "Deprecated (Authentication Failure)",
        6: "Unacceptable Hold Time",
        7: "Unsupported Capability",
        8: "Deprecated",
        9: "Deprecated",
        10: "Deprecated",
        11: "Role Mismatch",
    },
    UPDATE_MESSAGE_ERROR: {
        0: "Unspecific",
        1: "Malformed Attribute List",
        2: "Unrecognized Well-known Attribute",
        3: "Missing Well-known Attribute",
        4: "Attribute Flags Error",
        5: "Attribute Length Error",
        6: "Invalid ORIGIN Attribute",
        7: "Deprecated (AS Routing Loop)",
        8: "Invalid NEXT_HOP Attribute",
        9: "Optional Attribute Error",
        10: "Invalid Network Field",
        11: "Malformed AS_PATH",
    },
    HOLD_TIMER_EXPIRED: {0: "Unspecific"},
    FSM_ERROR: {
        0: "Unspecified Error",
        1: "Receive Unexpected Message in OpenSent State",
        2: "Receive Unexpected Message in OpenConfirm State",
        3: "Receive Unexpected Message in Established State",
    },
    CEASE: {
        0: "Unspecific",
        1: "Maximum Number of Prefixes Reached",
        2: "Administrative Shutdown",
        3: "Peer De-configured",
        4: "Administrative Reset",
        5: "Connection Rejected",
        6: "Other Configuration Change",
        7: "Connection Collision Resolution",
        8: "Out of Resources",
        9: "Hard Reset",
        10: "BFD Down",
    },
    ROUTE_REFRESH_MESSAGE_ERROR: {0: "Unspecific", 1: "Invalid Message Length"},
}

# Subcode constants used by the codec (names from the RFC text).
CONNECTION_NOT_SYNCHRONIZED = 1
BAD_MESSAGE_LENGTH = 2
BAD_MESSAGE_TYPE = 3
UNSPECIFIC = 0
UNSUPPORTED_VERSION_NUMBER = 1
BAD_PEER_AS = 2
BAD_BGP_IDENTIFIER = 3
UNSUPPORTED_OPTIONAL_PARAMETER = 4
UNACCEPTABLE_HOLD_TIME = 6
UNSUPPORTED_CAPABILITY = 7
ROLE_MISMATCH = 11
MALFORMED_ATTRIBUTE_LIST = 1
UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE = 2
MISSING_WELL_KNOWN_ATTRIBUTE = 3
ATTRIBUTE_FLAGS_ERROR = 4
ATTRIBUTE_LENGTH_ERROR = 5
INVALID_ORIGIN_ATTRIBUTE = 6
INVALID_NEXT_HOP_ATTRIBUTE = 8
OPTIONAL_ATTRIBUTE_ERROR = 9
INVALID_NETWORK_FIELD = 10
MALFORMED_AS_PATH = 11
INVALID_MESSAGE_LENGTH = 1
# Cease subcodes (RFC 4486, RFC 8538, RFC 9384).
MAXIMUM_NUMBER_OF_PREFIXES_REACHED = 1
ADMINISTRATIVE_SHUTDOWN = 2
PEER_DE_CONFIGURED = 3
ADMINISTRATIVE_RESET = 4
CONNECTION_REJECTED = 5
OTHER_CONFIGURATION_CHANGE = 6
CONNECTION_COLLISION_RESOLUTION = 7
OUT_OF_RESOURCES = 8
HARD_RESET = 9
BFD_DOWN = 10


def error_name(code: int, subcode: int) -> str:
    """Human-readable `"Code / Subcode"` for logs and `node status`."""
    cname = ERROR_CODES.get(code, f"Unknown code {code}")
    sname = ERROR_SUBCODES.get(code, {}).get(subcode, f"subcode {subcode}")
    return f"{cname} / {sname}"


class Action(enum.Enum):
    """RFC 7606 §2 error-handling approaches, ordered from least to most severe."""

    ATTRIBUTE_DISCARD = 1
    TREAT_AS_WITHDRAW = 2
    AFISAFI_DISABLE = 3
    SESSION_RESET = 4


class BGPError(Exception):
    """A protocol error that maps to one NOTIFICATION (RFC 4271 §6)."""

    def __init__(self, code: int, subcode: int, data: bytes = b"", reason: str = "") -> None:
        self.code = code
        self.subcode = subcode
        self.data = bytes(data)
        self.reason = reason or error_name(code, subcode)
        super().__init__(f"{error_name(code, subcode)}: {self.reason} (data={self.data.hex()})")

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self)
            and isinstance(other, BGPError)
            and (self.code, self.subcode, self.data) == (other.code, other.subcode, other.data)
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.code, self.subcode, self.data))


class MessageHeaderError(BGPError):
    """RFC 4271 §6.1: marker, length or type of the 19-octet header is wrong."""

    def __init__(self, subcode: int, data: bytes = b"", reason: str = "") -> None:
        super().__init__(MESSAGE_HEADER_ERROR, subcode, data, reason)


class OpenMessageError(BGPError):
    """RFC 4271 §6.2 (and RFC 5492, RFC 9072): the OPEN message is unacceptable."""

    def __init__(self, subcode: int, data: bytes = b"", reason: str = "") -> None:
        super().__init__(OPEN_MESSAGE_ERROR, subcode, data, reason)


class UpdateMessageError(BGPError):
    """RFC 4271 §6.3 with the RFC 7606 action the receiver must take.

    Only `Action.SESSION_RESET` errors are raised by `decode_message`; the milder outcomes are
    recorded on the decoded `Update` (see `bgpd.wire.rfc7606.Malformation`).
    """

    def __init__(
        self,
        subcode: int,
        data: bytes = b"",
        reason: str = "",
        action: Action = Action.SESSION_RESET,
        case: str = "",
    ) -> None:
        super().__init__(UPDATE_MESSAGE_ERROR, subcode, data, reason)
        self.action = action
        self.case = case


class RouteRefreshMessageError(BGPError):
    """RFC 7313 §5: ROUTE-REFRESH with a bad length; data is the whole message."""

    def __init__(self, subcode: int, data: bytes = b"", reason: str = "") -> None:
        super().__init__(ROUTE_REFRESH_MESSAGE_ERROR, subcode, data, reason)


class FSMError(BGPError):
    """RFC 6608: a message arrived in a state that does not expect it (raised by the FSM)."""

    def __init__(self, subcode: int, data: bytes = b"", reason: str = "") -> None:
        super().__init__(FSM_ERROR, subcode, data, reason)


class HoldTimerExpired(BGPError):
    """RFC 4271 §6.5 (raised by the FSM, never by the codec)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(HOLD_TIMER_EXPIRED, 0, b"", reason)


class Cease(BGPError):
    """RFC 4486 Cease subcodes (raised by the session, never by the codec)."""

    def __init__(self, subcode: int, data: bytes = b"", reason: str = "") -> None:
        super().__init__(CEASE, subcode, data, reason)
