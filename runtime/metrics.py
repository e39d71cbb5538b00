"""The opt-in Prometheus endpoint (text format), off unless a port is configured."""

from __future__ import annotations

from prometheus_client import start_http_server

from runtime.log import get_logger

log = get_logger("metrics")


def start_metrics(address: str, port: int) -> None:
    """Serve the default registry on address:port from a background thread."""
    if port == 0:
        return
    start_http_server(port, addr=address)
    log.info("metrics.listening", address=address, port=port)
