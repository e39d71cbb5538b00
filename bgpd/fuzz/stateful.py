"""Stateful sequences: a hypothesis rule-based state machine driving a live target.

Each hypothesis example is a sequence of `Step`s on the fuzzer's session (OPEN options on
reconnect, KEEPALIVE, UPDATE announce/withdraw, ROUTE-REFRESH, NOTIFICATION, a dropped
connection, a colliding second connection) and on the monitor's (a reconnect, a
ROUTE-REFRESH). The machine keeps a model - the prefixes of `SLOTS` (IPv4 `POOL`, and
`POOL6` in MP_REACH_NLRI when the target has IPv6) the fuzzer announced
and has not withdrawn on its current session - and after every step checks that the
routes the monitor holds match it within `settle` seconds:

- an announced prefix is advertised, in its latest version (each announcement carries a
  fresh community, so an older copy is told apart; RFC 4271 §3.1 implicit withdraw), with
  its attributes as RFC 4271 §5 requires (`verdict.attribute_findings`);
- a withdrawn prefix is withdrawn (RFC 4271 §9.2), and so is every prefix of a session that
  ended with a NOTIFICATION or a dropped connection (§8.2.2: the routes of a closed
  connection are deleted);
- the sessions the sequence did not end stay up and the target keeps running (§6);
- after the monitor reconnects or sends ROUTE-REFRESH it is sent the whole table again
  (§9.2 initial exchange; RFC 2918 §4).

A failing sequence is shrunk by hypothesis to a minimal one and reported with a replay
command: `Step.text` is a small language (`announce:0:3;drop:2;...`) that `parse_steps`
reads back, so `--mode stateful --replay-steps TEXT` re-runs exactly that sequence.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, Verbosity, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Flaky, FlakyFailure
from hypothesis.reporting import with_reporter
from hypothesis.stateful import (
    RuleBasedStateMachine,
    get_state_machine_test,
    initialize,
    precondition,
    rule,
)

from bgpd.fuzz.speaker import HarnessError, Speaker
from bgpd.fuzz.verdict import (
    Finding,
    Liveness,
    Route,
    attribute_findings,
    describe_notification,
)
from bgpd.wire import (
    Keepalive,
    MpReach,
    MpUnreach,
    Notification,
    PathAttributes,
    RouteRefresh,
    Update,
    WireContext,
    encode_message,
    format_prefix,
)
from bgpd.wire.attributes import AS_SEQUENCE, OPTIONAL, TRANSITIVE, RawAttribute
from bgpd.wire.capabilities import RouteRefreshCapability
from bgpd.wire.errors import ADMINISTRATIVE_RESET, CEASE

if TYPE_CHECKING:  # the engine imports this module
    from bgpd.fuzz.engine import Harness, Options

POOL = tuple(bytes((24, 10, 201, i)) for i in range(4))
"""The prefixes sequences announce (10.201.0-3.0/24): few, so that sequences collide on them."""
POOL6 = tuple(bytes((64, 0x20, 0x01, 0x0D, 0xB8, 0x02, 0x01, 0x00, i)) for i in range(4))
"""With an IPv6 target, prefix slots 4-7 are 2001:db8:201:0-3::/64, in MP_REACH_NLRI."""
SLOTS = POOL + POOL6


def slot_afi(slot: int) -> int:
    return 2 if slot >= len(POOL) else 1


def slot_name(slot: int) -> str:
    return format_prefix(SLOTS[slot], slot_afi(slot))


NEXT_HOP = bytes((192, 0, 2, 1))
NEXT_HOP6 = bytes((0x20, 0x01, 0x0D, 0xB8, *bytes(11), 1))  # 2001:db8::1
VARIANTS = 8
"""Attribute variants of an announcement: bit 0 a MED, bit 1 a longer AS_PATH, bit 2 an
unrecognized optional transitive attribute (RFC 4271 §5: passed on with Partial set)."""


@dataclass(frozen=True, slots=True)
class OpenOptions:
    name: str
    four_octet_as: bool = True
    hold_time: int | None = None  # None: the target file's hold_time
    route_refresh: bool = True


OPEN_OPTIONS = (
    OpenOptions("default"),
    OpenOptions("two-octet-as", four_octet_as=False),
    OpenOptions("hold-3", hold_time=3),  # RFC 4271 §4.2: the smallest non-zero Hold Time
    OpenOptions("hold-0", hold_time=0),  # §4.2: zero, no KEEPALIVEs at all
    OpenOptions("no-route-refresh", route_refresh=False),
)

COLLIDE_AFTER = 1.0
"""Seconds the fuzzer's session must be up before `collide` (see `Driver._collide`)."""

