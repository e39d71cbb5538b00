"""msgpack-RPC message shapes and their validation.

The public msgpack-RPC spec defines three arrays: request ``[0, msgid, method, params]``,
response ``[1, msgid, error, result]`` and notification ``[2, method, params]``. Tabby adds
one convention for server-push streams: while a request is open, the server may send
notifications ``[2, "stream", [msgid, item]]`` tied to it; the final response ends the
stream. The client cancels an open stream with ``[2, "cancel", [msgid]]``.

Anything that does not match these shapes is a protocol violation by the peer and closes
that connection (and only that one).
"""

from __future__ import annotations

from typing import Final

REQUEST: Final = 0
RESPONSE: Final = 1
NOTIFICATION: Final = 2

STREAM_ITEM: Final = "stream"
CANCEL: Final = "cancel"

MAX_MSGID: Final = 2**32 - 1


class FrameError(Exception):
    """The peer sent something that is not a msgpack-RPC message."""


def check_request(msg: list[object]) -> tuple[int, str, list[object]]:
    if len(msg) != 4:
        raise FrameError(f"request has {len(msg)} elements, expected 4")
    _, msgid, method, params = msg
    if type(msgid) is not int or not 0 <= msgid <= MAX_MSGID:
        raise FrameError("request msgid is not a 32-bit unsigned integer")
    if type(method) is not str:
        raise FrameError("request method is not a string")
    if type(params) is not list:
        raise FrameError("request params is not an array")
    return msgid, method, params


def check_response(msg: list[object]) -> tuple[int, object, object]:
    if len(msg) != 4:
        raise FrameError(f"response has {len(msg)} elements, expected 4")
    _, msgid, error, result = msg
    if type(msgid) is not int:
        raise FrameError("response msgid is not an integer")
    return msgid, error, result


def check_notification(msg: list[object]) -> tuple[str, list[object]]:
    if len(msg) != 3:
        raise FrameError(f"notification has {len(msg)} elements, expected 3")
    _, method, params = msg
    if type(method) is not str:
        raise FrameError("notification method is not a string")
    if type(params) is not list:
        raise FrameError("notification params is not an array")
    return method, params
