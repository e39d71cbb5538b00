"""felixd's kernel routes across a kill -9 of tabby-bgpd (RFC 4724 §4.1 restarting speaker).

A real tabby-bgpd learns a pod block (10.244.1.0/26) from BIRD; felixd, in this process with a
recording kernel, subscribes to bgpd's stream and installs the route. bgpd is killed and
started again on its run marker, passive toward BIRD so that felixd reconnects before BIRD's
session is back. felixd must never remove the route: it keeps it while the stream is gone, and
bgpd's first snapshot after the restart, sent only when the deferral ended, already holds it.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from felixd.backends.base import OpResult
from felixd.daemon import Felixd, FelixdConfig
from felixd.plan import HostInterface, Ownership, Route
from felixd.plan.ops import DeleteRoute, Op
from tests.bgpd.interop.lab import TABBY, Lab, free_port, tabby_peer, wait_until
from tests.bgpd.routing_interop.peers import bird_bgp, bird_conf, birdc, start_bird
from tests.felixd.daemon.test_daemon import Feed, HostKernel, resources

BIRD = "127.0.0.54"
BLOCK = "10.244.1.0/26"  # n2's block in the felixd test resources, announced here by BIRD
GR = "  graceful restart on;\n"

pytestmark = [pytest.mark.debian("bird"), pytest.mark.slow]


class Kernel(HostKernel):
    """Loopback is a connected subnet (BIRD's next hop is 127.0.0.54); deletions are kept."""

    def __init__(self) -> None:
        super().__init__(("lo", "eth0", "cali1"))
        self.deleted: list[str] = []

    def host_interfaces(self) -> list[HostInterface]:
        return [*super().host_interfaces(), HostInterface("lo", ("127.0.0.1/8",), 65536)]

    def apply(self, ops: Sequence[Op]) -> list[OpResult]:
        self.deleted += [op.route.dst for op in ops if isinstance(op, DeleteRoute)]
        return super().apply(ops)


class FelixdThread(threading.Thread):
    def __init__(self, tmp: Path, bgpd_socket: Path, kernel: Kernel) -> None:
        super().__init__(daemon=True)
        self.kernel = kernel
        self.stop = threading.Event()
        self.started = threading.Event()
        self.error: BaseException | None = None
        self.store = Feed()
        cfg = FelixdConfig(
            node_name="n1",
            control_socket=tmp / "felixd.sock",
            pod_mtu_file=tmp / "mtu",
            debounce=0.0,
            bgpd_socket=bgpd_socket,
            bgpd_startup_wait=0.0,
            graceful_restart_time=60.0,
        )
        self.felixd = Felixd(cfg, store=self.store, backend=self._backend)  # type: ignore[arg-type]

    def _backend(self, owner: Ownership) -> Kernel:
        return self.kernel

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by the test
            self.error = exc

    async def _main(self) -> None:
        await self.store.queue.put(resources())
        await self.felixd.start()
        self.started.set()
        try:
            await asyncio.to_thread(self.stop.wait, 120)
        finally:
            await self.felixd.stop()


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Lab, int]]:
    lab = Lab(tmp_path)
    try:
        yield lab, free_port(BIRD)
    finally:
        lab.close()


def _start_tabby(lab: Lab, bport: int, passive: bool) -> None:
    lab.start_tabby(
        tabby_peer(
            BIRD, bport, 65000, local_address=TABBY, graceful_restart_time=30, passive=passive
        ),
        originate=("10.244.0.0/26",),
    )


def test_rfc4724_felixd_keeps_the_kernel_route_across_a_bgpd_kill(
    lab: tuple[Lab, int], tmp_path: Path
) -> None:
    lb, bport = lab
    proto = bird_bgp(lb, BIRD, bport, 65000, TABBY, lb.port, 65000, extra=GR)
    start_bird(lb, "bird", bird_conf(lb, "bird", BIRD, proto, f"route {BLOCK} blackhole;"))
    _start_tabby(lb, bport, passive=False)
    wait_until(lambda: lb.established(BIRD), 30, "session with BIRD")
    kernel = Kernel()
    felixd = FelixdThread(tmp_path, lb.socket, kernel)
    felixd.start()
    try:
        assert felixd.started.wait(30), felixd.error

        def routes() -> dict[str, Route]:
            return {r.dst: r for r in kernel.routes.values()}

        wait_until(lambda: BLOCK in routes(), 20, "felixd installing BIRD's block")
        assert routes()[BLOCK].gateway == BIRD  # BIRD's next hop, on loopback

        assert lb.tabby is not None
        lb.tabby.send_signal(signal.SIGKILL)
        lb.tabby.wait(5)
        wait_until(lambda: not felixd.felixd.bgpd_connected, 10, "felixd noticing")
        lb.socket.unlink(missing_ok=True)
        _start_tabby(lb, bport, passive=True)
        wait_until(lambda: "Established" in birdc(lb, "bird", "show", "protocols"), 30, "BIRD")
        wait_until(lambda: felixd.felixd.bgpd_connected, 20, "felixd's first snapshot")
        time.sleep(1.0)  # felixd plans and syncs what the snapshot said
        assert felixd.error is None
        assert BLOCK in routes() and BLOCK not in kernel.deleted, kernel.deleted
        assert not felixd.felixd.state.best_paths[BLOCK].stale
    finally:
        felixd.stop.set()
        felixd.join(15)
