"""Requests in Raft entries: round trips, total decoding, etcd's 1.5 MiB request limit."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.kv.codec import MAX_REQUEST_BYTES, decode_request, encode_request
from store.kv.errors import ErrorKind, KVError
from store.kv.messages import PutRequest, RangeRequest, RangeResponse, Request, TxnRequest
from tests.store.kv.helpers import Applier
from tests.store.kv.strategies import any_requests


@given(any_requests)
def test_decode_inverts_encode(req: Request) -> None:
    assert decode_request(encode_request(req)) == req


@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_malformed(data: bytes) -> None:
    try:
        decode_request(data)
    except KVError as err:
        assert err.kind is ErrorKind.MALFORMED


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.binary() | st.text(),
        lambda inner: st.lists(inner, max_size=8),
        max_leaves=20,
    )
)
def test_arbitrary_msgpack_decodes_or_raises_malformed(obj: object) -> None:
    try:
        decode_request(msgpack.packb(obj, use_bin_type=True))
    except KVError as err:
        assert err.kind is ErrorKind.MALFORMED


def test_request_larger_than_1_5_mib_is_refused_as_etcd_does() -> None:
    """etcd --max-request-bytes default 1.5 MiB: ErrRequestTooLarge before proposing."""
    big = PutRequest(b"k", b"x" * MAX_REQUEST_BYTES)
    with pytest.raises(KVError) as info:
        encode_request(big)
    assert info.value.kind is ErrorKind.REQUEST_TOO_LARGE
    assert info.value.message == "etcdserver: request is too large"
    assert info.value.to_wire() == {
        "code": "InvalidArgument",
        "message": "etcdserver: request is too large",
    }
    with pytest.raises(KVError):
        decode_request(b"\x00" * (MAX_REQUEST_BYTES + 1))
    fits = PutRequest(b"k", b"x" * (MAX_REQUEST_BYTES - 64))
    assert decode_request(encode_request(fits)) == fits


def test_a_negative_range_limit_or_revision_reads_as_zero_as_in_etcd() -> None:
    """etcd's RangeRequest.limit and .revision are int64 and a negative one means 0 (no limit,
    the current revision): such a range decodes, in a txn too, and answers like the 0 one."""
    a = Applier()
    for i in range(3):
        a.ok(PutRequest(b"k%d" % i, b"v"))
    for limit, rev in ((-1, 0), (0, -5), (-(1 << 63), -(1 << 63))):
        req = RangeRequest(b"k", b"l", limit=limit, revision=rev)
        assert decode_request(encode_request(req)) == req
        in_txn = TxnRequest((), (req,))
        assert decode_request(encode_request(in_txn)) == in_txn
        got = a.ok(decode_request(encode_request(req)))
        assert isinstance(got, RangeResponse)
        assert got == a.machine.range(RangeRequest(b"k", b"l"))
        assert got.count == 3 and len(got.kvs) == 3 and not got.more


def test_bool_is_not_accepted_as_an_integer() -> None:
    wire = msgpack.packb([1, b"k", b"v", True, False, False, False], use_bin_type=True)
    with pytest.raises(KVError):
        decode_request(wire)


def test_deeply_nested_txn_is_malformed_not_a_crash() -> None:
    """Txn nested 5000 deep, written by hand (msgpack's packer refuses such depth)."""
    n = 5000
    data = b"\x94\x03\x90\x91" * n + b"\x94\x03\x90\x90\x90" + b"\x90" * n
    try:
        req = decode_request(data)
    except KVError as err:
        assert err.kind is ErrorKind.MALFORMED
    else:
        assert isinstance(req, TxnRequest)
