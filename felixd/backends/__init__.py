"""Dataplane backends: where felixd's operations land.

`base.DataplaneBackend` is the protocol; `recording.RecordingKernel` is an in-memory kernel for
tests; `faulty.FaultyBackend` wraps any backend to fail chosen operations; `sync.sync` is the
read → diff → apply → resync-on-error loop the daemon runs in its netlink thread. The netlink
(pyroute2) and nftables shells implement the same protocol later.
"""
