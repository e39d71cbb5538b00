"""What the fuzzer sends: examples, their strategies, and expectations derived for replay.

Properties (each a hypothesis strategy of `Example`):

- `propagation`: well-formed UPDATEs an exporting eBGP target must pass on (RFC 4271 §5);
- `ipv6`: the same for IPv6 unicast in MP_REACH_NLRI (RFC 4760), when the target has it;
- `header`: RFC 4271 §6.1 header errors (`strategies.malformed_headers`);
- `open`: RFC 4271 §6.2 OPEN errors, built on the fuzzer's own valid OPEN so that only the
  planted error is wrong;
- `update`: RFC 4271 §6.3 / RFC 7606 UPDATE errors (`strategies.malformed_updates`).

`expect_from_bytes` rebuilds an example from its bytes alone with Tabby's codec as the
oracle, which is what `--replay HEX` uses. Pure: no IO.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from hypothesis import strategies as st

from bgpd.fuzz import PROPERTIES
from bgpd.wire import (
    BGPError,
    MpReach,
    Open,
    PathAttributes,
    Update,
    WireContext,
    decode_message,
    encode_message,
)
from bgpd.wire.attributes import AS_SEQUENCE, AS_SET, OPTIONAL, PARTIAL, TRANSITIVE, RawAttribute
from bgpd.wire.capabilities import Multiprotocol, RouteRefreshCapability
from bgpd.wire.context import AFI_IPV6, IPV4_UNICAST, SAFI_UNICAST
from bgpd.wire.errors import OpenMessageError
from bgpd.wire.messages import OPEN
from bgpd.wire.strategies import (
    Expected,
    Malformed,
    frame,
    malformed_headers,
    malformed_updates,
)


@dataclass(frozen=True, slots=True)
class Example:
    """One generated example: the bytes and what must happen.

    `expected` is set for malformed messages; `sent` for well-formed UPDATEs; `as_open`
    means the bytes replace the fuzzer's OPEN on a fresh connection.
    """

    property: str
    data: bytes
    four_octet_as: bool = True
    expected: Expected | None = None
    sent: Update | None = None
    as_open: bool = False
    add_path: bool = False  # IPv4 unicast NLRI carry path identifiers (RFC 7911 §3)

    def wire_context(self) -> WireContext:
        # (a method: the `property` field shadows the decorator in this class body)
        if self.add_path:
            return ADD_PATH_CONTEXT
        return WireContext(four_octet_as=self.four_octet_as)

    def describe(self) -> str:
        """The bytes decoded by Tabby's codec."""
        ctx = self.wire_context()
        try:
            return repr(decode_message(self.data, ctx))
        except BGPError as err:
            return f"undecodable: {err}"


def fuzzer_open(asn: int, router_id: int, hold_time: int, four_octet_as: bool = True) -> Open:
    caps = (Multiprotocol(*IPV4_UNICAST), RouteRefreshCapability())
    if four_octet_as:
        return Open.build(asn, hold_time, router_id, caps)
    return Open(asn, hold_time, router_id, caps)


# --- well-formed UPDATEs ------------------------------------------------------------------------

# RFC 5398 documentation ASNs (64496-64511) never collide with a lab's private ASNs.
_PATH_ASN = st.integers(64496, 64511)
# Unassigned attribute type codes (IANA BGP Path Attributes registry): no target knows them.
_UNKNOWN_CODE = st.integers(200, 239)
_COMMUNITY = st.integers(0x00010000, 0xFFFEFFFF)
# RFC 4360 §2: types with the Transitive bit clear (0x00 two-octet AS, 0x01 IPv4, 0x02 4-octet AS).
_EXT = st.tuples(
    st.sampled_from([0x00, 0x01, 0x02]), st.integers(0, 0xFF), st.binary(min_size=6, max_size=6)
).map(lambda t: int.from_bytes(bytes(t[:2]) + t[2], "big"))


