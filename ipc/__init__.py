"""Shared msgpack-RPC transport used by every daemon and client."""
