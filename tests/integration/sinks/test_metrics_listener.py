"""The sinks' Prometheus listener binds its host setting: loopback unless told otherwise."""

from __future__ import annotations

import urllib.request

import pytest

from paystream.metrics import PaystreamMetrics
from paystream.runtime.broker import free_port
from sinks.__main__ import serve_metrics
from sinks.settings import SinkSettings


@pytest.mark.parametrize(
    ("values", "bound"),
    [({}, "127.0.0.1"), ({"paystream_sinks_metrics_host": "127.0.0.2"}, "127.0.0.2")],
)
def test_the_metrics_listener_binds_its_host_setting(values: dict[str, str], bound: str) -> None:
    port = free_port()
    server = serve_metrics(
        SinkSettings(paystream_sinks_metrics_port=port, **values), PaystreamMetrics()
    )
    try:
        assert server.server_address[:2] == (bound, port)
        with urllib.request.urlopen(f"http://{bound}:{port}/metrics", timeout=5) as response:
            assert b"# HELP" in response.read()
    finally:
        server.shutdown()
        server.server_close()


def test_no_port_no_listener() -> None:
    assert serve_metrics(SinkSettings(paystream_sinks_metrics_port=0), PaystreamMetrics()) is None
