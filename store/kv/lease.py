"""The leader's lease clock: which leases expired at `now`, as bounded batches of revoke requests.

Expiry is a leader decision (etcd `server/lease/lessor.go`): only the primary (the leader)
keeps deadlines; when a lease runs out it proposes a `LeaseRevokeRequest` through Raft, and the
revoke, once applied, deletes the lease's keys on every member. Time enters as `now` (seconds,
any monotonic origin); this module reads no clock.

Invariants and why:
- at most `max_revokes_per_second` revokes are issued over any interval (a token bucket), so
  a mass expiry does not flood the log (etcd #8097, #12105: etcd's leaseRevokeRate);
- a lease whose revoke was issued but not yet applied is offered again after `retry_interval`,
  never in the next batch (the proposal may have been lost with a leader change);
- `promote` gives every lease now + extend + its remaining TTL (the checkpointed remaining
  TTL if there is one, else the full TTL), so an election extends leases and never expires them
  in bulk (etcd #9888); `demote` forgets all deadlines: a follower expires nothing
  (etcd #12528, #15247: an old leader revoking everything);
- `renew` of a lease that has a checkpointed remaining TTL asks to clear it through Raft, so a
  later leader does not resurrect the shorter, stale value.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable

from store.kv.errors import ErrorKind, KVError
from store.kv.messages import LeaseCheckpoint, LeaseCheckpointRequest, LeaseInfo, LeaseRevokeRequest


class LeaseTracker:
    """Implements the state machine's `LeaseObserver`; set `machine.lease_observer = tracker`."""

    def __init__(
        self,
        max_revokes_per_second: float = 1000.0,
        retry_interval: float = 3.0,
        checkpoint_interval: float = 300.0,
        max_checkpoint_batch: int = 1000,
    ) -> None:
        self.max_revokes_per_second = max_revokes_per_second
        self.retry_interval = retry_interval  # etcd expiredLeaseRetryInterval
        self.checkpoint_interval = checkpoint_interval  # etcd defaultLeaseCheckpointInterval
        self.max_checkpoint_batch = max_checkpoint_batch  # etcd maxLeaseCheckpointBatchSize
        self.primary = False
        self._ttl: dict[int, int] = {}
        self._checkpointed: set[int] = set()  # leases with a non-zero persisted remaining TTL
        self._expiry: dict[int, float] = {}
        self._heap: list[tuple[float, int]] = []  # (deadline, id); stale entries skipped
        self._cp_heap: list[tuple[float, int]] = []  # (next checkpoint, id)
        self._unstamped: list[int] = []  # granted while primary, deadline set at the next `now`
        self._tokens = 0.0
        self._last: float | None = None

    # --- LeaseObserver: called by the state machine on apply ----------------------------

    def lease_granted(self, lease_id: int, ttl: int) -> None:
        self._ttl[lease_id] = ttl
        if self.primary:
            self._unstamped.append(lease_id)

    def lease_revoked(self, lease_id: int) -> None:
        self._ttl.pop(lease_id, None)
        self._expiry.pop(lease_id, None)
        self._checkpointed.discard(lease_id)

    def reset(self, leases: Iterable[LeaseInfo]) -> None:
        """Re-learn the lease set from a state machine (after a snapshot was installed)."""
        self._ttl = {lease.id: lease.ttl for lease in leases}
        self._checkpointed = {lease.id for lease in leases if lease.remaining_ttl > 0}
        if self.primary:
            for lease_id in list(self._expiry):
                if lease_id not in self._ttl:
                    del self._expiry[lease_id]
            self._unstamped.extend(i for i in sorted(self._ttl) if i not in self._expiry)

    # --- leadership ---------------------------------------------------------------------

    def promote(self, now: float, leases: Iterable[LeaseInfo], extend: float) -> None:
        """This member became leader; `leases` is the state machine's `leases()`, `extend` is
        typically the election timeout (etcd Promote(extend))."""
        self.primary = True
        self._ttl = {}
        self._checkpointed = set()
        self._expiry = {}
        self._heap = []
        self._cp_heap = []
        self._unstamped = []
        for lease in leases:
            self._ttl[lease.id] = lease.ttl
            remaining = lease.remaining_ttl if lease.remaining_ttl > 0 else lease.ttl
            if lease.remaining_ttl > 0:
                self._checkpointed.add(lease.id)
            self._set_deadline(lease.id, now + extend + remaining)
            self._schedule_checkpoint(lease.id, now)
        self._tokens = self._capacity
        self._last = now

    def demote(self) -> None:
        self.primary = False
        self._expiry.clear()
        self._heap.clear()
        self._cp_heap.clear()
        self._unstamped.clear()

    # --- leader duties ------------------------------------------------------------------

    @property
    def _capacity(self) -> float:
        return max(1.0, self.max_revokes_per_second / 2)

    def _set_deadline(self, lease_id: int, deadline: float) -> None:
        self._expiry[lease_id] = deadline
        heapq.heappush(self._heap, (deadline, lease_id))

    def _schedule_checkpoint(self, lease_id: int, now: float) -> None:
        # Only leases that outlive a checkpoint interval gain anything from a checkpoint.
        if self._ttl.get(lease_id, 0) > self.checkpoint_interval:
            heapq.heappush(self._cp_heap, (now + self.checkpoint_interval, lease_id))

    def _stamp(self, now: float) -> None:
        for lease_id in self._unstamped:
            ttl = self._ttl.get(lease_id)
            if ttl is not None:
                self._set_deadline(lease_id, now + ttl)
                self._schedule_checkpoint(lease_id, now)
        self._unstamped.clear()

    def renew(self, lease_id: int, now: float) -> tuple[int, LeaseCheckpointRequest | None]:
        """Keep-alive: (granted TTL, a checkpoint request to propose or None)."""
        if not self.primary:
            raise KVError(ErrorKind.NOT_LEADER, "keep-alives go to the leader")
        self._stamp(now)
        ttl = self._ttl.get(lease_id)
        if ttl is None:
            raise KVError(ErrorKind.LEASE_NOT_FOUND)
        self._set_deadline(lease_id, now + ttl)
        if lease_id in self._checkpointed:
            self._checkpointed.discard(lease_id)
            return ttl, LeaseCheckpointRequest((LeaseCheckpoint(lease_id, 0),))
        return ttl, None

    def remaining(self, lease_id: int, now: float) -> int:
        """Seconds left (rounded up, as etcd's TimeToLive); raises LEASE_NOT_FOUND."""
        self._stamp(now)
        ttl = self._ttl.get(lease_id)
        if ttl is None:
            raise KVError(ErrorKind.LEASE_NOT_FOUND)
        deadline = self._expiry.get(lease_id)
        if deadline is None:
            return ttl
        return max(0, math.ceil(deadline - now))

    def expired(self, now: float) -> list[LeaseRevokeRequest]:
        """Revokes to propose now: expired leases, earliest first, within the rate limit."""
        if not self.primary:
            return []
        self._stamp(now)
        if self._last is not None:
            self._tokens = min(
                self._capacity, self._tokens + (now - self._last) * self.max_revokes_per_second
            )
        self._last = now
        out: list[LeaseRevokeRequest] = []
        heap = self._heap
        while heap and heap[0][0] <= now and len(out) < int(self._tokens):
            deadline, lease_id = heapq.heappop(heap)
            if self._expiry.get(lease_id) != deadline:
                continue  # renewed, rescheduled or revoked since
            out.append(LeaseRevokeRequest(lease_id))
            self._set_deadline(lease_id, now + self.retry_interval)
        self._tokens -= len(out)
        return out

    def checkpoints(self, now: float) -> LeaseCheckpointRequest | None:
        """Remaining TTLs to persist, for leases longer than the checkpoint interval."""
        if not self.primary:
            return None
        self._stamp(now)
        items: list[LeaseCheckpoint] = []
        heap = self._cp_heap
        while heap and heap[0][0] <= now and len(items) < self.max_checkpoint_batch:
            _, lease_id = heapq.heappop(heap)
            deadline = self._expiry.get(lease_id)
            if deadline is None:
                continue
            remaining = max(1, math.ceil(deadline - now))
            items.append(LeaseCheckpoint(lease_id, remaining))
            self._checkpointed.add(lease_id)
            heapq.heappush(heap, (now + self.checkpoint_interval, lease_id))
        return LeaseCheckpointRequest(tuple(items)) if items else None

    def next_deadline(self) -> float | None:
        """When `expired` may next have work (for the shell's single timer); 0.0: at once."""
        if self._unstamped:
            return 0.0
        heap = self._heap
        while heap and self._expiry.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None
