"""Hypothesis strategies for BGP messages: valid ones, and malformed ones with their verdict.

Install the `fuzz` extra (`pip install tabby[fuzz]`) to use this module; it is the only part of
`bgpd.wire` that imports hypothesis.

Valid messages (`decode(encode(m), ctx) == m` holds for all of them)::

    from hypothesis import given
    from bgpd.wire import WireContext, encode_message
    from bgpd.wire.strategies import messages

    @given(messages(WireContext(four_octet_as=True)))
    def test_peer_accepts(msg): ...

Malformed messages come as `Malformed(data, expected)`, where `expected` says what an RFC
4271 + RFC 7606 speaker must do with `data` under `expected.context`: raise (send) a
NOTIFICATION with exactly `code`, `subcode` and `data`, or, for the UPDATE errors RFC 7606
softens, keep the session and apply `action` (treat-as-withdraw, attribute discard, AFI/SAFI
disable). To fuzz another speaker, bring a session up with the capabilities matching
`expected.context`, send `data`, and compare the NOTIFICATION it answers with (or the routes it
keeps) against `expected`. `expected.matches(...)` checks this codec against the verdict.

Strategies: `prefixes`, `capabilities`, `path_attributes`, `opens`, `updates`,
`notifications`, `keepalives`, `route_refreshes`, `messages`, `contexts`;
`malformed_headers`, `malformed_opens`, `malformed_updates(case=None)`, `malformed_messages`.
`UPDATE_CASE_BUILDERS` has one builder per `rfc7606.CASES` entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import strategies as st

from bgpd.wire import capabilities as capabilities_module
from bgpd.wire.attributes import (
    AGGREGATOR,
    AS4_AGGREGATOR,
    AS4_PATH,
    AS_CONFED_SEQUENCE,
    AS_CONFED_SET,
    AS_PATH,
    AS_SEQUENCE,
    AS_SET,
    ATOMIC_AGGREGATE,
    ATTRIBUTES,
    CLUSTER_LIST,
    COMMUNITIES,
    EXTENDED_COMMUNITIES,
    LARGE_COMMUNITY,
    LOCAL_PREF,
    MP_REACH_NLRI,
    MP_UNREACH_NLRI,
    MULTI_EXIT_DISC,
    NEXT_HOP,
    OPTIONAL,
    ORIGIN,
    ORIGINATOR_ID,
    PARTIAL,
    TRANSITIVE,
    MpReach,
    MpUnreach,
    PathAttributes,
    RawAttribute,
    Segment,
    header,
)
from bgpd.wire.capabilities import (
    ADD_PATH,
    CAPABILITIES,
    ENHANCED_ROUTE_REFRESH,
    EXTENDED_MESSAGE,
    FOUR_OCTET_AS,
    FQDN,
    GRACEFUL_RESTART,
    LONG_LIVED_GRACEFUL_RESTART,
    MULTIPROTOCOL,
    AddPath,
    Capability,
    EnhancedRouteRefresh,
    ExtendedMessage,
    FourOctetAs,
    Fqdn,
    GracefulRestart,
    LongLivedGracefulRestart,
    Multiprotocol,
    RouteRefreshCapability,
    UnknownCapability,
)
from bgpd.wire.codec import MARKER, decode_message, encode_message
from bgpd.wire.context import AFI_IPV4, AFI_IPV6, IPV4_UNICAST, IPV6_UNICAST, WireContext
from bgpd.wire.errors import (
    Action,
    BGPError,
    MessageHeaderError,
    OpenMessageError,
    UpdateMessageError,
)
from bgpd.wire.messages import (
    KEEPALIVE,
    KEEPALIVE_MESSAGE,
    NOTIFICATION,
    OPEN,
    ROUTE_REFRESH,
    UPDATE,
    Keepalive,
    Message,
    Notification,
    Open,
    RouteRefresh,
    Update,
)
from bgpd.wire.prefix import MAX_LENGTH, Prefix
from bgpd.wire.rfc7606 import CASES
from bgpd.wire.section import encode_attributes

U8 = st.integers(0, 0xFF)
U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFFFFFF)

# --- valid values -------------------------------------------------------------------------------


@st.composite
def prefixes(draw: st.DrawFn, afi: int = AFI_IPV4) -> Prefix:
    """A canonical `Prefix` of family `afi` (host bits zero)."""
    maxlen = MAX_LENGTH[afi]
    plen = draw(st.integers(0, maxlen))
    bits = draw(st.integers(0, (1 << maxlen) - 1)) >> (maxlen - plen) << (maxlen - plen)
    return bytes((plen,)) + bits.to_bytes(maxlen // 8, "big")[: (plen + 7) // 8]


def contexts() -> st.SearchStrategy[WireContext]:
    """Contexts as negotiated sessions produce them (ADD-PATH symmetric, so round trips hold)."""
    fams = st.frozensets(st.sampled_from([IPV4_UNICAST, IPV6_UNICAST]))
    return st.builds(
        lambda four, ap, ext: WireContext(four, ap, ap, ext), st.booleans(), fams, st.booleans()
    )


def _families() -> st.SearchStrategy[tuple[int, int]]:
    return st.tuples(U16, U8)


_TEXT = st.text(st.characters(codec="ascii", categories=["L", "N"]), max_size=40)
_FAMS3 = st.lists(st.tuples(U16, U8, U8), max_size=6).map(tuple)

# One strategy per capability code of `capabilities.CAPABILITIES`.
CAPABILITY_STRATEGIES: dict[int, st.SearchStrategy[Capability]] = {
    MULTIPROTOCOL: st.builds(Multiprotocol, U16, U8),
    capabilities_module.ROUTE_REFRESH: st.just(RouteRefreshCapability()),
    EXTENDED_MESSAGE: st.just(ExtendedMessage()),
    GRACEFUL_RESTART: st.builds(
        GracefulRestart, st.booleans(), st.booleans(), st.integers(0, 0xFFF), _FAMS3
    ),
    FOUR_OCTET_AS: st.builds(FourOctetAs, U32),
    ADD_PATH: st.builds(AddPath, _FAMS3),
    ENHANCED_ROUTE_REFRESH: st.just(EnhancedRouteRefresh()),
    LONG_LIVED_GRACEFUL_RESTART: st.builds(
        LongLivedGracefulRestart,
        st.lists(st.tuples(U16, U8, U8, st.integers(0, 0xFFFFFF)), max_size=6).map(tuple),
    ),
    FQDN: st.builds(Fqdn, _TEXT, _TEXT),
}


def unknown_capabilities() -> st.SearchStrategy[Capability]:
    return st.builds(
        UnknownCapability,
        st.integers(0, 255).filter(lambda c: c not in CAPABILITIES),
        st.binary(max_size=60),
    )


def capabilities() -> st.SearchStrategy[Capability]:
    """Every capability type, and unknown ones kept as bytes."""
    return st.one_of(*CAPABILITY_STRATEGIES.values(), unknown_capabilities())


def opens() -> st.SearchStrategy[Open]:
    return st.builds(
        Open,
        U16,
        st.one_of(st.just(0), st.integers(3, 0xFFFF)),
        st.integers(1, 0xFFFFFFFF),
        st.lists(capabilities(), max_size=40).map(tuple),
    )


def _host_address() -> st.SearchStrategy[bytes]:
    """An IPv4 host address RFC 4271 §6.3 accepts as NEXT_HOP."""
    return st.integers(0x01000000, 0xDFFFFFFF).map(lambda v: v.to_bytes(4, "big"))


@st.composite
def as_paths(draw: st.DrawFn, four_octet_as: bool = True) -> tuple[Segment, ...]:
    """AS_PATHs with confederation segments only at the front (RFC 5065 §3); on a 2-octet
    session, confederation members fit 2 octets (they cannot travel in AS4_PATH)."""
    asn = U32.filter(lambda a: a != 0)
    small = st.integers(1, 0xFFFF)
    confed = draw(
        st.lists(
            st.tuples(
                st.sampled_from([AS_CONFED_SEQUENCE, AS_CONFED_SET]),
                st.lists(asn if four_octet_as else small, min_size=1, max_size=6).map(tuple),
            ),
            max_size=2,
        )
    )
    rest = draw(
        st.lists(
            st.tuples(
                st.sampled_from([AS_SEQUENCE, AS_SET]),
                st.lists(asn, min_size=1, max_size=12).map(tuple),
            ),
            max_size=4,
        )
    )
    return tuple(confed + rest)


@st.composite
def path_attributes(
    draw: st.DrawFn, four_octet_as: bool = True, next_hop: bool = True
) -> PathAttributes:
    """Valid attribute sets (ORIGIN and AS_PATH always present, so NLRI may use them)."""
    unknown_codes = draw(
        st.lists(st.integers(1, 255).filter(lambda c: c not in ATTRIBUTES), max_size=3, unique=True)
    )
    unknown = tuple(
        RawAttribute(OPTIONAL | TRANSITIVE | PARTIAL, code, draw(st.binary(max_size=40)))
        for code in sorted(unknown_codes)
    )
    opt = st.none
    return PathAttributes(
        origin=draw(st.integers(0, 2)),
        as_path=draw(as_paths(four_octet_as)),
        next_hop=draw(_host_address()) if next_hop else None,
        med=draw(st.one_of(opt(), U32)),
        local_pref=draw(st.one_of(opt(), U32)),
        atomic_aggregate=draw(st.booleans()),
        aggregator=draw(st.one_of(opt(), st.tuples(U32, st.binary(min_size=4, max_size=4)))),
        communities=tuple(draw(st.lists(U32, max_size=8))),
        originator_id=draw(st.one_of(opt(), U32)),
        cluster_list=tuple(draw(st.lists(U32, max_size=4))),
        ext_communities=tuple(draw(st.lists(st.integers(0, (1 << 64) - 1), max_size=4))),
        large_communities=tuple(draw(st.lists(st.tuples(U32, U32, U32), max_size=4))),
        unknown=unknown,
    )


def _ids(draw: st.DrawFn, ctx: WireContext, family: tuple[int, int], n: int) -> tuple[int, ...]:
    if family not in ctx.add_path_tx:
        return ()
    return tuple(draw(st.lists(U32, min_size=n, max_size=n)))


@st.composite
def updates(draw: st.DrawFn, ctx: WireContext | None = None) -> Update:
    """Valid UPDATEs for `ctx` (drawn when None): IPv4 NLRI, MP_REACH/MP_UNREACH for IPv4 and
    IPv6 unicast (with IPv6 link-local next hops), ADD-PATH identifiers, End-of-RIB markers."""
    if ctx is None:
        ctx = draw(contexts())
    kind = draw(st.sampled_from(["ipv4", "mp", "withdraw", "eor"]))
    if kind == "eor":
        afi = draw(st.sampled_from([AFI_IPV4, AFI_IPV6]))
        return Update() if afi == AFI_IPV4 else Update(mp_unreach=MpUnreach(afi, 1))
    withdrawn = tuple(draw(st.lists(prefixes(AFI_IPV4), max_size=12)))
    w_ids = _ids(draw, ctx, IPV4_UNICAST, len(withdrawn))
    if kind == "withdraw":
        fam = draw(st.sampled_from([IPV4_UNICAST, IPV6_UNICAST]))
        mp_w = tuple(draw(st.lists(prefixes(fam[0]), max_size=12)))
        return Update(
            withdrawn=withdrawn,
            withdrawn_path_ids=w_ids,
            mp_unreach=MpUnreach(*fam, mp_w, _ids(draw, ctx, fam, len(mp_w))) if mp_w else None,
        )
    if kind == "ipv4":
        nlri = tuple(draw(st.lists(prefixes(AFI_IPV4), min_size=1, max_size=20)))
        return Update(
            withdrawn=withdrawn,
            attributes=draw(path_attributes(ctx.four_octet_as)),
            nlri=nlri,
            withdrawn_path_ids=w_ids,
            nlri_path_ids=_ids(draw, ctx, IPV4_UNICAST, len(nlri)),
        )
    fam = draw(st.sampled_from([IPV4_UNICAST, IPV6_UNICAST]))
    nh_len = draw(st.sampled_from([4, 16, 32] if fam[0] == AFI_IPV4 else [16, 32]))
    nlri = tuple(draw(st.lists(prefixes(fam[0]), min_size=1, max_size=15)))
    reach = MpReach(
        fam[0],
        fam[1],
        draw(st.binary(min_size=nh_len, max_size=nh_len)),
        nlri,
        _ids(draw, ctx, fam, len(nlri)),
    )
    return Update(
        attributes=draw(path_attributes(ctx.four_octet_as, next_hop=False)), mp_reach=reach
    )


def notifications() -> st.SearchStrategy[Notification]:
    return st.builds(Notification, U8, U8, st.binary(max_size=64))


def keepalives() -> st.SearchStrategy[Keepalive]:
    return st.just(KEEPALIVE_MESSAGE)


def route_refreshes() -> st.SearchStrategy[RouteRefresh]:
    return st.builds(RouteRefresh, U16, U8, st.integers(0, 2))


def messages(ctx: WireContext) -> st.SearchStrategy[Message]:
    """Any valid message for `ctx`."""
    return st.one_of(opens(), updates(ctx), notifications(), keepalives(), route_refreshes())


# --- malformed messages and their verdicts -----------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What a speaker must do with a malformed message.

    `error` is the exception class the codec raises (a NOTIFICATION is sent), or None when the
    message decodes and RFC 7606 `action` applies instead. `data` is the exact NOTIFICATION
    data. `case` names the `rfc7606.CASES` entry for UPDATE errors.
    """

    context: WireContext
    error: type[BGPError] | None
    code: int
    subcode: int
    data: bytes
    action: Action | None = None
    case: str = ""

    def matches(self, data: bytes) -> bool:
        """Does this codec reach the verdict on `data`?"""
        try:
            msg = decode_message(data, self.context)
        except BGPError as err:
            return (
                self.error is not None
                and isinstance(err, self.error)
                and (err.code, err.subcode, err.data) == (self.code, self.subcode, self.data)
            )
        if self.error is not None or not isinstance(msg, Update):
            return False
        return any(
            (m.case, m.subcode, m.data) == (self.case, self.subcode, self.data)
            for m in msg.malformations
        ) and msg.treat_as_withdraw == (
            self.action is Action.TREAT_AS_WITHDRAW
            or any(m.action is Action.TREAT_AS_WITHDRAW for m in msg.malformations)
        )


