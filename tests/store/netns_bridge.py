"""Network namespaces on one bridge, and nftables cuts between them, for partition tests.

Node i lives in namespace `<tag><i>` with `eth0` at 192.0.2.<i>/24 (TEST-NET-1, only inside
these namespaces), plugged into a bridge in namespace `<tag>h`. `cut` drops every packet
between two groups, in both directions, with one nftables table per namespace; `heal` deletes
those tables; `delete` removes the namespaces (their veths go with them). Nothing is created
in the root namespace.
"""

from __future__ import annotations

import subprocess

TABLE = "tabby_partition"


def run(*args: str, stdin: str | None = None) -> None:
    done = subprocess.run(
        list(args), input=stdin, capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")


class Bridge:
    def __init__(self, tag: str, nodes: list[int]) -> None:
        self.hub = f"{tag}h"
        self.ns = {i: f"{tag}{i}" for i in nodes}
        self.made: list[str] = []

    @staticmethod
    def address(i: int) -> str:
        return f"192.0.2.{i}"

    def wire(self) -> None:
        for ns in [self.hub, *self.ns.values()]:
            run("ip", "netns", "add", ns)
            self.made.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", self.hub, "link", "set", "br0", "up")
        for i, ns in self.ns.items():
            hub_end = f"v{i}"
            run(
                "ip", "-n", self.hub, "link", "add", hub_end, "type", "veth",
                "peer", "name", "eth0", "netns", ns,
            )  # fmt: skip
            run("ip", "-n", self.hub, "link", "set", hub_end, "master", "br0", "up")
            run("ip", "-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")

    def cut(self, isolated: list[int], among: list[int]) -> None:
        """Drop every packet between `isolated` and the rest of `among` (others untouched)."""
        for i in among:
            far = [j for j in among if (j in isolated) != (i in isolated)]
            if not far:
                continue
            addrs = ", ".join(self.address(j) for j in far)
            run(
                "ip", "netns", "exec", self.ns[i], "nft", "-f", "-",
                stdin=(
                    f"table inet {TABLE} {{\n"
                    "  chain input { type filter hook input priority -10; policy accept;\n"
                    f"    ip saddr {{ {addrs} }} drop\n  }}\n"
                    "  chain output { type filter hook output priority -10; policy accept;\n"
                    f"    ip daddr {{ {addrs} }} drop\n  }}\n"
                    "}\n"
                ),
            )  # fmt: skip

    def heal(self) -> None:
        for ns in self.ns.values():
            subprocess.run(
                ["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", TABLE],
                capture_output=True,
                timeout=30,
                check=False,
            )

    def delete(self) -> None:
        for ns in self.made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30, check=False)
        self.made.clear()
