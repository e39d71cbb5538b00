"""Errors of the KV state machine, with etcd v3's gRPC codes and message strings.

Clients of etcd match on the gRPC code *and* the message (etcd `api/v3rpc/rpctypes/error.go`),
so the text here is etcd's text, word for word, and the table is the single place that holds it.
Invariant: every error the state machine reports is a `KVError` whose `kind` is a key of
`ERRORS`; nothing else escapes `apply`, `range` or the codec.
"""

from __future__ import annotations

from enum import StrEnum


class GRPCCode(StrEnum):
    """The gRPC status code an error maps to (google.rpc.Code names)."""

    INVALID_ARGUMENT = "InvalidArgument"
    OUT_OF_RANGE = "OutOfRange"
    RESOURCE_EXHAUSTED = "ResourceExhausted"
    NOT_FOUND = "NotFound"
    FAILED_PRECONDITION = "FailedPrecondition"


class ErrorKind(StrEnum):
    EMPTY_KEY = "empty_key"
    KEY_NOT_FOUND = "key_not_found"
    VALUE_PROVIDED = "value_provided"
    LEASE_PROVIDED = "lease_provided"
    TOO_MANY_OPS = "too_many_ops"
    DUPLICATE_KEY = "duplicate_key"
    COMPACTED = "compacted"
    FUTURE_REV = "future_rev"
    NO_SPACE = "no_space"
    LEASE_NOT_FOUND = "lease_not_found"
    LEASE_EXIST = "lease_exist"
    LEASE_TTL_TOO_LARGE = "lease_ttl_too_large"
    REQUEST_TOO_LARGE = "request_too_large"
    MALFORMED = "malformed"
    NOT_LEADER = "not_leader"


# kind -> (gRPC code, message). Messages are etcd's (rpctypes/error.go); MALFORMED is ours,
# for bytes that do not decode into a request (etcd's gRPC layer would reject them earlier).
ERRORS: dict[ErrorKind, tuple[GRPCCode, str]] = {
    ErrorKind.EMPTY_KEY: (GRPCCode.INVALID_ARGUMENT, "etcdserver: key is not provided"),
    ErrorKind.KEY_NOT_FOUND: (GRPCCode.INVALID_ARGUMENT, "etcdserver: key not found"),
    ErrorKind.VALUE_PROVIDED: (GRPCCode.INVALID_ARGUMENT, "etcdserver: value is provided"),
    ErrorKind.LEASE_PROVIDED: (GRPCCode.INVALID_ARGUMENT, "etcdserver: lease is provided"),
    ErrorKind.TOO_MANY_OPS: (
        GRPCCode.INVALID_ARGUMENT,
        "etcdserver: too many operations in txn request",
    ),
    ErrorKind.DUPLICATE_KEY: (
        GRPCCode.INVALID_ARGUMENT,
        "etcdserver: duplicate key given in txn request",
    ),
    ErrorKind.COMPACTED: (
        GRPCCode.OUT_OF_RANGE,
        "etcdserver: mvcc: required revision has been compacted",
    ),
    ErrorKind.FUTURE_REV: (
        GRPCCode.OUT_OF_RANGE,
        "etcdserver: mvcc: required revision is a future revision",
    ),
    ErrorKind.NO_SPACE: (GRPCCode.RESOURCE_EXHAUSTED, "etcdserver: mvcc: database space exceeded"),
    ErrorKind.LEASE_NOT_FOUND: (GRPCCode.NOT_FOUND, "etcdserver: requested lease not found"),
    ErrorKind.LEASE_EXIST: (GRPCCode.FAILED_PRECONDITION, "etcdserver: lease already exists"),
    ErrorKind.LEASE_TTL_TOO_LARGE: (GRPCCode.OUT_OF_RANGE, "etcdserver: too large lease TTL"),
    ErrorKind.REQUEST_TOO_LARGE: (GRPCCode.INVALID_ARGUMENT, "etcdserver: request is too large"),
    ErrorKind.MALFORMED: (GRPCCode.INVALID_ARGUMENT, "tabby-store: malformed request"),
    ErrorKind.NOT_LEADER: (GRPCCode.FAILED_PRECONDITION, "etcdserver: not leader"),
}


class KVError(Exception):
    """An etcd-compatible error: `kind` names it, `code` and `message` are what goes on the wire."""

    __slots__ = ("detail", "kind")

    def __init__(self, kind: ErrorKind, detail: str = "") -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(self.message if not detail else f"{self.message} ({detail})")

    @property
    def code(self) -> GRPCCode:
        return ERRORS[self.kind][0]

    @property
    def message(self) -> str:
        return ERRORS[self.kind][1]

    def to_wire(self) -> dict[str, str]:
        """The structured form every Tabby daemon puts on the wire (DESIGN.md)."""
        return {"code": self.code.value, "message": self.message}
