"""The fuzzing engine: a live target, a fuzzer and a monitor peer, and hypothesis driving them.

For each property (`cases.PROPERTIES`) `hypothesis.find` searches for an example whose
verdict has findings and shrinks it; the shrunk example is re-run for the report. Sessions
are reused across examples and re-opened after a reset; a target the harness started is
restarted when it died or stops accepting the fuzzer.

Each example runs as: (re)establish sessions → announce the probe prefix and wait for it at
the monitor → send the example → send a barrier UPDATE (a sentinel prefix with a fresh
community) → wait for the barrier at the monitor, or the fuzzer session to close → judge.
The barrier proves the target processed the example and kept forwarding (RFC 4271 §9).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from random import Random

from hypothesis import HealthCheck, Verbosity, find, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Flaky, FlakyFailure, NoSuchExample
from hypothesis.reporting import with_reporter

from bgpd.fuzz import cases
from bgpd.fuzz.cases import Example
from bgpd.fuzz.speaker import HarnessError, Speaker
from bgpd.fuzz.stateful import (
    SequenceReport,
    StatefulResult,
    Step,
    replay_steps,
    run_stateful,
)
from bgpd.fuzz.target import Target
from bgpd.fuzz.verdict import (
    Finding,
    Liveness,
    Observation,
    describe_notification,
    disabled_family,
    judge_malformed,
    judge_propagation,
    sent_prefixes,
    summarize_liveness,
)
from bgpd.wire import (
    Action,
    MpUnreach,
    PathAttributes,
    Update,
    encode_message,
    format_prefix,
)
from bgpd.wire.attributes import AS_SEQUENCE

PROBE = bytes((24, 10, 0, 0))  # 10.0.0.0/24: the NLRI of every malformed UPDATE strategy
SENTINEL = bytes((24, 198, 18, 0))
# RFC 5737 TEST-NET-1, as in the strategies' malformed UPDATEs: speakers that call 127/8 next
# hops invalid (GoBGP) still accept it.
NEXT_HOP = bytes((192, 0, 2, 1))
NEXT_HOP_TEXT = "192.0.2.1"  # 198.18.0.0/24 (RFC 2544 benchmarking range)
NEXT_HOP6_TEXT = "2001:db8::1"  # RFC 3849 documentation prefix


@dataclass
class Options:
    max_examples: int = 100
    seed: int | None = None
    time_budget: float = 300.0
    database: Path | None = None
    properties: tuple[str, ...] = cases.PROPERTIES
    settle: float = 3.0  # how long to wait for the barrier / a NOTIFICATION
    steps: int = 10  # stateful mode: the longest sequence (hypothesis's stateful_step_count)
    workdir: Path | None = None


@dataclass
class Report:
    """One shrunk failure."""

    property: str
    example: Example
    findings: list[Finding]
    observation: Observation
    replay: str
    log_tail: str = ""
    flaky: bool = False  # the failure did not reproduce every time hypothesis re-ran it

    def as_dict(self) -> dict[str, object]:
        exp = self.example.expected
        obs = self.observation
        return {
            "property": self.property,
            "hex": self.example.data.hex(),
            "decoded": self.example.describe(),
            "expected": (
                None
                if exp is None
                else {
                    "code": exp.code,
                    "subcode": exp.subcode,
                    "data": exp.data.hex(),
                    "action": exp.action.name if exp.action else None,
                    "case": exp.case,
                }
            ),
            "findings": [
                {"rfc": f.rfc, "expected": f.expected, "observed": f.observed}
                for f in self.findings
            ],
            "target": {
                "notification": describe_notification(obs.notification),
                "session_down": obs.session_down,
                "barrier": obs.barrier,
                "monitor_routes": sorted(format_prefix(p) for p in obs.routes)
                + sorted(format_prefix(p, 2) for p in obs.routes6),
                "exit_status": obs.exit_status,
                "log_tail": self.log_tail,
            },
            "replay": self.replay,
            "flaky": self.flaky,
        }


@dataclass
class RunResult:
    reports: list[Report] = field(default_factory=list)
    examples: int = 0
    elapsed: float = 0.0
    harness_errors: list[str] = field(default_factory=list)
    per_property: dict[str, int] = field(default_factory=dict)
    liveness: list[Liveness] = field(default_factory=list)

    @property
    def liveness_findings(self) -> list[Finding]:
        return [f for lv in self.liveness for f in lv.findings]

    @property
    def rate(self) -> float:
        return self.examples / self.elapsed if self.elapsed > 0 else 0.0


class Harness:
    """Owns the event loop, the target process (if any) and the two sessions."""

    def __init__(self, target: Target, options: Options) -> None:
        self.target = target
        self.options = options
        self.loop = asyncio.new_event_loop()
        self.proc: subprocess.Popen[bytes] | None = None
        self.workdir = options.workdir or Path("/tmp/tabby-fuzz")
        self.fuzzer: Speaker | None = None
        self.monitor: Speaker | None = None
        self.token = 0
        self.target_as = target.asn
        self.last_exit: int | None = None
        self.sessions: list[tuple[str, Speaker]] = []  # every session opened, for liveness

    def liveness(self) -> list[Liveness]:
        """The target's longest silences per role over the run (RFC 4271 §4.4, §10)."""
        now = self.loop.time()
        per: dict[str, list[tuple[int, float, float]]] = {}
        for role, sp in self.sessions:
            g = sp.gaps(now)
            if g is not None:
                per.setdefault(role, []).append((sp.negotiated_hold, g[0], g[1]))
        return [summarize_liveness(role, per[role]) for role in sorted(per)]

    # --- target process ---------------------------------------------------------------------
    def start_target(self) -> None:
        if self.target.command is None:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv, text = self.target.render(self.workdir)
        if text is not None:
            (self.workdir / "target.conf").write_text(text)
        log = (self.workdir / "target.log").open("ab")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)

    def stop_target(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def log_tail(self, lines: int = 15) -> str:
        path = self.workdir / "target.log"
        if self.target.command is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def exited(self) -> int | None:
        if self.proc is None:
            return None
        return self.proc.poll()

    # --- sessions -----------------------------------------------------------------------------
    def _speaker(
        self,
        role: str,
        four_octet_as: bool,
        hold_time: int | None = None,
        route_refresh: bool = True,
        add_path: bool = False,
    ) -> Speaker:
        r = self.target.fuzzer if role == "fuzzer" else self.target.monitor
        return Speaker(
            self.target.address,
            self.target.port,
            r.address,
            r.asn,
            int(ipaddress.IPv4Address(r.address)),
            four_octet_as,
            self.target.hold_time if hold_time is None else hold_time,
            route_refresh,
            "ipv6" in self.target.families,
            # RFC 7911 §4: the monitor receives path identifiers from an ADD-PATH target; the
            # fuzzer sends (and would receive) them only during the add-path property.
            (3 if add_path else 0) if role == "fuzzer" else (1 if self.target.add_path else 0),
        )

    async def _connect(
        self,
        role: str,
        four_octet_as: bool,
        deadline: float,
        hold_time: int | None = None,
        route_refresh: bool = True,
        add_path: bool = False,
    ) -> Speaker:
        last: Exception | None = None
        while time.monotonic() < deadline:
            sp = self._speaker(role, four_octet_as, hold_time, route_refresh, add_path)
            try:
                await sp.connect(timeout=max(0.5, min(5.0, deadline - time.monotonic())))
            except HarnessError as err:
                last = err
                await asyncio.sleep(0.2)
                continue
            if sp.peer_open is not None and not self.target_as:
                self.target_as = sp.peer_open.asn
            self.sessions.append((role, sp))
            return sp
        raise HarnessError(f"{role}: {last}")

    async def ensure(self, four_octet_as: bool, add_path: bool = False) -> None:
        """Both sessions up, the fuzzer with the right 4-octet AS and ADD-PATH settings."""
        timeout = self.target.command.ready_timeout if self.target.command else 15.0
        for attempt in range(2):
            if self.target.command is not None and (self.proc is None or self.exited() is not None):
                if self.proc is not None:
                    self.last_exit = self.exited()
                self.start_target()
            deadline = time.monotonic() + timeout
            try:
                if self.monitor is None or self.monitor.closed.is_set():
                    self.monitor = await self._connect("monitor", True, deadline)
                f = self.fuzzer
                if (
                    f is None
                    or f.closed.is_set()
                    or f.four_octet_as != four_octet_as
                    or bool(f.add_path) != add_path
                ):
                    if f is not None:
                        await f.close()
                    self.fuzzer = await self._connect(
                        "fuzzer", four_octet_as, deadline, add_path=add_path
                    )
                return
            except HarnessError:
                if self.target.command is None or attempt == 1:
                    raise
                self.stop_target()  # a stuck target: start a fresh one

    def _base(self, four: bool, community: tuple[int, ...] = ()) -> PathAttributes:
        return PathAttributes(
            origin=0,
            as_path=((AS_SEQUENCE, (self.target.fuzzer.asn,)),),
            next_hop=NEXT_HOP,
            communities=community,
        )

    async def _barrier(self, fuzzer: Speaker, monitor: Speaker, wait: float) -> bool:
        self.token += 1
        token = 0x00010000 + self.token % 0xFFFE0000
        ctx = fuzzer.context
        ids = (1,) if ctx.ipv4_add_path_tx else ()  # RFC 7911 §3: one per prefix, if negotiated
        fuzzer.send(
            encode_message(
                Update(attributes=self._base(True, (token,)), nlri=(SENTINEL,), nlri_path_ids=ids),
                ctx,
            )
        )

        def seen() -> bool:
            r = monitor.routes.get(SENTINEL)
            return r is not None and token in r.attributes.communities

        loop = asyncio.get_running_loop()
        end = loop.time() + wait
        while loop.time() < end:
            if seen():
                return True
            if fuzzer.closed.is_set() or monitor.closed.is_set():
                return False
            await monitor.wait_for(seen, min(0.05, end - loop.time()))
        return seen()

    async def _open_attempt(self, data: bytes, settle: float) -> tuple[Speaker, bool]:
        """Send `data` as the OPEN of a fresh connection. A target that closes the connection
        before sending its own OPEN refused the connection itself (it is still in Idle after
        the previous session, RFC 4271 §8.2.2), which says nothing about the OPEN: retry."""
        deadline = time.monotonic() + (
            self.target.command.ready_timeout if self.target.command else 15.0
        )
        while True:
            sp = self._speaker("fuzzer", False)
            try:
                await sp.connect(open_bytes=data)
            except HarnessError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
                continue
            await sp.wait_for(sp.notifications.__len__, settle)
            down = sp.closed.is_set()
            await sp.close()
            # A Cease (Connection Rejected; Collision Resolution with the session just dropped,
            # RFC 4486 §4) is never the answer to an OPEN error: the connection was refused,
            # in Idle (RFC 4271 §8.2.2) or while the target still held the old session
            # (§6.8). The Cease may be read before the close is: it alone decides.
            refused = bool(sp.notifications and sp.notifications[0].code == 6) or (
                down and sp.peer_open is None and not sp.notifications
            )
            if not refused or time.monotonic() > deadline:
                return sp, down
            await asyncio.sleep(0.3)

    async def run(self, ex: Example) -> Observation:
        await self.ensure(ex.four_octet_as, ex.add_path)
        fuzzer, monitor = self.fuzzer, self.monitor
        assert fuzzer is not None and monitor is not None
        settle = self.options.settle
        ctx = fuzzer.context
        if ex.as_open:
            await fuzzer.close()
            self.fuzzer = None
            sp, down = await self._open_attempt(ex.data, settle)
            return Observation(
                sp.notifications[0] if sp.notifications else None,
                session_down=down,
                barrier=False,
                routes=dict(monitor.routes),
                monitor_down=monitor.closed.is_set(),
                exit_status=self.exited(),
            )
        if ex.property == "update":
            fuzzer.send(encode_message(Update(attributes=self._base(True), nlri=(PROBE,)), ctx))
            if not await self._barrier(fuzzer, monitor, settle) or PROBE not in monitor.routes:
                raise HarnessError(
                    f"the target did not propagate the probe route 10.0.0.0/24 within {settle} s"
                )
        seen_notes = len(fuzzer.notifications)
        mark = monitor.received
        fuzzer.send(ex.data)
        barrier = await self._barrier(fuzzer, monitor, settle)
        if fuzzer.closed.is_set():
            await fuzzer.wait_for(lambda: False, 0.05)
        exp = ex.expected
        ipv4_disabled = (
            exp is not None
            and exp.action is Action.AFISAFI_DISABLE
            and not fuzzer.closed.is_set()
            and disabled_family(exp.data) == (1, 1)
        )
        if (
            barrier and exp is not None and exp.action is Action.TREAT_AS_WITHDRAW
        ) or ipv4_disabled:
            # Export order across prefixes is the target's choice: give the withdrawal time.
            await monitor.wait_for(lambda: PROBE not in monitor.routes, 0.5)
        afi, sent_nlri = sent_prefixes(ex.sent) if ex.sent is not None else (1, ())
        table = monitor.routes6 if afi == 2 else monitor.routes
        stamps = monitor.announced_at6 if afi == 2 else monitor.announced_at
        if barrier and sent_nlri:
            # Announced after the example was sent: not an earlier example's copy.
            want: dict[bytes, int] = {}
            if ex.sent is not None:
                for p, _pid in set(zip(ex.sent.nlri, ex.sent.nlri_path_ids, strict=False)):
                    want[p] = want.get(p, 0) + 1

            def arrived() -> bool:
                return all(stamps.get(p, 0) > mark for p in sent_nlri) and all(
                    len(monitor.path_ids.get(p, ())) >= n for p, n in want.items()
                )

            await monitor.wait_for(arrived, 1.0)
        if fuzzer.closed.is_set() and self.proc is not None:
            # A crash shows up as a closed session first; give the process time to exit.
            for _ in range(10):
                if self.exited() is not None:
                    break
                await asyncio.sleep(0.03)
        notes = fuzzer.notifications[seen_notes:]
        routes, routes6 = dict(monitor.routes), dict(monitor.routes6)
        for p in sent_nlri:
            # A copy announced before the example is stale evidence: leave it out.
            if stamps.get(p, 0) <= mark:
                (routes6 if afi == 2 else routes).pop(p, None)
        obs = Observation(
            notes[0] if notes else None,
            session_down=fuzzer.closed.is_set(),
            barrier=barrier,
            routes=routes,
            monitor_down=monitor.closed.is_set(),
            exit_status=self.exited(),
            routes6=routes6,
            paths={p: len(ids) for p, ids in monitor.path_ids.items() if p in routes},
        )
        if exp is not None and exp.action is Action.AFISAFI_DISABLE and not fuzzer.closed.is_set():
            # RFC 4760 §7: the target may now ignore a family for the rest of this session.
            await fuzzer.close()
            self.fuzzer = None
            return obs
        if sent_nlri and not fuzzer.closed.is_set():
            # Withdraw and wait for it at the monitor, so that the next example announcing the
            # same prefix is seen fresh (targets may coalesce a withdraw and a re-announce).
            if afi == 2:
                withdraw = Update(mp_unreach=MpUnreach(2, 1, sent_nlri))
            else:
                assert ex.sent is not None
                withdraw = Update(withdrawn=sent_nlri, withdrawn_path_ids=ex.sent.nlri_path_ids)
            fuzzer.send(encode_message(withdraw, ctx))
            await monitor.wait_for(lambda: not any(p in table for p in sent_nlri), settle)
        return obs

    def judge(self, ex: Example, obs: Observation) -> list[Finding]:
        if ex.expected is not None:
            ebgp = self.target.fuzzer.asn != self.target_as
            return judge_malformed(ex.expected, PROBE, obs, ebgp=ebgp)
        if ex.sent is not None:
            return judge_propagation(ex.sent, self.target_as, self.target.monitor.asn, obs)
        return judge_malformed_liveness(obs)

    def example(self, ex: Example) -> tuple[Observation, list[Finding]]:
        obs = self.loop.run_until_complete(self.run(ex))
        return obs, self.judge(ex, obs)

    def close(self) -> None:
        async def shut() -> None:
            for sp in (self.fuzzer, self.monitor):
                if sp is not None:
                    await sp.close()

        with contextlib.suppress(Exception):
            self.loop.run_until_complete(shut())
        self.loop.close()
        self.stop_target()


def judge_malformed_liveness(obs: Observation) -> list[Finding]:
    out = []
    if obs.exit_status is not None:
        out.append(
            Finding("RFC 4271 §6", "the speaker keeps running", f"exited ({obs.exit_status})")
        )
    if obs.monitor_down:
        out.append(
            Finding("RFC 4271 §6", "other sessions stay up", "dropped the monitor's session")
        )
    return out


def _silent(_: object) -> None:
    """Hypothesis's own report of the falsifying example: ours replaces it."""


def strategy(prop: str, target: Target) -> st.SearchStrategy[Example]:
    f = target.fuzzer
    table: dict[str, Callable[[], st.SearchStrategy[Example]]] = {
        "propagation": lambda: cases.propagation(f.asn, NEXT_HOP_TEXT),
        "ipv6": lambda: cases.propagation(f.asn, NEXT_HOP_TEXT, NEXT_HOP6_TEXT),
        "add-path": lambda: cases.add_paths(f.asn, NEXT_HOP_TEXT),
        "header": cases.headers,
        "open": lambda: cases.opens(f.asn, int(ipaddress.IPv4Address(f.address)), target.hold_time),
        "update": cases.updates,
    }
    return table[prop]()


def replay_command(target: Target, ex: Example) -> str:
    extra = "" if ex.four_octet_as or ex.as_open else " --two-octet"
    if ex.add_path:
        extra += " --add-path"
    return f"tabbyctl bgp fuzz {target.source or target.address} --replay {ex.data.hex()}{extra}"


def fuzz(
    target: Target,
    options: Options,
    progress: Callable[[str, int, int], None] | None = None,
) -> RunResult:
    """Run every property; return the shrunk failures."""
    result = RunResult()
    harness = Harness(target, options)
    start = time.monotonic()
    end = start + options.time_budget
    db = DirectoryBasedExampleDatabase(str(options.database)) if options.database else None
    props = [
        p
        for p in options.properties
        if (p != "ipv6" or "ipv6" in target.families) and (p != "add-path" or target.add_path)
    ]
    try:
        for i, prop in enumerate(props):
            count = 0
            # Share what is left of the budget, so a slow property cannot starve the next.
            now = time.monotonic()
            prop_end = now + max(0.0, end - now) / (len(props) - i)
            # The smallest failure seen, with what the target did then: targets are not
            # deterministic (timers, export batching), so the report shows the observation
            # that failed rather than a re-run that might not.
            failures: dict[bytes, tuple[Example, Observation, list[Finding]]] = {}

            def failing(
                ex: Example,
                prop: str = prop,
                failures: dict[bytes, tuple[Example, Observation, list[Finding]]] = failures,
                prop_end: float = prop_end,
            ) -> bool:
                nonlocal count
                if time.monotonic() > prop_end:
                    return False
                try:
                    obs, findings = harness.example(ex)
                except HarnessError as err:
                    result.harness_errors.append(f"{prop}: {err}")
                    return False
                count += 1
                result.examples += 1
                if progress is not None:
                    progress(prop, count, options.max_examples)
                if findings:
                    failures[ex.data] = (ex, obs, findings)
                return bool(findings)

            conf = settings(
                max_examples=options.max_examples,
                deadline=None,
                verbosity=Verbosity.quiet,
                report_multiple_bugs=False,
                database=db,
                suppress_health_check=list(HealthCheck),
            )
            flaky = False
            try:
                with with_reporter(_silent):
                    shrunk = find(
                        strategy(prop, target),
                        failing,
                        settings=conf,
                        random=Random(options.seed) if options.seed is not None else None,
                        database_key=f"tabby-fuzz:{prop}:{target.source or target.address}".encode(),
                    )
                key = shrunk.data
            except NoSuchExample:
                key = None
            except (Flaky, FlakyFailure):
                flaky = True
                key = min(failures, key=len) if failures else None
            result.per_property[prop] = count
            if key is None or key not in failures:
                continue
            ex, obs, findings = failures[key]
            report = Report(prop, ex, findings, obs, replay_command(target, ex), harness.log_tail())
            report.flaky = flaky
            result.reports.append(report)
    finally:
        result.elapsed = time.monotonic() - start
        with contextlib.suppress(Exception):
            result.liveness = harness.liveness()
        harness.close()
    return result


def replay(target: Target, ex: Example, options: Options) -> Report:
    harness = Harness(target, options)
    try:
        obs, findings = harness.example(ex)
        return Report(
            ex.property, ex, findings, obs, replay_command(target, ex), harness.log_tail()
        )
    finally:
        harness.close()


def fuzz_stateful(
    target: Target,
    options: Options,
    progress: Callable[[str, int, int], None] | None = None,
) -> StatefulResult:
    """Stateful mode (`bgpd.fuzz.stateful`): sequences against a model of the advertised
    table, shrunk to a minimal failing sequence."""
    harness = Harness(target, options)
    try:
        result = run_stateful(harness, options, progress)
        with contextlib.suppress(Exception):
            result.liveness = harness.liveness()
        return result
    finally:
        harness.close()


def replay_sequence(target: Target, steps: list[Step], options: Options) -> SequenceReport | None:
    harness = Harness(target, options)
    try:
        return replay_steps(harness, steps, options.settle)
    finally:
        harness.close()