STEP_KINDS = {
    "announce": "the fuzzer announces SLOTS[prefix] with attribute variant `variant`",
    "withdraw": "the fuzzer withdraws SLOTS[prefix]",
    "keepalive": "the fuzzer sends a KEEPALIVE",
    "refresh": "the fuzzer sends ROUTE-REFRESH for IPv4 unicast (RFC 2918)",
    "notify": "the fuzzer sends Cease/Administrative Reset, closes, reconnects",
    "drop": "the fuzzer's connection is reset (TCP RST); it reconnects with OPEN_OPTIONS[variant]",
    "collide": "a second connection from the fuzzer's address sends its OPEN (RFC 4271 §6.8)",
    "monitor-drop": "the monitor's connection is reset and re-established",
    "monitor-refresh": "the monitor forgets its routes and sends ROUTE-REFRESH",
}


@dataclass(frozen=True, slots=True)
class Step:
    kind: str
    prefix: int = 0
    variant: int = 0

    @property
    def text(self) -> str:
        if self.kind == "announce":
            return f"announce:{self.prefix}:{self.variant}"
        if self.kind == "withdraw":
            return f"withdraw:{self.prefix}"
        if self.kind == "drop":
            return f"drop:{self.variant}"
        return self.kind

    def describe(self) -> str:
        if self.kind in ("announce", "withdraw"):
            what = f"{self.kind} {slot_name(self.prefix)}"
            return what + (f" (variant {self.variant})" if self.kind == "announce" else "")
        if self.kind == "drop":
            return f"drop, reconnect with OPEN options {OPEN_OPTIONS[self.variant].name}"
        return self.kind


def format_steps(steps: list[Step]) -> str:
    return ";".join(s.text for s in steps)


def parse_steps(text: str) -> list[Step]:
    """The inverse of `format_steps`; ValueError on anything else."""
    out: list[Step] = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        kind, *args = part.split(":")
        if kind not in STEP_KINDS:
            raise ValueError(f"unknown step {kind!r} (known: {', '.join(STEP_KINDS)})")
        nums = [int(a) for a in args]
        if kind == "announce" and len(nums) == 2:
            step = Step(kind, nums[0], nums[1])
        elif kind == "withdraw" and len(nums) == 1:
            step = Step(kind, nums[0])
        elif kind == "drop" and len(nums) == 1:
            step = Step(kind, 0, nums[0])
        elif not nums and kind not in ("announce", "withdraw", "drop"):
            step = Step(kind)
        else:
            raise ValueError(f"bad arguments in step {part!r}")
        if not (0 <= step.prefix < len(SLOTS)):
            raise ValueError(f"prefix index out of range in {part!r}")
        if step.kind == "announce" and not 0 <= step.variant < VARIANTS:
            raise ValueError(f"variant out of range in {part!r}")
        if step.kind == "drop" and not 0 <= step.variant < len(OPEN_OPTIONS):
            raise ValueError(f"OPEN options out of range in {part!r}")
        out.append(step)
    return out


@dataclass(frozen=True, slots=True)
class Announced:
    attributes: PathAttributes
    token: int


