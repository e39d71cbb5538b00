"""Small helpers for KV tests: a machine that numbers its own log indexes."""

from __future__ import annotations

from store.kv.machine import KVConfig, KVStateMachine
from store.kv.messages import ErrorResponse, Request, Response


class Applier:
    def __init__(self, config: KVConfig | None = None) -> None:
        self.machine = KVStateMachine(config)
        self.index = 0

    def __call__(self, req: Request) -> Response:
        self.index += 1
        resp = self.machine.apply(self.index, req)
        assert resp is not None
        return resp

    def ok(self, req: Request) -> Response:
        resp = self(req)
        assert not isinstance(resp, ErrorResponse), resp
        return resp

    def err(self, req: Request) -> ErrorResponse:
        resp = self(req)
        assert isinstance(resp, ErrorResponse), resp
        return resp
