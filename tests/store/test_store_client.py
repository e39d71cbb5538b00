"""StoreClient's retry rules against fake members (ipc servers on Unix sockets): which
failures send a call to the next member and which make a write's outcome unknown."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipc import RPCServer
from ipc import errors as ipc_errors
from ipc.errors import RPCError
from store.client import StoreClient, StoreUnavailableError
from store.kv import KeyValue, PutResponse, RangeResponse
from store.wire import encode_response


def _member(calls: list[str], name: str, fail: BaseException | None) -> RPCServer:
    server = RPCServer(name=name)

    async def kv_range(_req: bytes, _serializable: bool) -> object:
        calls.append(f"{name}.range")
        if fail is not None:
            raise fail
        kv = KeyValue(b"k", 2, 3, 2, b"v", 0)
        return encode_response(RangeResponse(3, (kv,), False, 1))

    async def kv_write(_req: bytes) -> object:
        calls.append(f"{name}.write")
        if fail is not None:
            raise fail
        return encode_response(PutResponse(4))

    server.register("kv.range", kv_range)
    server.register("kv.write", kv_write)
    return server


@pytest.mark.parametrize(
    ("failure", "write_moves_on"),
    [
        # A handler that crashed for a reason it did not name may have proposed.
        (KeyError("member failed"), False),
        # A member whose disk filled up (or that is stopping) proposed nothing.
        (RPCError("member_unavailable", "failed: No space left on device"), True),
        # Refused by the ipc server before any handler ran.
        (RPCError(ipc_errors.OVERLOADED, "too many"), True),
        (RPCError("no_leader", "no leader"), True),
    ],
)
async def test_reads_move_on_writes_only_when_not_executed(
    tmp_path: Path, failure: BaseException, write_moves_on: bool
) -> None:
    calls: list[str] = []
    bad, good = _member(calls, "bad", failure), _member(calls, "good", None)
    await bad.listen(f"unix:{tmp_path}/bad.sock")
    await good.listen(f"unix:{tmp_path}/good.sock")
    kv = StoreClient([f"unix:{tmp_path}/bad.sock", f"unix:{tmp_path}/good.sock"], timeout=3)
    try:
        got = await kv.range(b"k")
        assert got.kvs[0].value == b"v" and calls == ["bad.range", "good.range"]
        kv._current = 0  # back to the failing member for the write
        calls.clear()
        if write_moves_on:
            assert (await kv.put(b"k", b"v")).revision == 4
            assert calls == ["bad.write", "good.write"]
        else:
            with pytest.raises(StoreUnavailableError) as err:
                await kv.put(b"k", b"v")
            assert err.value.outcome_unknown and calls == ["bad.write"]
            # The suspect member is left: the next write goes to the other one.
            assert (await kv.put(b"k", b"v")).revision == 4
            assert calls == ["bad.write", "good.write"]
    finally:
        await kv.close()
        await bad.close()
        await good.close()
