"""Kubernetes `metav1.Duration` values (Go `time.Duration` text such as `90s`, `1m30s`, `500ms`).

Calico's v3 API writes durations in Go's format, so Tabby parses Go's grammar (signed sequence
of decimal numbers with units ns, us, µs, ms, s, m, h) and prints Go's `Duration.String()`
form. Invariant: `parse_duration(format_duration(d)) == d` for every integer nanosecond count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from resources.errors import ResourceError
from resources.schema import Codec, Json

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 10**9}
_UNITS |= {"m": 60 * 10**9, "h": 3600 * 10**9}
_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


@dataclass(frozen=True, slots=True, order=True)
class Duration:
    nanoseconds: int

    @property
    def seconds(self) -> float:
        return self.nanoseconds / 1e9

    def __str__(self) -> str:
        return format_duration(self.nanoseconds)


def parse_duration(text: str) -> int:
    """Go's `time.ParseDuration`; returns nanoseconds or raises ValueError."""
    rest = text
    sign = 1
    if rest[:1] in "+-" and rest:
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    total = 0
    pos = 0
    while pos < len(rest):
        m = _PART.match(rest, pos)
        if not m or m.group(1) in ("", "."):
            raise ValueError(f"invalid duration {text!r}")
        whole, _, frac = m.group(1).partition(".")
        unit = _UNITS[m.group(2)]
        total += int(whole or "0") * unit
        if frac:
            total += int(frac) * unit // 10 ** len(frac)
        pos = m.end()
    return sign * total


def _trim(seconds: int, nanos: int) -> str:
    if not nanos:
        return str(seconds)
    return f"{seconds}.{nanos:09d}".rstrip("0")


def format_duration(nanoseconds: int) -> str:
    """Go's `Duration.String()`: `0s`, `500ms`, `1.5s`, `1m30s`, `1h0m0s`."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    n = abs(nanoseconds)
    if n < 1_000:
        return f"{sign}{n}ns"
    if n < 1_000_000:
        return f"{sign}{_frac(n, 1_000)}µs"
    if n < 10**9:
        return f"{sign}{_frac(n, 1_000_000)}ms"
    hours, n = divmod(n, 3600 * 10**9)
    minutes, n = divmod(n, 60 * 10**9)
    seconds, nanos = divmod(n, 10**9)
    text = f"{_trim(seconds, nanos)}s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


def _frac(n: int, unit: int) -> str:
    whole, rest = divmod(n, unit)
    if not rest:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{rest:0{digits}d}".rstrip("0")


class _DurationCodec(Codec[Duration]):
    what = "a duration"

    def decode(self, value: object, path: str) -> Duration:
        if isinstance(value, str):
            try:
                return Duration(parse_duration(value))
            except ValueError:
                pass
        raise ResourceError(path, f"must be a duration such as 90s or 1m30s, not {value!r}")

    def encode(self, value: Duration) -> Json:
        return format_duration(value.nanoseconds)

    def is_empty(self, value: Duration) -> bool:
        return False


DURATION = _DurationCodec()
