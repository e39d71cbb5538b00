"""The watch hub: etcd v3 watches over the state machine's revision log (etcd `mvcc/watchable_store.go`).

Pure and pull-based. The state machine pushes each committed revision (`on_commit`) and each
compaction (`on_compact`); the server's shell drains with `ready()` and `take(watch_id)` and
writes the responses to its streams. Nothing here can block `apply`.

Guarantees (etcd api_guarantees.md "Watch APIs"; each has its own test):
- ordered: events reach a watcher in revision order, and within a revision in write order;
- unique: an event is delivered once; a watcher's cursor (`next_rev`) only moves forward;
- atomic: a `take` never splits the events of one revision between two responses;
- reliable and resumable: a watcher from `start_revision` gets every matching event from there on,
  replayed from the log, so a client that reconnects at last-seen + 1 has no gap;
- compaction: a watcher whose next revision was compacted away is cancelled with
  `compact_revision` (the client must re-list, it cannot resume);
- bounded: a caught-up ("synced") watcher buffers at most `max_buffered_events`; beyond that it is
  cancelled with a reason instead of holding memory or stalling writes (etcd #17529); a watcher
  replaying history holds no buffer at all, only its cursor into the shared log;
- progress: a progress notification (no events, `revision` = current) is only sent to a watcher
  that has received every event up to that revision.

Synced watchers with the same (range, filters, prev_kv) share a group, so a revision is matched
once per distinct watch shape rather than once per watcher (a thousand Calico nodes watch the
same two dozen prefixes).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import IntEnum

from store.kv.machine import KVStateMachine
from store.kv.messages import Event, EventType
from store.kv.mvcc import in_range

COMPACTED_REASON = "mvcc: required revision has been compacted"


class WatchFilter(IntEnum):
    NOPUT = 0
    NODELETE = 1


@dataclass(frozen=True, slots=True)
class WatchCreateRequest:
    """etcdserverpb.WatchCreateRequest. start_revision 0: from the next revision on."""

    key: bytes
    range_end: bytes = b""
    start_revision: int = 0
    prev_kv: bool = False
    filters: tuple[WatchFilter, ...] = ()
    progress_notify: bool = False
    watch_id: int = 0  # 0: the hub picks one


@dataclass(frozen=True, slots=True)
class WatchResponse:
    """etcdserverpb.WatchResponse for one watch; `revision` is the header revision."""

    watch_id: int
    revision: int
    events: tuple[Event, ...] = ()
    created: bool = False
    canceled: bool = False
    compact_revision: int = 0
    cancel_reason: str = ""


_GroupKey = tuple[bytes, bytes, bool, bool, bool]  # key, range_end, no_put, no_delete, prev_kv


class _Group:
    __slots__ = ("key", "members", "no_delete", "no_put", "prev_kv", "range_end")

    def __init__(self, gk: _GroupKey) -> None:
        self.key, self.range_end, self.no_put, self.no_delete, self.prev_kv = gk
        self.members: dict[int, _Watcher] = {}

    def select(self, events: tuple[Event, ...]) -> tuple[Event, ...]:
        """The events of one revision this shape of watch sees, prev_kv stripped if unwanted."""
        key, end = self.key, self.range_end
        out: list[Event] = []
        for ev in events:
            if not in_range(ev.kv.key, key, end):
                continue
            if ev.type is EventType.PUT:
                if self.no_put:
                    continue
            elif self.no_delete:
                continue
            if not self.prev_kv and ev.prev_kv is not None:
                ev = Event(ev.type, ev.kv, None)
            out.append(ev)
        return tuple(out)


class _Watcher:
    __slots__ = (
        "buffer",
        "buffered",
        "cancel_reason",
        "canceled",
        "compact_revision",
        "delivered",
        "group_key",
        "id",
        "next_rev",
        "progress_notify",
        "synced",
    )

    def __init__(self, watch_id: int, gk: _GroupKey, next_rev: int, progress: bool) -> None:
        self.id = watch_id
        self.group_key = gk
        self.next_rev = next_rev  # first revision not yet scanned (meaningful when not synced)
        self.synced = False
        self.progress_notify = progress
        self.buffer: deque[tuple[int, tuple[Event, ...]]] = deque()
        self.buffered = 0
        self.canceled = False
        self.cancel_reason = ""
        self.compact_revision = 0
        self.delivered = False  # events taken since the last progress round


class WatchHub:
    def __init__(
        self,
        machine: KVStateMachine,
        max_buffered_events: int = 8192,
        max_scan_revisions: int = 4096,
    ) -> None:
        self.max_buffered_events = max_buffered_events
        self.max_scan_revisions = max_scan_revisions
        self._watchers: dict[int, _Watcher] = {}
        self._key_groups: dict[bytes, dict[_GroupKey, _Group]] = {}
        self._range_groups: dict[_GroupKey, _Group] = {}
        self._future: dict[int, list[_Watcher]] = {}  # start revision -> watchers waiting for it
        self._ready: set[int] = set()
        self._next_id = 1
        self.machine = machine
        self._rev = machine.revision
        machine.watch_hub = self

    # --- wiring to the state machine -----------------------------------------------------

    def attach(self, machine: KVStateMachine) -> None:
        """Follow a new state machine (one restored from a snapshot). Every watcher goes back
        to replaying from the log at its own cursor: nothing between the two is lost, and a
        watcher the snapshot compacted past is cancelled as compaction would have done."""
        old_rev = self._rev
        self.machine = machine
        self._rev = machine.revision
        machine.watch_hub = self
        self._key_groups.clear()
        self._range_groups.clear()
        waiting = [w for ws in self._future.values() for w in ws]
        self._future.clear()
        for w in self._watchers.values():
            if w.synced:
                w.synced = False
                w.next_rev = old_rev + 1
        for w in waiting:
            self._place(w)
        for w in list(self._watchers.values()):
            if w not in waiting and not w.canceled:
                self._place(w)

    def on_commit(self, rev: int, events: tuple[Event, ...]) -> None:
        self._rev = rev
        if self._key_groups or self._range_groups:
            groups: list[_Group] = list(self._range_groups.values())
            if self._key_groups:
                for ev in events:
                    by_key = self._key_groups.get(ev.kv.key)
                    if by_key:
                        groups.extend(by_key.values())
            slow: list[_Watcher] = []
            limit = self.max_buffered_events
            ready = self._ready
            # No group can appear twice: a key changes at most once per revision.
            for group in groups:
                selected = group.select(events)
                if not selected:
                    continue
                item = (rev, selected)
                n = len(selected)
                for w in group.members.values():
                    w.buffer.append(item)
                    w.buffered += n
                    ready.add(w.id)
                    if w.buffered > limit:
                        slow.append(w)
            for w in slow:
                self._cancel(w, f"watcher too slow: over {limit} events buffered", 0)
        waiting = self._future.pop(rev + 1, None)
        if waiting:
            for w in waiting:
                self._join(w)

    def on_compact(self, rev: int) -> None:
        for w in list(self._watchers.values()):
            if not w.synced and not w.canceled and w.next_rev < rev:
                self._cancel(w, COMPACTED_REASON, rev)

    # --- watcher lifecycle ---------------------------------------------------------------

    def create(self, req: WatchCreateRequest) -> WatchResponse:
        """Register a watch; the answer is the `created` response. A start revision that was
        compacted gives a watch that is cancelled at once (taken by the next `take`)."""
        watch_id = req.watch_id or self._next_free_id()
        if watch_id in self._watchers:
            return WatchResponse(
                watch_id, self._rev, created=True, canceled=True, cancel_reason="duplicate watch ID"
            )
        gk: _GroupKey = (
            req.key,
            req.range_end,
            WatchFilter.NOPUT in req.filters,
            WatchFilter.NODELETE in req.filters,
            req.prev_kv,
        )
        start = req.start_revision or self._rev + 1
        w = _Watcher(watch_id, gk, start, req.progress_notify)
        self._watchers[watch_id] = w
        self._place(w)
        return WatchResponse(watch_id, self._rev, created=True)

    def cancel(self, watch_id: int) -> WatchResponse | None:
        """The client's cancel: the final response for the watch, or None if unknown."""
        w = self._watchers.pop(watch_id, None)
        if w is None:
            return None
        self._leave(w)
        self._ready.discard(watch_id)
        return WatchResponse(watch_id, self._rev, canceled=True)

    def _next_free_id(self) -> int:
        while self._next_id in self._watchers:
            self._next_id += 1
        self._next_id += 1
        return self._next_id - 1

    def _place(self, w: _Watcher) -> None:
        """Put a not-synced watcher where its cursor says: caught up, waiting, or replaying."""
        compact = self.machine.compact_revision
        if w.next_rev < compact:
            self._cancel(w, COMPACTED_REASON, compact)
        elif w.next_rev == self._rev + 1:
            self._join(w)
        elif w.next_rev > self._rev + 1:
            self._future.setdefault(w.next_rev, []).append(w)
        else:
            self._ready.add(w.id)

    def _join(self, w: _Watcher) -> None:
        gk = w.group_key
        if gk[1]:
            table = self._range_groups
        else:
            table = self._key_groups.setdefault(gk[0], {})
        group = table.get(gk)
        if group is None:
            group = table[gk] = _Group(gk)
        group.members[w.id] = w
        w.synced = True

    def _leave(self, w: _Watcher) -> None:
        if w.synced:
            gk = w.group_key
            table = self._range_groups if gk[1] else self._key_groups.get(gk[0], {})
            group = table[gk]
            del group.members[w.id]
            if not group.members:
                del table[gk]
                if not gk[1] and not table:
                    del self._key_groups[gk[0]]
            w.synced = False
        else:
            waiting = self._future.get(w.next_rev)
            if waiting and w in waiting:
                waiting.remove(w)
                if not waiting:
                    del self._future[w.next_rev]

    def _cancel(self, w: _Watcher, reason: str, compact_revision: int) -> None:
        self._leave(w)
        w.canceled = True
        w.cancel_reason = reason
        w.compact_revision = compact_revision
        w.buffer.clear()
        w.buffered = 0
        self._ready.add(w.id)

    # --- draining ------------------------------------------------------------------------

    def ready(self) -> list[int]:
        """Watch ids with something to take (events or a cancellation), ascending."""
        return sorted(self._ready)

    def pending(self, watch_id: int) -> bool:
        return watch_id in self._ready

    def take(self, watch_id: int, max_events: int = 1000) -> WatchResponse | None:
        """The next response for a watch, or None if it has nothing to send now.

        Revisions are never split, so a response can exceed `max_events` by the size of one
        revision. Replaying history scans at most `max_scan_revisions` per call, so one call's
        work stays bounded: None while `pending(watch_id)` is still true means "call again"
        (the watch stays in `ready()`)."""
        w = self._watchers.get(watch_id)
        if w is None:
            self._ready.discard(watch_id)
            return None
        if w.canceled:
            del self._watchers[watch_id]
            self._ready.discard(watch_id)
            return WatchResponse(
                watch_id,
                self._rev,
                canceled=True,
                compact_revision=w.compact_revision,
                cancel_reason=w.cancel_reason,
            )
        buffer = w.buffer
        if w.synced and len(buffer) == 1:
            # The common case of a caught-up watcher: hand out the revision's tuple itself. All
            # members of a group share it, so a shell can encode it once for all of them.
            last, evs = buffer.popleft()
            w.buffered = 0
            w.delivered = True
            self._ready.discard(watch_id)
            return WatchResponse(watch_id, self._rev, evs)
        events: list[Event] = []
        last = 0
        while buffer and len(events) < max_events:
            last, evs = buffer.popleft()
            w.buffered -= len(evs)
            events.extend(evs)
        if not buffer and not w.synced and len(events) < max_events:
            last = self._scan(w, events, max_events) or last
        more = bool(buffer) or (not w.synced and w.next_rev <= self._rev)
        if not more:
            self._ready.discard(watch_id)
        if not events:
            return None
        w.delivered = True
        # With nothing left behind, everything up to the head has been delivered (a progress
        # guarantee); otherwise only up to the last revision in this response.
        return WatchResponse(watch_id, last if more else self._rev, tuple(events))

    def take_ready(self, max_events: int = 1000) -> list[WatchResponse]:
        """One `take` for every ready watch, in watch-id order: the shell's drain loop."""
        out: list[WatchResponse] = []
        for watch_id in sorted(self._ready):
            resp = self.take(watch_id, max_events)
            if resp is not None:
                out.append(resp)
        return out

    def _scan(self, w: _Watcher, out: list[Event], max_events: int) -> int:
        """Replay revisions from the log at the watcher's cursor; join the group on reaching
        the head. Returns the last revision that produced events (0 if none)."""
        store = self.machine.store
        group = _Group(w.group_key)
        rev = max(w.next_rev, store.first_logged)  # revision 1, the empty store, has no events
        stop = min(self._rev, rev + self.max_scan_revisions - 1)
        last = 0
        while rev <= stop and len(out) < max_events:
            selected = group.select(store.events_at(rev))
            if selected:
                out.extend(selected)
                last = rev
            rev += 1
        w.next_rev = rev
        if rev == self._rev + 1:
            self._join(w)
        return last

    # --- progress ------------------------------------------------------------------------

    def request_progress(self, watch_id: int) -> WatchResponse | None:
        """WatchProgressRequest: a notification if the watch is caught up, else None (etcd
        sends none while it replays: the revision would promise events not yet delivered)."""
        w = self._watchers.get(watch_id)
        if w is None or w.canceled or not w.synced or w.buffer:
            return None
        return WatchResponse(watch_id, self._rev)

    def progress_due(self) -> list[WatchResponse]:
        """For the shell's progress timer (etcd: every 10 min): a notification for each
        progress_notify watch that is caught up and got no events since the last round."""
        out: list[WatchResponse] = []
        for watch_id, w in sorted(self._watchers.items()):
            if w.progress_notify and not w.delivered:
                note = self.request_progress(watch_id)
                if note is not None:
                    out.append(note)
            w.delivered = False
        return out

    def __len__(self) -> int:
        return len(self._watchers)
