"""Structured logs are one line per event, in key=value or JSON."""

from __future__ import annotations

import io
import json

from runtime.log import get_logger, setup_logging


def test_kv_line_quotes_values_with_spaces() -> None:
    out = io.StringIO()
    setup_logging("debug", "kv", out)
    get_logger("bgpd").info("peer.down", peer="127.0.0.2", reason="hold timer expired", code=4)
    line = out.getvalue()
    assert line.count("\n") == 1
    assert "logger=bgpd event=peer.down peer=127.0.0.2 " in line
    assert 'reason="hold timer expired" code=4' in line


def test_json_line_and_folded_traceback() -> None:
    out = io.StringIO()
    setup_logging("info", "json", out)
    log = get_logger("store")
    log.debug("hidden")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        log.exception("apply.failed", index=7)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "apply.failed" and record["index"] == 7
    assert "ValueError" in record["exc"] and "\n" not in record["exc"]
