"""The sinks' listener (/metrics, /healthz, /readyz) binds its host setting: loopback by default."""

from __future__ import annotations

import urllib.error
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
        with urllib.request.urlopen(f"http://{bound}:{port}/healthz", timeout=5) as response:
            assert response.status == 200
        with pytest.raises(urllib.error.HTTPError) as not_ready:  # no sink thread watched
            urllib.request.urlopen(f"http://{bound}:{port}/readyz", timeout=5)
        assert not_ready.value.code == 503
    finally:
        server.shutdown()
        server.server_close()


def test_no_port_no_listener() -> None:
    assert serve_metrics(SinkSettings(paystream_sinks_metrics_port=0), PaystreamMetrics()) is None
