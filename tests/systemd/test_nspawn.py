"""Tabby's units under a real systemd (PID 1 in a systemd-nspawn container), as issue 12 asks.

One container runs a whole node (store, confd, bgpd) installed with the documented command;
two more, joined by a veth pair in namespaces this test creates, peer over BGP. Needs root,
systemd-nspawn and debootstrap (CI has all three); the tree is built once and cached.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.systemd.container import ROOT, Container, build_tree, build_wheels

pytestmark = [
    pytest.mark.timeout(900),  # the first run builds the Debian tree (about 80 s here)
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.debian("systemd-nspawn", "debootstrap", "nsenter"),
]

INSTALL = ["/src/systemd/install.sh", "--wheels", "/wheels"]
SERVICES = (
    "tabby-store.service",
    "tabby-confd.service",
    "tabby-bgpd.service",
    "tabby-felixd.service",
)


@pytest.fixture(scope="module")
def artifacts() -> tuple[Path, Path]:
    return build_tree(), build_wheels()


@pytest.fixture
def node(artifacts: tuple[Path, Path]) -> Iterator[Container]:
    tree, wheels = artifacts
    c = Container(
        tree, f"tabby-t{os.getpid()}", ["--private-network"], [f"{ROOT}:/src", f"{wheels}:/wheels"]
    )
    try:
        c.boot()
        c.run(*INSTALL, timeout=300)
        yield c
    finally:
        c.stop()


def journal(c: Container, unit: str) -> str:
    return c.run("journalctl", "-u", unit, "-o", "cat", "--no-pager", check=False).stdout


def test_a_node_under_systemd(node: Container) -> None:
    c = node
    # The install put everything in place: venv, scripts on PATH, units, commented configs.
    assert c.run("test", "-x", "/usr/local/bin/tabbyctl", check=False).returncode == 0
    for name in ("store", "confd", "bgpd", "felixd"):
        assert c.run("test", "-f", f"/etc/tabby/{name}.toml", check=False).returncode == 0
    for name in ("confd", "felixd"):
        example = (ROOT / f"systemd/examples/{name}.toml").read_text()
        c.write(
            f"/etc/tabby/{name}.toml", example.replace('# node_name = ""', 'node_name = "node-1"')
        )

    started = time.monotonic()
    c.run("systemctl", "start", "tabby.target")
    props = {u: c.wait_active(u) for u in SERVICES}
    elapsed = time.monotonic() - started
    print(f"systemctl start tabby.target -> all units active in {elapsed:.2f} s")

    for unit, p in props.items():
        # Type=notify: active only after READY=1, which the daemon logs as `event=ready`.
        assert p["StatusText"], unit
        assert "event=ready" in journal(c, unit), unit
    # Hardening does not get in the way: the WAL is under StateDirectory, bgpd holds port 179
    # as the unprivileged `tabby` user through CAP_NET_BIND_SERVICE alone.
    assert c.run("sh", "-c", "ls /var/lib/tabby/store | grep -q .", check=False).returncode == 0
    assert ":179 " in c.run("ss", "-ltnH").stdout
    user = c.run("ps", "-o", "user=", "-p", props["tabby-bgpd.service"]["MainPID"]).stdout.strip()
    assert user == "tabby"

    # Resources applied with tabbyctl reach bgpd through confd.
    c.write(
        "/tmp/node.yaml",
        "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: node-1}\nspec: {bgp: {ipv4Address: 10.77.0.1/24}}\n"
        "---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: pool}\nspec: {cidr: 10.244.0.0/16}\n"
        "---\napiVersion: projectcalico.org/v3\nkind: BlockAffinity\nmetadata: {name: node-1-10-244-3-0-26}\n"
        "spec: {state: confirmed, node: node-1, cidr: 10.244.3.0/26}\n",
    )
    c.run("tabbyctl", "apply", "-f", "/tmp/node.yaml")
    deadline = time.monotonic() + 30
    rib: dict[str, object] = {}
    while time.monotonic() < deadline:
        out = c.run("/opt/tabby/bin/python", "-c", RIB_SCRIPT, check=False).stdout
        rib = json.loads(out) if out.strip() else {}
        if rib.get("total") == 1:
            break
        time.sleep(0.3)
    assert rib.get("total") == 1, rib
    # felixd, root with CAP_NET_ADMIN alone, programs the block's blackhole in the
    # container's own network namespace (route protocol 80 is felixd's).
    deadline = time.monotonic() + 30
    routes = ""
    while time.monotonic() < deadline:
        routes = c.run("ip", "route", "show", "proto", "80").stdout
        if "blackhole 10.244.3.0/26" in routes:
            break
        time.sleep(0.3)
    assert "blackhole 10.244.3.0/26" in routes, routes + journal(c, "tabby-felixd.service")

    # `systemctl reload` reaches the daemon (SIGHUP -> reload).
    c.run("systemctl", "reload", "tabby-bgpd.service")
    deadline = time.monotonic() + 20
    while "reload" not in journal(c, "tabby-bgpd.service") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "reload" in journal(c, "tabby-bgpd.service")

    # A crash is restarted (Restart=on-failure).
    pid = props["tabby-confd.service"]["MainPID"]
    c.run("kill", "-SEGV", pid)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        p = c.show("tabby-confd.service", "NRestarts", "ActiveState", "MainPID")
        if (
            p["NRestarts"] == "1"
            and p["ActiveState"] == "active"
            and p["MainPID"] not in ("0", pid)
        ):
            break
        time.sleep(0.2)
    assert p["NRestarts"] == "1", p

    # A daemon that stops pinging the watchdog is killed and restarted.
    c.write(
        "/etc/systemd/system/tabby-store.service.d/watchdog.conf",
        "[Service]\nWatchdogSec=2s\nTimeoutAbortSec=2s\n",
    )
    c.run("systemctl", "daemon-reload")
    c.run("systemctl", "restart", "tabby-store.service")
    before = c.wait_active("tabby-store.service")
    c.run("kill", "-STOP", before["MainPID"])
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        p = c.show("tabby-store.service", "NRestarts", "ActiveState", "MainPID")
        if int(p["NRestarts"]) > int(before["NRestarts"]) and p["ActiveState"] == "active":
            break
        time.sleep(0.3)
    assert int(p["NRestarts"]) > int(before["NRestarts"]), p
    assert (
        "Watchdog timeout"
        in c.run("journalctl", "-u", "tabby-store.service", "--no-pager", check=False).stdout
    )

    # Structured log lines in the journal, one event per line.
    lines = [
        line for line in journal(c, "tabby-store.service").splitlines() if line.startswith("ts=")
    ]
    assert lines and all(" event=" in line for line in lines)

    # Uninstall removes what install put in place and keeps configuration and state.
    c.run(*INSTALL[:1], "--uninstall")
    assert c.run("test", "-e", "/opt/tabby", check=False).returncode != 0
    assert c.run("test", "-f", "/etc/tabby/store.toml", check=False).returncode == 0
    assert c.run("test", "-d", "/var/lib/tabby/store", check=False).returncode == 0


RIB_SCRIPT = """
import asyncio, json
from ipc import RPCClient
async def main():
    async with RPCClient("unix:/run/tabby/bgpd.sock") as c:
        print(json.dumps(await c.call("rib")))
