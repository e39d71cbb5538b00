"""Route propagation scenarios (RFC 4271 §9, RFC 4456) as files: commands / `----` / output.

Each file under scenarios/ is a list of blocks. A block is one or more command lines, a line
`----`, and the expected output (the `show` / `adv` lines of the block), ended by a blank
line. Every command is followed by running the simulated network (tests/bgpd/routing/net.py)
to quiescence. Lines starting with `#` outside outputs are comments. Regenerate the outputs
after an intended change with

    TABBY_REWRITE=1 .venv/bin/pytest tests/bgpd/routing/test_scenarios.py

and read the diff before committing it.

Commands:
  speaker NAME ADDRESS [as ASN] [cluster ID]
  link A B [rr=A|B|both] [allow_own_as=NAME:N]   rr=A: B is A's route-reflector client
  unlink A B / kill NAME
  originate NAME PREFIX [med N] / withdraw NAME PREFIX
  show NAME          the Loc-RIB: prefix, source, next hop, attributes, why the best won
  adv A B            A's Adj-RIB-Out towards B
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import pytest

from bgpd.core.routing.export import Exported
from bgpd.core.routing.paths import LOCAL
from bgpd.wire.attributes import AS_SEQUENCE, PathAttributes
from bgpd.wire.prefix import format_prefix
from tests.bgpd.routing.net import Network

SCENARIOS = Path(__file__).parent / "scenarios"
REWRITE = os.environ.get("TABBY_REWRITE") == "1"


def _ip(value: int | bytes) -> str:
    return str(ipaddress.ip_address(value))


def _attrs(a: PathAttributes) -> str:
    parts = []
    path = " ".join(
        " ".join(map(str, asns)) if t == AS_SEQUENCE else "{" + ",".join(map(str, asns)) + "}"
        for t, asns in a.as_path or ()
    )
    parts.append(f"as_path=[{path}]")
    if a.med is not None:
        parts.append(f"med={a.med}")
    if a.local_pref is not None:
        parts.append(f"lp={a.local_pref}")
    if a.originator_id is not None:
        parts.append(f"originator={_ip(a.originator_id)}")
    if a.cluster_list:
        parts.append("clusters=" + ",".join(_ip(c) for c in a.cluster_list))
    return " ".join(parts)


def _show(net: Network, name: str) -> list[str]:
    table = net.speakers[name].table
    out = [f"{name}:"]
    for key, d in sorted(table.decisions.items(), key=lambda kv: kv[0]):
        best = d.best
        assert best is not None
        src = "local" if best.source == LOCAL else f"from {best.source}"
        nh = _ip(best.next_hop) if best.next_hop else "self"
        n = len(table.candidates[key])
        out.append(
            f"  {format_prefix(key[1])} {src} nh={nh} {_attrs(best.attrs)} "
            f"({d.reason}, {n} path{'s' if n > 1 else ''})"
        )
    return out


def _adv(net: Network, a: str, b: str) -> list[str]:
    adj_out: dict[tuple[object, bytes], Exported] = dict(
        net.speakers[a].table.peers[b].adj_out  # type: ignore[arg-type]
    )
    out = [f"{a} -> {b}:"]
    for key, ex in sorted(adj_out.items(), key=lambda kv: kv[0][1]):
        out.append(f"  {format_prefix(key[1])} nh={_ip(ex.next_hop)} {_attrs(ex.attrs)}")
    return out


def _execute(net: Network, line: str) -> list[str]:
    words = line.split()
    cmd, args = words[0], words[1:]
    out: list[str] = []
    if cmd == "speaker":
        opts = dict(zip(args[2::2], args[3::2], strict=True))
        net.add(args[0], args[1], asn=int(opts.get("as", 64512)), cluster_id=opts.get("cluster"))
    elif cmd == "link":
        opts = dict(w.split("=", 1) for w in args[2:])
        rr = opts.get("rr", "")
        allow = {}
        if "allow_own_as" in opts:
            who, n = opts["allow_own_as"].split(":")
            allow[who] = int(n)
        net.link(
            args[0],
            args[1],
            a_reflects_b=rr in (args[0], "both"),
            b_reflects_a=rr in (args[1], "both"),
            allow_own_as=allow,
        )
    elif cmd == "unlink":
        net.unlink(args[0], args[1])
    elif cmd == "kill":
        net.kill(args[0])
    elif cmd == "originate":
        med = int(args[3]) if len(args) > 3 and args[2] == "med" else None
        net.originate(args[0], args[1], med=med)
    elif cmd == "withdraw":
        net.withdraw(args[0], args[1])
    elif cmd == "show":
        for name in args:
            out += _show(net, name)
    elif cmd == "adv":
        out += _adv(net, args[0], args[1])
    else:
        raise ValueError(f"unknown scenario command {line!r}")
    net.run()
    return out


def _run(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The file rewritten with actual outputs, and (expected, actual) per block."""
    net = Network()
    lines = text.splitlines()
    result: list[str] = []
    blocks: list[tuple[str, str]] = []
    pending: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if line.strip() == "----":
            expected = []
            while i < len(lines) and lines[i].strip():
                expected.append(lines[i])
                i += 1
            actual = pending
            result += ["----", *actual]
            blocks.append(("\n".join(expected), "\n".join(actual)))
            pending = []
            continue
        result.append(line)
        if not line.strip() or line.startswith("#"):
            continue
        pending += _execute(net, line)
    return "\n".join(result) + "\n", blocks


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.txt")), ids=lambda p: p.stem)
def test_scenario(path: Path) -> None:
    """Each scenario file names the RFC 4271 / RFC 4456 behaviour it shows in its header."""
    text = path.read_text()
    rewritten, blocks = _run(text)
    if REWRITE:
        path.write_text(rewritten)
        return
    for expected, actual in blocks:
        assert actual == expected, f"{path.name}: expected\n{expected}\n--- got\n{actual}"


def test_scenario_files_exist() -> None:
    assert len(list(SCENARIOS.glob("*.txt"))) >= 5
