"""`tabbyctl store ...`: etcdctl-like commands against tabby-store (any `StoreClient` endpoint).

    tabbyctl store get KEY [RANGE_END] [--prefix] [--rev N] [--limit N] [--keys-only]
                           [--count-only] [--serializable] [-w simple|json]
    tabbyctl store put KEY VALUE [--lease HEXID] [--prev-kv]
    tabbyctl store del KEY [RANGE_END] [--prefix] [--prev-kv]
    tabbyctl store watch KEY [--prefix] [--rev N] [--prev-kv]
    tabbyctl store lease grant TTL | revoke ID | timetolive ID [--keys] | list | keep-alive ID
    tabbyctl store status
    tabbyctl store member list | add ID PEER_ENDPOINT [--name N] [--voter] | remove ID | promote ID
    tabbyctl store move-leader ID
    tabbyctl store snapshot save FILE | restore FILE --data-dir DIR --initial-cluster ID=EP,...
    tabbyctl store compact REV
    tabbyctl store defrag
    tabbyctl store alarm list | disarm

Output follows etcdctl's "simple" format (key and value on their own lines, `OK` after a put,
lease IDs in hex); `-w json` prints one JSON object per response. Endpoints come from
`--endpoints` (comma separated) or $TABBY_STORE_ENDPOINTS, default the local member's socket.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from ipc import TLSConfig
from store.client import StoreClient, StoreUnavailableError, prefix_end
from store.kv import EventType, KeyValue, KVError

DEFAULT_ENDPOINT = "unix:/run/tabby/store.sock"


def _client(args: argparse.Namespace) -> StoreClient:
    eps = (args.endpoints or os.environ.get("TABBY_STORE_ENDPOINTS") or DEFAULT_ENDPOINT).split(",")
    tls = None
    if args.cacert or args.cert:
        tls = TLSConfig(
            Path(args.cert) if args.cert else None,
            Path(args.key) if args.key else None,
            Path(args.cacert) if args.cacert else None,
        )
    return StoreClient([e.strip() for e in eps if e.strip()], tls=tls, timeout=args.timeout)


def _kv_json(kv: KeyValue) -> dict[str, object]:
    return {
        "key": kv.key.decode(errors="replace"),
        "value": kv.value.decode(errors="replace"),
        "create_revision": kv.create_revision,
        "mod_revision": kv.mod_revision,
        "version": kv.version,
        "lease": kv.lease,
    }


def _print_kv(kv: KeyValue, args: argparse.Namespace) -> None:
    if args.write_out == "json":
        print(json.dumps(_kv_json(kv)))
        return
    sys.stdout.flush()  # keep print() output and raw bytes in order
    sys.stdout.buffer.write(kv.key + b"\n")
    if not getattr(args, "keys_only", False):
        sys.stdout.buffer.write(kv.value + b"\n")
    sys.stdout.flush()


def _range_end(args: argparse.Namespace) -> bytes:
    if getattr(args, "prefix", False):
        return prefix_end(args.key.encode())
    return (args.range_end or "").encode()


async def _get(kv: StoreClient, args: argparse.Namespace) -> int:
    r = await kv.range(
        args.key.encode(),
        _range_end(args),
        revision=args.rev,
        limit=args.limit,
        keys_only=args.keys_only,
        count_only=args.count_only,
        serializable=args.serializable,
    )
    if args.count_only:
        print(r.count)
        return 0
    for x in r.kvs:
        _print_kv(x, args)
    return 0


async def _put(kv: StoreClient, args: argparse.Namespace) -> int:
    r = await kv.put(
        args.key.encode(), args.value.encode(), lease=int(args.lease, 16), prev_kv=args.prev_kv
    )
    print("OK")
    if r.prev_kv is not None:
        _print_kv(r.prev_kv, args)
    return 0


async def _del(kv: StoreClient, args: argparse.Namespace) -> int:
    r = await kv.delete(args.key.encode(), _range_end(args), prev_kv=args.prev_kv)
    print(r.deleted)
    for x in r.prev_kvs:
        _print_kv(x, args)
    return 0


async def _watch(kv: StoreClient, args: argparse.Namespace) -> int:
    async for resp in kv.watch(
        args.key.encode(), _range_end(args), start_revision=args.rev, prev_kv=args.prev_kv
    ):
        if resp.canceled:
            print(
                f"watch canceled: {resp.cancel_reason} (compact revision {resp.compact_revision})"
            )
            return 1
        for ev in resp.events:
            print("PUT" if ev.type is EventType.PUT else "DELETE")
            if ev.prev_kv is not None and args.prev_kv:
                _print_kv(ev.prev_kv, args)
            _print_kv(ev.kv, args)
    return 0


async def _lease(kv: StoreClient, args: argparse.Namespace) -> int:
    op = args.lease_op
    if op == "grant":
        g = await kv.lease_grant(args.ttl)
        print(f"lease {g.id:016x} granted with TTL({g.ttl}s)")
    elif op == "revoke":
        await kv.lease_revoke(int(args.id, 16))
        print(f"lease {int(args.id, 16):016x} revoked")
    elif op == "timetolive":
        t = await kv.lease_time_to_live(int(args.id, 16), keys=args.keys)
        if t.ttl < 0:
            print(f"lease {t.id:016x} already expired")
        else:
            keys = ", ".join(k.decode(errors="replace") for k in t.keys)
            extra = f", attached keys([{keys}])" if args.keys else ""
            print(
                f"lease {t.id:016x} granted with TTL({t.granted_ttl}s), remaining({t.ttl}s){extra}"
            )
    elif op == "list":
        ids = await kv.lease_list()
        print(f"found {len(ids)} leases")
        for i in ids:
            print(f"{i:016x}")
    elif op == "keep-alive":
        lease_id = int(args.id, 16)
        while True:
            ttl = await kv.lease_keep_alive(lease_id)
            print(f"lease {lease_id:016x} keepalived with TTL({ttl})")
            if args.once:
                return 0
            await asyncio.sleep(max(ttl / 3, 0.5))
    return 0


async def _status(kv: StoreClient, args: argparse.Namespace) -> int:
    rows = []
    for i, ep in enumerate(kv.endpoints):
        try:
            st = await kv.status_raw(i)
        except Exception as exc:
            print(f"{ep}: unreachable: {exc}", file=sys.stderr)
            continue
        rows.append((ep, st))
    if args.write_out == "json":
        print(json.dumps([dict(st, endpoint=ep) for ep, st in rows]))
    else:
        for ep, st in rows:
            print(
                f"{ep}, {st['id']:x}, leader {st['leader']:x}, term {st['raft_term']}, "
                f"index {st['raft_index']}, applied {st['applied_index']}, revision "
                f"{st['revision']}, db {st['db_size']} B ({st.get('db_size_in_use', '?')} B "
                f"in use), learner {st['is_learner']}, "
                f"alarms {st['alarms']}"
            )
    return 0 if rows else 1


async def _member(kv: StoreClient, args: argparse.Namespace) -> int:
    op = args.member_op
    if op == "list":
        members = await kv.member_list()
    elif op == "add":
        members = await kv.member_add(
            args.id, args.peer_endpoint, name=args.name or "", learner=not args.voter
        )
        print(f'member {args.id:x} added; start it with initial_cluster_state = "existing"')
    elif op == "remove":
        members = await kv.member_remove(args.id)
    else:
        members = await kv.member_promote(args.id)
    for m in members:
        role = "learner" if m.is_learner else "voter"
        print(f"{m.id:x}, {m.name}, {m.peer_endpoint}, {role}")
    return 0


async def _move_leader(kv: StoreClient, args: argparse.Namespace) -> int:
    leader = await kv.move_leader(args.id)
    print(f"leadership transferred to {leader:x}")
    return 0


async def _snapshot(kv: StoreClient, args: argparse.Namespace) -> int:
    from store.server.restore import encode_backup, restore

    if args.snap_op == "save":
        blob = encode_backup(await kv.snapshot())
        await asyncio.to_thread(_write_atomically, Path(args.file), blob)
        print(f"Snapshot saved at {args.file} ({len(blob)} bytes)")
        return 0
    from store.server.config import parse_initial_cluster

    cluster = parse_initial_cluster(args.initial_cluster.split(","))
    blob = await asyncio.to_thread(Path(args.file).read_bytes)
    rev = await asyncio.to_thread(restore, blob, Path(args.data_dir), cluster, {})
    print(f"restored revision {rev} into {args.data_dir}")
    return 0


def _write_atomically(path: Path, blob: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(blob)
    os.replace(tmp, path)


async def _compact(kv: StoreClient, args: argparse.Namespace) -> int:
    r = await kv.compact(args.rev, physical=args.physical)
    print(f"compacted revision {args.rev} (store at {r.revision})")
    return 0


async def _defrag(kv: StoreClient, args: argparse.Namespace) -> int:
    # One replicated request: every member gives back the freed space at the same log index
    # (etcdctl defrag works per endpoint; tabby-store's quota must agree on every member).
    await kv.defragment()
    st = await kv.status_raw()
    print(f"Finished defragmenting the cluster (db {st['db_size']} B)")
    return 0


async def _alarm(kv: StoreClient, args: argparse.Namespace) -> int:
    if args.alarm_op == "list":
        for a in await kv.alarm_list():
            print(f"alarm:{a.name}")
    else:
        r = await kv.alarm_disarm()
        for a in r.alarms:
            print(f"alarm:{a.name}")
    return 0


def _run(
    command: Callable[[StoreClient, argparse.Namespace], Awaitable[int]],
) -> Callable[[argparse.Namespace], int]:
    def func(args: argparse.Namespace) -> int:
        if command is _snapshot and args.snap_op == "restore":
            return asyncio.run(_offline(command, args))

        async def go() -> int:
            kv = _client(args)
            try:
                return await command(kv, args)
            finally:
                await kv.close()

        try:
            return asyncio.run(go())
        except KVError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 1
        except StoreUnavailableError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
        except Exception as exc:  # the CLI reports, it does not dump tracebacks
            print(f"Error: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1

    return func


async def _offline(
    command: Callable[[StoreClient, argparse.Namespace], Awaitable[int]], args: argparse.Namespace
) -> int:
    try:
        return await command(None, args)  # type: ignore[arg-type]  # restore needs no client
    except Exception as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


def register(subparsers: Any) -> None:
    """Add the `store` command group to tabbyctl's argparse subparsers."""
    p = subparsers.add_parser("store", help="the tabby-store datastore (etcdctl-like)")
    p.add_argument("--endpoints", help="comma-separated endpoints (unix:PATH, tls://HOST:PORT)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per command")
    p.add_argument("--cacert", help="CA file for tls:// endpoints")
    p.add_argument("--cert", help="client certificate for mutual TLS")
    p.add_argument("--key", help="client key for mutual TLS")
    p.add_argument("-w", "--write-out", choices=["simple", "json"], default="simple")
    sub = p.add_subparsers(dest="store_cmd", metavar="COMMAND", required=True)

    g = sub.add_parser("get", help="get a key or range")
    g.add_argument("key")
    g.add_argument("range_end", nargs="?")
    g.add_argument("--prefix", action="store_true")
    g.add_argument("--rev", type=int, default=0)
    g.add_argument("--limit", type=int, default=0)
    g.add_argument("--keys-only", action="store_true")
    g.add_argument("--count-only", action="store_true")
    g.add_argument("--serializable", action="store_true", help="answer from the member's state")
    g.set_defaults(func=_run(_get))

    pt = sub.add_parser("put", help="put a key")
    pt.add_argument("key")
    pt.add_argument("value")
    pt.add_argument("--lease", default="0", help="lease ID in hex")
    pt.add_argument("--prev-kv", action="store_true")
    pt.set_defaults(func=_run(_put))

    d = sub.add_parser("del", help="delete a key or range")
    d.add_argument("key")
    d.add_argument("range_end", nargs="?")
    d.add_argument("--prefix", action="store_true")
    d.add_argument("--prev-kv", action="store_true")
    d.set_defaults(func=_run(_del))

    w = sub.add_parser("watch", help="watch a key or prefix")
    w.add_argument("key")
    w.add_argument("range_end", nargs="?")
    w.add_argument("--prefix", action="store_true")
    w.add_argument("--rev", type=int, default=0)
    w.add_argument("--prev-kv", action="store_true")
    w.set_defaults(func=_run(_watch))

    le = sub.add_parser("lease", help="lease grant/revoke/timetolive/list/keep-alive")
    lsub = le.add_subparsers(dest="lease_op", required=True)
    lg = lsub.add_parser("grant")
    lg.add_argument("ttl", type=int)
    for name in ("revoke", "timetolive", "keep-alive"):
        lp = lsub.add_parser(name)
        lp.add_argument("id", help="lease ID in hex")
        if name == "timetolive":
            lp.add_argument("--keys", action="store_true")
        if name == "keep-alive":
            lp.add_argument("--once", action="store_true")
    lsub.add_parser("list")
    le.set_defaults(func=_run(_lease))

    st = sub.add_parser("status", help="status of each endpoint")
    st.set_defaults(func=_run(_status))

    m = sub.add_parser("member", help="membership: list/add/remove/promote")
    msub = m.add_subparsers(dest="member_op", required=True)
    msub.add_parser("list")
    ma = msub.add_parser("add", help="add a member (as a learner unless --voter)")
    ma.add_argument("id", type=int)
    ma.add_argument("peer_endpoint")
    ma.add_argument("--name")
    ma.add_argument("--voter", action="store_true")
    for name in ("remove", "promote"):
        mp = msub.add_parser(name)
        mp.add_argument("id", type=int)
    m.set_defaults(func=_run(_member))

    ml = sub.add_parser("move-leader", help="transfer leadership to a member")
    ml.add_argument("id", type=int)
    ml.set_defaults(func=_run(_move_leader))

    sn = sub.add_parser("snapshot", help="save a backup, or restore one into a new data dir")
    ssub = sn.add_subparsers(dest="snap_op", required=True)
    ss = ssub.add_parser("save")
    ss.add_argument("file")
    sr = ssub.add_parser("restore")
    sr.add_argument("file")
    sr.add_argument("--data-dir", required=True)
    sr.add_argument("--initial-cluster", required=True, help="ID=PEER_ENDPOINT,...")
    sn.set_defaults(func=_run(_snapshot))

    c = sub.add_parser("compact", help="compact history up to a revision")
    c.add_argument("rev", type=int)
    c.add_argument("--physical", action="store_true")
    c.set_defaults(func=_run(_compact))

    df = sub.add_parser("defrag", help="give back the space compaction freed (every member)")
    df.set_defaults(func=_run(_defrag))

    a = sub.add_parser("alarm", help="list or disarm alarms")
    asub = a.add_subparsers(dest="alarm_op", required=True)
    asub.add_parser("list")
    asub.add_parser("disarm")
    a.set_defaults(func=_run(_alarm))


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m ctl.store ...`) until tabbyctl's main wires the group in."""
    parser = argparse.ArgumentParser(prog="tabbyctl")
    sub = parser.add_subparsers(dest="group", required=True)
    register(sub)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