asyncio.run(main())
"""


@pytest.fixture
def veth_pair() -> Iterator[tuple[str, str]]:
    a, b = f"tabby-a{os.getpid()}", f"tabby-b{os.getpid()}"
    try:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(
            [
                "ip",
                "link",
                "add",
                "tva0",
                "netns",
                a,
                "type",
                "veth",
                "peer",
                "name",
                "tvb0",
                "netns",
                b,
            ],
            check=True,
        )
        for ns, dev, addr in ((a, "tva0", "10.99.0.1/30"), (b, "tvb0", "10.99.0.2/30")):
            subprocess.run(["ip", "-n", ns, "addr", "add", addr, "dev", dev], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        yield a, b
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)


def bgpd_config(router_id: str, peer: str, block: str) -> str:
    return (
        f'router_id = "{router_id}"\nlocal_as = 64512\ncontrol_socket = "/run/tabby/bgpd.sock"\n'
        f'originate = ["{block}"]\n[[listen]]\naddress = "{router_id}"\nport = 179\n'
        f'[[peers]]\naddress = "{peer}"\nremote_as = 64512\nlocal_address = "{router_id}"\n'
    )


def test_two_containers_peer_over_bgp(
    artifacts: tuple[Path, Path], veth_pair: tuple[str, str]
) -> None:
    tree, wheels = artifacts
    containers = []
    try:
        for ns, rid, peer, block in (
            (veth_pair[0], "10.99.0.1", "10.99.0.2", "10.244.1.0/26"),
            (veth_pair[1], "10.99.0.2", "10.99.0.1", "10.244.2.0/26"),
        ):
            c = Container(
                tree,
                f"{ns}-c",
                [f"--network-namespace-path=/run/netns/{ns}", "--capability=CAP_NET_ADMIN"],
                [f"{ROOT}:/src", f"{wheels}:/wheels"],
            )
            containers.append(c)
            c.boot()
            c.run(*INSTALL, timeout=300)
            c.write("/etc/tabby/bgpd.toml", bgpd_config(rid, peer, block))
            c.write("/etc/default/tabby-bgpd", "TABBY_BGPD_CONFIG=/etc/tabby/bgpd.toml\n")
            c.run("systemctl", "start", "tabby-bgpd.service")
            c.wait_active("tabby-bgpd.service")
        deadline = time.monotonic() + 60
        peers: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            out = containers[0].run("tabbyctl", "node", "status", "-o", "json", check=False).stdout
            with contextlib.suppress(ValueError):
                peers = json.loads(out).get("peers") or []
            if peers and all(p.get("state") == "Established" for p in peers):
                break
            time.sleep(0.5)
        assert peers and all(p.get("state") == "Established" for p in peers), peers
        out = containers[0].run("/opt/tabby/bin/python", "-c", RIB_SCRIPT).stdout
        assert "10.244.2.0/26" in out
    finally:
        for c in containers:
            c.stop()
