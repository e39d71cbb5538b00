"""Namespace helpers for felixd's system tests: make namespaces and veths, run a callable in a
thread that entered a namespace, and snapshot the root namespace to prove nothing leaked.

Every namespace name carries the test's PID so parallel runs do not collide; `cleanup` deletes
them (the kernel then deletes their veths and routes).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from felixd.netlink.netns import enter_netns

T = TypeVar("T")


def sh(*args: str, check: bool = True) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, check=False, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def ns_name(tag: str) -> str:
    return f"tbf{os.getpid() % 100000}{tag}"


def in_ns(ns: str, fn: Callable[[], T]) -> T:
    """Run `fn` in a fresh thread that entered namespace `ns`."""
    with ThreadPoolExecutor(1, initializer=enter_netns, initargs=(ns,)) as pool:
        return pool.submit(fn).result(timeout=120)


def root_snapshot() -> tuple[str, ...]:
    """The root namespace's links, addresses, routes and nftables ruleset (issue 10: nothing
    outside the test's namespaces may change). Counters and link state are left out."""
    return (
        sh("ip", "-o", "link", "show").replace("state UP", "").replace("state DOWN", ""),
        sh("ip", "-o", "addr", "show"),
        sh("ip", "route", "show", "table", "all"),
        sh("ip", "-6", "route", "show", "table", "all"),
        sh("nft", "list", "ruleset", check=False),
    )


def cleanup(*namespaces: str) -> None:
    for ns in namespaces:
        sh("ip", "netns", "del", ns, check=False)