def propagation(
    fuzzer_as: int, next_hop: str, ipv6_next_hop: str | None = None
) -> st.SearchStrategy[Example]:
    """UPDATEs an eBGP target that exports everything must propagate (RFC 4271 §5, §9.2).

    With `ipv6_next_hop` the same attributes carry IPv6 unicast prefixes (2001:db8:4000::/48
    and up, RFC 3849 documentation space) in MP_REACH_NLRI instead (RFC 4760 §3; no NEXT_HOP
    attribute, the next hop travels in MP_REACH_NLRI): the `ipv6` property."""
    nh = ipaddress.IPv4Address(next_hop).packed
    nh6 = ipaddress.IPv6Address(ipv6_next_hop).packed if ipv6_next_hop else None

    @st.composite
    def build(draw: st.DrawFn) -> Example:
        cells = draw(
            st.lists(
                st.tuples(st.integers(0, 63), st.integers(0, 255)),
                min_size=1,
                max_size=4,
                unique=True,
            )
        )
        if nh6 is not None:
            nlri = tuple(bytes((48, 0x20, 0x01, 0x0D, 0xB8, 0x40 + b, c)) for b, c in cells)
        else:
            nlri = tuple(bytes((24, 10, 64 + b, c)) for b, c in cells)
        path: list[tuple[int, tuple[int, ...]]] = [
            (AS_SEQUENCE, (fuzzer_as, *draw(st.lists(_PATH_ASN, max_size=4))))
        ]
        if draw(st.booleans()):
            # An AS_SET is a set (RFC 4271 §4.3): duplicates may be merged, so none are sent.
            path.append(
                (AS_SET, tuple(draw(st.lists(_PATH_ASN, min_size=1, max_size=3, unique=True))))
            )
        unknown = tuple(
            RawAttribute(
                OPTIONAL | TRANSITIVE | (PARTIAL if draw(st.booleans()) else 0),
                code,
                draw(st.binary(max_size=16)),
            )
            for code in sorted(draw(st.lists(_UNKNOWN_CODE, max_size=2, unique=True)))
        )
        attrs = PathAttributes(
            origin=draw(st.integers(0, 2)),
            as_path=tuple(path),
            next_hop=nh,
            med=draw(st.none() | st.integers(0, 0xFFFFFFFF)),
            local_pref=draw(st.none() | st.integers(0, 0xFFFFFFFF)),
            atomic_aggregate=draw(st.booleans()),
            aggregator=draw(st.none() | st.tuples(_PATH_ASN, st.just(b"\xc0\x00\x02\x07"))),
            communities=tuple(sorted(set(draw(st.lists(_COMMUNITY, max_size=4))))),
            ext_communities=tuple(sorted(set(draw(st.lists(_EXT, max_size=3))))),
            large_communities=tuple(
                sorted(
                    set(
                        draw(
                            st.lists(
                                st.tuples(
                                    st.integers(1, 0xFFFFFFFF),
                                    st.integers(0, 0xFFFFFFFF),
                                    st.integers(0, 0xFFFFFFFF),
                                ),
                                max_size=3,
                            )
                        )
                    )
                )
            ),
            unknown=unknown,
        )
        if nh6 is not None:
            update = Update(
                attributes=attrs._replace(next_hop=None),
                mp_reach=MpReach(AFI_IPV6, SAFI_UNICAST, nh6, nlri),
            )
        else:
            update = Update(attributes=attrs, nlri=nlri)
        data = encode_message(update, WireContext(four_octet_as=True))
        return Example("ipv6" if nh6 else "propagation", data, True, sent=update)

    return build()


ADD_PATH_CONTEXT = WireContext(
    four_octet_as=True,
    add_path_rx=frozenset([IPV4_UNICAST]),
    add_path_tx=frozenset([IPV4_UNICAST]),
)
"""A session on which both sides send and receive IPv4 unicast path identifiers."""


def add_paths(fuzzer_as: int, next_hop: str) -> st.SearchStrategy[Example]:
    """`propagation`'s UPDATEs on an ADD-PATH session (RFC 7911 §3), each prefix with one or
    two path identifiers: the target must read them, keep both paths of a prefix (§1: a new
    path does not implicitly replace one with another identifier) and, configured to send
    all paths, pass each on to the monitor with identifiers of its own."""

    @st.composite
    def build(draw: st.DrawFn) -> Example:
        base = draw(propagation(fuzzer_as, next_hop))
        assert base.sent is not None
        nlri: list[bytes] = []
        ids: list[int] = []
        for p in base.sent.nlri:
            for pid in draw(
                st.lists(st.integers(1, 0xFFFFFFFF), min_size=1, max_size=2, unique=True)
            ):
                nlri.append(p)
                ids.append(pid)
        update = base.sent._replace(nlri=tuple(nlri), nlri_path_ids=tuple(ids))
        data = encode_message(update, ADD_PATH_CONTEXT)
        return Example("add-path", data, True, sent=update, add_path=True)

    return build()


