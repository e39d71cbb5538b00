"""Micro-benchmark of the KV state machine (not a test: no timing is asserted anywhere).

Run: .venv/bin/python -m tests.store.kv.bench_kv
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from store.kv import (
    CompactRequest,
    Compare,
    CompareResult,
    CompareTarget,
    KVStateMachine,
    PutRequest,
    RangeRequest,
    TxnRequest,
    WatchCreateRequest,
    WatchHub,
    decode_request,
    encode_request,
)


def per_op(n: int, fn: Callable[[int], object]) -> float:
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t) / n * 1e6


def main() -> None:
    m = KVStateMachine()
    index = iter(range(1, 10**9))
    keys = [b"/calico/%d/key%06d" % (i % 23, i) for i in range(10_000)]
    for k in keys:
        m.apply(next(index), PutRequest(k, b"x" * 256))
    puts = [PutRequest(keys[i % len(keys)], b"y" * 256) for i in range(50_000)]
    print(
        f"put, existing key (10k keys):      {per_op(50_000, lambda i: m.apply(next(index), puts[i])):6.2f} µs"
    )
    wire = [encode_request(p) for p in puts]
    print(
        f"decode + put:                      {per_op(50_000, lambda i: m.apply(next(index), decode_request(wire[i]))):6.2f} µs"
    )
    hub = WatchHub(m)
    for w in range(1000):  # 1000 nodes x 1 watch on one of 23 prefixes, prev_kv (Calico shape)
        p = w % 23
        hub.create(WatchCreateRequest(b"/calico/%d/" % p, b"/calico/%d0" % p, prev_kv=True))

    def put_and_drain(i: int) -> None:
        m.apply(next(index), puts[i])
        hub.take_ready()

    print(f"put + fan-out to ~43 of 1000 watchers: {per_op(5_000, put_and_drain):6.2f} µs")
    cas = TxnRequest(
        (Compare(keys[1], CompareTarget.MOD, CompareResult.EQUAL, 0),),
        (PutRequest(keys[1], b"v"),),
        (RangeRequest(keys[1]),),
    )
    print(
        f"failing CAS txn (else: get):       {per_op(20_000, lambda i: m.apply(next(index), cas)):6.2f} µs"
    )
    get = RangeRequest(keys[500])
    print(f"get:                               {per_op(20_000, lambda i: m.range(get)):6.2f} µs")
    big = KVStateMachine()
    for i in range(100_000):
        big.apply(i + 1, PutRequest(b"/k/%06d" % i, b"v" * 100))
    lim = RangeRequest(b"/k/", b"/k0", limit=10)
    print(f"range limit 10 of 100k, with count: {per_op(2_000, lambda i: big.range(lim)):6.2f} µs")
    news = [PutRequest(b"/n/%06d" % i, b"v") for i in range(20_000)]
    print(
        f"put creating a key (100k keys):    {per_op(20_000, lambda i: big.apply(200_000 + i, news[i])):6.2f} µs"
    )
    for paused in (False, True):
        if paused:
            gc.disable()
        t = time.perf_counter()
        data = big.to_snapshot()
        t1 = time.perf_counter()
        KVStateMachine.from_snapshot(data)
        t2 = time.perf_counter()
        gc.enable()
        label = "GC paused" if paused else "GC on    "
        print(
            f"snapshot 120k keys ({len(data) >> 20} MiB), {label}: dump {(t1 - t) * 1e3:5.0f} ms, load {(t2 - t1) * 1e3:5.0f} ms"
        )
    t = time.perf_counter()
    big.apply(10**6, CompactRequest(big.revision))
    print(f"compact after 120k writes:         {(time.perf_counter() - t) * 1e3:6.1f} ms")


if __name__ == "__main__":
    main()
