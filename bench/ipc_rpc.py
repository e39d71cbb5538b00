"""IPC benchmark: Tabby's msgpack-RPC server against a bare asyncio echo server.

Both servers run in their own process on uvloop (as the daemons do) and are driven by the
same client over a Unix socket, so the ratio isolates what the RPC layer costs on the
server: method dispatch, a task per request, limits and structured errors. The bare server
unpacks each request and packs the response inline, with none of that.

Run: ``./dev bench ipc`` (or ``.venv/bin/python -m bench.ipc_rpc``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgpack

from ipc import RPCClient, RPCServer

ROOT = Path(__file__).resolve().parent.parent


class BareEcho(asyncio.Protocol):
    """The baseline: the same msgpack framing, no dispatch, no tasks, no limits."""

    def __init__(self) -> None:
        self.unpacker = msgpack.Unpacker(raw=False)
        self.packer = msgpack.Packer(use_bin_type=True)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.unpacker.feed(data)
        out = []
        for msg in self.unpacker:
            out.append(self.packer.pack([1, msg[1], None, msg[3][0] if msg[3] else None]))
        assert self.transport is not None
        self.transport.write(b"".join(out))


async def serve(kind: str, path: str) -> None:
    loop = asyncio.get_running_loop()
    if kind == "echo":
        server = await loop.create_unix_server(BareEcho, path)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()
    else:
        rpc = RPCServer(name="bench")

        async def echo(value: object = None) -> object:
            return value

        rpc.register("echo", echo)
        await rpc.listen(f"unix:{path}")
        print("ready", flush=True)
        await asyncio.Event().wait()


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, int(q * len(sorted_values)))
    return sorted_values[index]


async def drive(path: str, sequential: int, total: int, window: int) -> dict[str, float]:
    async with RPCClient(f"unix:{path}") as client:
        payload = {"key": "/calico/resources/v3/projectcalico.org/nodes/node-1", "rev": 12345}
        for _ in range(200):  # warm up
            await client.call("echo", payload)
        latencies = []
        for _ in range(sequential):
            t0 = time.perf_counter()
            await client.call("echo", payload)
            latencies.append(time.perf_counter() - t0)
        latencies.sort()

        remaining = total

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await client.call("echo", payload)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(window)))
        elapsed = time.perf_counter() - t0
    return {
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "seq_rps": sequential / sum(latencies),
        "rps": total / elapsed,
    }


def measure(kind: str, sequential: int, total: int, window: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="tabby-bench-") as tmp:
        path = os.path.join(tmp, "bench.sock")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.ipc_rpc", "--serve", kind, "--socket", path],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != b"ready":
                raise RuntimeError(f"{kind} server did not start")
            import uvloop

            return uvloop.run(drive(path, sequential, total, window))
        finally:
            proc.terminate()
            proc.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--serve", choices=["echo", "tabby"])
    parser.add_argument("--socket")
    parser.add_argument("--sequential", type=int, default=5000)
    parser.add_argument("--total", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if args.serve:
        import uvloop

        uvloop.run(serve(args.serve, args.socket))
        return 0
    results: dict[str, list[dict[str, float]]] = {"tabby": [], "echo": []}
    for _ in range(args.runs):
        for kind in ("echo", "tabby"):
            results[kind].append(measure(kind, args.sequential, args.total, args.window))

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind])

    print(f"IPC over a Unix socket, uvloop, medians of {args.runs} runs")
    print(
        f"{'server':<22}{'rt/s @' + str(args.window):>14}{'seq rt/s':>12}{'p50 ms':>10}{'p99 ms':>10}"
    )
    for kind, label in (("echo", "bare asyncio echo"), ("tabby", "tabby ipc.RPCServer")):
        print(
            f"{label:<22}{med(kind, 'rps'):>14,.0f}{med(kind, 'seq_rps'):>12,.0f}"
            f"{med(kind, 'p50_ms'):>10.3f}{med(kind, 'p99_ms'):>10.3f}"
        )
    ratio = med("tabby", "rps") / med("echo", "rps")
    seq_ratio = med("tabby", "seq_rps") / med("echo", "seq_rps")
    print(f"ratio tabby/echo: {ratio:.2f}x pipelined, {seq_ratio:.2f}x sequential (target >= 0.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