# --- malformed messages -------------------------------------------------------------------------


def _from_malformed(prop: str, m: Malformed) -> Example:
    return Example(prop, m.data, m.expected.context.four_octet_as, expected=m.expected)


def headers() -> st.SearchStrategy[Example]:
    """Header errors do not depend on the session's AS size: sent on the default session."""
    return malformed_headers().map(lambda m: Example("header", m.data, True, expected=m.expected))


def updates() -> st.SearchStrategy[Example]:
    """UPDATE errors for the session the fuzzer has (no ADD-PATH, no extended messages)."""
    return malformed_updates().map(lambda m: _from_malformed("update", m))


def opens(asn: int, router_id: int, hold_time: int) -> st.SearchStrategy[Example]:
    """RFC 4271 §6.2 errors planted in the fuzzer's own OPEN (so nothing else is wrong)."""
    ctx = WireContext()
    good = encode_message(fuzzer_open(asn, router_id, hold_time), ctx)

    @st.composite
    def build(draw: st.DrawFn) -> Example:
        raw = bytearray(good)
        kind = draw(st.sampled_from(["version", "hold", "bgp-id", "parameter"]))
        if kind == "version":
            raw[19] = draw(st.integers(5, 255))
            # RFC 4271 §6.2: data is the largest supported version below the one bid (4).
            exp = Expected(ctx, OpenMessageError, 2, 1, b"\x00\x04")
        elif kind == "hold":
            raw[22:24] = draw(st.sampled_from([1, 2])).to_bytes(2, "big")
            exp = Expected(ctx, OpenMessageError, 2, 6, b"")
        elif kind == "bgp-id":
            # RFC 6286 §2.2: any non-zero value is a valid BGP Identifier; zero is not.
            raw[24:28] = b"\0\0\0\0"
            exp = Expected(ctx, OpenMessageError, 2, 3, b"")
        else:
            ptype = draw(st.integers(1, 254).filter(lambda t: t != 2))
            value = draw(st.binary(max_size=8))
            params = bytes(raw[29:]) + bytes((ptype, len(value))) + value
            body = bytes(raw[19:28]) + bytes((len(params),)) + params
            raw = bytearray(frame(OPEN, body))
            exp = Expected(ctx, OpenMessageError, 2, 4, b"")
        return Example("open", bytes(raw), False, expected=exp, as_open=True)

    return build()


def expect_from_bytes(data: bytes, four_octet_as: bool = True, add_path: bool = False) -> Example:
    """Rebuild an example from its bytes, with Tabby's codec as the oracle (for replay)."""
    if add_path:
        try:
            msg = decode_message(data, ADD_PATH_CONTEXT)
        except BGPError:
            msg = None
        if isinstance(msg, Update) and msg.nlri and not msg.malformations:
            return Example("add-path", data, True, sent=msg, add_path=True)
        raise ValueError("--add-path replays a well-formed UPDATE with path identifiers only")
    if len(data) > 18 and data[18] == OPEN and data[:16] == b"\xff" * 16:
        ctx = WireContext()
        try:
            decode_message(data, ctx)
        except BGPError as err:
            return Example(
                "open",
                data,
                False,
                Expected(ctx, type(err), err.code, err.subcode, err.data),
                None,
                True,
            )
        return Example("open", data, False, as_open=True)
    ctx = WireContext(four_octet_as=four_octet_as)
    try:
        msg = decode_message(data, ctx)
    except BGPError as err:
        prop = "update" if err.code == 3 else "header"
        return Example(
            prop, data, four_octet_as, Expected(ctx, type(err), err.code, err.subcode, err.data)
        )
    if isinstance(msg, Update) and msg.malformations:
        m = msg.malformations[0]
        exp = Expected(ctx, None, 3, m.subcode, m.data, msg.action, m.case)
        return Example("update", data, four_octet_as, exp)
    if isinstance(msg, Update) and msg.nlri:
        return Example("propagation", data, four_octet_as, sent=msg)
    if isinstance(msg, Update) and msg.mp_reach is not None and msg.mp_reach.afi == AFI_IPV6:
        return Example("ipv6", data, four_octet_as, sent=msg)
    return Example("other", data, four_octet_as)


__all__ = [
    "PROPERTIES",
    "Example",
    "add_paths",
    "expect_from_bytes",
    "fuzzer_open",
    "headers",
    "opens",
    "propagation",
    "updates",
]