@dataclass(frozen=True)
class Malformed:
    data: bytes
    expected: Expected


def frame(mtype: int, body: bytes, length: int | None = None) -> bytes:
    n = 19 + len(body) if length is None else length
    return MARKER + n.to_bytes(2, "big") + bytes((mtype,)) + body


def _header_error(ctx: WireContext, subcode: int, data: bytes) -> Expected:
    return Expected(ctx, MessageHeaderError, 1, subcode, data)


@st.composite
def malformed_headers(draw: st.DrawFn) -> Malformed:
    """RFC 4271 §6.1: bad marker, bad length (data: the Length field), bad type (data: type)."""
    ctx = WireContext()
    kind = draw(st.sampled_from(["marker", "short", "long", "type", "per-type"]))
    if kind == "marker":
        good = bytearray(encode_message(KEEPALIVE_MESSAGE, ctx))
        pos = draw(st.integers(0, 15))
        good[pos] = draw(st.integers(0, 254))
        return Malformed(bytes(good), _header_error(ctx, 1, b""))
    if kind in ("short", "long"):
        n = draw(st.integers(0, 18) if kind == "short" else st.integers(4097, 0xFFFF))
        mtype = draw(st.integers(1, 5))
        return Malformed(frame(mtype, b"", n), _header_error(ctx, 2, n.to_bytes(2, "big")))
    if kind == "type":
        mtype = draw(st.integers(0, 255).filter(lambda t: not 1 <= t <= 5))
        return Malformed(frame(mtype, b""), _header_error(ctx, 3, bytes((mtype,))))
    # Shorter than the type's minimum, or a KEEPALIVE with a body (RFC 4271 §6.1).
    mtype, body = draw(
        st.sampled_from(
            [
                (OPEN, b"\x04\x00"),
                (UPDATE, b"\x00"),
                (NOTIFICATION, b"\x06"),
                (KEEPALIVE, b"\x00"),
                (ROUTE_REFRESH, b"\x00\x01"),
            ]
        )
    )
    n = 19 + len(body)
    return Malformed(frame(mtype, body), _header_error(ctx, 2, n.to_bytes(2, "big")))


