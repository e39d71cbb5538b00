"""RFC 1997 on running speakers: a prefix announced over the control API with the community
no-export reaches an iBGP peer but not an eBGP peer; a plain prefix announced after it
reaches both (so its absence on the eBGP side is not a matter of time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bgpd.daemon.routing import RoutingSink
from bgpd.daemon.speaker import Speaker
from ipc import RPCClient
from tests.bgpd.daemon.conftest import SpeakerFactory, config, free_port, peer, wait_for

A, IBGP, EBGP = "127.0.0.2", "127.0.0.3", "127.0.0.4"


def learned(sp: Speaker) -> dict[str, Any]:
    assert isinstance(sp.sink, RoutingSink)
    routes: list[dict[str, Any]] = sp.sink.rib()["routes"]  # type: ignore[assignment]
    return {r["prefix"]: r for r in routes if not r["local"]}


async def test_no_export_reaches_ibgp_not_ebgp(tmp_path: Path, speakers: SpeakerFactory) -> None:
    pa, pi, pe = free_port(A), free_port(IBGP), free_port(EBGP)
    peers = [peer(IBGP, pi, local_address=A), peer(EBGP, pe, local_address=A, remote_as=65001)]
    await speakers(config(tmp_path, A, pa, peers))
    ibgp = await speakers(
        config(tmp_path, IBGP, pi, [peer(A, pa, local_address=IBGP, passive=True)])
    )
    ebgp = await speakers(
        config(tmp_path, EBGP, pe, [peer(A, pa, local_address=EBGP, passive=True)], local_as=65001)
    )
    async with RPCClient(f"unix:{tmp_path / f'bgpd-{A}.sock'}") as ctl:
        await ctl.call("announce", "10.8.0.0/24", ["no-export", "65000:7"])
        await ctl.call("announce", "10.8.1.0/24")
    await wait_for(lambda: {"10.8.0.0/24", "10.8.1.0/24"} <= set(learned(ibgp)))
    await wait_for(lambda: "10.8.1.0/24" in learned(ebgp))
    assert "10.8.0.0/24" not in learned(ebgp)
    # The iBGP peer got the community itself (it must honour it in turn).
    assert learned(ibgp)["10.8.0.0/24"]["communities"] == ["65000:7", "65535:65281"]
