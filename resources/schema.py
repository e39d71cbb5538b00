"""Declarative field tables for resource specs: decode from a mapping, encode back to JSON.

Each spec is a frozen dataclass whose fields carry (JSON name, codec, required, omitempty) in
their metadata, so one generic walker decodes every kind and names the document path of any
field it refuses (`spec.ingress[2].protocol: ...`). Invariants:
- a key the table does not know is refused, never dropped (DESIGN.md "Shared conventions");
- a JSON `null` is the same as an absent key (Kubernetes convention);
- `decode(encode(x)) == x` for every value a codec produces;
- encoding omits None, and "empty" values of omitempty fields, like Go's `omitempty`, so a
  document written by calicoctl and one written by Tabby look alike.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar, cast

from resources.errors import ResourceError, SelectorError
from resources.selector import parse_selector

Json = None | bool | int | float | str | list["Json"] | dict[str, "Json"]
JsonObject = dict[str, Json]

T = TypeVar("T")
U = TypeVar("U")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

_META = "tabby"


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


# --- codecs --------------------------------------------------------------------------------------


class Codec(ABC, Generic[T]):
    """Turns one JSON value into a typed value and back. `what` names the type in errors."""

    what = "a value"

    @abstractmethod
    def decode(self, value: object, path: str) -> T: ...

    @abstractmethod
    def encode(self, value: T) -> Json: ...

    def is_empty(self, value: T) -> bool:
        return not value


class _Str(Codec[str]):
    what = "a string"

    def __init__(
        self, check: Callable[[str], str | None] | None = None, *, nonempty: bool = False
    ) -> None:
        self.check = check
        self.nonempty = nonempty

    def decode(self, value: object, path: str) -> str:
        if not isinstance(value, str):
            raise ResourceError(path, "must be a string")
        if self.nonempty and not value:
            raise ResourceError(path, "must not be empty")
        if self.check is not None and value:
            problem = self.check(value)
            if problem:
                raise ResourceError(path, problem)
        return value

    def encode(self, value: str) -> Json:
        return value


class OneOf(Codec[str]):
    def __init__(self, *choices: str) -> None:
        self.choices = choices

    def decode(self, value: object, path: str) -> str:
        if value not in self.choices:
            raise ResourceError(path, f"must be one of {', '.join(self.choices)}")
        return str(value)

    def encode(self, value: str) -> Json:
        return value


class _Bool(Codec[bool]):
    def decode(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            raise ResourceError(path, "must be true or false")
        return value

    def encode(self, value: bool) -> Json:
        return value


class Int(Codec[int]):
    def __init__(self, low: int | None = None, high: int | None = None) -> None:
        self.low = low
        self.high = high

    def decode(self, value: object, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ResourceError(path, "must be an integer")
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise ResourceError(path, f"must be between {self.low} and {self.high}")
        return value

    def encode(self, value: int) -> Json:
        return value


class _Float(Codec[float]):
    def decode(self, value: object, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ResourceError(path, "must be a number")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ResourceError(path, "must be a finite number")
        return number

    def encode(self, value: float) -> Json:
        return int(value) if value.is_integer() else value

    def is_empty(self, value: float) -> bool:
        return False


class _ASNumber(Codec[int]):
    """numorstring.ASNumber: 0..4294967295 as a number, a decimal string or asdot `x.y`."""

    def decode(self, value: object, path: str) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            if re.fullmatch(r"[0-9]{1,10}", value):
                number = int(value)
            elif m := re.fullmatch(r"([0-9]{1,5})\.([0-9]{1,5})", value):
                high, low = int(m.group(1)), int(m.group(2))
                if high <= 0xFFFF and low <= 0xFFFF:
                    number = high << 16 | low
        if number is None or not 0 <= number <= 0xFFFFFFFF:
            raise ResourceError(path, "must be an AS number between 0 and 4294967295")
        return number

    def encode(self, value: int) -> Json:
        return value

    def is_empty(self, value: int) -> bool:
        return False


class _Network(Codec[IPNetwork]):
    def __init__(self, strict: bool) -> None:
        self.strict = strict

    def decode(self, value: object, path: str) -> IPNetwork:
        if not isinstance(value, str) or "%" in value:
            raise ResourceError(path, f"must be a CIDR string, not {value!r}")
        text = value if "/" in value or self.strict else value + ("/128" if ":" in value else "/32")
        try:
            return ipaddress.ip_network(text, strict=self.strict)
        except ValueError as exc:
            reason = "host bits set" if "host bits" in str(exc) else "invalid CIDR"
            raise ResourceError(path, f"{reason}: {value!r}") from None

    def encode(self, value: IPNetwork) -> Json:
        return str(value)

    def is_empty(self, value: IPNetwork) -> bool:
        return False


class _Address(Codec[IPAddress]):
    def decode(self, value: object, path: str) -> IPAddress:
        try:
            if not isinstance(value, str) or "%" in value:
                raise ValueError  # scoped (zone) addresses have no meaning in a resource
            return ipaddress.ip_address(value)
        except ValueError:
            raise ResourceError(path, f"must be an IP address, not {value!r}") from None

    def encode(self, value: IPAddress) -> Json:
        return str(value)

    def is_empty(self, value: IPAddress) -> bool:
        return False


class _Interface(Codec[IPInterface]):
    """An address with its network (`10.192.0.2/16`), as Node.spec.bgp.ipv4Address."""

    def decode(self, value: object, path: str) -> IPInterface:
        try:
            if not isinstance(value, str) or "%" in value:
                raise ValueError
            return ipaddress.ip_interface(value)
        except ValueError:
            raise ResourceError(
                path, f"must be an IP address or IP/prefix, not {value!r}"
            ) from None

    def encode(self, value: IPInterface) -> Json:
        return value.with_prefixlen

    def is_empty(self, value: IPInterface) -> bool:
        return False


def _selector_problem(text: str) -> str | None:
    try:
        parse_selector(text)
    except SelectorError as err:
        return f"invalid selector: {err.reason} at position {err.position} in {text!r}"
    return None


class ListOf(Codec[tuple[U, ...]]):
    def __init__(self, item: Codec[U], *, max_items: int | None = None) -> None:
        self.item = item
        self.max_items = max_items

    def decode(self, value: object, path: str) -> tuple[U, ...]:
        if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
            raise ResourceError(path, "must be a list")
        if self.max_items is not None and len(value) > self.max_items:
            raise ResourceError(path, f"must have at most {self.max_items} items")
        return tuple(self.item.decode(v, join(path, i)) for i, v in enumerate(value))

    def encode(self, value: tuple[U, ...]) -> Json:
        return [self.item.encode(v) for v in value]


class NullableListOf(Codec[tuple[U | None, ...]]):
    """A list whose items may be JSON null (IPAM block `allocations`)."""

    def __init__(self, item: Codec[U]) -> None:
        self.item = item

    def decode(self, value: object, path: str) -> tuple[U | None, ...]:
        if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
            raise ResourceError(path, "must be a list")
        return tuple(
            None if v is None else self.item.decode(v, join(path, i)) for i, v in enumerate(value)
        )

    def encode(self, value: tuple[U | None, ...]) -> Json:
        return [None if v is None else self.item.encode(v) for v in value]


class MapOf(Codec[dict[str, U]]):
    def __init__(self, item: Codec[U], key_check: Callable[[str], str | None] | None = None):
        self.item = item
        self.key_check = key_check

    def decode(self, value: object, path: str) -> dict[str, U]:
        if not isinstance(value, Mapping):
            raise ResourceError(path, "must be an object")
        out: dict[str, U] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ResourceError(path, f"key {key!r} must be a string")
            if self.key_check is not None and (problem := self.key_check(key)):
                raise ResourceError(join(path, key), problem)
            out[key] = self.item.decode(item, join(path, key))
        return out

    def encode(self, value: dict[str, U]) -> Json:
        return {k: self.item.encode(v) for k, v in value.items()}


class Struct(Codec[T]):
    def __init__(self, cls: type[T]) -> None:
        self.cls = cls

    def decode(self, value: object, path: str) -> T:
        return decode_struct(self.cls, value, path)

    def encode(self, value: T) -> Json:
        return encode_struct(value)

    def is_empty(self, value: T) -> bool:
        return False


class Either(Codec[int | str]):
    """A port: a number, a `lo:hi` range, or a named port (policy rules)."""

    def decode(self, value: object, path: str) -> int | str:
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value <= 65535:
                raise ResourceError(path, "port must be between 0 and 65535")
            return value
        if isinstance(value, str):
            if m := re.fullmatch(r"([0-9]+):([0-9]+)", value):
                low, high = int(m.group(1)), int(m.group(2))
                if not 0 <= low <= high <= 65535:
                    raise ResourceError(path, f"invalid port range {value!r}")
                return value
            if re.fullmatch(r"[0-9]+", value):
                return self.decode(int(value), path)
            if re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?", value):
                return value
        raise ResourceError(
            path, f"must be a port, a port range lo:hi or a port name, not {value!r}"
        )

    def encode(self, value: int | str) -> Json:
        return value

    def is_empty(self, value: int | str) -> bool:
        return False


class _Timestamp(Codec[str]):
    """RFC 3339 text; a YAML loader may already have turned it into a datetime."""

    def decode(self, value: object, path: str) -> str:
        if isinstance(value, datetime.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(datetime.UTC).replace(tzinfo=None)
            return value.isoformat(timespec="seconds") + "Z"
        if isinstance(value, str) and value:
            return value
        raise ResourceError(path, "must be an RFC 3339 timestamp")

    def encode(self, value: str) -> Json:
        return value


STR = _Str()
TIMESTAMP = _Timestamp()
NONEMPTY = _Str(nonempty=True)
BOOL = _Bool()
FLOAT = _Float()
AS_NUMBER = _ASNumber()
PORT = Int(1, 65535)
CIDR = _Network(strict=False)
STRICT_CIDR = _Network(strict=True)
IP = _Address()
IP_WITH_NET = _Interface()
SELECTOR = _Str(_selector_problem)
STRING_MAP: MapOf[str] = MapOf(STR)


def checked(check: Callable[[str], str | None]) -> Codec[str]:
    return _Str(check, nonempty=True)


# --- fields and the generic walker ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class FieldInfo:
    json: str
    codec: Codec[object]
    required: bool
    omitempty: bool


def field(
    json: str,
    codec: Codec[T],
    default: T | None = None,
    *,
    required: bool = False,
    omitempty: bool = True,
    factory: Callable[[], T] | None = None,
) -> T:
    """A spec field; `default` None with omitempty=False is Go's `*T` (unset ≠ zero)."""
    meta = {_META: FieldInfo(json, cast(Codec[object], codec), required, omitempty)}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    if required:
        return cast(T, dataclasses.field(metadata=meta, kw_only=True))
    return cast(T, dataclasses.field(default=default, metadata=meta))