@dataclass
class SequenceReport:
    """One shrunk failing sequence."""

    steps: list[Step]
    findings: list[Finding]
    model: dict[str, int]  # prefix -> community token the monitor should hold
    monitor: dict[str, tuple[int, ...]]  # prefix -> communities the monitor holds
    notifications: list[str]
    replay: str
    log_tail: str = ""
    exit_status: int | None = None
    flaky: bool = False

    def as_dict(self) -> dict[str, object]:
        return {
            "property": "stateful",
            "steps": format_steps(self.steps),
            "described": [s.describe() for s in self.steps],
            "findings": [
                {"rfc": f.rfc, "expected": f.expected, "observed": f.observed}
                for f in self.findings
            ],
            "model": self.model,
            "monitor_routes": {p: list(c) for p, c in self.monitor.items()},
            "notifications": self.notifications,
            "exit_status": self.exit_status,
            "log_tail": self.log_tail,
            "replay": self.replay,
            "flaky": self.flaky,
        }


@dataclass
class StatefulResult:
    reports: list[SequenceReport] = field(default_factory=list)
    sequences: int = 0
    steps: int = 0
    elapsed: float = 0.0
    harness_errors: list[str] = field(default_factory=list)
    liveness: list[Liveness] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.steps / self.elapsed if self.elapsed > 0 else 0.0


