"""`StoreDaemon`: the runtime's Daemon for one tabby-store member.

start: recover the data dir (WAL + snapshot; the WAL holds the directory lock, so a second
member on the same dir fails here), listen on the peer endpoint, start the Raft owner task,
listen on the client endpoints, then wait until the member knows a leader, updating systemd's
STATUS= meanwhile ("waiting for a leader"); `run_daemon` sends READY=1 once start returns.
stop: stop accepting clients, hand leadership over if we lead, stop the owner, close the WAL.
"""

from __future__ import annotations

import gc

from ipc import RPCServer, ServerLimits
from runtime.log import get_logger
from runtime.sdnotify import Notifier
from store.server.api import StoreAPI
from store.server.config import StoreConfig
from store.server.member import Member
from store.server.transport import PeerTransport

log = get_logger("store")


class StoreDaemon:
    name = "store"

    def __init__(self, config: StoreConfig, notifier: Notifier | None = None) -> None:
        self.config = config
        self.notifier = notifier or Notifier()
        self.transport = PeerTransport(
            config.id, config.peer_client_tls(), timeout=max(config.election_timeout, 0.5)
        )
        self.member = Member(config, self.transport)
        self.api = StoreAPI(self.member)
        limits = ServerLimits(max_message_size=4 * 1024 * 1024, max_in_flight=4096)
        self.peer_server = RPCServer(limits, name="store-peer")
        self.client_server = RPCServer(limits, name="store")
        self.api.register_peer(self.peer_server)
        self.api.register_client(self.client_server)

    async def start(self) -> None:
        cfg = self.config
        await self.member.open()
        await self.peer_server.listen(cfg.peer_endpoint, tls=cfg.peer_tls(), mode=0o600)
        self.member.on_status = self.notifier.status
        self.member.start()
        for ep in cfg.client_endpoints:
            await self.client_server.listen(ep, tls=cfg.client_tls())
        self.notifier.status(self.member.status_line())
        while await self.member.wait_leader(5.0) == 0:
            self.notifier.status(self.member.status_line())
            log.info("store.waiting_for_leader", term=self.member.node.term)
        # docs/kv.md: the cyclic GC dominates on a large heap; what start-up built is permanent.
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        log.info("store.ready", leader=self.member.leader, id=cfg.id)

    async def stop(self) -> None:
        await self.client_server.close()
        await self.member.stop()
        await self.peer_server.close()
        await self.transport.close()

    async def reload(self) -> None:
        log.info("reload.ignored", reason="tabby-store settings need a restart")

    def status(self) -> str:
        return self.member.status_line()

    def healthy(self) -> bool:
        return self.member.failure is None