def opt(json: str, codec: Codec[T]) -> T | None:
    """An optional field where unset (None) differs from the zero value (Go pointer)."""
    return field(json, codec, None, omitempty=False)


def _infos(cls: type[object]) -> list[tuple[str, FieldInfo]]:
    out: list[tuple[str, FieldInfo]] = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        info = f.metadata.get(_META)
        if isinstance(info, FieldInfo):
            out.append((f.name, info))
    return out


def decode_struct(cls: type[T], value: object, path: str) -> T:
    if not isinstance(value, Mapping):
        raise ResourceError(path, "must be an object")
    known: dict[str, tuple[str, FieldInfo]] = {
        info.json: (name, info) for name, info in _infos(cls)
    }
    for key in value:
        if key not in known:
            raise ResourceError(join(path, str(key)), "unknown field (not supported by Tabby)")
    kwargs: dict[str, object] = {}
    for key, (name, info) in known.items():
        raw = value.get(key)
        if raw is None:
            if info.required:
                raise ResourceError(join(path, key), "is required")
            continue
        kwargs[name] = info.codec.decode(raw, join(path, key))
    return cls(**kwargs)


def encode_struct(obj: object) -> JsonObject:
    out: JsonObject = {}
    for name, info in _infos(type(obj)):
        value = getattr(obj, name)
        if value is None or (info.omitempty and info.codec.is_empty(value)):
            continue
        out[info.json] = info.codec.encode(value)
    return out


