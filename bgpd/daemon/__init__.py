"""The asyncio shell of tabby-bgpd: config, sockets, peers, listener, control API.

- `bgpd.daemon.config`: the TOML configuration (`BgpdConfig`, `PeerConfig`) and its checks.
- `bgpd.daemon.sockets`: TCP-MD5 (RFC 2385) and GTSM (RFC 5082) socket options.
- `bgpd.daemon.sink`: `RouteSink`, where received UPDATEs and session events go.
- `bgpd.daemon.runner`: `PeerRunner`, the task that owns one peer's `PeerCore`.
- `bgpd.daemon.speaker`: `Speaker`, the daemon: listeners, peers, reload, control API.
"""