class Driver:
    """Runs steps against the harness's sessions and keeps the model."""

    def __init__(self, harness: Harness, settle: float) -> None:
        self.h = harness
        self.settle = settle
        # After the monitor's session comes back the target sends its table when it is ready:
        # BIRD 2.0 starts about 1-2 s after Established. No RFC timer bounds this (only MRAI,
        # RFC 4271 §9.2.1.1, for changes), so a table dump gets a longer wait than a change.
        self.resync = max(10.0, 3 * settle)
        self.model: dict[int, Announced] = {}  # prefix slot -> its latest announcement
        self.gone: dict[int, str] = {}  # why a prefix left the model (for the finding)
        self.slots = len(SLOTS) if "ipv6" in harness.target.families else len(POOL)
        self.serial = 0
        self.notes_seen = 0

    # --- sessions ---------------------------------------------------------------------------
    def _deadline(self) -> float:
        t = self.h.target
        return time.monotonic() + (t.command.ready_timeout if t.command else 15.0)

    async def _connect_fuzzer(self, opts: OpenOptions) -> Speaker:
        old = self.h.fuzzer
        if old is not None:
            await old.close()
        self.h.fuzzer = None
        deadline = self._deadline()
        if opts.name != "default":
            # A refused option is refused at once; don't retry it for the whole start-up time.
            deadline = min(deadline, time.monotonic() + 5.0)
        try:
            sp = await self.h._connect(
                "fuzzer", opts.four_octet_as, deadline, opts.hold_time, opts.route_refresh
            )
        except HarnessError:
            if opts.name == "default":
                raise
            # RFC 4271 §6.2: a speaker MAY refuse a Hold Time (say 0); that is its right,
            # not a finding. Carry on with the default OPEN.
            sp = await self.h._connect("fuzzer", True, self._deadline())
        self.h.fuzzer = sp
        self.notes_seen = 0
        return sp

    def _sessions(self) -> tuple[Speaker, Speaker]:
        f, m = self.h.fuzzer, self.h.monitor
        if f is None or m is None:
            raise HarnessError("no sessions")
        return f, m

    async def reset(self) -> None:
        """A clean start for a sequence: default sessions, none of POOL at the monitor."""
        self.model.clear()
        self.gone.clear()
        for attempt in range(2):
            f = self.h.fuzzer
            if f is not None and (
                f.route_refresh is False or f.hold_time != self.h.target.hold_time
            ):
                await self._connect_fuzzer(OPEN_OPTIONS[0])
            await self.h.ensure(True)
            fuzzer, monitor = self._sessions()
            ctx = fuzzer.context
            fuzzer.send(encode_message(Update(withdrawn=POOL), ctx))
            if self.slots > len(POOL):
                fuzzer.send(encode_message(Update(mp_unreach=MpUnreach(2, 1, POOL6)), ctx))
            if await monitor.wait_for(lambda m=monitor: not self._pool(m), self.settle):
                self.notes_seen = len(fuzzer.notifications)
                return
            if self.h.target.command is None or attempt == 1:
                break
            # A target left holding stale routes: start a fresh one, with fresh sessions.
            self.h.stop_target()
            for sp in (self.h.fuzzer, self.h.monitor):
                if sp is not None:
                    await sp.close()
            self.h.fuzzer = self.h.monitor = None
        raise HarnessError("the monitor still holds POOL routes the fuzzer withdrew")

    def _pool(self, monitor: Speaker) -> dict[int, tuple[int, ...]]:
        """What the monitor holds of the prefix slots: slot -> communities."""
        out: dict[int, tuple[int, ...]] = {}
        for i in range(self.slots):
            table = monitor.routes6 if slot_afi(i) == 2 else monitor.routes
            r = table.get(SLOTS[i])
            if r is not None:
                out[i] = r.attributes.communities
        return out

    def _route(self, monitor: Speaker, slot: int) -> Route:
        return (monitor.routes6 if slot_afi(slot) == 2 else monitor.routes)[SLOTS[slot]]

    # --- steps --------------------------------------------------------------------------------
    def _attributes(self, variant: int, token: int) -> PathAttributes:
        fuzzer_as = self.h.target.fuzzer.asn
        path = (fuzzer_as, 64500) if variant & 2 else (fuzzer_as,)
        unknown = (RawAttribute(OPTIONAL | TRANSITIVE, 222, b"\x01\x02"),) if variant & 4 else ()
        return PathAttributes(
            origin=0,
            as_path=((AS_SEQUENCE, path),),
            next_hop=NEXT_HOP,
            med=100 if variant & 1 else None,
            communities=(token,),
            unknown=unknown,
        )

    def _refresh_ok(self, sp: Speaker | None) -> bool:
        # RFC 2918 §4: ROUTE-REFRESH only to a peer that advertised the capability.
        return (
            sp is not None
            and sp.peer_open is not None
            and any(isinstance(c, RouteRefreshCapability) for c in sp.peer_open.capabilities)
        )

    def can_refresh(self, role: str) -> bool:
        return self._refresh_ok(self.h.fuzzer if role == "fuzzer" else self.h.monitor)

    async def step(self, step: Step) -> list[Finding]:
        """Apply one step, then check the model; the findings (empty: consistent)."""
        fuzzer, monitor = self._sessions()
        ctx: WireContext = fuzzer.context
        if step.kind == "announce":
            self.serial += 1
            token = 0x00010000 + self.serial % 0xFFFE0000
            attrs = self._attributes(step.variant, token)
            prefix = SLOTS[step.prefix]
            if slot_afi(step.prefix) == 2:
                attrs = attrs._replace(next_hop=None)  # RFC 4760 §3: in MP_REACH_NLRI
                msg = Update(attributes=attrs, mp_reach=MpReach(2, 1, NEXT_HOP6, (prefix,)))
            else:
                msg = Update(attributes=attrs, nlri=(prefix,))
            fuzzer.send(encode_message(msg, ctx))
            self.model[step.prefix] = Announced(attrs, token)
        elif step.kind == "withdraw":
            prefix = SLOTS[step.prefix]
            if slot_afi(step.prefix) == 2:
                msg = Update(mp_unreach=MpUnreach(2, 1, (prefix,)))
            else:
                msg = Update(withdrawn=(prefix,))
            fuzzer.send(encode_message(msg, ctx))
            if self.model.pop(step.prefix, None) is not None:
                self.gone[step.prefix] = "RFC 4271 §9.2: a withdrawn route is withdrawn"
        elif step.kind == "keepalive":
            fuzzer.send(encode_message(Keepalive(), ctx))
        elif step.kind == "refresh":
            if self._refresh_ok(fuzzer):
                fuzzer.send(encode_message(RouteRefresh(1, 1), ctx))
        elif step.kind in ("notify", "drop"):
            if step.kind == "notify":
                fuzzer.send(encode_message(Notification(CEASE, ADMINISTRATIVE_RESET), ctx))
                await fuzzer.wait_for(lambda: False, 0.05)  # let the NOTIFICATION leave
            self._lose_all(
                "RFC 4271 §8.2.2, §9.2: the routes of a session that "
                + ("was closed with a NOTIFICATION" if step.kind == "notify" else "dropped")
                + " are withdrawn"
            )
            await self._connect_fuzzer(OPEN_OPTIONS[step.variant if step.kind == "drop" else 0])
        elif step.kind == "collide":
            extra = await self._collide(fuzzer)
            if extra:
                return extra
        elif step.kind == "monitor-drop":
            await monitor.close()
            self.h.monitor = await self.h._connect("monitor", True, self._deadline())
        elif step.kind == "monitor-refresh" and self._refresh_ok(monitor):
            monitor.routes.clear()
            monitor.send(encode_message(RouteRefresh(1, 1), monitor.context))
        return await self.check(step)

    def _lose_all(self, why: str) -> None:
        for p in self.model:
            self.gone[p] = why
        self.model.clear()

    async def _collide(self, fuzzer: Speaker) -> list[Finding]:
        """RFC 4271 §6.8: "a connection collision with an existing BGP connection that is in
        the Established state causes closing of the newly created connection"."""
        # We count the session Established on the target's KEEPALIVE; the target does on ours,
        # a moment later. Collide only once it surely has: before, §6.8 resolves by BGP
        # Identifier in OpenConfirm and either connection may go (seen with FRR).
        loop = asyncio.get_running_loop()
        age = loop.time() - (fuzzer.established_at or 0.0)
        if age < COLLIDE_AFTER:
            await asyncio.sleep(COLLIDE_AFTER - age)
        second = self.h._speaker("fuzzer", fuzzer.four_octet_as, fuzzer.hold_time)
        open_bytes = encode_message(second._open(), WireContext())
        try:
            await second.connect(open_bytes=open_bytes)
        except HarnessError:
            return []  # the target did not even accept the TCP connection: the §6.8 outcome
        await second.wait_for(lambda: False, self.settle)
        survived = not second.closed.is_set()
        await second.close()
        out: list[Finding] = []
        if survived:
            out.append(
                Finding(
                    "RFC 4271 §6.8",
                    "the second connection closed (the Established session wins)",
                    "kept it open",
                )
            )
        if fuzzer.closed.is_set():
            out.append(
                Finding(
                    "RFC 4271 §6.8",
                    "the Established session kept when a second connection arrives",
                    f"closed it ({describe_notification(self._new_note(fuzzer))})",
                )
            )
        return out

    def _new_note(self, sp: Speaker) -> Notification | None:
        notes = sp.notifications[self.notes_seen :]
        return notes[0] if notes else None

    def _consistent(self, monitor: Speaker) -> bool:
        held = self._pool(monitor)
        if set(held) != set(self.model):
            return False
        return all(a.token in held[i] for i, a in self.model.items())

    async def check(self, step: Step) -> list[Finding]:
        fuzzer, monitor = self._sessions()
        # Only the monitor's table dumps (a new session, a ROUTE-REFRESH) get the longer wait;
        # the withdrawals that follow the end of a fuzzer session are changes like any other.
        wait = self.resync if step.kind in ("monitor-drop", "monitor-refresh") else self.settle
        ok = await monitor.wait_for(lambda: self._consistent(monitor), wait)
        out: list[Finding] = []
        status = self.h.exited()
        if status is not None:
            out.append(Finding("RFC 4271 §6", "the speaker keeps running", f"exited ({status})"))
        if fuzzer.closed.is_set():
            out.append(
                Finding(
                    "RFC 4271 §6",
                    f"the fuzzer's session stays up after {step.describe()}",
                    f"closed it ({describe_notification(self._new_note(fuzzer))})",
                )
            )
        if monitor.closed.is_set():
            out.append(
                Finding(
                    "RFC 4271 §6",
                    "the monitor's session stays up",
                    f"closed it ({describe_notification(monitor.notifications[-1] if monitor.notifications else None)})",
                )
            )
        if not ok:
            out += self._differences(monitor, step)
            return out
        target_as = self.h.target_as
        for i, a in self.model.items():
            route = self._route(monitor, i)
            for f in attribute_findings(a.attributes, route, target_as, self.h.target.monitor.asn):
                if f not in out:
                    out.append(f)
        return out

    def _differences(self, monitor: Speaker, step: Step) -> list[Finding]:
        held = self._pool(monitor)
        out: list[Finding] = []
        refreshed = step.kind in ("monitor-drop", "monitor-refresh")
        for i in range(self.slots):
            name = slot_name(i)
            a = self.model.get(i)
            if a is None and i in held:
                why = self.gone.get(i, "RFC 4271 §9.2: only announced routes are advertised")
                rfc, _, what = why.partition(": ")
                out.append(Finding(rfc, f"{name} not advertised ({what})", "still advertises it"))
            elif a is not None and i not in held:
                rfc = "RFC 2918 §4" if step.kind == "monitor-refresh" else "RFC 4271 §9.2"
                expect = "re-advertised" if refreshed else "advertised"
                out.append(Finding(rfc, f"{name} {expect} to the monitor", "did not advertise it"))
            elif a is not None and a.token not in held[i]:
                out.append(
                    Finding(
                        "RFC 4271 §3.1, §9.2",
                        f"{name} replaced by its latest announcement (community {a.token})",
                        f"still advertises an earlier one (communities {held[i]})",
                    )
                )
        return out

    def snapshot(self) -> tuple[dict[str, int], dict[str, tuple[int, ...]]]:
        monitor = self.h.monitor
        held = self._pool(monitor) if monitor is not None else {}
        return (
            {slot_name(i): a.token for i, a in sorted(self.model.items())},
            {slot_name(i): c for i, c in held.items()},
        )


