"""What the session core asks of its shell, and the record of why a session went down.

The core never performs IO: it appends effects (`Transmit`, `Connect`, `Disconnect`,
`SessionUp`, `SessionDown`, `Received`, `RefreshRequested`) to an outbox the shell drains.
`DownReason` is the operator-facing answer to "why is this peer not Established"
(STYLE.md rule 4): socket error, NOTIFICATION sent or received (code, subcode and the
RFC 9003 Shutdown Communication), hold timer expiry, admin down, config change.

Invariant: every effect is a frozen value; `Transmit.data` is whole encoded messages.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bgpd.wire.errors import error_name
from bgpd.wire.messages import Notification, Update


class DownKind(enum.Enum):
    SOCKET_ERROR = "socket error"
    CONNECT_FAILED = "connection failed"
    PEER_CLOSED = "connection closed by peer"
    NOTIFICATION_SENT = "NOTIFICATION sent"
    NOTIFICATION_RECEIVED = "NOTIFICATION received"
    HOLD_TIMER_EXPIRED = "hold timer expired"
    ADMIN_DOWN = "admin down"
    ADMIN_RESET = "admin reset"
    CONFIG_CHANGED = "config changed"
    COLLISION = "connection collision resolution"
    FSM_ERROR = "unexpected event"


@dataclass(frozen=True, slots=True)
class DownReason:
    """Why the session left (or never reached) Established."""

    kind: DownKind
    at: float
    code: int = 0
    subcode: int = 0
    data: bytes = b""
    communication: str | None = None  # RFC 9003 Shutdown Communication, when there is one
    detail: str = ""
    # RFC 8538 §3: the NOTIFICATION was a Cease/Hard Reset; code, subcode and data are then
    # those of the cause it carried (as FRR shows them), so "why" reads the same either way.
    hard_reset: bool = False

    @classmethod
    def notification(
        cls, kind: DownKind, n: Notification, at: float, detail: str = ""
    ) -> DownReason:
        inner = n.hard_reset_cause  # RFC 8538 §3: the cause inside a Hard Reset
        if inner is not None:
            return cls(
                kind, at, inner.code, inner.subcode, inner.data, inner.communication, detail, True
            )
        return cls(kind, at, n.code, n.subcode, n.data, n.communication, detail)

    def describe(self) -> str:
        """One line for logs and `tabbyctl node status`."""
        text = self.kind.value
        if self.code:
            text += f": {error_name(self.code, self.subcode)}"
            if self.communication:
                text += f' "{self.communication}"'
        if self.hard_reset:
            text += " (hard reset)"
        if self.detail:
            text += f" ({self.detail})"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind.name.lower(),
            "at": self.at,
            "code": self.code,
            "subcode": self.subcode,
            "data": self.data.hex(),
            "communication": self.communication,
            "detail": self.detail,
            "hard_reset": self.hard_reset,
            "text": self.describe(),
        }


@dataclass(frozen=True, slots=True)
class Transmit:
    data: bytes


@dataclass(frozen=True, slots=True)
class Connect:
    """Open the outgoing TCP connection (RFC 4271 §8.2.1.2 'initiates a TCP connection')."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Drop the TCP connection once queued bytes are written."""


@dataclass(frozen=True, slots=True)
class SessionUp:
    pass


@dataclass(frozen=True, slots=True)
class SessionDown:
    reason: DownReason


@dataclass(frozen=True, slots=True)
class Received:
    update: Update


@dataclass(frozen=True, slots=True)
class RefreshRequested:
    afi: int
    safi: int
    subtype: int


Effect = Transmit | Connect | Disconnect | SessionUp | SessionDown | Received | RefreshRequested
