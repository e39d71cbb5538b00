"""felixd's kernel shell: netlink (hand-packed batches for routes, neighbours and FDB entries,
pyroute2 for links and addresses) and the network-namespace helper the tests use.

`NetlinkBackend` implements `felixd.backends.base.DataplaneBackend` against a real kernel.
"""

from felixd.netlink.backend import NetlinkBackend

__all__ = ["NetlinkBackend"]