@st.composite
def malformed_opens(draw: st.DrawFn) -> Malformed:
    """RFC 4271 §6.2 / RFC 5492 errors in an otherwise valid OPEN."""
    ctx = WireContext()
    good = draw(opens())
    kind = draw(st.sampled_from(["version", "hold", "bgp-id", "parameter", "opt-len", "cap"]))
    raw = bytearray(encode_message(good, ctx))
    if kind == "version":
        raw[19] = draw(st.integers(0, 255).filter(lambda v: v != 4))
        return Malformed(bytes(raw), Expected(ctx, OpenMessageError, 2, 1, b"\x00\x04"))
    if kind == "hold":
        raw[22:24] = draw(st.sampled_from([1, 2])).to_bytes(2, "big")
        return Malformed(bytes(raw), Expected(ctx, OpenMessageError, 2, 6, b""))
    if kind == "bgp-id":
        raw[24:28] = b"\x00\x00\x00\x00"
        return Malformed(bytes(raw), Expected(ctx, OpenMessageError, 2, 3, b""))
    body = bytes(raw[19:28])
    if kind == "parameter":
        ptype = draw(st.integers(0, 254).filter(lambda t: t != 2))
        value = draw(st.binary(max_size=20))
        param = bytes((ptype, len(value))) + value
        return Malformed(
            frame(OPEN, body + bytes((len(param),)) + param),
            Expected(ctx, OpenMessageError, 2, 4, b""),
        )
    if kind == "opt-len":
        params = bytes(raw[29:])
        wrong = draw(st.integers(0, 254).filter(lambda n: n != len(params)))
        return Malformed(
            frame(OPEN, body + bytes((wrong,)) + params), Expected(ctx, OpenMessageError, 2, 0, b"")
        )
    # A known capability with an impossible length.
    code, value = draw(
        st.sampled_from(
            [
                (1, b"\x00\x01\x00"),
                (65, b"\x00\x00\xfd"),
                (64, b"\x00"),
                (69, b"\x00\x01\x01"),
                (71, b"\x00\x01\x01\x80"),
                (2, b"\x00"),
                (6, b"\x01"),
                (70, b"\x00"),
                (73, b"\x05ab"),
            ]
        )
    )
    cap = bytes((code, len(value))) + value
    param = bytes((2, len(cap))) + cap
    return Malformed(
        frame(OPEN, body + bytes((len(param),)) + param), Expected(ctx, OpenMessageError, 2, 0, b"")
    )


