"""bgperf-style convergence benchmark (issue 5): tester -> target -> monitor on 127.0.0.x.

Run: `.venv/bin/python -m bench.bgp_converge [--sizes 100000,1000000] [--targets tabby,bird,frr,gobgp,exabgp]
[--aspath-every K] [--profile DIR]` (defaults: both sizes; tabby, bird, frr; one attribute set)

A tester speaker (Tabby's codec: `Open`, `pack_updates`, `pack_withdrawals`) opens an eBGP
session to the target and sends N IPv4 /24s sharing one attribute set, packed many per UPDATE;
the target re-advertises them over eBGP to a monitor speaker, which counts the prefixes arriving
and timestamps the last one (converge time, from the tester's first UPDATE byte). Then the
tester withdraws them all and the monitor timestamps the last withdrawal (withdraw time). The
monitor counts NLRI by length (every prefix is a /24: 4 octets on the wire, in the NLRI and
withdrawn fields or inside MP_REACH/MP_UNREACH) rather than decoding each prefix, so that its
own cost stays far below the targets'. ExaBGP does not re-advertise: for it the time is the
ingest time until its API process has printed the last prefix (not comparable).

Per target and N: converge and withdraw seconds, the target's peak RSS (VmHWM) and CPU seconds
(utime+stime of the process), whether any session went down during the run (a hold-timer
expiry or any NOTIFICATION fails the run), and Tabby's ratio to each. `--profile DIR` runs
tabby-bgpd under cProfile and writes DIR/tabby-N.prof.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bgpd.wire.attributes import AS_SEQUENCE, PathAttributes
from bgpd.wire.capabilities import Multiprotocol
from bgpd.wire.codec import decode_message, encode_message
from bgpd.wire.context import WireContext
from bgpd.wire.messages import Keepalive, Notification, Open
from bgpd.wire.update import attribute_bytes, pack_updates, pack_withdrawals

TARGET, TESTER, MONITOR = "127.0.0.100", "127.0.0.101", "127.0.0.102"
TARGET_AS, TESTER_AS, MONITOR_AS = 65100, 65101, 65102
HOLD = 90
CTX = WireContext(four_octet_as=True)
# The tester speakers: (address, AS); `--testers K` makes K of them (127.0.1.x, Calico-shaped).
TESTERS: list[tuple[str, int]] = [(TESTER, TESTER_AS)]
UPDATE = 2


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def ip_int(text: str) -> int:
    return int.from_bytes(socket.inet_aton(text), "big")


# -- speakers ----------------------------------------------------------------------------------
class Speaker:
    """A minimal BGP speaker for the harness: OPEN, KEEPALIVEs, raw UPDATE bytes out, counts in."""

    def __init__(self, local: str, asn: int) -> None:
        self.local, self.asn = local, asn
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.announced = 0
        self.withdrawn = 0
        self.target = 0
        self.done = asyncio.Event()
        self.eor = asyncio.Event()
        self.down: str = ""
        self.tasks: list[asyncio.Task[None]] = []

    async def connect(self, host: str, port: int, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while True:
            try:
                self.reader, self.writer = await asyncio.open_connection(
                    host, port, local_addr=(self.local, 0), limit=1 << 20
                )
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                await asyncio.sleep(0.2)
        mp = (Multiprotocol(1, 1),)
        self.writer.write(encode_message(Open.build(self.asn, HOLD, ip_int(self.local), mp), CTX))
        self.writer.write(encode_message(Keepalive(), CTX))
        # Their OPEN, then their KEEPALIVE: Established.
        for _ in range(2):
            head = await asyncio.wait_for(self.reader.readexactly(19), timeout)
            body = await self.reader.readexactly(struct.unpack("!H", head[16:18])[0] - 19)
            msg = decode_message(head + body, CTX)
            if isinstance(msg, Notification):
                raise RuntimeError(f"NOTIFICATION {msg.code}/{msg.subcode} from target")
        self.tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._keepalive())]

    async def _keepalive(self) -> None:
        assert self.writer is not None
        while True:
            await asyncio.sleep(HOLD / 9)
            self.writer.write(encode_message(Keepalive(), CTX))

    async def _read(self) -> None:
        assert self.reader is not None
        buf = b""
        try:
            while True:
                chunk = await self.reader.read(1 << 20)
                if not chunk:
                    self.down = "connection closed by target"
                    self.done.set()
                    return
                buf += chunk
                pos = 0
                end = len(buf)
                while end - pos >= 19:
                    n = (buf[pos + 16] << 8) | buf[pos + 17]
                    if end - pos < n:
                        break
                    mtype = buf[pos + 18]
                    if mtype == UPDATE:
                        self._count(buf, pos + 19, pos + n)
                    elif mtype == 3:
                        self.down = f"NOTIFICATION {buf[pos + 19]}/{buf[pos + 20]}"
                        self.done.set()
                    pos += n
                buf = buf[pos:]
                if self.target and (self.announced >= self.target or self.withdrawn >= self.target):
                    self.done.set()
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            self.down = repr(exc)
            self.done.set()

    def _count(self, b: bytes, start: int, end: int) -> None:
        # Every prefix of the benchmark is a /24: 4 octets (length + 3 address octets).
        wlen = (b[start] << 8) | b[start + 1]
        self.withdrawn += wlen // 4
        apos = start + 2 + wlen
        alen = (b[apos] << 8) | b[apos + 1]
        apos += 2
        aend = apos + alen
        self.announced += (end - aend) // 4
        if alen == 0 and wlen == 0:
            self.eor.set()
        while apos < aend:
            flags, code = b[apos], b[apos + 1]
            if flags & 0x10:
                vlen = (b[apos + 2] << 8) | b[apos + 3]
                vpos = apos + 4
            else:
                vlen = b[apos + 2]
                vpos = apos + 3
            if code == 14:  # MP_REACH_NLRI: AFI(2) SAFI(1) NH len, NH, reserved, NLRI
                nhl = b[vpos + 3]
                self.announced += (vlen - 5 - nhl) // 4
            elif code == 15:  # MP_UNREACH_NLRI: AFI(2) SAFI(1), withdrawn
                self.withdrawn += (vlen - 3) // 4
            apos = vpos + vlen

    async def send(self, messages: list[bytes]) -> None:
        assert self.writer is not None
        step = 256
        for i in range(0, len(messages), step):
            self.writer.write(b"".join(messages[i : i + step]))
            await self.writer.drain()

    def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        if self.writer is not None:
            self.writer.close()


def prefixes(n: int) -> list[bytes]:
    # 10.0.0.0/24 upward (past 10/8 into 11/8, ... for a million): distinct /24s.
    base = 10 << 16
    return [b"\x18" + (base + i).to_bytes(3, "big") for i in range(n)]


# -- targets -----------------------------------------------------------------------------------
@dataclass
class Target:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    counter: Path | None = None  # ExaBGP: its API process writes "announced withdrawn" here
    mp_reach: bool = False  # GoBGP: send IPv4 unicast inside MP_REACH_NLRI (see below)


def start_tabby(work: Path, port: int, profile: str) -> Target:
    conf = work / "tabby.toml"
    peers = "".join(
        f'[[peers]]\naddress = "{a}"\nremote_as = {asn}\npassive = true\nhold_time = {HOLD}\n'
        f"graceful_restart_time = 0\n"
        for a, asn in (*TESTERS, (MONITOR, MONITOR_AS))
    )
    conf.write_text(
        f'router_id = "{TARGET}"\nlocal_as = {TARGET_AS}\n'
        f'control_socket = "{work}/bgpd.sock"\n'
        f'listen = [{{address = "{TARGET}", port = {port}}}]\n' + peers
    )
    argv = [sys.executable, "-m", "bgpd.main", "-c", str(conf)]
    if profile:
        argv = [sys.executable, "-m", "cProfile", "-o", profile, "-m", "bgpd.main", "-c", str(conf)]
    log = (work / "tabby.log").open("wb")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=Path.cwd())
    return Target("tabby-bgpd", proc, port, work)


def start_bird(work: Path, port: int, profile: str) -> Target:
    def proto(name: str, addr: str, asn: int) -> str:
        return (
            f"protocol bgp {name} {{ local {TARGET} port {port} as {TARGET_AS}; "
            f"neighbor {addr} as {asn}; passive on; multihop; strict bind on; hold time {HOLD}; "
            f"ipv4 {{ import all; export all; igp table igp4; next hop self; }}; }}\n"
        )

    conf = work / "bird.conf"
    conf.write_text(
        f"router id {TARGET};\nipv4 table igp4;\nprotocol device {{}}\n"
        'protocol static igps4 { ipv4 { table igp4; }; route 0.0.0.0/0 via "lo"; }\n'
        + "".join(proto(f"tester{i}", a, asn) for i, (a, asn) in enumerate(TESTERS))
        + proto("monitor", MONITOR, MONITOR_AS)
    )
    argv = ["bird", "-f", "-c", str(conf), "-s", str(work / "bird.ctl"), "-P", str(work / "pid")]
    out = (work / "bird.log").open("wb")
    return Target(
        "BIRD 2", subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT), port, work
    )


def start_frr(work: Path, port: int, profile: str) -> Target:
    nbrs = "".join(
        f" neighbor {a} remote-as {asn}\n neighbor {a} passive\n neighbor {a} timers 30 {HOLD}\n"
        f" neighbor {a} advertisement-interval 0\n neighbor {a} disable-connected-check\n"
        for a, asn in (*TESTERS, (MONITOR, MONITOR_AS))
    )
    conf = work / "frr.conf"
    conf.write_text(
        f"frr defaults traditional\nhostname bench\n!\nrouter bgp {TARGET_AS}\n"
        f" bgp router-id {TARGET}\n no bgp ebgp-requires-policy\n bgp allow-martian-nexthop\n"
        + nbrs
        + "!\n"
    )
    argv = [
        "/usr/lib/frr/bgpd", "-f", str(conf), "-i", str(work / "bgpd.pid"),
        "--vty_socket", str(work), "-P", "0", "-Z", "-S", "-l", TARGET, "-p", str(port),
        "--log", f"file:{work}/frr.log",
    ]  # fmt: skip
    out = (work / "frr.out").open("wb")
    return Target(
        "FRR bgpd -Z", subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT), port, work
    )


def start_gobgp(work: Path, port: int, profile: str) -> Target:
    nbrs = "".join(
        f'[[neighbors]]\n  [neighbors.config]\n    neighbor-address = "{a}"\n    peer-as = {asn}\n'
        f"  [neighbors.transport.config]\n    passive-mode = true\n"
        f'    local-address = "{TARGET}"\n'
        f"  [neighbors.timers.config]\n    hold-time = {HOLD}\n"
        f'  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = "ipv4-unicast"\n'
        for a, asn in (*TESTERS, (MONITOR, MONITOR_AS))
    )
    conf = work / "gobgpd.toml"
    conf.write_text(
        f'[global.config]\n  as = {TARGET_AS}\n  router-id = "{TARGET}"\n  port = {port}\n'
        f'  local-address-list = ["{TARGET}"]\n' + nbrs
    )
    api = free_port(TARGET)
    argv = ["gobgpd", "-f", str(conf), "-t", "toml", "-p", f"--api-hosts={TARGET}:{api}",
            "--pprof-disable", "-l", "warn"]  # fmt: skip
    out = (work / "gobgpd.log").open("wb")
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    # GoBGP 3.10 treats a classic NEXT_HOP in 127/8 as invalid but not one inside MP_REACH.
    return Target("GoBGP", proc, port, work, mp_reach=True)


WATCHER = """import sys
a = w = 0
out = sys.argv[1]
for line in sys.stdin:
    if '"announce"' in line:
        a += line.count('/24"')
    elif '"withdraw"' in line:
        w += line.count('/24"')
    else:
        continue
    with open(out + ".tmp", "w") as f:
        f.write(f"{a} {w}")
    import os
    os.replace(out + ".tmp", out)
