"""`tabbyctl cluster up|status|down|logs|restart`: a Tabby control plane on one machine.

`up` starts the store members, applies the default resources, then per node a tabby-confd
(which renders the node's bgpd.toml from the store) and a tabby-bgpd reading that file, each
a real process waiting for its own READY=1. It then waits, with a bound, until every session
is Established and every node has every other node's block, and prints what it started and
how to look at it. Processes keep running after `up` returns; the state file in the cluster
directory lets the other commands find them by PID (never by name).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctl.cluster.layout import (
    ClusterLayout,
    NodeLayout,
    confd_config,
    make_layout,
    resources_yaml,
    store_config,
)
from ctl.cluster.procs import (
    NotifyListener,
    ProcessRecord,
    StartError,
    is_alive,
    kill9,
    spawn,
    stop,
    tail,
)
from ctl.node import render
from ipc import RPCClient
from ipc.client import ClientOptions
from ipc.errors import RPCError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = Path(f"/tmp/tabby-cluster-{os.getuid()}")


class ClusterError(Exception):
    pass


@dataclass
class ClusterState:
    layout: dict[str, Any]
    processes: list[ProcessRecord]

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {"layout": self.layout, "processes": [p.to_json() for p in self.processes]},
                indent=2,
            )
        )
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> ClusterState:
        if not path.exists():
            raise ClusterError(f"no cluster in {path.parent} (run `tabbyctl cluster up` first)")
        data = json.loads(path.read_text())
        return cls(data["layout"], [ProcessRecord.from_json(p) for p in data["processes"]])


def layout_from_state(directory: Path, state: ClusterState) -> ClusterLayout:
    spec = state.layout
    return make_layout(
        directory, spec["nodes"], spec["store_members"], spec["route_reflectors"], spec["bgp_port"]
    )


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


def _python() -> str:
    return sys.executable


def store_record(layout: ClusterLayout, member_id: int) -> ProcessRecord:
    m = layout.store[member_id - 1]
    return ProcessRecord(
        node=f"store-{m.id}",
        daemon="store",
        argv=[_python(), "-m", "store.main", "--config", str(m.config)],
        log=str(m.directory / f"store-{m.id}.log"),
        socket=f"unix:{m.client_socket}",
        config=str(m.config),
    )


def node_records(node: NodeLayout) -> list[ProcessRecord]:
    return [
        ProcessRecord(
            node=node.name,
            daemon="confd",
            argv=[_python(), "-m", "confd.main", "--config", str(node.confd_config)],
            log=str(node.directory / "confd.log"),
            socket=f"unix:{node.confd_socket}",
            config=str(node.confd_config),
        ),
        ProcessRecord(
            node=node.name,
            daemon="bgpd",
            argv=[_python(), "-m", "bgpd.main", "--config", str(node.bgpd_config)],
            log=str(node.directory / "bgpd.log"),
            socket=f"unix:{node.bgpd_socket}",
            config=str(node.bgpd_config),
            extra={"address": str(node.address)},
        ),
    ]


async def start_ready(rec: ProcessRecord, directory: Path, timeout: float) -> None:
    listener = NotifyListener(directory / f".notify-{rec.node}-{rec.daemon}.sock")
    try:
        proc = spawn(rec, _env(), listener.path)
        await listener.wait_ready(proc, rec, timeout)
    finally:
        listener.close()


def say(text: str) -> None:
    print(text, flush=True)


async def rpc(endpoint: str, method: str, *params: object, timeout: float = 3.0) -> Any:
    opts = ClientOptions(connect_deadline=0.5, timeout=timeout)
    async with RPCClient(endpoint, options=opts) as client:
        return await client.call(method, *params)


async def node_view(node: NodeLayout) -> tuple[list[dict[str, Any]], set[str] | None]:
    """A node's neighbors and the prefixes it has learned (None when bgpd cannot say yet)."""
    neighbors: list[dict[str, Any]] = await rpc(f"unix:{node.bgpd_socket}", "neighbors")
    try:
        rib = await rpc(f"unix:{node.bgpd_socket}", "rib")
    except RPCError as exc:
        if exc.code != "method_not_found":
            raise
        return neighbors, None
    routes = rib.get("routes", rib) if isinstance(rib, dict) else rib
    learned = {str(r.get("prefix")) for r in routes if isinstance(r, dict)}
    return neighbors, learned


def _count(prefixes: object) -> int:
    if isinstance(prefixes, dict):
        return sum(int(v) for v in prefixes.values() if isinstance(v, int))
    return prefixes if isinstance(prefixes, int) else 0


