"""The speaker's routing shell: a `RouteSink` that runs the routing core for every session.

Sessions hand it received UPDATEs and up/down events; it feeds the pure `RoutingTable`,
packs the resulting per-peer work into UPDATE messages (many prefixes per message, grouped by
attribute set) and sends them on the Established sessions, and streams best-path changes to
subscribers (felixd). Graceful restart (RFC 4724, helper side): when a peer that negotiated
it drops without a NOTIFICATION (or, with RFC 8538's N bit, with one that is not a Hard
Reset), its paths stay as stale until its End-of-RIB or its restart time, whichever comes
first; the wait is per peer, not for all of them.

Its parts with state and timers of their own are mixins in modules of their own, so that each
reads apart: `ConvergenceWait` (convergence.py: graceful restart as the restarting speaker,
and the first snapshot after a cold start), `StaleRoutes` (stale_routes.py: a peer's routes
kept stale, as graceful-restart helper and across an enhanced route refresh) and
`MraiPacing` (mrai.py). sink_state.py holds the records they all use.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from bgpd.core.effects import DownReason
from bgpd.core.negotiation import Negotiated
from bgpd.core.restart import Deferral
from bgpd.core.routing.paths import LOCAL, Path, RouteKey, RoutingPeer
from bgpd.core.routing.policy import ACCEPT_ALL, parse_community, parse_large_community
from bgpd.core.routing.table import BestChange, PeerTables, RoutingTable
from bgpd.core.routing.update_groups import Outgoing
from bgpd.daemon.config import BgpdConfig, PeerKey
from bgpd.daemon.convergence import ConvergenceWait
from bgpd.daemon.mrai import MraiPacing
from bgpd.daemon.rib_rows import describe, describe_many, family_name
from bgpd.daemon.sink import PeerInfo, UpdateSender
from bgpd.daemon.sink_state import SinkSession, SinkStats, Subscriber, peer_id
from bgpd.daemon.stale_routes import (
    REFRESH_STALE_TIME,
    STALE_PATH_TIME,
    StaleRoutes,
    keeps_stale,
)
from bgpd.wire.attributes import PathAttributes
from bgpd.wire.context import AFI_IPV4, AFI_IPV6, IPV4_UNICAST, Family, WireContext
from bgpd.wire.messages import REFRESH_BORR, REFRESH_EORR, Update, end_of_rib
from bgpd.wire.prefix import Prefix, format_prefix, make_prefix
from bgpd.wire.update import from_external_peer, pack_updates, pack_withdrawals
from runtime.log import get_logger

log = get_logger("bgpd.routing")


def _packed(text: str) -> bytes:
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        return b""


@runtime_checkable
class RefreshRequester(Protocol):
    """A session that can ask its peer to re-send routes (RFC 2918)."""

    def send_route_refresh(self, afi: int, safi: int, subtype: int = 0) -> bool: ...


@dataclass(slots=True)
class _Packed:
    """One Outgoing packed for one encoding context, shared by the update group's members
    within one flush. `work` is held so its id cannot be reused while the memo lives."""

    work: Outgoing
    withdraw: list[bytes] | None = None
    announce: list[bytes] | None = None


Originations = dict[str, tuple[tuple[int, ...], tuple[tuple[int, int, int], ...]]]


def configured_originations(config: BgpdConfig) -> Originations:
    """`originate` (no communities) and `advertise` (with them), keyed by canonical prefix."""
    out: Originations = {str(ipaddress.ip_network(p)): ((), ()) for p in config.originate}
    for adv in config.advertise:
        out[str(ipaddress.ip_network(adv.prefix))] = (
            tuple(parse_community(c) for c in adv.communities),
            tuple(parse_large_community(c) for c in adv.large_communities),
        )
    return out


class RoutingSink(ConvergenceWait, StaleRoutes, MraiPacing):
    def __init__(self, config: BgpdConfig, *, max_paths: int = 8) -> None:
        router_id = int(ipaddress.IPv4Address(config.router_id))
        cluster = int(ipaddress.IPv4Address(config.cluster_id)) if config.cluster_id else None
        self.table = RoutingTable(
            router_id,
            config.local_as,
            cluster,
            max_paths=max_paths,
            ebgp_default_deny=config.ebgp_default_deny,
        )
        self.policies = config.peer_policies()  # session key -> (import, export) policy
        self.sessions: dict[str, SinkSession] = {}
        self.names: dict[str, str] = {}
        self.subscribers: list[Subscriber] = []
        self.stale_timers: dict[str, asyncio.TimerHandle] = {}
        self.stats = SinkStats()
        self.originated: dict[str, tuple[tuple[int, ...], tuple[tuple[int, int, int], ...]]] = {}
        self.api_originated: set[str] = set()  # announced over the API: kept across reloads
        self._rib_keys: list[RouteKey] | None = None  # sorted Loc-RIB keys for `rib` pages
        # RFC 4724 §4.1 restarting speaker: the deferral, its timer, held-back subscribers.
        self.deferral: Deferral | None = None
        self._deferral_timer: asyncio.TimerHandle | None = None
        self._held: list[Subscriber] = []
        self._restart_done = False
        self.on_restart_done: Callable[[], None] | None = None
        # Cold start: the first snapshot waits for initial convergence (module doc); the
        # same per-peer bookkeeping as the deferral, but nothing else is held back.
        self.convergence: Deferral | None = None
        self._convergence_timer: asyncio.TimerHandle | None = None
        self.clock: Callable[[], float] = lambda: asyncio.get_running_loop().time()
        # RFC 7313 §4 from the peer: (peer, family) -> its stale keys between BoRR and EoRR.
        self._refreshing: dict[tuple[str, Family], set[RouteKey]] = {}
        self._refresh_timers: dict[tuple[str, Family], asyncio.TimerHandle] = {}
        self.refresh_stale_time = REFRESH_STALE_TIME
        self.stale_path_time = STALE_PATH_TIME
        # Within one flush: (id(work), context) -> its packed UPDATEs (`_packing_once`).
        self._packed: dict[tuple[int, WireContext], _Packed] | None = None
        self.set_originations(configured_originations(config))

    def reconfigure(self, config: BgpdConfig) -> None:
        """A reload: identity changes reset every session anyway; originations follow."""
        self.table.router_id = int(ipaddress.IPv4Address(config.router_id))
        self.table.local_as = config.local_as
        if config.cluster_id:
            self.table.cluster_id = int(ipaddress.IPv4Address(config.cluster_id))
        else:
            self.table.cluster_id = self.table.router_id
        wanted = configured_originations(config)
        api_only = {
            p: v for p, v in self.originated.items() if p not in wanted and p in self.api_originated
        }
        self.set_originations(wanted | api_only)
        self.table.ebgp_default_deny = config.ebgp_default_deny
        self.policies = config.peer_policies()
        self.apply_policies()
        mrai = {p.key: p.mrai for p in config.peers}
        for session in self.sessions.values():
            session.mrai = mrai.get(session.info.key, session.mrai)
        if any(s.mrai_held for s in self.sessions.values()):
            self.mrai_tick()  # a shorter (or no) interval may already be over

    def apply_policies(self) -> None:
        """Each Established session runs its configured policies (after a reload).

        A changed export policy sends only the difference, withdrawals included; a changed
        import policy asks the peer to re-send its routes (RFC 2918), which then pass it (the
        Adj-RIB-In holds routes after import policy). A peer without route refresh has its
        Adj-RIB-In re-evaluated here when the old policy was accept-all, which kept every
        route as received; after any other policy only routes it sends from now on pass the
        new one."""
        keys: list[RouteKey] | None = None
        for session in list(self.sessions.values()):
            tables = self.table.peers.get(session.role.id)
            wanted = self.policies.get(session.info.key)
            if tables is None or wanted is None:
                continue
            imp, exp = wanted
            if exp != tables.export_policy:
                self.table.set_export_policy(session.role.id, exp)  # moves its update group
                if not self.deferring:  # else the table goes out when selection is done
                    keys = list(self.table.decisions) if keys is None else keys
                    self._send(session, self.table.outgoing(session.role.id, keys))
            if imp != tables.import_policy:
                as_received = tables.import_policy is ACCEPT_ALL
                tables.import_policy = imp
                refresh = session.out if isinstance(session.out, RefreshRequester) else None
                # One answer for all families: route refresh is negotiated per session.
                asked = refresh is not None and all(
                    refresh.send_route_refresh(*f) for f in session.negotiated.families
                )
                log.info("policy.import_changed", peer=session.info.name, route_refresh=asked)
                if not asked and as_received:
                    self._flush(self._reimport(tables))

    def _reimport(self, tables: PeerTables) -> list[BestChange]:
        """Pass a peer's Adj-RIB-In, as received, through its import policy again: each
        shared path once with all its prefixes, as if the peer had re-sent that UPDATE.
        Stale paths (RFC 4724) are left for the peer's End-of-RIB to settle."""
        batches: dict[tuple[Family, int], tuple[Path, list[Prefix]]] = {}
        for (family, prefix), path in list(tables.adj_in.items()):
            if not path.stale:
                batches.setdefault((family, id(path)), (path, []))[1].append(prefix)
        changes: list[BestChange] = []
        for (family, _), (path, prefixes) in batches.items():
            changes += self.table.receive(
                tables.peer.id, family, prefixes, path.attrs, path.next_hop
            )
        return changes

    # -- originations (config and API) ---------------------------------------------------
    def set_originations(
        self, wanted: dict[str, tuple[tuple[int, ...], tuple[tuple[int, int, int], ...]]]
    ) -> None:
        """Make the originated prefixes exactly `wanted` (prefix -> communities, large)."""
        changes: list[BestChange] = []
        for text in list(self.originated):
            if text not in wanted:
                changes += self._withdraw_local(text)
        for text, (communities, large) in wanted.items():
            if self.originated.get(text) != (communities, large):
                changes += self._originate(text, communities, large)
        self._flush(changes)

    def announce(
        self,
        text: str,
        communities: tuple[int, ...] = (),
        large: tuple[tuple[int, int, int], ...] = (),
    ) -> None:
        self.api_originated.add(str(ipaddress.ip_network(text)))
        self._flush(self._originate(text, communities, large))

    def withdraw(self, text: str) -> bool:
        if text not in self.originated:
            return False
        self.api_originated.discard(text)
        self._flush(self._withdraw_local(text))
        return True

    def _originate(
        self, text: str, communities: tuple[int, ...], large: tuple[tuple[int, int, int], ...]
    ) -> list[BestChange]:
        net = ipaddress.ip_network(text)
        family = (AFI_IPV6 if net.version == 6 else AFI_IPV4, 1)
        self.originated[str(net)] = (communities, large)
        attrs = PathAttributes(
            origin=0,
            as_path=(),
            communities=tuple(sorted(communities)),
            large_communities=tuple(sorted(large)),
        )
        return self.table.originate(family, make_prefix(str(net)), attrs)

    def _withdraw_local(self, text: str) -> list[BestChange]:
        net = ipaddress.ip_network(text)
        self.originated.pop(str(net), None)
        family = (AFI_IPV6 if net.version == 6 else AFI_IPV4, 1)
        return self.table.withdraw_local(family, make_prefix(str(net)))

    # -- RouteSink ------------------------------------------------------------------------
    def on_session_up(self, peer: PeerInfo, negotiated: Negotiated, out: UpdateSender) -> None:
        pid = peer_id(peer.key)
        timer = self.stale_timers.pop(pid, None)
        if timer is not None:
            timer.cancel()
        role = RoutingPeer(
            id=pid,
            name=peer.name,
            local_as=peer.local_as,
            remote_as=peer.remote_as,
            router_id=negotiated.remote_id,
            address=_packed(peer.key[0]),
            local_address=_packed(peer.local_address),
            rr_client=peer.rr_client,
            next_hop=peer.next_hop if peer.next_hop in ("auto", "self", "keep") else "auto",  # type: ignore[arg-type]
            families=tuple(negotiated.families),
        )
        self.names[pid] = peer.name
        self.table.add_peer(role, *self.policies.get(peer.key, (None, None)))
        session = SinkSession(peer, role, out, negotiated, mrai=peer.mrai)
        self.sessions[pid] = session
        if timer is not None:
            self._stale_on_return(pid, negotiated)
        if self.converging:
            assert self.convergence is not None
            # Waited for whether or not it does graceful restart (End-of-RIB is sent by most
            # speakers anyway, and its own bound covers one that does not); a restarting peer
            # is no deadlock here, since our table and End-of-RIB go out below at once.
            self.convergence.session_up(pid, self.clock(), tuple(negotiated.families), True)
            self._check_convergence()
        if self.deferring:
            assert self.deferral is not None
            gr = negotiated.graceful_restart is not None
            self.deferral.session_up(
                pid, self.clock(), tuple(negotiated.families), gr, negotiated.peer_restarting
            )
            self._check_deferral()  # the table and End-of-RIB go out when selection is done
            return
        self._send(session, self.table.full_table(pid), paced=False)
        for afi, safi in negotiated.families:
            out.send_update(end_of_rib(afi, safi))

    def on_session_down(self, peer: PeerInfo, reason: DownReason) -> None:
        pid = peer_id(peer.key)
        session = self.sessions.pop(pid, None)
        if session is None:
            return
        self._mrai_cancel(session)
        # A timer left from the peer's last return (`stale_path_time`, set while we waited for
        # its End-of-RIB) must not sweep what this new restart keeps: its own restart time
        # starts now (RFC 4724 §4.2).
        leftover = self.stale_timers.pop(pid, None)
        if leftover is not None:
            leftover.cancel()
        if self.deferral is not None:
            self.deferral.session_down(pid)
        if self.convergence is not None:
            self.convergence.session_down(pid)
        for pending in [k for k in self._refreshing if k[0] == pid]:
            self._end_refresh_timer(*pending)
            del self._refreshing[pending]
        gr = session.negotiated.graceful_restart
        keep = keeps_stale(session.negotiated, reason)
        changes = self.table.remove_peer(pid, keep_stale=keep)
        if keep and gr is not None:
            log.info("gr.helper", peer=peer.name, restart_time=gr.restart_time)
            loop = asyncio.get_running_loop()
            self.stale_timers[pid] = loop.call_later(gr.restart_time, self._restart_expired, pid)
        self._flush(changes)

    def on_update(self, peer: PeerInfo, update: Update) -> None:
        pid = peer_id(peer.key)
        if pid not in self.sessions:
            return
        if not self.sessions[pid].role.ibgp:
            update = from_external_peer(update)  # RFC 7606 §7.5, §7.9, §7.10
        self.stats.updates_in += 1
        if self._refreshing:
            self._refreshed(pid, update)
        eor = update.end_of_rib
        if eor is not None:
            self.stats.stale_sweeps += 1
            self._flush(self.table.sweep_stale(pid, eor))
            if self.deferring:
                assert self.deferral is not None
                self.deferral.end_of_rib(pid, eor, self.clock())
                self._check_deferral()
            if self.converging:
                assert self.convergence is not None
                self.convergence.end_of_rib(pid, eor, self.clock())
                self._check_convergence()
            return
        if update.malformations:
            # RFC 7606 §8: errors handled by treat-as-withdraw or attribute discard are logged.
            log.warning(
                "update.rfc7606",
                peer=peer.name,
                cases=",".join(m.case for m in update.malformations),
                treat_as_withdraw=update.treat_as_withdraw,
            )
        changes: list[BestChange] = []
        attrs = update.attributes
        announce_ok = not update.treat_as_withdraw
        v4_withdrawn: Sequence[Prefix] = update.withdrawn
        if update.treat_as_withdraw:
            v4_withdrawn = (*update.withdrawn, *update.nlri)  # RFC 7606 §2
        if v4_withdrawn or update.nlri:
            nh = attrs.next_hop if attrs is not None and attrs.next_hop is not None else b""
            changes += self.table.receive(
                pid, IPV4_UNICAST, update.nlri if announce_ok else (), attrs, nh, v4_withdrawn
            )
        mu = update.mp_unreach
        if mu is not None and mu.withdrawn:
            changes += self.table.receive(pid, (mu.afi, mu.safi), (), None, b"", mu.withdrawn)
        mr = update.mp_reach
        if mr is not None and mr.nlri:
            family = (mr.afi, mr.safi)
            if announce_ok:
                changes += self.table.receive(pid, family, mr.nlri, attrs, mr.next_hop)
            else:
                changes += self.table.receive(pid, family, (), None, b"", mr.nlri)
        self._flush(changes)

    def on_route_refresh(self, peer: PeerInfo, afi: int, safi: int, out: UpdateSender) -> None:
        """A ROUTE-REFRESH from the peer, or a soft reload of its settings (which may have
        changed its role: route-reflector client, next-hop mode)."""
        session = self.sessions.get(peer_id(peer.key))
        if session is None or self.deferring:
            return  # while deferring, the whole table goes out when selection is done
        role = replace(
            session.role,
            rr_client=peer.rr_client,
            next_hop=peer.next_hop if peer.next_hop in ("auto", "self", "keep") else "auto",  # type: ignore[arg-type]
        )
        if role != session.role:
            session.role = role
            session.info = peer
            self._flush(self.table.update_peer(role))
            self.resync_all()
        work = self.table.full_table(session.role.id)
        # RFC 7313 §4: with enhanced route refresh the re-send is bracketed by BoRR and EoRR,
        # and the peer sweeps what we did not re-send; otherwise End-of-RIB closes it.
        enhanced = session.negotiated.enhanced_route_refresh and isinstance(out, RefreshRequester)
        if enhanced:
            assert isinstance(out, RefreshRequester)
            out.send_route_refresh(afi, safi, REFRESH_BORR)
        self._send(session, work, paced=False)
        if enhanced:
            assert isinstance(out, RefreshRequester)
            out.send_route_refresh(afi, safi, REFRESH_EORR)
        else:
            out.send_update(end_of_rib(afi, safi))
        self.stats.refreshes_out += 1

    def resync_all(self) -> None:
        """Bring every peer's Adj-RIB-Out in line with the current rules (after a reload
        changed a role or the cluster id): only the differences are sent."""
        if self.deferring:
            return
        keys = list(self.table.decisions)
        with self._packing_once():
            for session in list(self.sessions.values()):
                work = self.table.outgoing(session.role.id, keys)
                if work:
                    self._send(session, work)

    def prefix_counts(self, key: PeerKey) -> dict[str, int]:
        return {family_name(f): n for f, n in self.table.adj_in_count(peer_id(key)).items()}

    # -- output -----------------------------------------------------------------------------
    def _flush(self, changes: list[BestChange]) -> None:
        if not changes:
            return
        self._rib_keys = None  # the Loc-RIB changed: `rib` sorts again on its next call
        self.stats.best_changes += len(changes)
        if self.deferring:
            return  # RFC 4724 §4.1: nothing is advertised or streamed until selection is done
        keys = [c.key for c in changes]
        # None stands for "no best path any more" ("" is LOCAL, the source of our own paths).
        sources = {c.decision.best.source if c.decision.best is not None else None for c in changes}
        with self._packing_once():
            self._flush_sessions(changes, keys, sources)
        self._publish(changes)

    def _flush_sessions(
        self, changes: list[BestChange], keys: list[RouteKey], sources: set[str | None]
    ) -> None:
        for session in list(self.sessions.values()):
            pid = session.role.id
            todo = keys
            if pid in sources or None in sources:
                # A best path is never exported back to the peer it came from (export_path),
                # and a prefix with no best path only needs a withdrawal where the Adj-RIB-Out
                # holds it: for those prefixes the only possible work is on what this peer's
                # Adj-RIB-Out holds. A table-sized batch from one peer thus costs that peer
                # (and every peer, for a full withdrawal of prefixes it never got) one dict
                # probe per prefix, not an export.
                adj_out = self.table.peers[pid].adj_out
                if len(sources) == 1:
                    # One UPDATE's batch (a single source): all or nothing, tested in C.
                    if adj_out.keys().isdisjoint(keys):
                        continue
                    todo = keys
                else:
                    todo = [
                        c.key
                        for c in changes
                        if (c.decision.best is not None and c.decision.best.source != pid)
                        or c.key in adj_out
                    ]
                    if not todo:
                        continue
            work = self.table.outgoing(pid, todo)
            if work:
                self._send(session, work)

    @contextlib.contextmanager
    def _packing_once(self) -> Iterator[None]:
        """Members of one update group get the identical Outgoing from `table.outgoing`; in
        this scope it is packed once per encoding context (4-octet AS, ADD-PATH, extended
        message: `WireContext` equality; the families are the work's own), not once per
        session. With 100 eBGP peers in one group that is 1 pack instead of 100. The memo
        lives for one scope only: an Outgoing is not reused across flushes, and ids are."""
        if self._packed is not None:  # nested: the outer scope's memo serves
            yield
            return
        self._packed = {}
        try:
            yield
        finally:
            self._packed = None

    def _memo(self, work: Outgoing, ctx: WireContext) -> _Packed | None:
        memo = self._packed
        if memo is None:
            return None
        key = (id(work), ctx)
        packed = memo.get(key)
        if packed is None or packed.work is not work:
            packed = memo[key] = _Packed(work)
        return packed

    def _pack_withdrawals(self, work: Outgoing, ctx: WireContext) -> list[bytes]:
        packed = self._memo(work, ctx)
        if packed is not None and packed.withdraw is not None:
            return packed.withdraw
        out = [
            data
            for family, prefixes in work.withdraw.items()
            for data in pack_withdrawals(prefixes, ctx, afi=family[0], safi=family[1])
        ]
        if packed is not None:
            packed.withdraw = out
        return out

    def _pack_announcements(self, work: Outgoing, ctx: WireContext) -> list[bytes]:
        packed = self._memo(work, ctx)
        if packed is not None and packed.announce is not None:
            return packed.announce
        out = [
            data
            for (family, exported), prefixes in work.announce.items()
            for data in pack_updates(
                exported.attrs,
                prefixes,
                ctx,
                afi=family[0],
                safi=family[1],
                next_hop=exported.next_hop,
            )
        ]
        if packed is not None:
            packed.announce = out
        return out

    def _send(self, session: SinkSession, work: Outgoing, paced: bool = True) -> None:
        """Pack and send one peer's work. With MRAI, announcements within `mrai` seconds of
        the last burst are held (their keys; the Adj-RIB-Out already says what to send) and
        go out together when the interval is over; withdrawals are never held (RFC 4271
        §9.2.1.1). A full-table send (`paced=False`) is never held: End-of-RIB follows it."""
        # The sender wakes its own runner, so UPDATEs queued here from another peer's event
        # go out on the next loop turn (bgpd/daemon/runner.py `_Sender`).
        if work.withdraw:
            out = session.out
            messages = self._pack_withdrawals(work, out.context)
            for data in messages:
                out.send_encoded(data)
            self.stats.updates_out += len(messages)
        if not work.announce:
            return
        if not paced:
            self._mrai_cancel(session)  # this send covers everything held
        elif session.mrai > 0:
            now = self.clock()
            due = None if session.last_announce is None else session.last_announce + session.mrai
            if session.mrai_held or (due is not None and now < due):
                for (family, _), prefixes in work.announce.items():
                    session.mrai_held.update(dict.fromkeys((family, p) for p in prefixes))
                self._mrai_arm(session, due if due is not None else now)
                return
        session.last_announce = self.clock() if session.mrai > 0 else None
        self._announce(session, work)

    def _announce(self, session: SinkSession, work: Outgoing) -> None:
        out = session.out
        messages = self._pack_announcements(work, out.context)
        for data in messages:
            out.send_encoded(data)
        self.stats.updates_out += len(messages)

    # -- best-path stream -------------------------------------------------------------------
    def snapshot(self) -> list[dict[str, object]]:
        return describe_many(self.table.decisions.items(), self.names)

    def subscribe(self, push: Callable[[dict[str, object]], bool]) -> Subscriber:
        sub = Subscriber(push)
        if self.deferring or self.converging:
            # Restarting, or just started: the first snapshot waits for the end of the
            # deferral, or for initial convergence (module doc).
            self._held.append(sub)
            return sub
        self.subscribers.append(sub)
        sub.needs_resync = not push({"type": "snapshot", "routes": self.snapshot()})
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        if sub in self.subscribers:
            self.subscribers.remove(sub)
        if sub in self._held:
            self._held.remove(sub)

    def _publish(self, changes: list[BestChange]) -> None:
        if not self.subscribers:
            return
        routes = describe_many(((c.key, c.decision) for c in changes), self.names)
        gone = [format_prefix(c.key[1], c.key[0][0]) for c in changes if c.decision.best is None]
        delta: dict[str, object] = {"type": "delta", "routes": routes, "withdrawn": gone}
        for sub in list(self.subscribers):
            if sub.needs_resync:
                # It fell behind: once it can take a message again, it gets everything anew.
                sub.needs_resync = not sub.push({"type": "resync", "routes": self.snapshot()})
            else:
                sub.needs_resync = not sub.push(delta)
            sub.sent += 1

    def rib(
        self, prefix: str = "", peer: str = "", offset: int = 0, limit: int = 1000
    ) -> dict[str, object]:
        """Loc-RIB entries for the API: filtered by prefix (exact or containing) and source.

        The sorted key list is kept between calls until the Loc-RIB changes (paging through a
        full table sorts it once), and the prefix filter compares integers, not ip_network
        objects."""
        if self._rib_keys is None:
            self._rib_keys = sorted(self.table.decisions)
        decisions = self.table.decisions
        want = ipaddress.ip_network(prefix, strict=False) if prefix else None
        if want is not None:
            afi = AFI_IPV6 if want.version == 6 else AFI_IPV4
            bits, wl = want.max_prefixlen, want.prefixlen
            wtop = int(want.network_address) >> (bits - wl)
        out = []
        for key in self._rib_keys:
            decision = decisions.get(key)
            if decision is None or decision.best is None:
                continue
            if want is not None:
                p = key[1]
                if key[0][0] != afi or p[0] < wl:
                    continue
                addr = int.from_bytes(p[1:], "big") << (bits - 8 * (len(p) - 1))
                if addr >> (bits - wl) != wtop:
                    continue
            if peer:
                source = (
                    "local"
                    if decision.best.source == LOCAL
                    else self.names.get(decision.best.source, decision.best.source)
                )
                if peer not in (source, decision.best.source.split("|")[0]):
                    continue
            out.append((key, decision))
        page = out[offset : offset + limit]
        return {
            "total": len(out),
            "offset": offset,
            "next_offset": offset + len(page) if offset + len(page) < len(out) else None,
            "routes": [
                describe(k, d, self.names) | {"candidates": len(self.table.candidates.get(k, {}))}
                for k, d in page
            ],
        }