class SequenceFailed(AssertionError):
    """A step's check found the target inconsistent with the model (hypothesis shrinks it)."""


def replay_command(target_source: str, steps: list[Step]) -> str:
    return (
        f"tabbyctl bgp fuzz {target_source} --mode stateful --replay-steps '{format_steps(steps)}'"
    )


def _silent(_: object) -> None:
    """Hypothesis's own printout of the failing program: our report replaces it."""


def run_stateful(
    harness: Harness,
    options: Options,
    progress: Callable[[str, int, int], None] | None = None,
) -> StatefulResult:
    """Search for a failing sequence within the budget; shrink and report it."""
    result = StatefulResult()
    driver = Driver(harness, options.settle)
    source = harness.target.source or harness.target.address
    start = time.monotonic()
    end = start + options.time_budget
    failures: list[SequenceReport] = []
    budget_hit = False

    def run(coro: Any) -> Any:
        return harness.loop.run_until_complete(coro)

    def report(steps: list[Step], findings: list[Finding]) -> SequenceReport:
        model, held = driver.snapshot()
        f = harness.fuzzer
        notes = [describe_notification(n) for n in (f.notifications if f else [])]
        return SequenceReport(
            list(steps),
            findings,
            model,
            held,
            notes,
            replay_command(source, steps),
            harness.log_tail(),
            harness.exited(),
        )

    class Sequence(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.steps: list[Step] = []
            self.live = False

        @initialize()
        def start(self) -> None:
            nonlocal budget_hit
            if time.monotonic() > end:
                budget_hit = True
                return
            result.sequences += 1
            try:
                run(driver.reset())
            except HarnessError as err:
                result.harness_errors.append(f"stateful: {err}")
                return
            self.live = True
            if progress is not None:
                progress("stateful", result.sequences, options.max_examples)

        def do(self, step: Step) -> None:
            nonlocal budget_hit
            if not self.live:
                return
            if time.monotonic() > end:
                budget_hit = True
                self.live = False  # out of budget: the rest of the sequence is a no-op
                return
            self.steps.append(step)
            result.steps += 1
            try:
                findings = run(driver.step(step))
            except HarnessError as err:
                result.harness_errors.append(f"stateful ({step.text}): {err}")
                self.live = False
                return
            if findings:
                failures.append(report(self.steps, findings))
                raise SequenceFailed(findings[0].line())

        @rule(prefix=st.integers(0, driver.slots - 1), variant=st.integers(0, VARIANTS - 1))
        def announce(self, prefix: int, variant: int) -> None:
            self.do(Step("announce", prefix, variant))

        @rule(prefix=st.integers(0, driver.slots - 1))
        def withdraw(self, prefix: int) -> None:
            self.do(Step("withdraw", prefix))

        @rule()
        def keepalive(self) -> None:
            self.do(Step("keepalive"))

        @precondition(lambda self: driver.can_refresh("fuzzer"))
        @rule()
        def refresh(self) -> None:
            self.do(Step("refresh"))

        @rule()
        def notify(self) -> None:
            self.do(Step("notify"))

        @rule(options=st.integers(0, len(OPEN_OPTIONS) - 1))
        def drop(self, options: int) -> None:
            self.do(Step("drop", 0, options))

        @rule()
        def collide(self) -> None:
            self.do(Step("collide"))

        @rule()
        def monitor_drop(self) -> None:
            self.do(Step("monitor-drop"))

        @precondition(lambda self: driver.can_refresh("monitor"))
        @rule()
        def monitor_refresh(self) -> None:
            self.do(Step("monitor-refresh"))

    db = DirectoryBasedExampleDatabase(str(options.database)) if options.database else None
    conf = settings(
        max_examples=options.max_examples,
        stateful_step_count=options.steps,
        deadline=None,
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
        database=db,
        suppress_health_check=list(HealthCheck),
    )
    test = get_state_machine_test(Sequence, settings=conf)
    # One example database entry per target (the default key is this function's source).
    test._hypothesis_internal_database_key = f"tabby-fuzz:stateful:{source}".encode()  # type: ignore[attr-defined]
    if options.seed is not None:
        test = hypothesis_seed(options.seed)(test)
    flaky = False
    try:
        with with_reporter(_silent):
            test()
    except SequenceFailed:
        pass
    except (Flaky, FlakyFailure):
        flaky = True
    finally:
        result.elapsed = time.monotonic() - start
    if failures:
        # The last failure is hypothesis's final replay of the shrunk sequence; when that
        # did not fail again (flaky, or the budget ran out while shrinking and turned the
        # replay into a no-op), the shortest failure seen stands in for it.
        chosen = failures[-1] if not flaky else min(failures, key=lambda r: len(r.steps))
        chosen.flaky = flaky and not budget_hit
        result.reports.append(chosen)
    return result


def replay_steps(harness: Harness, steps: list[Step], settle: float) -> SequenceReport | None:
    """Run exactly `steps` from a clean start; the report of the first failing check."""
    driver = Driver(harness, settle)
    bad = [s.text for s in steps if s.kind in ("announce", "withdraw") and s.prefix >= driver.slots]
    if bad:
        raise ValueError(
            f"prefix slots 4-7 are IPv6: the target file lacks the ipv6 family ({bad})"
        )
    loop = harness.loop
    loop.run_until_complete(driver.reset())
    done: list[Step] = []
    for step in steps:
        done.append(step)
        findings = loop.run_until_complete(driver.step(step))
        if findings:
            model, held = driver.snapshot()
            f = harness.fuzzer
            return SequenceReport(
                done,
                findings,
                model,
                held,
                [describe_notification(n) for n in (f.notifications if f else [])],
                replay_command(harness.target.source or harness.target.address, done),
                harness.log_tail(),
                harness.exited(),
            )
    return None


__all__ = [
    "OPEN_OPTIONS",
    "POOL",
    "POOL6",
    "SLOTS",
    "STEP_KINDS",
    "SequenceReport",
    "StatefulResult",
    "Step",
    "format_steps",
    "parse_steps",
    "replay_steps",
    "run_stateful",
]
