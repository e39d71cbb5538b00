"""The pure Raft consensus core of tabby-store (sans-IO, the etcd-io/raft shape).

Drive a `RaftNode` with `tick()`, `step(message)`, `propose(data)`, `propose_conf_change(cc)`,
`read_index(context)` and `transfer_leadership(to)`; then, while `has_ready()`, take `ready()`,
persist its snapshot, entries and hard state, send its messages, apply its committed entries and
call `advance(ready)`. See docs/raft.md.
"""

from store.raft.config import Config, ConfigError
from store.raft.messages import Message, WireError, from_wire, to_wire
from store.raft.node import ProposalDropped, RaftNode, RaftUsageError
from store.raft.ready import PeerStatus, Ready, Role, SoftState, Status
from store.raft.storage import MemoryStorage, bootstrap
from store.raft.types import (
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    ReadState,
    Snapshot,
    SnapshotMeta,
)

__all__ = [
    "ConfChange",
    "ConfChangeKind",
    "ConfState",
    "Config",
    "ConfigError",
    "Entry",
    "EntryKind",
    "HardState",
    "MemoryStorage",
    "Message",
    "PeerStatus",
    "ProposalDropped",
    "RaftNode",
    "RaftUsageError",
    "ReadState",
    "Ready",
    "Role",
    "Snapshot",
    "SnapshotMeta",
    "SoftState",
    "Status",
    "WireError",
    "bootstrap",
    "from_wire",
    "to_wire",
]
