"""RoutingSink packs an update group's shared Outgoing once per encoding context within one
flush (fake sessions, no sockets): every member still receives the bytes for its own context,
and the memo does not outlive the flush."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bgpd.daemon import routing
from bgpd.wire import update
from bgpd.wire.attributes import AS_SEQUENCE
from bgpd.wire.context import WireContext
from bgpd.wire.messages import Update
from tests.bgpd.routing_interop.test_sink import (
    FakeSender,
    announcement,
    negotiated,
    peer,
    sink_with_peers,
)

N = 20
TWO_OCTET = WireContext(four_octet_as=False)


def counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"updates": 0, "withdrawals": 0}
    real_updates, real_withdrawals = update.pack_updates, update.pack_withdrawals

    def pack_updates(*a: object, **kw: object) -> list[bytes]:
        calls["updates"] += 1
        return real_updates(*a, **kw)  # type: ignore[arg-type]

    def pack_withdrawals(*a: object, **kw: object) -> list[bytes]:
        calls["withdrawals"] += 1
        return real_withdrawals(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(routing, "pack_updates", pack_updates)
    monkeypatch.setattr(routing, "pack_withdrawals", pack_withdrawals)
    return calls


def nlri(sender: FakeSender) -> set[bytes]:
    return {p for u in sender.decoded() for p in u.nlri}


def as_path(sender: FakeSender) -> object:
    attrs = sender.decoded()[0].attributes
    assert attrs is not None
    return attrs.as_path


def test_one_pack_per_group_and_context_per_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    sink, out = sink_with_peers(*range(1, N + 1))
    # One more member of the same update group (eBGP, same export role) whose session did
    # not negotiate 4-octet AS: same Outgoing, different bytes.
    legacy = FakeSender(context=TWO_OCTET)
    sink.on_session_up(
        peer(N + 1), replace(negotiated(N + 1), four_octet_as=False, context=TWO_OCTET), legacy
    )
    legacy.sent.clear()
    assert len(sink.table.groups) == 1
    calls = counting(monkeypatch)

    sink.on_update(peer(1), announcement(1, 500))
    # One attribute set: one pack_updates call for the 4-octet members, one for the other.
    assert calls == {"updates": 2, "withdrawals": 0}
    assert out[1].sent == []  # never back to the source
    sent = out[2].sent
    assert sent and all(out[n].sent == sent for n in range(2, N + 1))
    assert all(out[n].sent[0] is sent[0] for n in range(2, N + 1))  # the very same bytes
    want = set(announcement(1, 500).nlri)
    for n in range(2, N + 1):
        assert nlri(out[n]) == want
        assert as_path(out[n]) == ((AS_SEQUENCE, (65000, 65001)),)
    assert legacy.sent != sent and nlri(legacy) == want
    assert as_path(legacy) == ((AS_SEQUENCE, (65000, 65001)),)

    # A second flush packs again (the memo lives for one flush), withdrawals included.
    for s in (*out.values(), legacy):
        s.sent.clear()
    sink.on_update(peer(1), Update(withdrawn=announcement(1, 500).nlri[:100]))
    assert calls == {"updates": 2, "withdrawals": 2}
    gone = set(announcement(1, 500).nlri[:100])
    for s in (*(out[n] for n in range(2, N + 1)), legacy):
        assert {p for u in s.decoded() for p in u.withdrawn} == gone
    assert sink._packed is None