"""


def start_exabgp(work: Path, port: int, profile: str) -> Target:
    (work / "watch.py").write_text(WATCHER)
    counter = work / "count"
    conf = work / "exabgp.conf"
    conf.write_text(
        f"process watch {{ run {sys.executable} {work}/watch.py {counter}; encoder json; }}\n"
        f"neighbor {TESTER} {{ router-id {TARGET}; local-address {TARGET}; local-as {TARGET_AS};"
        f" peer-as {TESTER_AS}; hold-time {HOLD}; passive true; family {{ ipv4 unicast; }}"
        f" api {{ processes [ watch ]; receive {{ parsed; update; }} }} }}\n"
    )
    env = {
        **os.environ,
        "exabgp_tcp_bind": TARGET,
        "exabgp_tcp_port": str(port),
        "exabgp_daemon_drop": "false",
        "exabgp_daemon_user": "root",
        "exabgp_daemon_daemonize": "false",
        "exabgp_log_level": "WARNING",
    }
    out = (work / "exabgp.log").open("wb")
    proc = subprocess.Popen(["exabgp", str(conf)], stdout=out, stderr=subprocess.STDOUT, env=env)
    return Target("ExaBGP ingest", proc, port, work, counter=counter)


def pack_mp_ipv4(attrs: PathAttributes, nlri: list[bytes], next_hop: bytes) -> list[bytes]:
    """IPv4 unicast NLRI inside MP_REACH_NLRI (RFC 4760 §3), 800 /24s per UPDATE."""
    raw = attribute_bytes(attrs._replace(next_hop=None), CTX)
    out = []
    for i in range(0, len(nlri), 800):
        value = b"\x00\x01\x01" + bytes((len(next_hop),)) + next_hop + b"\x00"
        value += b"".join(nlri[i : i + 800])
        attr = bytes((0x90, 14)) + len(value).to_bytes(2, "big") + value + raw
        body = b"\x00\x00" + len(attr).to_bytes(2, "big") + attr
        out.append(b"\xff" * 16 + (19 + len(body)).to_bytes(2, "big") + b"\x02" + body)
    return out


STARTERS = {
    "tabby": start_tabby,
    "bird": start_bird,
    "frr": start_frr,
    "gobgp": start_gobgp,
    "exabgp": start_exabgp,
}


def read_counter(path: Path) -> str:
    return path.read_text()  # a few octets on tmpfs: not worth a thread


async def wait_counter(
    path: Path, index: int, n: int, proc: subprocess.Popen[bytes], timeout: float
) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("target exited")
        try:
            if int(read_counter(path).split()[index]) >= n:
                return
        except (OSError, ValueError, IndexError):
            pass
        await asyncio.sleep(0.01)
    raise TimeoutError("counter")


def proc_usage(pid: int) -> tuple[float, float]:
    """(peak RSS in MB, CPU seconds) of a live process, from /proc."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            rss = int(line.split()[1]) / 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss, cpu


