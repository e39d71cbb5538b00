"""The asyncio shell of tabby-store: config, peer transport, the Raft member and its RPC API.

See docs/store.md. `StoreDaemon` (daemon.py) is what `store.main:main` runs.
"""