# --- names ---------------------------------------------------------------------------------------

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*")


def dns1123_subdomain(text: str) -> str | None:
    if len(text) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(text):
        return (
            "must be a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit, at most 253 characters)"
        )
    return None


def policy_name(text: str) -> str | None:
    # Calico: DNS-1123 label characters for policy names, subdomain length limit.
    if len(text) > 253 or not re.fullmatch(_DNS1123_LABEL, text):
        return "must consist of lowercase letters, digits and '-' (at most 253 characters)"
    return None


def dns1123_label(text: str) -> str | None:
    if len(text) > 63 or not re.fullmatch(_DNS1123_LABEL, text):
        return "must be a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)"
    return None


def relaxed_name(text: str) -> str | None:
    if len(text) > 253 or not re.fullmatch(r"[A-Za-z0-9_.-]+", text):
        return "must consist of letters, digits, '_', '.' and '-' (at most 253 characters)"
    return None


def interface_name(text: str) -> str | None:
    if len(text) > 15 or "/" in text or any(c.isspace() for c in text):
        return "must be a Linux interface name (at most 15 characters, no '/' or spaces)"
    return None


def mac_address(text: str) -> str | None:
    if not re.fullmatch(r"([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}", text):
        return f"must be a MAC address, not {text!r}"
    return None


def ipv4_text(text: str) -> str | None:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return f"must be an IPv4 address, not {text!r}"
    return None


def label_key(text: str) -> str | None:
    # Kubernetes label keys: optional DNS-1123 prefix and '/', then a name of <= 63 characters.
    prefix, _, name = text.rpartition("/")
    if prefix and dns1123_subdomain(prefix):
        return f"label key {text!r} has an invalid prefix"
    if not re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]", name):
        return f"invalid label key {text!r}"
    return None


def label_value(text: str) -> str | None:
    if len(text) > 63 or not re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", text):
        return (
            f"invalid label value {text!r} (at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit)"
        )
    return None


LABELS: MapOf[str] = MapOf(_Str(label_value), label_key)
INTERFACE_NAME = _Str(interface_name, nonempty=True)
MAC = _Str(mac_address, nonempty=True)
IPV4_TEXT = _Str(ipv4_text, nonempty=True)
