"""Shared msgpack-RPC transport used by every daemon and client."""

from ipc.client import ClientOptions, RPCClient, Subscription
from ipc.endpoints import Endpoint, TLSConfig, parse_endpoint
from ipc.errors import RPCError
from ipc.server import BadNotification, RPCServer, ServerLimits, Stream, StreamClosed

__all__ = [
    "BadNotification",
    "ClientOptions",
    "Endpoint",
    "RPCClient",
    "RPCError",
    "RPCServer",
    "ServerLimits",
    "Stream",
    "StreamClosed",
    "Subscription",
    "TLSConfig",
    "parse_endpoint",
]
