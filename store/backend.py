"""Choose the datastore backend from the endpoints a daemon is configured with.

Every daemon already has a `store_endpoints` list; the scheme of its entries says which store
answers there, so an operator switches a node to an existing etcd cluster by listing etcd's
client URLs and nothing else:

    store_endpoints = ["unix:/run/tabby/store.sock"]                 # tabby-store (ipc endpoints:
    store_endpoints = ["tls://10.0.0.1:2379", "tls://10.0.0.2:2379"]  #   unix:, tcp://, tls://)
    store_endpoints = ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]  # etcd v3 (3.4+),
    store_endpoints = ["https://10.0.0.1:2379?cacert=/etc/tabby/etcd-ca.crt&cert=/etc/tabby/etcd.crt&key=/etc/tabby/etcd.key"]
    store_endpoints = ["https://10.0.0.1:2379?user=tabby&password-file=/etc/tabby/etcd-password"]

etcd's URLs are written as etcdctl --endpoints takes them; etcdctl's --cacert/--cert/--key go
in the query of https:// endpoints, and an etcd user (--user) with the file that holds its
password in the query of any etcd endpoint (store.etcd.options_from_query). Both backends
implement `KVClient`; mixing the two kinds in one list is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from ipc import TLSConfig
from store.client import KVClient, StoreClient
from store.etcd import EtcdClient
from store.etcd_endpoint import is_etcd_endpoint


def backend_of(endpoints: Sequence[str]) -> str:
    """ "etcd" or "tabby-store"; ValueError for an empty or mixed list."""
    if not endpoints:
        raise ValueError("store endpoints: at least one is needed")
    kinds = {is_etcd_endpoint(ep) for ep in endpoints}
    if len(kinds) > 1:
        raise ValueError(
            "store endpoints: etcd URLs (http://, https://) and tabby-store endpoints "
            f"(unix:, tcp://, tls://) cannot be mixed: {list(endpoints)}"
        )
    return "etcd" if kinds == {True} else "tabby-store"


def connect(
    endpoints: str | Sequence[str],
    *,
    tls: TLSConfig | None = None,
    timeout: float = 5.0,
    max_in_flight: int = 256,
) -> KVClient:
    """The `KVClient` for these endpoints (connections are made on first use)."""
    eps = [endpoints] if isinstance(endpoints, str) else list(endpoints)
    if backend_of(eps) == "etcd":
        return EtcdClient(eps, tls=tls, timeout=timeout, max_in_flight=max_in_flight)
    return StoreClient(eps, tls=tls, timeout=timeout, max_in_flight=max_in_flight)
