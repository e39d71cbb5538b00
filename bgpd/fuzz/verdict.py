"""The fuzzer's verdict: what a target did with one example, judged against the RFCs.

Pure functions over recorded behaviour (no sockets, no clock), so they are unit-tested
against observations captured from real targets. Two kinds of example:

- a malformed message with the `strategies.Expected` outcome RFC 4271 §6 and RFC 7606
  prescribe (`judge_malformed`);
- a well-formed UPDATE that an eBGP target configured to export everything must propagate
  to the monitor with its attributes as RFC 4271 §5 requires (`judge_propagation`).

Every failed check is one `Finding` naming its RFC section. Invariant: an empty list of
findings means the target did what the RFCs require, as far as the observation shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from bgpd.wire import Action, Notification, PathAttributes, Update, format_prefix
from bgpd.wire.attributes import AS_SEQUENCE, AS_SET, PARTIAL, Segment
from bgpd.wire.context import AFI_IPV4, AFI_IPV6
from bgpd.wire.errors import error_name
from bgpd.wire.rfc7606 import CASES, external_action
from bgpd.wire.strategies import Expected

Prefix = bytes

# RFC 1997 §3 well-known communities and the reserved range: they change propagation.
WELL_KNOWN_COMMUNITY_MIN = 0xFFFF0000
# RFC 4360 §2: the Transitive bit of an extended community type (0 = transitive).
EXT_NON_TRANSITIVE = 0x40


@dataclass(frozen=True, slots=True)
class Route:
    """One route as the monitor received it: decoded attributes, plus the raw flags of each
    attribute (the codec sets Partial on unknown attributes it decodes, so the flags the
    target actually sent are kept separately)."""

    attributes: PathAttributes
    flags: Mapping[int, int] = field(default_factory=dict)
    mp_next_hop: bytes = b""  # MP_REACH_NLRI's next hop, for IPv6 routes (RFC 4760 §3)


@dataclass(frozen=True, slots=True)
class Observation:
    """What the harness saw after sending one example.

    notification: the NOTIFICATION the target sent on the fuzzer session, if any.
    session_down: the fuzzer session closed (with or without a NOTIFICATION).
    barrier: a sentinel UPDATE sent after the example reached the monitor, so the target
        processed the example and kept forwarding.
    routes: the monitor's Adj-RIB-In (IPv4 prefixes in wire form) after the barrier.
    monitor_down: the monitor session went down during the example.
    exit_status: the target process's exit status, when the harness started it and it died.
    """

    notification: Notification | None = None
    session_down: bool = False
    barrier: bool = True
    routes: Mapping[Prefix, Route] = field(default_factory=dict)
    monitor_down: bool = False
    exit_status: int | None = None
    routes6: Mapping[Prefix, Route] = field(default_factory=dict)  # IPv6 unicast
    paths: Mapping[Prefix, int] = field(default_factory=dict)  # ADD-PATH: paths per prefix


@dataclass(frozen=True, slots=True)
class Finding:
    """One way the target departed from the RFCs."""

    rfc: str
    expected: str
    observed: str

    def line(self) -> str:
        return f"{self.rfc}: expected {self.expected}; target {self.observed}"


def describe_notification(n: Notification | None) -> str:
    if n is None:
        return "no NOTIFICATION"
    return (
        f"NOTIFICATION {n.code}/{n.subcode} ({error_name(n.code, n.subcode)}) data={n.data.hex()}"
    )


def _liveness(obs: Observation) -> list[Finding]:
    """Checks every example shares: the target lives and other sessions are unaffected."""
    out: list[Finding] = []
    if obs.exit_status is not None:
        out.append(
            Finding("RFC 4271 §6", "the speaker keeps running", f"exited ({obs.exit_status})")
        )
    if obs.monitor_down:
        # RFC 4271 §6: an error is handled on the session it occurred on.
        out.append(
            Finding("RFC 4271 §6", "other sessions stay up", "dropped the monitor's session")
        )
    return out


def judge_malformed(
    expected: Expected, probe: Prefix, obs: Observation, *, ebgp: bool = True
) -> list[Finding]:
    """Judge a malformed message. `probe` was announced (valid) before the example; the
    malformed UPDATEs of `strategies` carry that same prefix as their NLRI.

    `ebgp`: the fuzzer's session with the target is external (as in every target file under
    bgpd/fuzz/targets, hence the default). `expected` comes from Tabby's
    codec, which does not know the session type and gives the internal outcome; RFC 7606
    §7.5, §7.9 and §7.10 make some of those "attribute discard" from an external neighbour."""
    out = _liveness(obs)
    if ebgp and expected.case and expected.action is not None:
        expected = replace(expected, action=external_action(expected.case))
    if expected.error is not None or expected.action is Action.SESSION_RESET:
        want = Notification(expected.code, expected.subcode, expected.data)
        section = "RFC 4271 §6" if expected.code != 3 else "RFC 4271 §6.3; RFC 7606"
        if expected.case:
            section = _case_section(expected.case)
        n = obs.notification
        if n is None:
            observed = "closed the session without a NOTIFICATION"
            if not obs.session_down:
                observed = "kept the session up (accepted the message)"
            out.append(Finding(section, describe_notification(want), observed))
        elif (n.code, n.subcode) != (want.code, want.subcode):
            out.append(Finding(section, describe_notification(want), describe_notification(n)))
        elif want.data and n.data != want.data:
            # RFC 4271 §6: the Data field is fixed for this error; it must be exact.
            out.append(Finding(section, f"data={want.data.hex()}", f"sent data={n.data.hex()}"))
        return out
    section = _case_section(expected.case)
    if expected.action is Action.AFISAFI_DISABLE:
        return out + _judge_disable(expected, section, probe, obs)
    if obs.session_down or obs.notification is not None:
        # RFC 7606 §2: these errors are handled without resetting the session.
        assert expected.action is not None
        out.append(
            Finding(
                section,
                f"{expected.action.name.lower().replace('_', '-')} with the session kept",
                f"reset the session ({describe_notification(obs.notification)})",
            )
        )
        return out
    if not obs.barrier:
        out.append(Finding(section, "the session keeps working", "stopped forwarding UPDATEs"))
        return out
    if expected.action is Action.TREAT_AS_WITHDRAW and probe in obs.routes:
        out.append(
            Finding(
                section + " (treat-as-withdraw)",
                "the route is withdrawn",
                "still advertises it to the monitor",
            )
        )
    if expected.action is Action.ATTRIBUTE_DISCARD and probe not in obs.routes:
        out.append(
            Finding(
                section + " (attribute discard)",
                "the route is kept without the attribute",
                "withdrew it",
            )
        )
    return out


def disabled_family(attribute: bytes) -> tuple[int, int] | None:
    """The (AFI, SAFI) of a malformed MP_REACH/MP_UNREACH attribute (flags, type, length,
    value as RFC 4271 §4.3 frames it), when its value is long enough to hold them."""
    if len(attribute) < 3:
        return None
    start = 4 if attribute[0] & 0x10 else 3  # Extended Length: a 2-octet length field
    value = attribute[start:]
    if len(value) < 3:
        return None
    return int.from_bytes(value[:2], "big"), value[2]


def _judge_disable(
    expected: Expected, section: str, probe: Prefix, obs: Observation
) -> list[Finding]:
    """A malformed MP_REACH/MP_UNREACH whose AFI/SAFI could be read.

    Two outcomes conform. RFC 7606 §3(j) and §7.11 say "the 'session reset' approach (or the
    'AFI/SAFI disable' approach) MUST be followed", and RFC 4760 §7, which defines the
    disable, adds "the speaker may terminate the BGP session ... The session SHOULD be
    terminated with ... 'UPDATE Message Error'/'Optional Attribute Error'". So a reset with
    3/9 (data: the attribute, RFC 4271 §6.3) passes; so does keeping the session with every
    route of that family from this peer removed (RFC 4760 §7 MUST) - for IPv4 unicast that
    includes the probe, and later IPv4 routes may be ignored ("SHOULD ignore"), so the
    barrier is not required; for another family IPv4 must keep working untouched."""
    out: list[Finding] = []
    n = obs.notification
    if obs.session_down or n is not None:
        want = Notification(3, 9, expected.data)
        if n is None:
            out.append(
                Finding(section, describe_notification(want), "closed the session without one")
            )
        elif (n.code, n.subcode) != (3, 9):
            out.append(
                Finding("RFC 4760 §7", describe_notification(want), describe_notification(n))
            )
        elif expected.data and n.data != expected.data:
            out.append(
                Finding("RFC 4271 §6.3", f"data={expected.data.hex()}", f"sent data={n.data.hex()}")
            )
        return out
    family = disabled_family(expected.data)
    if family == (1, 1):
        if probe in obs.routes:
            out.append(
                Finding(
                    section + " (AFI/SAFI disable)",
                    "every IPv4 unicast route from the peer removed",
                    "still advertises the probe route",
                )
            )
        return out
    if not obs.barrier:
        out.append(Finding(section, "IPv4 unicast keeps working", "stopped forwarding UPDATEs"))
    elif probe not in obs.routes:
        out.append(
            Finding(
                section + " (AFI/SAFI disable)",
                f"only routes of AFI/SAFI {family} removed",
                "withdrew the IPv4 probe route",
            )
        )
    return out


def _case_section(case: str) -> str:
    c = CASES.get(case)
    return c.section if c is not None else "RFC 7606"


def propagatable(attrs: PathAttributes) -> bool:
    """Could a conforming eBGP speaker that exports everything drop this route for a reason
    of its own? Well-known communities (RFC 1997 §3) and non-transitive extended
    communities change propagation, so the well-formed generator avoids them."""
    if any(c >= WELL_KNOWN_COMMUNITY_MIN for c in attrs.communities):
        return False
    return not any((c >> 56) & EXT_NON_TRANSITIVE for c in attrs.ext_communities)


def judge_propagation(
    sent: Update, target_as: int, monitor_as: int, obs: Observation
) -> list[Finding]:
    """Judge a well-formed UPDATE sent by an eBGP fuzzer through an eBGP target that exports
    everything to an eBGP monitor."""
    out = _liveness(obs)
    if obs.session_down or obs.notification is not None:
        out.append(
            Finding(
                "RFC 4271 §6.3",
                "a well-formed UPDATE is accepted",
                f"reset the session ({describe_notification(obs.notification)})",
            )
        )
        return out
    attrs = sent.attributes
    if attrs is None:
        return out
    afi, prefixes = sent_prefixes(sent)
    table = obs.routes6 if afi == AFI_IPV6 else obs.routes
    for prefix in dict.fromkeys(prefixes):  # (with ADD-PATH a prefix comes once per path)
        route = table.get(prefix)
        if route is None:
            out.append(
                Finding(
                    "RFC 4271 §9.2" + ("; RFC 4760 §3" if afi == AFI_IPV6 else ""),
                    f"prefix {format_prefix(prefix, afi)} propagated to the monitor",
                    "did not advertise it",
                )
            )
            continue
        found = attribute_findings(attrs, route, target_as, monitor_as)
        if afi == AFI_IPV6 and len(route.mp_next_hop) not in (16, 32):
            # RFC 2545 §3: a global IPv6 address, optionally followed by a link-local one.
            found.append(
                Finding(
                    "RFC 2545 §3",
                    "an IPv6 next hop of 16 or 32 octets",
                    f"sent {len(route.mp_next_hop)} octets ({route.mp_next_hop.hex()})",
                )
            )
        wanted = len(
            {i for p, i in zip(sent.nlri, sent.nlri_path_ids, strict=False) if p == prefix}
        )
        if wanted > 1 and obs.paths.get(prefix, 0) < wanted:
            # The target file's add_path means "send all paths to the monitor".
            found.append(
                Finding(
                    "RFC 7911 §1, §3",
                    f"{wanted} paths of {format_prefix(prefix)} (one per path identifier) "
                    "advertised to the monitor",
                    f"advertised {obs.paths.get(prefix, 0)}",
                )
            )
        for f in found:
            if f not in out:  # one line per fault, not one per prefix
                out.append(f)
    return out


def sent_prefixes(sent: Update) -> tuple[int, tuple[Prefix, ...]]:
    """The family and prefixes a well-formed UPDATE announces: IPv4 NLRI, or IPv6 unicast in
    MP_REACH_NLRI (RFC 4760 §3)."""
    if sent.mp_reach is not None and sent.mp_reach.afi == AFI_IPV6:
        return AFI_IPV6, sent.mp_reach.nlri
    return AFI_IPV4, sent.nlri


def attribute_findings(
    sent: PathAttributes, route: Route, target_as: int, monitor_as: int
) -> list[Finding]:
    """What an eBGP target got wrong in passing `sent` on to an eBGP monitor (RFC 4271 §5)."""
    got = route.attributes
    out: list[Finding] = []
    want_path = _prepend(sent.as_path or (), target_as)
    if _sets_sorted(got.as_path or ()) != _sets_sorted(want_path):
        out.append(
            Finding("RFC 4271 §5.1.2", f"AS_PATH {want_path}", f"advertised AS_PATH {got.as_path}")
        )
    kept = {
        "COMMUNITIES (RFC 1997 §3)": (sorted(sent.communities), sorted(got.communities)),
        "EXTENDED_COMMUNITIES (RFC 4360 §2)": (
            sorted(sent.ext_communities),
            sorted(got.ext_communities),
        ),
        "LARGE_COMMUNITY (RFC 8092 §5)": (
            sorted(sent.large_communities),
            sorted(got.large_communities),
        ),
        "ATOMIC_AGGREGATE (RFC 4271 §5.1.6)": (sent.atomic_aggregate, got.atomic_aggregate),
        "AGGREGATOR (RFC 4271 §5.1.7)": (sent.aggregator, got.aggregator),
    }
    for name, (want, have) in kept.items():
        if want != have:
            out.append(
                Finding("RFC 4271 §5", f"transitive {name} kept: {want}", f"advertised {have}")
            )
    if got.med is not None:
        out.append(
            Finding(
                "RFC 4271 §5.1.4",
                "MULTI_EXIT_DISC not propagated to another AS",
                f"sent MED {got.med}",
            )
        )
    if got.local_pref is not None:
        out.append(
            Finding("RFC 4271 §5.1.5", "no LOCAL_PREF to an eBGP peer", f"sent {got.local_pref}")
        )
    have_unknown = {a.type_code: a.value for a in got.unknown}
    for a in sent.unknown:
        if have_unknown.get(a.type_code) != a.value:
            out.append(
                Finding(
                    "RFC 4271 §5",
                    f"unrecognized optional transitive attribute {a.type_code} passed on unchanged",
                    "dropped it" if a.type_code not in have_unknown else "changed its value",
                )
            )
        elif not route.flags.get(a.type_code, 0) & PARTIAL:
            out.append(
                Finding(
                    "RFC 4271 §5, §4.3",
                    f"Partial bit set on unrecognized attribute {a.type_code}",
                    f"sent flags 0x{route.flags.get(a.type_code, 0):02x}",
                )
            )
    return out


def _sets_sorted(path: tuple[Segment, ...]) -> tuple[Segment, ...]:
    # RFC 4271 §4.3: an AS_SET is unordered; speakers may sort it (FRR does).
    return tuple((t, tuple(sorted(a)) if t == AS_SET else a) for t, a in path)


def _prepend(path: tuple[Segment, ...], asn: int) -> tuple[Segment, ...]:
    # RFC 4271 §5.1.2 (b): prepend to the leading AS_SEQUENCE, or add a new one in front.
    if path and path[0][0] == AS_SEQUENCE and len(path[0][1]) < 255:
        return ((AS_SEQUENCE, (asn, *path[0][1])), *path[1:])
    return ((AS_SEQUENCE, (asn,)), *path)


# --- liveness: the target's KEEPALIVEs (RFC 4271 §4.4, §10) ------------------------------------

KEEPALIVE_SLACK = 2.0
"""Seconds allowed past hold_time/3 before a KEEPALIVE gap is a warning: scheduling on a
loaded machine, and the harness's own reading of the socket (tabby-bgpd's 10 s keepalives
were seen 11.3 s apart on a busy 2-core box)."""


@dataclass(frozen=True, slots=True)
class Liveness:
    """How long the target stayed silent toward one harness role over a run.

    hold_time: the negotiated Hold Time of the session with the widest silence relative to
        it; keepalive_gap: the widest gap between the target's KEEPALIVEs; hold_gap: the
        widest gap between messages that restart the hold timer (KEEPALIVE or UPDATE, RFC
        4271 §8.2.2 Events 26/27), each from Established to the session's end.
    """

    role: str
    sessions: int
    hold_time: int
    keepalive_gap: float
    hold_gap: float
    findings: tuple[Finding, ...] = ()
    warnings: tuple[Finding, ...] = ()


def judge_keepalives(
    role: str, hold_time: int, keepalive_gap: float, hold_gap: float
) -> tuple[list[Finding], list[Finding]]:
    """(findings, warnings) for one session's silences.

    A finding when nothing that restarts the hold timer came for longer than the Hold Time:
    our hold timer would have expired (RFC 4271 §4.4: KEEPALIVEs are sent "often enough as
    not to cause the Hold Timer to expire"). A warning when KEEPALIVEs came further apart
    than the suggested hold_time/3 (§10, "KeepaliveTime ... 1/3 of the HoldTime") plus
    slack: allowed, but one lost message from an expiry."""
    findings: list[Finding] = []
    warnings: list[Finding] = []
    if hold_time <= 0:
        return findings, warnings
    if hold_gap > hold_time:
        findings.append(
            Finding(
                "RFC 4271 §4.4",
                f"a KEEPALIVE or UPDATE to the {role} within the hold time ({hold_time} s)",
                f"was silent for {hold_gap:.1f} s",
            )
        )
    if keepalive_gap > hold_time / 3 + KEEPALIVE_SLACK:
        warnings.append(
            Finding(
                "RFC 4271 §10",
                f"KEEPALIVEs to the {role} every ~{hold_time / 3:.1f} s (hold time/3)",
                f"sent none for {keepalive_gap:.1f} s",
            )
        )
    return findings, warnings


def summarize_liveness(role: str, sessions: list[tuple[int, float, float]]) -> Liveness:
    """One role's sessions as (negotiated hold time, keepalive gap, hold gap), each judged
    against its own hold time; the numbers shown are those of the session that came
    closest to (or past) its limits."""
    findings: list[Finding] = []
    warnings: list[Finding] = []
    for hold, kgap, hgap in sessions:
        f, w = judge_keepalives(role, hold, kgap, hgap)
        findings += f
        warnings += w

    def pressure(t: tuple[int, float, float]) -> float:
        hold, kgap, hgap = t
        return max(hgap / hold, kgap / (hold / 3 + KEEPALIVE_SLACK)) if hold else 0.0

    hold, kgap, hgap = max(sessions, key=pressure)
    return Liveness(role, len(sessions), hold, kgap, hgap, tuple(findings[:1]), tuple(warnings[:1]))