def converged(
    layout: ClusterLayout, views: dict[str, tuple[list[dict[str, Any]], set[str] | None]]
) -> list[str]:
    """What is still missing, one line per node; empty when the cluster has converged."""
    missing: list[str] = []
    for node in layout.nodes:
        neighbors, learned = views.get(node.name, ([], None))
        down = [n["address"] for n in neighbors if n.get("state") != "Established"]
        if not neighbors and len(layout.nodes) > 1:
            missing.append(f"{node.name}: no BGP peers configured yet")
            continue
        if down:
            missing.append(f"{node.name}: sessions not up with {', '.join(down)}")
            continue
        others = {str(n.block) for n in layout.nodes if n is not node}
        if learned is not None:
            absent = sorted(others - learned)
        else:
            # Before bgpd has a RIB API: in a mesh each peer announces exactly its own block.
            absent = (
                [] if all(_count(n.get("prefixes")) >= 1 for n in neighbors) else ["some blocks"]
            )
        if absent:
            missing.append(f"{node.name}: has not learned {', '.join(absent)}")
    return missing


async def wait_converged(layout: ClusterLayout, timeout: float, progress: bool) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        views = {}
        for node in layout.nodes:
            with contextlib.suppress(RPCError, OSError):
                views[node.name] = await node_view(node)
        missing = converged(layout, views)
        if not missing:
            return
        line = f"waiting for convergence: {missing[0]}" + (
            f" (+{len(missing) - 1} more)" if len(missing) > 1 else ""
        )
        if progress and line != last:
            say("  " + line)
            last = line
        if time.monotonic() > deadline:
            raise ClusterError("the cluster did not converge:\n  " + "\n  ".join(missing))
        await asyncio.sleep(0.2)


async def cmd_up(args: argparse.Namespace) -> int:
    directory: Path = args.dir
    state_path = directory / "cluster.json"
    if state_path.exists():
        state = ClusterState.load(state_path)
        if any(is_alive(p) for p in state.processes):
            raise ClusterError(
                f"a cluster is already running in {directory}; `tabbyctl cluster down --dir {directory}` first"
            )
        shutil.rmtree(directory)
    bgp_port = args.bgp_port or (179 if os.geteuid() == 0 else 1179)
    layout = make_layout(directory, args.nodes, args.store_members, args.route_reflectors, bgp_port)
    started = time.monotonic()
    for path in [
        layout.directory,
        *(m.directory for m in layout.store),
        *(n.directory for n in layout.nodes),
    ]:
        path.mkdir(parents=True, exist_ok=True)
    state = ClusterState(
        {
            "nodes": args.nodes,
            "store_members": args.store_members,
            "route_reflectors": args.route_reflectors,
            "bgp_port": bgp_port,
        },
        [],
    )
    try:
        say(f"starting {len(layout.store)} store member(s)")
        records = []
        for m in layout.store:
            m.config.write_text(store_config(layout, m))
            records.append(store_record(layout, m.id))
        state.processes.extend(records)
        await asyncio.gather(*(start_ready(r, layout.directory, args.timeout) for r in records))
        state.save(state_path)
        say("applying the default resources")
        manifest = layout.directory / "resources.yaml"
        manifest.write_text(resources_yaml(layout))
        from ctl.resources import run_write

        await run_write(layout.store_endpoints, [str(manifest)], "apply", "/calico")
        for node in layout.nodes:
            node.confd_config.write_text(confd_config(layout, node))
            confd, bgpd = node_records(node)
            state.processes.append(confd)
            await start_ready(confd, layout.directory, args.timeout)  # writes bgpd.toml
            state.processes.append(bgpd)
            await start_ready(bgpd, layout.directory, args.timeout)
            state.save(state_path)
            say(
                f"  {node.name} {node.address}:{bgp_port}{' (route reflector)' if node.route_reflector else ''}: confd pid {confd.pid}, bgpd pid {bgpd.pid}"
            )
        state.save(state_path)
        await wait_converged(layout, args.timeout, progress=True)
    except (StartError, ClusterError, RPCError) as exc:
        state.save(state_path)
        print(f"tabbyctl cluster up: {exc}", file=sys.stderr)
        print(
            f"processes are left running for inspection; `tabbyctl cluster down --dir {directory}` stops them",
            file=sys.stderr,
        )
        return 1
    elapsed = time.monotonic() - started
    say(
        f"cluster converged in {elapsed:.1f} s: {len(layout.nodes)} nodes, {len(layout.store)} store member(s)"
    )
    await print_status(layout, state)
    say("")
    say(f"inspect: tabbyctl cluster status --dir {directory}")
    say(f"         tabbyctl node status --socket {layout.nodes[0].bgpd_socket}")
    say(f"         tabbyctl get nodes -o wide --store {layout.store_endpoints[0]}")
    say(f"logs:    tabbyctl cluster logs --dir {directory} node-1 bgpd")
    say(f"stop:    tabbyctl cluster down --dir {directory}")
    return 0


