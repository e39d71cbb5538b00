"""Structured RPC errors: the code table every Tabby daemon and client shares.

Errors travel as ``{"code": str, "message": str, "data": object}`` inside the msgpack-RPC
response's error slot. Codes are short strings so that a captured frame reads on its own;
daemons add their own codes (the store's ``compacted``, resources' ``conflict``) and document
them next to their methods. A traceback never goes on the wire: a handler that crashes is
reported as ``internal`` with the exception's type and message, and logged on the server.
"""

from __future__ import annotations

from collections.abc import Mapping

# The transport's own codes. Daemons may define more; these are reserved.
INVALID_REQUEST = "invalid_request"  # a frame that is not msgpack-RPC: the connection closes
METHOD_NOT_FOUND = "method_not_found"
INVALID_PARAMS = "invalid_params"  # params that do not bind to the handler's signature
INTERNAL = "internal"  # the handler raised something that is not an RPCError
UNAVAILABLE = "unavailable"  # shutting down, not ready yet, or no endpoint reachable
TIMEOUT = "timeout"  # the client gave up waiting (raised locally, never sent)
OVERLOADED = "overloaded"  # too many requests in flight on this connection
STREAM_OVERFLOW = "stream_overflow"  # a subscriber fell behind its bounded queue
CANCELLED = "cancelled"  # the stream or call was cancelled by either side
CONNECTION_LOST = "connection_lost"  # the connection dropped before the answer came

CODES: Mapping[str, str] = {
    INVALID_REQUEST: "the frame is not a msgpack-RPC message; the connection is closed",
    METHOD_NOT_FOUND: "no handler is registered under that method name",
    INVALID_PARAMS: "the parameters do not match the method's signature",
    INTERNAL: "the handler failed; details are in the server's log",
    UNAVAILABLE: "the service cannot answer now (starting, stopping, or unreachable)",
    TIMEOUT: "no answer within the client's timeout",
    OVERLOADED: "too many requests in flight on one connection",
    STREAM_OVERFLOW: "the subscriber did not keep up and was cut off; subscribe again",
    CANCELLED: "cancelled by the client or the server",
    CONNECTION_LOST: "the connection closed before the answer arrived",
}


class RPCError(Exception):
    """An error with a code from the table (or a daemon's own), safe to send to a peer."""

    def __init__(self, code: str, message: str, data: object = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data

    def to_wire(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "data": self.data}

    @classmethod
    def from_wire(cls, obj: object) -> RPCError:
        """Rebuild an error from whatever a peer sent; a non-conforming error is still an error."""
        if isinstance(obj, Mapping):
            code = obj.get("code")
            message = obj.get("message")
            return cls(
                code if isinstance(code, str) else INTERNAL,
                message if isinstance(message, str) else repr(obj),
                obj.get("data"),
            )
        return cls(INTERNAL, f"peer sent a non-structured error: {obj!r}"[:500])

    def __reduce__(self) -> tuple[type[RPCError], tuple[str, str, object]]:
        return (type(self), (self.code, self.message, self.data))
