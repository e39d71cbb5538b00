"""`tabbyctl bgp fuzz TARGET`: conformance fuzzing of a live BGP speaker (see docs/fuzzing.md).

Exit status: 0 clean, 1 findings, 2 harness errors only (the tool could not test the target).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bgpd.fuzz import PROPERTIES

if TYPE_CHECKING:
    from bgpd.fuzz.engine import Options, Report, RunResult
    from bgpd.fuzz.stateful import SequenceReport
    from bgpd.fuzz.target import Target
    from bgpd.fuzz.verdict import Liveness


def add_commands(bgp_sub: Any) -> None:
    """Adds `fuzz` to the `bgp` group (ctl.bgp.register calls it when hypothesis is there)."""
    p = bgp_sub.add_parser("fuzz", help="fuzz a live BGP speaker against the RFCs")
    p.add_argument(
        "target",
        help="127.0.0.x[:port], a target file (TOML), or a bundled target: bird frr gobgp exabgp tabby",
    )
    p.add_argument(
        "--mode",
        choices=("properties", "stateful"),
        default="properties",
        help="properties: one message per example (default); stateful: sequences of steps "
        "checked against a model of the advertised table",
    )
    p.add_argument(
        "--max-examples",
        type=int,
        default=100,
        help="per property, or sequences in stateful mode (default 100)",
    )
    p.add_argument(
        "--steps", type=int, default=10, help="stateful: the longest sequence (default 10)"
    )
    p.add_argument(
        "--replay-steps", metavar="STEPS", help="stateful: run exactly this sequence (a;b;...)"
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--time-budget", type=float, default=300.0, help="seconds, all properties")
    p.add_argument(
        "--property",
        action="append",
        choices=PROPERTIES,
        help="restrict to these properties (repeatable; default all)",
    )
    p.add_argument(
        "--database",
        type=Path,
        default=Path(".tabby-fuzz"),
        help="hypothesis example database (default ./.tabby-fuzz; 'none': no database); "
        "failures are retried first",
    )
    p.add_argument("--workdir", type=Path, default=None, help="for a target the tool starts")
    p.add_argument("--replay", metavar="HEX", help="send exactly this message and judge it")
    p.add_argument("--two-octet", action="store_true", help="replay on a 2-octet-AS session")
    p.add_argument(
        "--add-path", action="store_true", help="replay on an ADD-PATH session (RFC 7911)"
    )
    p.add_argument("-o", "--output", choices=("text", "json"), default="text")
    p.set_defaults(func=fuzz_command)


def _print_report(r: Report, out: TextIO) -> None:
    d = r.as_dict()
    out.write(
        f"FINDING [{r.property}]{' (flaky: not reproduced on every run)' if r.flaky else ''}\n"
    )
    for f in r.findings:
        out.write(f"  {f.line()}\n")
    out.write(f"  bytes:   {d['hex']}\n  decoded: {d['decoded']}\n")
    t = d["target"]
    assert isinstance(t, dict)
    out.write(f"  target:  {t['notification']}, session_down={t['session_down']}\n")
    out.write(f"  monitor: {', '.join(t['monitor_routes']) or '(no routes)'}\n")
    if t["exit_status"] is not None:
        out.write(f"  exit status: {t['exit_status']}\n")
    if r.log_tail:
        out.write("  log tail:\n" + "".join(f"    {line}\n" for line in r.log_tail.splitlines()))
    out.write(f"  replay:  {r.replay}\n\n")


def _summary(res: RunResult) -> dict[str, object]:
    return {
        "examples": res.examples,
        "elapsed": round(res.elapsed, 3),
        "examples_per_second": round(res.rate, 2),
        "per_property": res.per_property,
        "findings": [r.as_dict() for r in res.reports],
        "harness_errors": res.harness_errors,
        "liveness": [_liveness_dict(lv) for lv in res.liveness],
    }


def _liveness_dict(lv: Liveness) -> dict[str, object]:
    return {
        "role": lv.role,
        "sessions": lv.sessions,
        "hold_time": lv.hold_time,
        "max_keepalive_gap": round(lv.keepalive_gap, 3),
        "max_hold_timer_gap": round(lv.hold_gap, 3),
        "findings": [
            {"rfc": f.rfc, "expected": f.expected, "observed": f.observed} for f in lv.findings
        ],
        "warnings": [
            {"rfc": f.rfc, "expected": f.expected, "observed": f.observed} for f in lv.warnings
        ],
    }


def _print_liveness(res: RunResult, out: TextIO) -> None:
    for lv in res.liveness:
        _print_one_liveness(lv, out)


def _print_one_liveness(lv: Liveness, out: TextIO) -> None:
    out.write(
        f"KEEPALIVES [{lv.role}] {lv.sessions} session(s): longest KEEPALIVE gap "
        f"{lv.keepalive_gap:.1f} s, longest hold-timer gap {lv.hold_gap:.1f} s, "
        f"hold time {lv.hold_time} s\n"
    )
    for f in lv.findings:
        out.write(f"  FINDING {f.line()}\n")
    for f in lv.warnings:
        out.write(f"  warning {f.line()}\n")


def fuzz_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    # Imported here: hypothesis (the `fuzz` extra) is needed only by this command.
    from bgpd.fuzz.cases import expect_from_bytes
    from bgpd.fuzz.engine import Options, fuzz, replay
    from bgpd.fuzz.speaker import HarnessError
    from bgpd.fuzz.target import TargetError, parse_target

    out = out or sys.stdout
    try:
        target = parse_target(args.target)
    except TargetError as err:
        print(f"tabbyctl bgp fuzz: {err}", file=sys.stderr)
        return 2
    options = Options(
        max_examples=args.max_examples,
        seed=args.seed,
        time_budget=args.time_budget,
        database=None if str(args.database) in (".", "none") else args.database,
        properties=tuple(args.property or PROPERTIES),
        workdir=args.workdir,
        steps=args.steps,
    )
    if args.mode == "stateful" or args.replay_steps:
        return _stateful(target, options, args, out)
    if args.replay:
        try:
            ex = expect_from_bytes(bytes.fromhex(args.replay), not args.two_octet, args.add_path)
            report = replay(target, ex, options)
        except (ValueError, HarnessError) as err:
            print(f"tabbyctl bgp fuzz: {err}", file=sys.stderr)
            return 2
        if args.output == "json":
            json.dump(report.as_dict(), out, indent=2)
            out.write("\n")
        elif report.findings:
            _print_report(report, out)
        else:
            out.write(f"PASS [{report.property}] {report.example.describe()}\n")
        return 1 if report.findings else 0
    tty = sys.stderr.isatty()

    def progress(prop: str, n: int, total: int) -> None:
        if tty:
            sys.stderr.write(f"\r{prop}: {n}/{total} examples   ")
            sys.stderr.flush()

    res = fuzz(target, options, progress)
    if tty:
        sys.stderr.write("\n")
    if args.output == "json":
        json.dump(_summary(res), out, indent=2)
        out.write("\n")
    else:
        for r in res.reports:
            _print_report(r, out)
        _print_liveness(res, out)
        for e in res.harness_errors[:10]:
            out.write(f"HARNESS ERROR {e}\n")
        out.write(
            f"{res.examples} examples in {res.elapsed:.1f} s ({res.rate:.1f}/s), "
            f"{len(res.reports)} finding(s), {len(res.harness_errors)} harness error(s)\n"
        )
    if res.reports or res.liveness_findings:
        return 1
    return 2 if res.harness_errors and not res.examples else 0


def _print_sequence(r: SequenceReport, out: TextIO) -> None:
    out.write(f"FINDING [stateful]{' (flaky: not reproduced on every run)' if r.flaky else ''}\n")
    for f in r.findings:
        out.write(f"  {f.line()}\n")
    out.write("  sequence:\n")
    for i, step in enumerate(r.steps, 1):
        out.write(f"    {i}. {step.describe()}\n")
    model = ", ".join(f"{p} (community {t})" for p, t in r.model.items()) or "(nothing)"
    held = ", ".join(f"{p} {list(c)}" for p, c in r.monitor.items()) or "(nothing)"
    out.write(f"  model:   {model}\n  monitor: {held}\n")
    if r.notifications:
        out.write(f"  fuzzer received: {'; '.join(r.notifications)}\n")
    if r.exit_status is not None:
        out.write(f"  exit status: {r.exit_status}\n")
    if r.log_tail:
        out.write("  log tail:\n" + "".join(f"    {line}\n" for line in r.log_tail.splitlines()))
    out.write(f"  replay:  {r.replay}\n\n")


def _stateful(target: Target, options: Options, args: argparse.Namespace, out: TextIO) -> int:
    from bgpd.fuzz.engine import fuzz_stateful, replay_sequence
    from bgpd.fuzz.speaker import HarnessError
    from bgpd.fuzz.stateful import parse_steps

    if args.replay_steps:
        try:
            report = replay_sequence(target, parse_steps(args.replay_steps), options)
        except (ValueError, HarnessError) as err:
            print(f"tabbyctl bgp fuzz: {err}", file=sys.stderr)
            return 2
        if args.output == "json":
            json.dump(report.as_dict() if report else {"findings": []}, out, indent=2)
            out.write("\n")
        elif report is not None:
            _print_sequence(report, out)
        else:
            out.write(f"PASS [stateful] {args.replay_steps}\n")
        return 1 if report is not None else 0
    tty = sys.stderr.isatty()

    def progress(prop: str, n: int, total: int) -> None:
        if tty:
            sys.stderr.write(f"\r{prop}: {n}/{total} sequences   ")
            sys.stderr.flush()

    res = fuzz_stateful(target, options, progress)
    if tty:
        sys.stderr.write("\n")
    if args.output == "json":
        summary = {
            "mode": "stateful",
            "sequences": res.sequences,
            "steps": res.steps,
            "elapsed": round(res.elapsed, 3),
            "steps_per_second": round(res.rate, 2),
            "findings": [r.as_dict() for r in res.reports],
            "harness_errors": res.harness_errors,
            "liveness": [_liveness_dict(lv) for lv in res.liveness],
        }
        json.dump(summary, out, indent=2)
        out.write("\n")
    else:
        for r in res.reports:
            _print_sequence(r, out)
        for lv in res.liveness:
            _print_one_liveness(lv, out)
        for e in res.harness_errors[:10]:
            out.write(f"HARNESS ERROR {e}\n")
        out.write(
            f"{res.sequences} sequences, {res.steps} steps in {res.elapsed:.1f} s "
            f"({res.rate:.1f} steps/s), {len(res.reports)} finding(s), "
            f"{len(res.harness_errors)} harness error(s)\n"
        )
    if res.reports or any(lv.findings for lv in res.liveness):
        return 1
    return 2 if res.harness_errors and not res.steps else 0
