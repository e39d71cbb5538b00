"""A toy eBGP route server on Tabby's codec, with bugs that can be planted on purpose.

It exists to prove the fuzzer finds real faults: started clean it must pass every property;
started with `--bug` it must be caught. It accepts any peer, sends an OPEN (RFC 4271 §4.2),
answers errors with the codec's NOTIFICATION (§6), applies RFC 7606 treat-as-withdraw (and,
for an external peer, attribute discard of LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST as
§7.5, §7.9 and §7.10 require, through the codec's `from_external_peer`), and
re-advertises what the fuzzer announces to the monitor with its AS prepended (§5.1.2),
without MED and LOCAL_PREF (§5.1.4, §5.1.5), unknown transitive attributes marked Partial.

Bugs: `med-reset` resets the session on a malformed MED (RFC 7606 §7.4 says treat-as-withdraw);
`drop-partial` passes unknown optional transitive attributes on without the Partial bit
(RFC 4271 §5); `keep-routes` keeps advertising a peer's routes after its session ends
(RFC 4271 §8.2.2, §9.2; for the stateful mode); `no-keepalive` never sends a KEEPALIVE once
Established (RFC 4271 §4.4; for the liveness check).

Clean, it also closes a second connection from an Established peer with Cease/Connection
Collision Resolution (RFC 4271 §6.8, RFC 4486 §4) and sends KEEPALIVEs every third of the
negotiated Hold Time (none when it is zero, §4.4).

Run: `python -m bgpd.fuzz.toy --address 127.0.0.41 --port 1179 --asn 65000 --monitor
127.0.0.43 [--bug med-reset]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress

from bgpd.wire import (
    BGPError,
    Framer,
    Keepalive,
    Notification,
    Open,
    PathAttributes,
    Update,
    WireContext,
    decode_message,
    encode_message,
)
from bgpd.wire.attributes import AS_SEQUENCE, PARTIAL, RawAttribute, Segment
from bgpd.wire.capabilities import FourOctetAs, Multiprotocol
from bgpd.wire.context import IPV4_UNICAST
from bgpd.wire.update import from_external_peer

BUGS = ("med-reset", "drop-partial", "keep-routes", "no-keepalive")


class Toy:
    def __init__(self, address: str, asn: int, monitor: str, bugs: frozenset[str]) -> None:
        self.address = address
        self.asn = asn
        self.monitor_address = monitor
        self.bugs = bugs
        self.table: dict[bytes, PathAttributes] = {}
        self.monitor: tuple[asyncio.StreamWriter, WireContext] | None = None
        self.established: set[str] = set()  # peers with an Established connection

    def export(self, attrs: PathAttributes) -> PathAttributes:
        path: tuple[Segment, ...] = attrs.as_path or ()
        if path and path[0][0] == AS_SEQUENCE and len(path[0][1]) < 255:
            path = ((AS_SEQUENCE, (self.asn, *path[0][1])), *path[1:])
        else:
            path = ((AS_SEQUENCE, (self.asn,)), *path)
        flags_fix = 0 if "drop-partial" in self.bugs else PARTIAL
        unknown = tuple(
            RawAttribute((u.flags & ~PARTIAL) | flags_fix, u.type_code, u.value)
            for u in attrs.unknown
        )
        return attrs._replace(
            as_path=path,
            next_hop=ipaddress.IPv4Address(self.address).packed,
            med=None,
            local_pref=None,
            originator_id=None,
            cluster_list=(),
            unknown=unknown,
        )

    def advertise(self, nlri: tuple[bytes, ...], attrs: PathAttributes | None) -> None:
        if self.monitor is None or not nlri:
            return
        writer, ctx = self.monitor
        if attrs is None:
            msg = Update(withdrawn=nlri)
        else:
            msg = Update(attributes=self.export(attrs), nlri=nlri)
        with contextlib.suppress(OSError, RuntimeError, BGPError):
            writer.write(encode_message(msg, ctx))

    def apply(self, upd: Update, external: bool = True) -> Notification | None:
        if external:
            upd = from_external_peer(upd)  # RFC 7606 §7.5, §7.9, §7.10
        if "med-reset" in self.bugs and any(m.case == "med-length" for m in upd.malformations):
            return Notification(3, 5)
        gone = [p for p in upd.withdrawn if self.table.pop(p, None) is not None]
        if upd.treat_as_withdraw or upd.attributes is None:
            # RFC 7606 §2: treat-as-withdraw.
            gone += [p for p in upd.nlri if self.table.pop(p, None) is not None]
            self.advertise(tuple(gone), None)
            return None
        self.advertise(tuple(gone), None)
        for p in upd.nlri:
            self.table[p] = upd.attributes
        self.advertise(upd.nlri, upd.attributes)
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername")[0])
        is_monitor = peer == self.monitor_address
        ctx = WireContext()
        caps = (Multiprotocol(*IPV4_UNICAST), FourOctetAs(self.asn))
        rid = int(ipaddress.IPv4Address(self.address))
        writer.write(encode_message(Open.build(self.asn, 30, rid, caps), ctx))
        framer = Framer(ctx)
        established = False
        external = True  # until the peer's OPEN says otherwise
        mine: set[bytes] = set()
        keepalive: asyncio.Task[None] | None = None
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                try:
                    framer.feed(data)
                    while (frame := framer.next_frame()) is not None:
                        msg = decode_message(frame, ctx)
                        if isinstance(msg, Open) and not established:
                            external = msg.asn != self.asn
                        note = self._message(
                            msg, is_monitor, established, writer, ctx, mine, external
                        )
                        if isinstance(msg, Open) and peer in self.established:
                            # RFC 4271 §6.8: the Established connection wins the collision.
                            writer.write(encode_message(Notification(6, 7), ctx))
                            return
                        if isinstance(msg, Open):
                            hold = min(30, msg.hold_time)  # RFC 4271 §4.2
                            if "no-keepalive" not in self.bugs and hold:
                                keepalive = asyncio.create_task(self._keepalive(writer, hold))
                            ctx = WireContext(
                                four_octet_as=any(
                                    isinstance(c, FourOctetAs) for c in msg.capabilities
                                )
                            )
                            framer.context = ctx
                            if is_monitor:
                                self.monitor = (writer, ctx)
                        if isinstance(msg, Keepalive) and not established:
                            established = True
                            self.established.add(peer)
                            if is_monitor:
                                for p, a in self.table.items():
                                    self.advertise((p,), a)
                        if note is not None:
                            writer.write(encode_message(note, ctx))
                            return
                        if isinstance(msg, Notification):
                            return
                except BGPError as err:
                    writer.write(encode_message(Notification.from_error(err), WireContext()))
                    await writer.drain()
                    return
        except OSError:
            return
        finally:
            if keepalive is not None:
                keepalive.cancel()
            if established:
                self.established.discard(peer)
            if is_monitor and self.monitor is not None and self.monitor[0] is writer:
                self.monitor = None
            if mine and "keep-routes" not in self.bugs:
                dropped = tuple(p for p in mine if self.table.pop(p, None) is not None)
                self.advertise(dropped, None)
            with contextlib.suppress(Exception):
                await writer.drain()
            writer.close()

    def _message(
        self,
        msg: object,
        is_monitor: bool,
        established: bool,
        writer: asyncio.StreamWriter,
        ctx: WireContext,
        mine: set[bytes],
        external: bool = True,
    ) -> Notification | None:
        if isinstance(msg, Open):
            if established:
                return Notification(5, 3)  # RFC 6608: OPEN in Established
            writer.write(encode_message(Keepalive(), ctx))
            return None
        if isinstance(msg, Update):
            if not established:
                return Notification(5, 1)
            if not is_monitor:
                mine.update(msg.nlri)
                return self.apply(msg, external)
        return None

    async def _keepalive(self, writer: asyncio.StreamWriter, hold: int) -> None:
        while True:
            await asyncio.sleep(hold / 3)  # RFC 4271 §10: a third of the Hold Time
            with contextlib.suppress(OSError, RuntimeError):
                writer.write(encode_message(Keepalive(), WireContext()))


async def serve(args: argparse.Namespace) -> None:
    toy = Toy(args.address, args.asn, args.monitor, frozenset(args.bug or ()))
    server = await asyncio.start_server(toy.handle, args.address, args.port)
    async with server:
        await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--address", required=True)
    p.add_argument("--port", type=int, default=179)
    p.add_argument("--asn", type=int, default=65000)
    p.add_argument("--monitor", required=True, help="the monitor's address")
    p.add_argument("--bug", action="append", choices=BUGS)
    asyncio.run(serve(p.parse_args()))


if __name__ == "__main__":
    main()
