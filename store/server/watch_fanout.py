"""A member's watch streams: handing the watch hub's responses to the clients' streams.

The KV machine's `WatchHub` decides what each watcher is owed (store.kv.watch); this is the
member's side of it: which stream belongs to which watch, draining the hub into the streams
after each Ready within a budget (so replaying old history never starves writes), encoding
events once per drain for watchers of one shape, and ending a watch whose client went away.
A mixin of `Member`, run on the member's event-loop thread like everything that touches the
hub.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ipc import Stream, StreamClosed
from store.kv import WatchHub
from store.wire import encode_watch_response

WATCH_DRAIN_BUDGET = 256  # hub.take calls per loop iteration, so replays cannot starve writes


@dataclass(slots=True)
class WatchStream:
    stream: Stream
    done: asyncio.Future[None]


class WatchFanout:
    hub: WatchHub
    watches: dict[int, WatchStream]

    def kick(self) -> None:
        raise NotImplementedError

    def register_watch(self, watch_id: int, stream: Stream) -> asyncio.Future[None]:
        """Deliver `watch_id`'s responses to `stream`; the future resolves when it ends."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.watches[watch_id] = WatchStream(stream, done)
        self.kick()
        return done

    def _end_watches(self, cancel: bool) -> None:
        """End every stream (the member stops or failed): their clients resume elsewhere."""
        for wid, w in list(self.watches.items()):
            if cancel:
                self.hub.cancel(wid)
                self.watches.pop(wid, None)
            if not w.done.done():
                w.done.set_result(None)

    def _send_progress(self) -> None:
        for resp in self.hub.progress_due():
            self._send_watch(resp.watch_id, encode_watch_response(resp), False)

    def _drain_watches(self) -> None:
        budget = WATCH_DRAIN_BUDGET
        hub = self.hub
        # Watchers of one shape share Event objects: encode each once per drain. `keep` holds
        # every response taken in this call, so no keyed event is freed and its id reused.
        cache: dict[int, list[object]] = {}
        keep: list[object] = []
        for wid in hub.ready():
            w = self.watches.get(wid)
            if w is None:
                continue
            while budget > 0:
                budget -= 1
                resp = hub.take(wid)
                if resp is None:
                    break
                keep.append(resp)
                item = encode_watch_response(resp, cache)
                if not self._send_watch(wid, item, resp.canceled):
                    break
            if budget <= 0:
                self.kick()  # more to do: come back after the next Ready
                return

    def _send_watch(self, wid: int, item: list[object], final: bool) -> bool:
        w = self.watches.get(wid)
        if w is None:
            return False
        try:
            w.stream.send(item)
        except StreamClosed:
            self.hub.cancel(wid)
            final = True
        if final:
            self.watches.pop(wid, None)
            if not w.done.done():
                w.done.set_result(None)
            return False
        return True
