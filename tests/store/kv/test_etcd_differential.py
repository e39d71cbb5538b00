"""Differential test against Debian's etcd 3.4 (the reference recommends it as an oracle).

One etcd on loopback, driven through its JSON gateway; the same seeded random script of
puts, deletes, ranges (also at old revisions, sorted and filtered), nested txns, compactions and leases is applied
to it and to the state machine, and every response must agree: header revision, key-values,
more/count, prev_kv(s), txn branches and etcd's exact error messages.

Not scripted, because they differ on purpose (docs/kv.md): a txn putting a key inside a
from-key delete of the same txn, and ranges at old revisions inside txns (etcd 3.4 predates
the fix for #18667).
"""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.kv.messages import (
    CompactRequest,
    CompactResponse,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    ErrorResponse,
    KeyValue,
    LeaseGrantRequest,
    LeaseGrantResponse,
    LeaseRevokeRequest,
    LeaseRevokeResponse,
    OpResponse,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    Request,
    RequestOp,
    Response,
    SortOrder,
    SortTarget,
    TxnRequest,
    TxnResponse,
)
from tests.store.kv.helpers import Applier

Norm = tuple[object, ...]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Etcd:
    def __init__(self, url: str) -> None:
        self.url = url

    def post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                out: dict[str, object] = json.loads(resp.read())
        except urllib.error.HTTPError as err:
            out = json.loads(err.read())
        return out


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[Etcd]:
    client, peer = _free_port(), _free_port()
    proc = subprocess.Popen(
        [
            "etcd",
            "--name=diff",
            f"--data-dir={tmp_path / 'etcd'}",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=diff=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        node = Etcd(f"http://127.0.0.1:{client}")
        for _ in range(200):  # bounded wait for the first answer, at most ~20 s
            try:
                node.post("/v3/kv/range", {"key": _b64(b"probe")})
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("etcd did not come up")
        yield node
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(v: object) -> bytes:
    return base64.b64decode(str(v)) if v else b""


# --- our requests as etcd gateway JSON ----------------------------------------------------

_TARGET_FIELD = {
    CompareTarget.VERSION: "version",
    CompareTarget.CREATE: "create_revision",
    CompareTarget.MOD: "mod_revision",
    CompareTarget.VALUE: "value",
    CompareTarget.LEASE: "lease",
}


def _json_op(op: RequestOp) -> dict[str, object]:
    if isinstance(op, RangeRequest):
        return {"request_range": _json_body(op)[1]}
    if isinstance(op, PutRequest):
        return {"request_put": _json_body(op)[1]}
    if isinstance(op, DeleteRangeRequest):
        return {"request_delete_range": _json_body(op)[1]}
    return {"request_txn": _json_body(op)[1]}


def _json_body(req: Request) -> tuple[str, dict[str, object]]:
    match req:
        case RangeRequest():
            return "/v3/kv/range", {
                "key": _b64(req.key),
                "range_end": _b64(req.range_end),
                "limit": req.limit,
                "revision": req.revision,
                "keys_only": req.keys_only,
                "count_only": req.count_only,
                "sort_order": req.sort_order.name,
                "sort_target": req.sort_target.name,
                "min_mod_revision": req.min_mod_revision,
                "max_mod_revision": req.max_mod_revision,
                "min_create_revision": req.min_create_revision,
                "max_create_revision": req.max_create_revision,
            }
        case PutRequest():
            return "/v3/kv/put", {
                "key": _b64(req.key),
                "value": _b64(req.value),
                "lease": req.lease,
                "prev_kv": req.prev_kv,
                "ignore_value": req.ignore_value,
                "ignore_lease": req.ignore_lease,
            }
        case DeleteRangeRequest():
            return "/v3/kv/deleterange", {
                "key": _b64(req.key),
                "range_end": _b64(req.range_end),
                "prev_kv": req.prev_kv,
            }
        case TxnRequest():
            compares = []
            for c in req.compare:
                field = _TARGET_FIELD[c.target]
                operand = _b64(c.operand) if isinstance(c.operand, bytes) else c.operand
                compares.append(
                    {
                        "key": _b64(c.key),
                        "range_end": _b64(c.range_end),
                        "target": c.target.name,
                        "result": c.result.name,
                        field: operand,
                    }
                )
            return "/v3/kv/txn", {
                "compare": compares,
                "success": [_json_op(op) for op in req.success],
                "failure": [_json_op(op) for op in req.failure],
            }
        case CompactRequest():
            return "/v3/kv/compaction", {"revision": req.revision}
        case LeaseGrantRequest():
            return "/v3/lease/grant", {"TTL": req.ttl, "ID": req.id}
        case LeaseRevokeRequest():
            return "/v3/kv/lease/revoke", {"ID": req.id}
    raise AssertionError(req)


# --- both sides' responses in one comparable shape ------------------------------------------


def _kv(kv: KeyValue) -> Norm:
    return (kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version, kv.lease)


def _jkv(j: object) -> Norm:
    assert isinstance(j, dict)
    return (
        _unb64(j.get("key")),
        _unb64(j.get("value")),
        int(j.get("create_revision", 0)),
        int(j.get("mod_revision", 0)),
        int(j.get("version", 0)),
        int(j.get("lease", 0)),
    )


def _ours(resp: Response | OpResponse, top: bool = True) -> Norm:
    rev = resp.revision if top else None
    match resp:
        case ErrorResponse():
            return ("error", resp.message)
        case RangeResponse():
            return ("range", rev, [_kv(kv) for kv in resp.kvs], resp.more, resp.count)
        case PutResponse():
            return ("put", rev, _kv(resp.prev_kv) if resp.prev_kv else None)
        case DeleteRangeResponse():
            return ("delete", rev, resp.deleted, [_kv(kv) for kv in resp.prev_kvs])
        case TxnResponse():
            return ("txn", rev, resp.succeeded, [_ours(r, False) for r in resp.responses])
        case CompactResponse():
            return ("compact", rev)
        case LeaseGrantResponse():
            return ("grant", rev, resp.id, resp.ttl)
        case LeaseRevokeResponse():
            return ("revoke", rev)
    raise AssertionError(resp)


def _theirs(kind: str, j: dict[str, object], top: bool = True) -> Norm:
    if "error" in j:
        return ("error", j["error"])
    header = j.get("header")
    rev = int(header.get("revision", 0)) if top and isinstance(header, dict) else None
    if kind == "range":
        kvs = j.get("kvs", [])
        assert isinstance(kvs, list)
        return ("range", rev, [_jkv(kv) for kv in kvs], bool(j.get("more")), int(j.get("count", 0)))  # type: ignore[call-overload]
    if kind == "put":
        return ("put", rev, _jkv(j["prev_kv"]) if j.get("prev_kv") else None)
    if kind == "delete":
        prev = j.get("prev_kvs", [])
        assert isinstance(prev, list)
        return ("delete", rev, int(j.get("deleted", 0)), [_jkv(kv) for kv in prev])  # type: ignore[call-overload]
    if kind == "txn":
        subs = []
        for r in j.get("responses", []):  # type: ignore[attr-defined]
            ((name, body),) = r.items()
            sub = {"response_range": "range", "response_put": "put"}.get(name)
            sub = sub or {"response_delete_range": "delete", "response_txn": "txn"}[name]
            subs.append(_theirs(sub, body, False))
        return ("txn", rev, bool(j.get("succeeded")), subs)
    if kind == "compact":
        return ("compact", rev)
    if kind == "grant":
        return ("grant", rev, int(j["ID"]), int(j["TTL"]))  # type: ignore[call-overload]
    return ("revoke", rev)


_KIND = {
    RangeRequest: "range",
    PutRequest: "put",
    DeleteRangeRequest: "delete",
    TxnRequest: "txn",
    CompactRequest: "compact",
    LeaseGrantRequest: "grant",
    LeaseRevokeRequest: "revoke",
}


# --- the script -------------------------------------------------------------------------------

KEYS = [b"a", b"ab", b"b", b"ba", b"c", b"d"]
ENDS = [b"", b"", b"b", b"c", b"e", b"ac"]


class Script:
    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd
        self.leases: list[int] = []
        self.next_lease = 100

    def compare(self, rev: int) -> Compare:
        r = self.rnd
        target = r.choice(list(CompareTarget))
        operand: int | bytes = (
            r.choice([b"", b"v1", b"v2", b"zz"])
            if target is CompareTarget.VALUE
            else r.randint(0, rev)
        )
        end = r.choice([b"", b"", b"", b"c"])
        return Compare(r.choice(KEYS), target, r.choice(list(CompareResult)), operand, end)

    def op(self, depth: int, rev: int) -> RequestOp:
        r = self.rnd
        x = r.random()
        if x < 0.3:
            lease = r.choice(self.leases) if self.leases and r.random() < 0.3 else 0
            return PutRequest(
                r.choice(KEYS), r.choice([b"v1", b"v2", b""]), lease, r.random() < 0.5
            )
        if x < 0.5:
            return DeleteRangeRequest(r.choice(KEYS), r.choice(ENDS), r.random() < 0.5)
        if x < 0.8 or depth == 0:
            return RangeRequest(r.choice(KEYS), r.choice(ENDS), r.choice([0, 0, 1, 2]))
        return self.txn(depth - 1, rev)

    def txn(self, depth: int, rev: int) -> TxnRequest:
        r = self.rnd
        return TxnRequest(
            tuple(self.compare(rev) for _ in range(r.randint(0, 2))),
            tuple(self.op(depth, rev) for _ in range(r.randint(0, 3))),
            tuple(self.op(depth, rev) for _ in range(r.randint(0, 3))),
        )

    def request(self, rev: int, compacted: int) -> Request:
        r = self.rnd
        x = r.random()
        if x < 0.25:
            lease = r.choice(self.leases) if self.leases and r.random() < 0.3 else 0
            lease = 999 if r.random() < 0.03 else lease
            return PutRequest(r.choice(KEYS), r.choice([b"v1", b"v2"]), lease, r.random() < 0.5)
        if x < 0.3:
            return PutRequest(r.choice(KEYS), b"", 0, False, r.random() < 0.7, r.random() < 0.7)
        if x < 0.4:
            return DeleteRangeRequest(r.choice(KEYS), r.choice([*ENDS, b"\0"]), r.random() < 0.5)
        if x < 0.6:
            sort = r.random() < 0.3
            bound = [0, 0, 0, max(1, rev - r.randint(0, 6))]
            return RangeRequest(
                r.choice([*KEYS, b"\0"]),
                r.choice([*ENDS, b"\0"]),
                r.choice([0, 0, 1, 2, 3]),
                r.choice([0, 0, max(1, rev - r.randint(0, 6)), rev + 1]),
                r.random() < 0.2,
                r.random() < 0.2,
                r.choice(list(SortOrder)) if sort else SortOrder.NONE,
                r.choice(list(SortTarget)) if sort else SortTarget.KEY,
                r.choice(bound),
                r.choice(bound),
                r.choice(bound),
                r.choice(bound),
            )
        if x < 0.85:
            return self.txn(1, rev)
        if x < 0.9:
            return CompactRequest(
                r.choice(
                    [compacted, rev + 1, r.randint(compacted + 1, rev)]
                    if rev > compacted
                    else [rev]
                )
            )
        if x < 0.95:
            self.next_lease += 1
            self.leases.append(self.next_lease)
            return LeaseGrantRequest(1000, self.next_lease)
        lease = r.choice(self.leases) if self.leases and r.random() < 0.8 else 4242
        if lease in self.leases:
            self.leases.remove(lease)
        return LeaseRevokeRequest(lease)


@pytest.mark.debian("etcd")
@pytest.mark.slow
@pytest.mark.parametrize("seed", [5, 6, 11])
def test_state_machine_answers_like_etcd_3_4(etcd: Etcd, seed: int) -> None:
    ours = Applier()
    script = Script(random.Random(int(os.environ.get("KVSEED", seed))))  # KVSEED=n: hunt
    for step in range(400):
        req = script.request(ours.machine.revision, ours.machine.compact_revision)
        path, body = _json_body(req)
        theirs = _theirs(_KIND[type(req)], etcd.post(path, body))
        mine = _ours(ours(req))
        assert mine == theirs, (step, req)
    everything = RangeRequest(b"\0", b"\0")
    assert _ours(ours.machine.range(everything)) == _theirs(
        "range", etcd.post(*_json_body(everything))
    )
