"""The app-webhook sink's HTTP client against a local server: what each answer of the
product's endpoint becomes (the sinks' retryable and permanent error classes), the exact
bytes sent, and the URL posted to as written."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from paystream.runtime.broker import free_port
from sinks.app_webhook import AppWebhookClient
from sinks.errors import PermanentSinkError, RetryableSinkError

SECRET = "client-test-secret-0123456789abcdef"
BODY = b'{"id":"bsc_1","type":"billing_state.changed"}'


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[str, bytes, dict[str, str]]]]]:
    """Answers ``POST /<status>`` with that status (429 with Retry-After, 3xx with a
    Location), and keeps path, body and headers of each request."""
    seen: list[tuple[str, bytes, dict[str, str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, raw, dict(self.headers)))
            status = int(self.path.strip("/").split("?")[0].split("/")[-1])
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "7")
            if 300 <= status < 400:
                self.send_header("Location", "/elsewhere")
            body = b'{"error":"invalid_signature"}' if status == 401 else b"{}"
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}", seen
    httpd.shutdown()
    httpd.server_close()


def post(url: str) -> None:
    client = AppWebhookClient(url, [SECRET], timeout_s=5, clock=lambda: 1_765_000_000.0)
    try:
        client.post(BODY)
    finally:
        client.close()


@pytest.mark.parametrize("status", [200, 202, 204])
def test_a_2xx_is_delivered_with_the_exact_bytes_signed(
    server: tuple[str, list[Any]], status: int
) -> None:
    base, seen = server
    post(f"{base}/api/paystream/{status}?env=dev")
    ((path, raw, headers),) = seen
    assert (path, raw) == (f"/api/paystream/{status}?env=dev", BODY)
    assert headers["Paystream-Signature"].startswith("t=1765000000,v1=")
    assert headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("status", "reason", "retry_after"),
    [
        (500, "server_error", None),
        (503, "server_error", None),
        (408, "timeout", None),
        (429, "rate_limited", 7.0),
    ],
)
def test_retryable_answers(
    server: tuple[str, list[Any]], status: int, reason: str, retry_after: float | None
) -> None:
    base, _ = server
    with pytest.raises(RetryableSinkError) as raised:
        post(f"{base}/{status}")
    assert (raised.value.reason_code, raised.value.retry_after) == (reason, retry_after)


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (400, "bad_request"),
        (401, "unauthorized"),
        (404, "not_found"),
        (410, "client_error"),
        (308, "redirected"),
        (301, "redirected"),
    ],
)
def test_permanent_answers(server: tuple[str, list[Any]], status: int, reason: str) -> None:
    base, seen = server
    with pytest.raises(PermanentSinkError) as raised:
        post(f"{base}/{status}")
    assert raised.value.reason_code == reason
    assert len(seen) == 1  # a redirect is never followed
    assert SECRET not in str(raised.value)


def test_the_apps_error_code_is_kept_and_nothing_else(server: tuple[str, list[Any]]) -> None:
    base, _ = server
    with pytest.raises(PermanentSinkError) as raised:
        post(f"{base}/401")
    assert raised.value.detail == "the app webhook answered 401 (invalid_signature)"


def test_nobody_listening_is_a_retryable_connection_error() -> None:
    with pytest.raises(RetryableSinkError) as raised:
        post(f"http://127.0.0.1:{free_port()}/api/paystream/notifications")
    assert raised.value.reason_code == "connection_error"
