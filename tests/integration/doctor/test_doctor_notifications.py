"""Doctor's probe of the product's notification endpoint (``PAYSTREAM_APP_WEBHOOK_URL``)
against a real HTTP endpoint that behaves as the example's route does (verify the
``Paystream-Signature``, 401 when it fails, 400 for a signed body that is no notification),
and against the careless ones: one that verifies nothing, one with another secret, a wrong
path, a redirect, nothing listening."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ingest.signature import InvalidSignature, verify
from paystream.commands.doctor import shell
from paystream.runtime.broker import free_port
from paystream.vocabulary import APP_SIGNATURE_HEADER
from tests.integration.doctor.conftest import Group

pytestmark = pytest.mark.broker

SECRET = "whsec_doctor_notifications_0001"
ROUTE = "/api/paystream/notifications"


class App(BaseHTTPRequestHandler):
    """The app's route; ``server.mode`` picks how careful it is."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        mode = self.server.mode  # type: ignore[attr-defined]
        if self.path == "/redirected":
            return self._answer(308, {}, {"Location": ROUTE})
        if self.path != ROUTE:
            return self._answer(404, {"error": "not_found"})
        if mode == "accepts_all":
            return self._answer(200, {"received": True})
        secret = SECRET if mode == "verifying" else "whsec_another_secret_0000"
        try:
            verify(body, self.headers.get(APP_SIGNATURE_HEADER), [secret], 300)
        except InvalidSignature:
            return self._answer(401, {"error": "invalid_signature"})
        if json.loads(body).get("type") != "billing_state.changed":
            return self._answer(400, {"error": "malformed_event"})
        return self._answer(200, {"received": True})

    def _answer(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def app() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def probe(group: Callable[..., Group], app: ThreadingHTTPServer) -> Callable[..., Group]:
    def run(mode: str = "verifying", path: str = ROUTE, port: int | None = None) -> Group:
        app.mode = mode  # type: ignore[attr-defined]
        url = f"http://127.0.0.1:{port or app.server_address[1]}{path}"
        return group(shell.app_webhook_findings)(
            PAYSTREAM_APP_WEBHOOK_URL=url, PAYSTREAM_APP_WEBHOOK_SECRET=SECRET
        )

    return run


def test_an_endpoint_that_verifies_the_signature_passes(probe: Callable[..., Group]) -> None:
    found = probe()["notifications.endpoint"]
    assert found.ok and "accepts paystream's signature" in found.message, found


def test_an_endpoint_that_verifies_nothing_is_a_problem(probe: Callable[..., Group]) -> None:
    found = probe("accepts_all")["notifications.endpoint"]
    assert not found.ok and "without a valid signature" in found.message
    assert "verifyPaystreamWebhook" in found.fix


def test_an_endpoint_with_another_secret_is_named(probe: Callable[..., Group]) -> None:
    found = probe("other_secret")["notifications.endpoint"]
    assert not found.ok and "secrets differ" in found.message
    assert SECRET not in found.message + found.fix  # no secret in the report


@pytest.mark.parametrize(("path", "named"), [("/api/wrong", "404"), ("/redirected", "redirect")])
def test_a_wrong_path_and_a_redirect_are_named(
    probe: Callable[..., Group], path: str, named: str
) -> None:
    found = probe(path=path)["notifications.endpoint"]
    assert not found.ok and named in found.message, found


def test_nothing_listening_is_unreachable(probe: Callable[..., Group]) -> None:
    found = probe(port=free_port())["notifications.endpoint"]
    assert not found.ok and "not reachable" in found.message, found


def test_without_a_url_nothing_is_probed(group: Callable[..., Group]) -> None:
    found = group(shell.app_webhook_findings)()["notifications.endpoint"]
    assert found.ok and "not checked" in found.message