@dataclass
class Result:
    target: str
    n: int
    converge: float = float("nan")
    withdraw: float = float("nan")
    rss: float = float("nan")
    cpu: float = float("nan")
    note: str = ""


def check_down(monitor: Speaker, testers: list[Speaker]) -> None:
    for s in (monitor, *testers):
        if s.down:
            raise RuntimeError(f"{s.local}: {s.down}")


def announcements(
    nlri: list[bytes], address: str, asn: int, group: int, mp_reach: bool
) -> list[bytes]:
    """UPDATEs of one tester: one attribute set (group 0), or a new AS_PATH every `group`."""
    n = len(nlri)
    nh = socket.inet_aton(address)
    out: list[bytes] = []
    step = group or n
    for g, i in enumerate(range(0, n, step)):
        path = (asn,) if not group else (asn, 1_000_000 + g)
        attrs = PathAttributes(origin=0, as_path=((AS_SEQUENCE, path),), next_hop=nh)
        part = nlri[i : i + step]
        out += pack_mp_ipv4(attrs, part, nh) if mp_reach else pack_updates(attrs, part, CTX)
    return out


async def run_one(key: str, n: int, profile_dir: str, timeout: float, group: int = 0) -> Result:
    work = Path(tempfile.mkdtemp(prefix=f"bgpc-{key}-"))
    port = free_port(TARGET)
    profile = str(Path(profile_dir) / f"tabby-{n}.prof") if profile_dir and key == "tabby" else ""
    target = STARTERS[key](work, port, profile)
    result = Result(target.name, n)
    every = prefixes(n)
    k = len(TESTERS)
    share = [every[i * n // k : (i + 1) * n // k] for i in range(k)]
    announce = [
        announcements(part, a, asn, group, target.mp_reach)
        for part, (a, asn) in zip(share, TESTERS, strict=True)
    ]
    withdraw = [pack_withdrawals(part, CTX) for part in share]
    testers = [Speaker(a, asn) for a, asn in TESTERS]
    monitor = Speaker(MONITOR, MONITOR_AS)
    try:
        if target.counter is None:
            await monitor.connect(TARGET, port)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(monitor.eor.wait(), 5)
        await asyncio.gather(*(t.connect(TARGET, port) for t in testers))
        await asyncio.sleep(0.5)
        monitor.target = n
        t0 = time.perf_counter()
        await asyncio.gather(*(t.send(m) for t, m in zip(testers, announce, strict=True)))
        if target.counter is not None:
            await wait_counter(target.counter, 0, n, target.proc, timeout)
        else:
            await asyncio.wait_for(monitor.done.wait(), timeout)
        check_down(monitor, testers)
        result.converge = time.perf_counter() - t0
        monitor.done.clear()
        monitor.announced = 0
        t1 = time.perf_counter()
        await asyncio.gather(*(t.send(m) for t, m in zip(testers, withdraw, strict=True)))
        if target.counter is not None:
            await wait_counter(target.counter, 1, n, target.proc, timeout)
        while target.counter is None and monitor.withdrawn < n:
            monitor.done.clear()
            await asyncio.wait_for(monitor.done.wait(), timeout)
            check_down(monitor, testers)
        result.withdraw = time.perf_counter() - t1
        result.rss, result.cpu = proc_usage(target.proc.pid)
    except (TimeoutError, RuntimeError, OSError) as exc:
        result.note = f"{type(exc).__name__}: {exc}"[:60]
        if target.proc.poll() is None:
            result.rss, result.cpu = proc_usage(target.proc.pid)
    finally:
        for t in testers:
            t.close()
        monitor.close()
        if target.proc.poll() is None:
            target.proc.send_signal(signal.SIGINT if profile else signal.SIGTERM)
            try:
                target.proc.wait(60)
            except subprocess.TimeoutExpired:
                target.proc.kill()
                target.proc.wait()
        log = (work / "tabby.log") if key == "tabby" else None
        if log is not None and re.search(
            r"hold.timer.expired", log.read_text(errors="replace"), re.I
        ):
            result.note += " hold timer expired"
        if not os.environ.get("BGPC_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    return result


def table(results: list[Result]) -> str:
    tabby = {r.n: r for r in results if r.target == "tabby-bgpd"}
    lines = [
        f"{'target':<14}{'N':>10}{'converge s':>12}{'withdraw s':>12}{'peak RSS MB':>13}"
        f"{'CPU s':>8}{'tabby/x conv':>14}{'tabby/x RSS':>13}  note"
    ]
    for r in results:
        t = tabby.get(r.n)
        rc = t.converge / r.converge if t and r.converge == r.converge else float("nan")
        rr = t.rss / r.rss if t and r.rss == r.rss else float("nan")
        lines.append(
            f"{r.target:<14}{r.n:>10}{r.converge:>12.3f}{r.withdraw:>12.3f}{r.rss:>13.0f}"
            f"{r.cpu:>8.2f}{rc:>14.2f}{rr:>13.2f}  {r.note}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--targets", default="tabby,bird,frr")
    ap.add_argument("--profile", default="", help="directory for tabby-bgpd cProfile output")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--testers", type=int, default=1, help="tester peers sharing the N prefixes")
    ap.add_argument(
        "--aspath-every", type=int, default=0, help="a new AS_PATH every K prefixes (0: one set)"
    )
    args = ap.parse_args()
    if args.testers > 1:
        TESTERS[:] = [(f"127.0.1.{i + 1}", 4200001000 + i) for i in range(args.testers)]
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        for key in args.targets.split(","):
            r = asyncio.run(run_one(key, n, args.profile, args.timeout, args.aspath_every))
            print(f"  {r.target} N={n}: converge {r.converge:.3f} s {r.note}", flush=True)
            results.append(r)
    print(table(results))


if __name__ == "__main__":
    main()
