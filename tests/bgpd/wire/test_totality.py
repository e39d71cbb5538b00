"""Total decoding: whatever the bytes, every decoder returns a value or raises the codec's
`BGPError` (never IndexError, struct.error, ValueError, ...). Parametrised from the descriptor
tables, so a new attribute or capability cannot skip it (STYLE: ExaBGP's fuzz rule)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgpd.wire import BGPError, Framer, Update, WireContext, decode_message, encode_message
from bgpd.wire.attributes import ATTRIBUTES, PathAttributes
from bgpd.wire.capabilities import CAPABILITIES, CapabilityError, decode_capability
from bgpd.wire.codec import DECODERS
from bgpd.wire.messages import MESSAGE_NAMES
from bgpd.wire.section import encode_attributes
from bgpd.wire.strategies import (
    attr,
    contexts,
    frame,
    malformed_headers,
    malformed_messages,
    malformed_opens,
    messages,
    update_bytes,
)

BASE = PathAttributes(origin=0, as_path=((2, (65001,)),), next_hop=b"\xc0\x00\x02\x01")
CTX_ALL = [
    WireContext(),
    WireContext(four_octet_as=True),
    WireContext(True, frozenset({(1, 1), (2, 1)}), frozenset({(1, 1), (2, 1)}), True),
]


def decodes_or_protocol_error(data: bytes, ctx: WireContext) -> None:
    with contextlib.suppress(BGPError):
        decode_message(data, ctx)


def test_decoder_table_covers_every_message_type() -> None:
    assert set(DECODERS) == set(MESSAGE_NAMES)


@settings(max_examples=60)
@given(st.binary(max_size=200), st.sampled_from(CTX_ALL))
def test_arbitrary_bytes(data: bytes, ctx: WireContext) -> None:
    decodes_or_protocol_error(data, ctx)


@pytest.mark.parametrize("mtype", sorted(DECODERS), ids=lambda t: MESSAGE_NAMES[t])
@settings(max_examples=60)
@given(body=st.binary(max_size=300), ctx=st.sampled_from(CTX_ALL))
def test_arbitrary_bodies_behind_a_valid_header(mtype: int, body: bytes, ctx: WireContext) -> None:
    decodes_or_protocol_error(frame(mtype, body), ctx)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, WireContext]:
    ctx = draw(contexts())
    raw = bytearray(encode_message(draw(messages(ctx)), ctx))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        pos = draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[pos] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del raw[pos:]
        elif op == "insert":
            raw[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif raw:
            del raw[pos : pos + draw(st.integers(1, 8))]
    if draw(st.booleans()) and len(raw) >= 18:
        # Keep the Length field consistent so the body parser sees the damage.
        raw[16:18] = len(raw).to_bytes(2, "big")
    return bytes(raw), ctx


@settings(max_examples=60)
@given(mutated())
def test_mutated_valid_messages(case: tuple[bytes, WireContext]) -> None:
    decodes_or_protocol_error(*case)


@pytest.mark.parametrize("code", sorted(ATTRIBUTES), ids=lambda c: ATTRIBUTES[c].name)
@settings(max_examples=30)
@given(
    flags=st.sampled_from([0x00, 0x40, 0x80, 0xC0, 0xE0, 0x50, 0xD0]),
    value=st.binary(max_size=40),
    ctx=st.sampled_from(CTX_ALL),
    nlri=st.sampled_from([b"", b"\x18\x0a\x00\x00"]),
)
def test_each_attribute_with_arbitrary_flags_and_value(
    code: int, flags: int, value: bytes, ctx: WireContext, nlri: bytes
) -> None:
    data = update_bytes(b"", encode_attributes(BASE, ctx) + attr(flags, code, value), nlri)
    try:
        msg = decode_message(data, ctx)
    except BGPError:
        return
    assert isinstance(msg, Update)


@pytest.mark.parametrize("code", sorted(CAPABILITIES), ids=lambda c: CAPABILITIES[c].name)
@settings(max_examples=50)
@given(value=st.binary(max_size=40))
def test_each_capability_with_arbitrary_value(code: int, value: bytes) -> None:
    try:
        decode_capability(code, value)
    except CapabilityError:
        return
    cap = bytes((code, len(value))) + value
    body = bytes.fromhex("04fde9005a01010101") + bytes((len(cap) + 2, 2, len(cap))) + cap
    decodes_or_protocol_error(frame(1, body), WireContext())


@settings(max_examples=60)
@given(st.lists(st.binary(max_size=64), max_size=8), st.sampled_from(CTX_ALL))
def test_framer_on_arbitrary_chunks(chunks: list[bytes], ctx: WireContext) -> None:
    framer = Framer(ctx)
    try:
        for chunk in chunks:
            framer.feed(b"\xff" * 16 + chunk)
            for _ in framer:
                pass
    except BGPError:
        pass


@settings(max_examples=60)
@given(malformed_messages())
def test_malformed_strategies_reach_their_verdict(m: object) -> None:
    from bgpd.wire.strategies import Malformed

    assert isinstance(m, Malformed)
    assert m.expected.matches(m.data), m


@settings(max_examples=60)
@given(st.one_of(malformed_headers(), malformed_opens()))
def test_framer_and_decoder_agree_on_header_and_open_errors(m: object) -> None:
    from bgpd.wire.strategies import Malformed

    assert isinstance(m, Malformed)
    framer = Framer(m.expected.context)
    with pytest.raises(BGPError) as info:
        framer.feed(m.data)
        framer.next_message()
    err = info.value
    assert (err.code, err.subcode, err.data) == (
        m.expected.code,
        m.expected.subcode,
        m.expected.data,
    )
