"""Helpers shared by the routing interop tests: BIRD 2 and FRR bgpd configs and their CLIs.

Processes are started through `tests.bgpd.interop.lab.Lab` (killed by PID in its `close()`).
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.bgpd.interop.lab import Lab

BGPD = "/usr/lib/frr/bgpd"
TIMERS = "  hold time 3;\n  keepalive time 1;\n  connect retry time 1;\n  error wait time 1, 2;\n"


def bird_conf(lab: Lab, name: str, router: str, protocol: str, statics: str) -> str:
    # BIRD calls 127/8 next hops bogus unless they resolve through an igp table (a default
    # route via "lo"), see ../shared/reference/peers-on-loopback.md.
    return f"""router id {router};
log "{lab.tmp}/{name}.log" all;
ipv4 table igp4;
protocol device {{}}
protocol static igps4 {{ ipv4 {{ table igp4; }}; route 0.0.0.0/0 via "lo"; }}
protocol static s4 {{ ipv4; {statics} }}
{protocol}
"""


def bird_bgp(
    lab: Lab,
    router: str,
    port: int,
    local_as: int,
    peer: str,
    peer_port: int,
    peer_as: int,
    export: str = "all",
    extra: str = "",
) -> str:
    return f"""protocol bgp tabby {{
  local {router} port {port} as {local_as};
  neighbor {peer} port {peer_port} as {peer_as};
  strict bind on;
  multihop;
{extra}{TIMERS}  ipv4 {{ import all; export {export}; igp table igp4; }};
}}"""


def start_bird(lab: Lab, name: str, text: str, recovery: bool = False) -> subprocess.Popen[bytes]:
    """BIRD in the foreground; `recovery` is `bird -R` (a graceful restart: R and F bits set)."""
    conf = lab.tmp / f"{name}.conf"
    conf.write_text(text)
    subprocess.run(["bird", "-p", "-c", str(conf)], check=True, timeout=10)
    ctl, pid = lab.tmp / f"{name}.ctl", lab.tmp / f"{name}.pid"
    argv = ["bird", "-f", "-c", str(conf), "-s", str(ctl), "-P", str(pid)]
    return lab.spawn(argv + (["-R"] if recovery else []), f"{name}.out")


def birdc(lab: Lab, name: str, *cmd: str) -> str:
    out = subprocess.run(
        ["birdc", "-s", str(lab.tmp / f"{name}.ctl"), *cmd],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return out.stdout


def start_frr(lab: Lab, name: str, address: str, port: int, text: str) -> None:
    conf = lab.tmp / f"{name}.conf"
    conf.write_text(text)
    vty = lab.tmp / name
    vty.mkdir(exist_ok=True)
    lab.spawn(
        [
            BGPD, "-f", str(conf), "-i", str(vty / "bgpd.pid"), "--vty_socket", str(vty),
            "-P", "0", "-Z", "-S", "-l", address, "-p", str(port),
            "--log", f"file:{lab.tmp}/{name}.log",
        ],
        f"{name}.out",
    )  # fmt: skip


def vtysh(lab: Lab, name: str, *commands: str) -> str:
    argv = ["vtysh", "--vty_socket", str(lab.tmp / name), "-d", "bgpd"]
    for c in commands:
        argv += ["-c", c]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    return out.stdout


def frr_route(lab: Lab, name: str, prefix: str) -> dict[str, Any]:
    """FRR's best path for `prefix` as JSON (empty when FRR has none)."""
    data = json.loads(vtysh(lab, name, f"show bgp ipv4 unicast {prefix} json") or "{}")
    for path in data.get("paths", []):
        if path.get("bestpath", {}).get("overall"):
            return dict(path)
    return {}


def tabby_route(lab: Lab, prefix: str) -> dict[str, Any]:
    rows = lab.rpc("rib", prefix)["routes"]
    for row in rows:
        if row["prefix"] == prefix:
            return dict(row)
    return {}
