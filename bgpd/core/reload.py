"""The reload matrix: how each configuration field change is applied to a running session.

`HOT` changes take effect without touching the session (names, timers used only when
connecting); `SOFT` changes keep the session and re-send the Adj-RIB-Out or ask the peer for a
route refresh (RFC 2918); `RESET` changes alter what the OPEN carries or how the TCP connection is
made, so the session is closed with Cease / Other Configuration Change (RFC 4486) and restarted.
Sessions are keyed by (peer address, local address, port): changing any of those is a removal
plus an addition, never an edit. docs/bgpd.md prints these tables.

Invariant: every field of the peer and global configuration has exactly one entry, checked by
a test against the config dataclasses.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


class Apply(enum.IntEnum):
    """Ordered: a set of changes is applied with its strongest member."""

    NONE = 0
    HOT = 1
    SOFT = 2
    RESET = 3


PEER_FIELDS: dict[str, Apply] = {
    "name": Apply.HOT,
    "description": Apply.HOT,
    "peer_type": Apply.HOT,
    "passive": Apply.HOT,  # decides who connects next time
    "connect_retry_time": Apply.HOT,
    "delay_open_time": Apply.HOT,
    "idle_hold_time": Apply.HOT,
    "idle_hold_max": Apply.HOT,
    "rr_client": Apply.SOFT,
    "cluster_id": Apply.SOFT,
    "next_hop": Apply.SOFT,
    # Policies: the routing layer re-applies them on every reload and sends only what changed
    # (asking the peer for a route refresh when the import side changed), so the session and
    # the rest of the Adj-RIB-Out are left alone.
    "import_policy": Apply.HOT,
    "export_policy": Apply.HOT,
    "remote_as": Apply.RESET,
    "password": Apply.RESET,  # TCP-MD5 keys live on the socket (RFC 2385)
    "ttl_security": Apply.RESET,  # GTSM is set on the socket (RFC 5082)
    "hold_time": Apply.RESET,  # carried by the OPEN
    "keepalive_time": Apply.RESET,
    "graceful_restart_time": Apply.RESET,  # capability in the OPEN (RFC 4724)
    "graceful_restart_notification": Apply.RESET,  # its N bit (RFC 8538)
    "restart_eor_wait": Apply.HOT,  # used after a restart only
    "enhanced_route_refresh": Apply.RESET,  # capability in the OPEN (RFC 7313)
    "mrai": Apply.HOT,  # paces the next advertisements
    "families": Apply.RESET,  # Multiprotocol capabilities (RFC 4760)
    "required_capabilities": Apply.RESET,
    "extended_message": Apply.RESET,
    # The session key: a change is a removal plus an addition.
    "address": Apply.RESET,
    "local_address": Apply.RESET,
    "port": Apply.RESET,
}

GLOBAL_FIELDS: dict[str, Apply] = {
    "router_id": Apply.RESET,  # BGP Identifier in every OPEN
    "local_as": Apply.RESET,
    "cluster_id": Apply.SOFT,
    "originate": Apply.SOFT,  # re-send Adj-RIB-Out
    "advertise": Apply.SOFT,
    "ebgp_default_deny": Apply.HOT,  # like the peers' policies (above)
    "prefix_lists": Apply.HOT,
    "policies": Apply.HOT,
    "listen": Apply.HOT,  # listeners are rebound; sessions are untouched
    "control_socket": Apply.NONE,  # read at start only: takes effect on restart
    "graceful_restart": Apply.NONE,  # the restart decision is taken at start
    "restart_marker": Apply.NONE,
    "graceful_restart_defer_time": Apply.NONE,
    "forwarding_hold_time": Apply.NONE,
    "startup_convergence_time": Apply.NONE,  # read at start only
    "graceful_stop": Apply.HOT,  # read when bgpd stops
    "peers": Apply.NONE,  # diffed per peer with PEER_FIELDS
}


def classify(
    old: Mapping[str, object], new: Mapping[str, object], table: Mapping[str, Apply]
) -> dict[str, Apply]:
    """The changed fields of `table` with how each is applied."""
    return {
        name: how
        for name, how in table.items()
        if how is not Apply.NONE and old.get(name) != new.get(name)
    }


def strongest(changes: Mapping[str, Apply]) -> Apply:
    return max(changes.values(), default=Apply.NONE)
