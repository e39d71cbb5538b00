"""RFC 7606 outcome table: every UPDATE malformation the codec detects, its action and section.

RFC 7606 §2 replaces "reset the session on any UPDATE error" (RFC 4271 §6.3) with four
approaches, from mild to severe: attribute discard, treat-as-withdraw, AFI/SAFI disable and
session reset. §3 adds that when several errors are found the most severe approach applies.

`CASES` maps a case name to (action, NOTIFICATION subcode, data kind, RFC section, text). The
codec raises `UpdateMessageError` for SESSION_RESET cases; for the others it records a
`Malformation` on the decoded `Update` (and, for treat-as-withdraw, sets
`Update.treat_as_withdraw` while keeping the NLRI so the caller can withdraw it).

Data kinds (RFC 4271 §6.3): "attribute" = the erroneous attribute (type, length, value);
"type" = the one-octet type code of a missing attribute; "empty" = no data.

Invariant: every case the codec can produce is a key of `CASES` (tests iterate over it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from bgpd.wire.errors import (
    ATTRIBUTE_FLAGS_ERROR,
    ATTRIBUTE_LENGTH_ERROR,
    INVALID_NETWORK_FIELD,
    INVALID_NEXT_HOP_ATTRIBUTE,
    INVALID_ORIGIN_ATTRIBUTE,
    MALFORMED_AS_PATH,
    MALFORMED_ATTRIBUTE_LIST,
    MISSING_WELL_KNOWN_ATTRIBUTE,
    OPTIONAL_ATTRIBUTE_ERROR,
    UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
    Action,
    UpdateMessageError,
)

DISCARD = Action.ATTRIBUTE_DISCARD
WITHDRAW = Action.TREAT_AS_WITHDRAW
DISABLE = Action.AFISAFI_DISABLE
RESET = Action.SESSION_RESET


class Case(NamedTuple):
    action: Action
    subcode: int
    data: str  # "attribute" | "type" | "empty"
    section: str
    text: str


CASES: dict[str, Case] = {
    # --- the message as a whole -------------------------------------------------------------
    "withdrawn-length-overrun": Case(
        RESET,
        MALFORMED_ATTRIBUTE_LIST,
        "empty",
        "RFC 4271 §6.3; RFC 7606 §4",
        "Withdrawn Routes Length runs past the end of the message",
    ),
    "attribute-length-overrun": Case(
        RESET,
        MALFORMED_ATTRIBUTE_LIST,
        "empty",
        "RFC 4271 §6.3; RFC 7606 §4",
        "Total Path Attribute Length runs past the end of the message",
    ),
    "withdrawn-nlri-malformed": Case(
        RESET,
        INVALID_NETWORK_FIELD,
        "empty",
        "RFC 4271 §6.3; RFC 7606 §5.3",
        "Withdrawn Routes cannot be parsed (length > 32 or overrun)",
    ),
    "nlri-malformed": Case(
        RESET,
        INVALID_NETWORK_FIELD,
        "empty",
        "RFC 4271 §6.3; RFC 7606 §5.3",
        "NLRI field cannot be parsed (length > 32 or overrun)",
    ),
    # --- attribute framing inside the path attributes field ---------------------------------
    "attribute-header-truncated": Case(
        WITHDRAW,
        MALFORMED_ATTRIBUTE_LIST,
        "empty",
        "RFC 7606 §4",
        "fewer octets remain than an attribute header needs",
    ),
    "attribute-value-overrun": Case(
        WITHDRAW,
        MALFORMED_ATTRIBUTE_LIST,
        "empty",
        "RFC 7606 §4",
        "an attribute's length runs past the Total Path Attribute Length",
    ),
    "attribute-framing-with-mp": Case(
        RESET,
        MALFORMED_ATTRIBUTE_LIST,
        "empty",
        "RFC 7606 §4, §5.3",
        "attribute framing error in an UPDATE that carries MP_REACH/MP_UNREACH_NLRI",
    ),
    "duplicate-attribute": Case(
        DISCARD,
        MALFORMED_ATTRIBUTE_LIST,
        "empty",
        "RFC 7606 §3(g)",
        "attribute appears more than once; all but the first are discarded",
    ),
    "duplicate-mp-attribute": Case(
        RESET,
        MALFORMED_ATTRIBUTE_LIST,
        "empty",
        "RFC 7606 §3(g)",
        "MP_REACH_NLRI or MP_UNREACH_NLRI appears more than once",
    ),
    "unrecognized-well-known": Case(
        RESET,
        UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
        "attribute",
        "RFC 4271 §6.3",
        "attribute with the Optional bit clear and an unknown type code",
    ),
    "attribute-flags": Case(
        WITHDRAW,
        ATTRIBUTE_FLAGS_ERROR,
        "attribute",
        "RFC 4271 §6.3; RFC 7606 §3(c)",
        "Optional/Transitive flags conflict with the attribute's definition",
    ),
    "missing-well-known": Case(
        WITHDRAW,
        MISSING_WELL_KNOWN_ATTRIBUTE,
        "type",
        "RFC 4271 §6.3; RFC 7606 §3(d)",
        "ORIGIN, AS_PATH or (with IPv4 NLRI) NEXT_HOP is missing",
    ),
    # --- per attribute (RFC 7606 §7) -------------------------------------------------------------
    "origin-length": Case(
        WITHDRAW, ATTRIBUTE_LENGTH_ERROR, "attribute", "RFC 7606 §7.1", "ORIGIN length is not 1"
    ),
    "origin-value": Case(
        WITHDRAW,
        INVALID_ORIGIN_ATTRIBUTE,
        "attribute",
        "RFC 7606 §7.1",
        "ORIGIN value is not IGP, EGP or INCOMPLETE",
    ),
    "as-path-malformed": Case(
        WITHDRAW,
        MALFORMED_AS_PATH,
        "empty",
        "RFC 7606 §7.2",
        "AS_PATH segment overrun, zero-length segment or unknown segment type",
    ),
    "next-hop-length": Case(
        WITHDRAW, ATTRIBUTE_LENGTH_ERROR, "attribute", "RFC 7606 §7.3", "NEXT_HOP length is not 4"
    ),
    "next-hop-invalid": Case(
        WITHDRAW,
        INVALID_NEXT_HOP_ATTRIBUTE,
        "attribute",
        "RFC 4271 §6.3; RFC 7606 §7.3",
        "NEXT_HOP is not a valid host address (0.0.0.0, multicast, broadcast)",
    ),
    "med-length": Case(
        WITHDRAW,
        ATTRIBUTE_LENGTH_ERROR,
        "attribute",
        "RFC 7606 §7.4",
        "MULTI_EXIT_DISC length is not 4",
    ),
    "local-pref-length": Case(
        WITHDRAW, ATTRIBUTE_LENGTH_ERROR, "attribute", "RFC 7606 §7.5", "LOCAL_PREF length is not 4"
    ),
    "atomic-aggregate-length": Case(
        DISCARD,
        ATTRIBUTE_LENGTH_ERROR,
        "attribute",
        "RFC 7606 §7.6",
        "ATOMIC_AGGREGATE length is not 0",
    ),
    "aggregator-length": Case(
        DISCARD,
        ATTRIBUTE_LENGTH_ERROR,
        "attribute",
        "RFC 7606 §7.7",
        "AGGREGATOR length is not 6 (2-octet AS) or 8 (4-octet AS)",
    ),
    "communities-length": Case(
        WITHDRAW,
        OPTIONAL_ATTRIBUTE_ERROR,
        "attribute",
        "RFC 7606 §7.8",
        "COMMUNITIES length is not a non-zero multiple of 4",
    ),
    "originator-id-length": Case(
        WITHDRAW,
        ATTRIBUTE_LENGTH_ERROR,
        "attribute",
        "RFC 7606 §7.9",
        "ORIGINATOR_ID length is not 4",
    ),
    "cluster-list-length": Case(
        WITHDRAW,
        ATTRIBUTE_LENGTH_ERROR,
        "attribute",
        "RFC 7606 §7.10",
        "CLUSTER_LIST length is not a non-zero multiple of 4",
    ),
    "mp-reach-malformed": Case(
        DISABLE,
        OPTIONAL_ATTRIBUTE_ERROR,
        "attribute",
        "RFC 7606 §7.11; RFC 4760 §7",
        "MP_REACH_NLRI next hop or NLRI cannot be parsed (AFI/SAFI known)",
    ),
    "mp-unreach-malformed": Case(
        DISABLE,
        OPTIONAL_ATTRIBUTE_ERROR,
        "attribute",
        "RFC 7606 §7.12; RFC 4760 §7",
        "MP_UNREACH_NLRI withdrawn routes cannot be parsed (AFI/SAFI known)",
    ),
    "mp-attribute-truncated": Case(
        RESET,
        OPTIONAL_ATTRIBUTE_ERROR,
        "attribute",
        "RFC 7606 §7.11, §7.12",
        "MP_REACH/MP_UNREACH_NLRI too short to hold AFI/SAFI",
    ),
    "mp-family-unsupported": Case(
        DISCARD,
        OPTIONAL_ATTRIBUTE_ERROR,
        "attribute",
        "RFC 4760 §7",
        "MP_REACH/MP_UNREACH_NLRI for an AFI/SAFI this codec does not carry; ignored",
    ),
    "ext-communities-length": Case(
        WITHDRAW,
        OPTIONAL_ATTRIBUTE_ERROR,
        "attribute",
        "RFC 7606 §7.14",
        "EXTENDED_COMMUNITIES length is not a non-zero multiple of 8",
    ),
    "as4-path-malformed": Case(
        DISCARD,
        OPTIONAL_ATTRIBUTE_ERROR,
        "attribute",
        "RFC 6793 §6; RFC 7606 §7.2",
        "AS4_PATH is malformed or holds confederation segments",
    ),
    "as4-aggregator-length": Case(
        DISCARD,
        ATTRIBUTE_LENGTH_ERROR,
        "attribute",
        "RFC 6793 §6; RFC 7606 §7.7",
        "AS4_AGGREGATOR length is not 8",
    ),
    "as4-from-new-speaker": Case(
        DISCARD,
        OPTIONAL_ATTRIBUTE_ERROR,
        "attribute",
        "RFC 6793 §4.1",
        "AS4_PATH/AS4_AGGREGATOR received on a 4-octet AS session; ignored",
    ),
    "large-communities-length": Case(
        WITHDRAW,
        OPTIONAL_ATTRIBUTE_ERROR,
        "attribute",
        "RFC 8092 §6",
        "LARGE_COMMUNITY length is not a non-zero multiple of 12",
    ),
}


@dataclass(frozen=True, slots=True)
class Malformation:
    """One RFC 7606 finding in a decoded UPDATE: what was wrong, what to do, and the NOTIFICATION
    the receiver would send if it chose (or were configured) to reset instead."""

    case: str
    attr_type: int  # type code of the attribute concerned, 0 for message-level cases
    data: bytes  # exact NOTIFICATION data (RFC 4271 §6.3)
    family: tuple[int, int] | None = None  # (AFI, SAFI) for AFI/SAFI-disable cases

    @property
    def action(self) -> Action:
        return CASES[self.case].action

    @property
    def subcode(self) -> int:
        return CASES[self.case].subcode

    @property
    def section(self) -> str:
        return CASES[self.case].section

    @property
    def reason(self) -> str:
        return CASES[self.case].text

    def to_error(self) -> UpdateMessageError:
        c = CASES[self.case]
        return UpdateMessageError(c.subcode, self.data, c.text, c.action, self.case)


def make_error(case: str, data: bytes = b"") -> UpdateMessageError:
    """The exception for a case (used for SESSION_RESET cases)."""
    return Malformation(case, 0, data).to_error()


def most_severe(found: tuple[Malformation, ...]) -> Action | None:
    """RFC 7606 §3: when several errors are found, the most severe approach applies."""
    if not found:
        return None
    return max((m.action for m in found), key=lambda a: a.value)


INTERNAL_ONLY = frozenset({"local-pref-length", "originator-id-length", "cluster-list-length"})
"""Cases whose treat-as-withdraw binds only an internal neighbour. RFC 7606 §7.5, §7.9 and
§7.10: LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST received from an external neighbour "SHALL be
discarded using the approach of 'attribute discard'" whatever their length; only from an
internal neighbour is a bad length treat-as-withdraw. `CASES` holds the internal outcome because
the codec does not know the session type; the session applies `external_action`."""


def external_action(case: str) -> Action:
    """The approach for `case` when the UPDATE came from an external (eBGP) neighbour."""
    return DISCARD if case in INTERNAL_ONLY else CASES[case].action