def attr(flags: int, code: int, value: bytes) -> bytes:
    """One attribute TLV (Extended Length chosen from the value's size)."""
    return header(flags, code, len(value)) + value


def update_bytes(withdrawn: bytes, attrs: bytes, nlri: bytes) -> bytes:
    body = len(withdrawn).to_bytes(2, "big") + withdrawn + len(attrs).to_bytes(2, "big")
    return frame(UPDATE, body + attrs + nlri)


_BASE = PathAttributes(origin=0, as_path=((AS_SEQUENCE, (65001,)),), next_hop=b"\xc0\x00\x02\x01")
_NLRI = b"\x18\x0a\x00\x00"


def _base_without(code: int, ctx: WireContext) -> bytes:
    """The base attribute set minus `code` (so a bad copy of it is the only one)."""
    base = {
        ORIGIN: _BASE._replace(origin=None),
        AS_PATH: _BASE._replace(as_path=None),
        NEXT_HOP: _BASE._replace(next_hop=None),
    }.get(code, _BASE)
    return encode_attributes(base, ctx)


Builder = Callable[[st.DrawFn], tuple[WireContext, bytes, bytes]]
"""Draws (context, UPDATE bytes, expected NOTIFICATION data)."""

FOUR = WireContext(four_octet_as=True)
TWO = WireContext(four_octet_as=False)