async def print_status(layout: ClusterLayout, state: ClusterState) -> None:
    for rec in state.processes:
        if rec.daemon == "store":
            mark = "running" if is_alive(rec) else "DEAD"
            say(f"{rec.node:<10} store   pid {rec.pid:<8} {mark:<8} {rec.socket}")
    for node in layout.nodes:
        say("")
        procs = [p for p in state.processes if p.node == node.name]
        alive = ", ".join(
            f"{p.daemon} pid {p.pid} {'running' if is_alive(p) else 'DEAD'}" for p in procs
        )
        say(
            f"{node.name} ({node.address}{', route reflector' if node.route_reflector else ''}): {alive}"
        )
        try:
            neighbors, learned = await node_view(node)
        except (RPCError, OSError) as exc:
            say(f"  bgpd not answering: {exc}")
            continue
        say(render({}, neighbors).split("\n", 1)[1].rstrip())
        if learned is not None:
            say(f"  routes learned: {', '.join(sorted(learned)) or 'none'}")
        else:
            say(
                "  prefixes received: "
                + ", ".join(f"{n['address']}={n.get('prefixes', 0)}" for n in neighbors)
            )


async def cmd_status(args: argparse.Namespace) -> int:
    state = ClusterState.load(args.dir / "cluster.json")
    layout = layout_from_state(args.dir, state)
    await print_status(layout, state)
    dead = [p.label for p in state.processes if not is_alive(p)]
    if dead:
        say(
            f"\nnot running: {', '.join(dead)} (`tabbyctl cluster restart NODE DAEMON` starts one again)"
        )
        return 1
    return 0


async def cmd_down(args: argparse.Namespace) -> int:
    path = args.dir / "cluster.json"
    if not path.exists():
        say(f"no cluster in {args.dir}")
        return 0
    state = ClusterState.load(path)
    # Nodes first (bgpd, then confd), the store last.
    order = sorted(
        state.processes, key=lambda p: {"bgpd": 0, "confd": 1, "store": 2}.get(p.daemon, 0)
    )
    for rec in order:
        say(f"{rec.label}: {stop(rec)}")
    if args.keep:
        say(f"kept {args.dir}")
    else:
        shutil.rmtree(args.dir, ignore_errors=True)
        say(f"removed {args.dir}")
    return 0


async def cmd_logs(args: argparse.Namespace) -> int:
    state = ClusterState.load(args.dir / "cluster.json")
    chosen = [
        p
        for p in state.processes
        if (not args.node or p.node == args.node) and (not args.daemon or p.daemon == args.daemon)
    ]
    if not chosen:
        raise ClusterError("no such node or daemon")
    for rec in chosen:
        say(f"==> {rec.label} ({rec.log}) <==")
        for line in tail(rec.log, args.lines):
            say(line)
    return 0


async def cmd_restart(args: argparse.Namespace) -> int:
    path = args.dir / "cluster.json"
    state = ClusterState.load(path)
    chosen = [
        p
        for p in state.processes
        if p.node == args.node and (not args.daemon or p.daemon == args.daemon)
    ]
    if not chosen:
        raise ClusterError(f"no process {args.node}/{args.daemon or '*'} in this cluster")
    for rec in chosen:
        if args.kill:
            kill9(rec)
            say(f"{rec.label}: killed (SIGKILL)")
        else:
            say(f"{rec.label}: {stop(rec)}")
        await start_ready(rec, args.dir, args.timeout)
        say(f"{rec.label}: started, pid {rec.pid}")
        state.save(path)
    return 0


def _run(fn: Any) -> Any:
    def handler(args: argparse.Namespace) -> int:
        try:
            return int(asyncio.run(fn(args)))
        except (ClusterError, ValueError) as exc:
            print(f"tabbyctl cluster: {exc}", file=sys.stderr)
            return 1

    return handler


def register(sub: Any) -> None:
    cluster = sub.add_parser("cluster", help="a multi-process Tabby cluster on this machine")
    csub = cluster.add_subparsers(dest="cluster_command", metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--dir",
            type=Path,
            default=DEFAULT_DIR,
            help=f"cluster directory (default {DEFAULT_DIR})",
        )
        p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each step")

    up = csub.add_parser("up", help="start a cluster and wait until it has converged")
    common(up)
    up.add_argument("--nodes", type=int, default=3)
    up.add_argument("--store-members", type=int, default=1)
    up.add_argument("--route-reflectors", type=int, default=0)
    up.add_argument("--bgp-port", type=int, default=0, help="default 179 as root, else 1179")
    up.set_defaults(func=_run(cmd_up))
    st = csub.add_parser("status", help="processes, BGP sessions and routes of every node")
    common(st)
    st.set_defaults(func=_run(cmd_status))
    down = csub.add_parser("down", help="stop every process (by PID) and remove the directory")
    common(down)
    down.add_argument("--keep", action="store_true", help="keep the directory (logs, data)")
    down.set_defaults(func=_run(cmd_down))
    logs = csub.add_parser("logs", help="the last lines of each daemon's log")
    common(logs)
    logs.add_argument("node", nargs="?")
    logs.add_argument("daemon", nargs="?")
    logs.add_argument("-n", "--lines", type=int, default=20)
    logs.set_defaults(func=_run(cmd_logs))
    rs = csub.add_parser("restart", help="restart one node's daemon(s)")
    common(rs)
    rs.add_argument("node")
    rs.add_argument("daemon", nargs="?")
    rs.add_argument(
        "--kill", action="store_true", help="SIGKILL instead of SIGTERM before the restart"
    )
    rs.set_defaults(func=_run(cmd_restart))
