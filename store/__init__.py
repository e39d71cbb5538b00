"""tabby-store: the Raft-replicated MVCC key-value store (etcd's job in Calico)."""