def _bad_value(
    code: int, flags: int, values: st.SearchStrategy[bytes], ctx: WireContext = FOUR
) -> Builder:
    def build(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
        bad = attr(flags, code, draw(values))
        return ctx, update_bytes(b"", _base_without(code, ctx) + bad, _NLRI), bad

    return build


def _lengths(*ok: int, max_size: int = 40) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=max_size).filter(lambda v: len(v) not in ok)


def _not_multiple(k: int) -> st.SearchStrategy[bytes]:
    return st.binary(max_size=40).filter(lambda v: len(v) == 0 or len(v) % k != 0)


def _withdrawn_overrun(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    data = bytearray(update_bytes(b"", b"", b""))
    data[19:21] = draw(st.integers(3, 0xFFFF)).to_bytes(2, "big")
    return FOUR, bytes(data), b""


def _attribute_overrun(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    data = bytearray(update_bytes(b"", b"", b""))
    data[21:23] = draw(st.integers(1, 0xFFFF)).to_bytes(2, "big")
    return FOUR, bytes(data), b""


def _bad_prefix(draw: st.DrawFn) -> bytes:
    return draw(
        st.one_of(
            st.integers(33, 255).map(lambda n: bytes((n,)) + b"\x00" * 4),  # length > 32
            st.sampled_from([b"\x18\x0a\x00", b"\x20\x0a", b"\x08"]),  # overrun
        )
    )


def _nlri_malformed(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    return FOUR, update_bytes(b"", encode_attributes(_BASE, FOUR), _bad_prefix(draw)), b""


def _withdrawn_malformed(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    return FOUR, update_bytes(_bad_prefix(draw), b"", b""), b""


def _header_truncated(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    tail = draw(st.sampled_from([b"\x40", b"\x40\x01", b"\x50\x01\x00"]))
    return FOUR, update_bytes(b"", encode_attributes(_BASE, FOUR) + tail, _NLRI), b""


def _value_overrun(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    short = draw(st.binary(max_size=10))
    bad = bytes((0xC0, 200, len(short) + draw(st.integers(1, 100)))) + short
    return FOUR, update_bytes(b"", encode_attributes(_BASE, FOUR) + bad, _NLRI), b""


def _framing_with_mp(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    mp = attr(OPTIONAL, MP_UNREACH_NLRI, b"\x00\x02\x01")
    return FOUR, update_bytes(b"", mp + b"\x40\x01\x05\x00", b""), b""


def _duplicate(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    extra = draw(
        st.sampled_from(
            [attr(TRANSITIVE, ORIGIN, b"\x02"), attr(OPTIONAL, MULTI_EXIT_DISC, b"\0\0\0\1")]
        )
    )
    base = encode_attributes(_BASE._replace(med=7), FOUR)
    return FOUR, update_bytes(b"", base + extra, _NLRI), b""


def _duplicate_mp(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    code = draw(st.sampled_from([MP_REACH_NLRI, MP_UNREACH_NLRI]))
    value = (
        b"\x00\x02\x01" if code == MP_UNREACH_NLRI else b"\x00\x02\x01\x10" + b"\x20" * 16 + b"\x00"
    )
    one = attr(OPTIONAL, code, value)
    return FOUR, update_bytes(b"", one + one + encode_attributes(_BASE, FOUR), b""), b""


def _unrecognized_well_known(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    code = draw(st.integers(1, 255).filter(lambda c: c not in ATTRIBUTES))
    bad = attr(draw(st.sampled_from([0x00, 0x40, 0x60])), code, draw(st.binary(max_size=10)))
    return FOUR, update_bytes(b"", encode_attributes(_BASE, FOUR) + bad, _NLRI), bad


def _flags(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    code = draw(
        st.sampled_from([ORIGIN, AS_PATH, NEXT_HOP, MULTI_EXIT_DISC, LOCAL_PREF, COMMUNITIES])
    )
    good = {
        ORIGIN: b"\x00",
        AS_PATH: b"\x02\x01\x00\x00\xfd\xe9",
        NEXT_HOP: b"\xc0\x00\x02\x01",
        MULTI_EXIT_DISC: b"\0\0\0\1",
        LOCAL_PREF: b"\0\0\0\x64",
        COMMUNITIES: b"\0\1\0\2",
    }[code]
    right = ATTRIBUTES[code].flags
    flags = draw(st.sampled_from([f for f in (0x00, 0x40, 0x80, 0xC0) if f != right]))
    bad = attr(flags, code, good)
    return FOUR, update_bytes(b"", _base_without(code, FOUR) + bad, _NLRI), bad


def _missing(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    code = draw(st.sampled_from([ORIGIN, AS_PATH, NEXT_HOP]))
    return FOUR, update_bytes(b"", _base_without(code, FOUR), _NLRI), bytes((code,))


def _mp_reach_malformed(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    value = draw(
        st.sampled_from(
            [
                b"\x00\x02\x01\x05" + b"\x20" * 5 + b"\x00",  # next hop length 5
                b"\x00\x02\x01\x10" + b"\x20" * 16 + b"\x00\x81" + b"\x00" * 17,  # /129
                b"\x00\x02\x01\x10" + b"\x20" * 16 + b"\x00\x40\x20\x01",  # overrun
                b"\x00\x02\x01\x10\x20\x20",  # next hop overruns
                b"\x00\x01\x01",
            ]  # no next hop length
        )
    )
    bad = attr(OPTIONAL, MP_REACH_NLRI, value)
    return FOUR, update_bytes(b"", bad + encode_attributes(_BASE, FOUR), b""), bad


def _mp_unreach_malformed(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    value = b"\x00\x02\x01" + draw(st.sampled_from([b"\x81" + b"\x00" * 17, b"\x40\x20\x01"]))
    bad = attr(OPTIONAL, MP_UNREACH_NLRI, value)
    return FOUR, update_bytes(b"", bad, b""), bad


def _mp_truncated(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    code = draw(st.sampled_from([MP_REACH_NLRI, MP_UNREACH_NLRI]))
    bad = attr(OPTIONAL, code, draw(st.binary(max_size=2)))
    return FOUR, update_bytes(b"", bad, b""), bad


def _mp_unsupported(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    afi = draw(st.integers(3, 0xFFFF))
    bad = attr(
        OPTIONAL, MP_UNREACH_NLRI, afi.to_bytes(2, "big") + b"\x01" + draw(st.binary(max_size=8))
    )
    return FOUR, update_bytes(b"", bad, b""), bad


def _as_path_bad(draw: st.DrawFn) -> bytes:
    return draw(
        st.sampled_from(
            [
                b"\x02",
                b"\x05\x01\x00\x00\x00\x01",
                b"\x02\x00",
                b"\x02\x02\x00\x00\x00\x01",
                b"\x02\x01\x00\x00\x00\x01\x02",
            ]
        )
    )


def _as_path_malformed(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    bad = attr(TRANSITIVE, AS_PATH, _as_path_bad(draw))
    return FOUR, update_bytes(b"", _base_without(AS_PATH, FOUR) + bad, _NLRI), b""


def _as4_path_malformed(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    value = draw(
        st.one_of(st.just(b"\x03\x01\x00\x01\x11\x70"), st.builds(_as_path_bad, st.just(draw)))
    )
    bad = attr(OPTIONAL | TRANSITIVE, AS4_PATH, value)
    return TWO, update_bytes(b"", encode_attributes(_BASE, TWO) + bad, _NLRI), bad


def _as4_from_new(draw: st.DrawFn) -> tuple[WireContext, bytes, bytes]:
    code = draw(st.sampled_from([AS4_PATH, AS4_AGGREGATOR]))
    value = b"\x02\x01\x00\x01\x11\x70" if code == AS4_PATH else b"\x00\x01\x11\x70\x0a\x00\x00\x01"
    bad = attr(OPTIONAL | TRANSITIVE, code, value)
    return FOUR, update_bytes(b"", encode_attributes(_BASE, FOUR) + bad, _NLRI), bad


UPDATE_CASE_BUILDERS: dict[str, Builder] = {
    "withdrawn-length-overrun": _withdrawn_overrun,
    "attribute-length-overrun": _attribute_overrun,
    "withdrawn-nlri-malformed": _withdrawn_malformed,
    "nlri-malformed": _nlri_malformed,
    "attribute-header-truncated": _header_truncated,
    "attribute-value-overrun": _value_overrun,
    "attribute-framing-with-mp": _framing_with_mp,
    "duplicate-attribute": _duplicate,
    "duplicate-mp-attribute": _duplicate_mp,
    "unrecognized-well-known": _unrecognized_well_known,
    "attribute-flags": _flags,
    "missing-well-known": _missing,
    "origin-length": _bad_value(ORIGIN, TRANSITIVE, _lengths(1)),
    "origin-value": _bad_value(ORIGIN, TRANSITIVE, st.integers(3, 255).map(lambda v: bytes((v,)))),
    "as-path-malformed": _as_path_malformed,
    "next-hop-length": _bad_value(NEXT_HOP, TRANSITIVE, _lengths(4)),
    "next-hop-invalid": _bad_value(
        NEXT_HOP,
        TRANSITIVE,
        st.one_of(
            st.sampled_from([b"\0\0\0\0", b"\xff\xff\xff\xff"]),
            st.integers(0xE0000000, 0xEFFFFFFF).map(lambda v: v.to_bytes(4, "big")),
        ),
    ),
    "med-length": _bad_value(MULTI_EXIT_DISC, OPTIONAL, _lengths(4)),
    "local-pref-length": _bad_value(LOCAL_PREF, TRANSITIVE, _lengths(4)),
    "atomic-aggregate-length": _bad_value(
        ATOMIC_AGGREGATE, TRANSITIVE, st.binary(min_size=1, max_size=8)
    ),
    "aggregator-length": _bad_value(AGGREGATOR, OPTIONAL | TRANSITIVE, _lengths(8)),
    "communities-length": _bad_value(COMMUNITIES, OPTIONAL | TRANSITIVE, _not_multiple(4)),
    "originator-id-length": _bad_value(ORIGINATOR_ID, OPTIONAL, _lengths(4)),
    "cluster-list-length": _bad_value(CLUSTER_LIST, OPTIONAL, _not_multiple(4)),
    "mp-reach-malformed": _mp_reach_malformed,
    "mp-unreach-malformed": _mp_unreach_malformed,
    "mp-attribute-truncated": _mp_truncated,
    "mp-family-unsupported": _mp_unsupported,
    "ext-communities-length": _bad_value(
        EXTENDED_COMMUNITIES, OPTIONAL | TRANSITIVE, _not_multiple(8)
    ),
    "as4-path-malformed": _as4_path_malformed,
    "as4-aggregator-length": _bad_value(AS4_AGGREGATOR, OPTIONAL | TRANSITIVE, _lengths(8), TWO),
    "as4-from-new-speaker": _as4_from_new,
    "large-communities-length": _bad_value(
        LARGE_COMMUNITY, OPTIONAL | TRANSITIVE, _not_multiple(12)
    ),
}


@st.composite
def malformed_updates(draw: st.DrawFn, case: str | None = None) -> Malformed:
    """An UPDATE with one RFC 7606 malformation (`case`, or any), and its verdict."""
    name = case if case is not None else draw(st.sampled_from(sorted(UPDATE_CASE_BUILDERS)))
    ctx, data, notification_data = UPDATE_CASE_BUILDERS[name](draw)
    c = CASES[name]
    reset = c.action is Action.SESSION_RESET
    return Malformed(
        data,
        Expected(
            ctx,
            UpdateMessageError if reset else None,
            3,
            c.subcode,
            notification_data,
            c.action,
            name,
        ),
    )


def malformed_messages() -> st.SearchStrategy[Malformed]:
    """Any structure-aware malformed message."""
    return st.one_of(malformed_headers(), malformed_opens(), malformed_updates())


__all__ = [
    "CAPABILITY_STRATEGIES",
    "UPDATE_CASE_BUILDERS",
    "Expected",
    "Malformed",
    "as_paths",
    "capabilities",
    "contexts",
    "keepalives",
    "malformed_headers",
    "malformed_messages",
    "malformed_opens",
    "malformed_updates",
    "messages",
    "notifications",
    "opens",
    "path_attributes",
    "prefixes",
    "route_refreshes",
    "unknown_capabilities",
    "updates",
]
