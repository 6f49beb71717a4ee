"""The product notifications as the app receives them: the app-webhook sink's own client
(``sinks.app_webhook.AppWebhookClient``) POSTs signed notifications to a local receiver,
and the TypeScript client's ``verifyPaystreamWebhook()``, compiled from today's sources and
run by real Node, verifies the exact bytes and header that arrived — with one secret, with
two during a rotation, and refuses a changed byte or another secret."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sinks.app_webhook import AppWebhookClient
from sinks.notifications import encode, notification
from tests.e2e.typescript.conftest import node_binary, run

OLD = "old-app-webhook-secret-0123456789abcdef"
NEW = "new-app-webhook-secret-0123456789abcdef"
MARK = "RESULTS "

VERIFY = """
import { readFileSync } from "node:fs";
import { verifyPaystreamWebhook } from %(client)s;

const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const results = [];
for (const c of cases) {
  try {
    const event = await verifyPaystreamWebhook(
      Buffer.from(c.body, "base64"), c.header, c.secrets,
    );
    results.push({ ok: true, event });
  } catch (error) {
    results.push({ ok: false, code: error.code ?? String(error) });
  }
}
console.log("%(mark)s" + JSON.stringify(results));
"""


class Captured:
    def __init__(self) -> None:
        self.posts: list[tuple[bytes, str]] = []


@pytest.fixture
def receiver() -> Iterator[tuple[str, Captured]]:
    captured = Captured()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            captured.posts.append((raw, self.headers["Paystream-Signature"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/api/paystream/notifications", captured
    server.shutdown()
    server.server_close()
    thread.join(10)


def change(user_id: str | None, previous: str | None, new: str) -> dict[str, Any]:
    return {
        "customer_id": "cus_node",
        "user_id": user_id,
        "previous_state": previous,
        "new_state": new,
        "cause_event_id": f"evt_{new}",
        "event_created": 1_765_000_000,
    }


def test_the_sinks_signature_is_what_the_typescript_client_verifies(
    typescript_client: Path, receiver: tuple[str, Captured], tmp_path: Path
) -> None:
    url, captured = receiver
    changes = [
        change("user_1", None, "onboarding_pending"),
        change("usér_ünïcode", "active", "payment_failed"),
        change(None, "payment_failed", "active"),
    ]
    one = AppWebhookClient(url, [NEW], timeout_s=5)
    rotating = AppWebhookClient(url, [NEW, OLD], timeout_s=5)
    try:
        for c in changes:
            one.post(encode(notification(c)))
        rotating.post(encode(notification(changes[0])))
    finally:
        one.close()
        rotating.close()
    assert len(captured.posts) == 4

    def case(raw: bytes, header: str, secrets: list[str]) -> dict[str, Any]:
        return {"body": base64.b64encode(raw).decode(), "header": header, "secrets": secrets}

    (a, ha), (b, hb), (c, hc), (r, hr) = captured.posts
    tampered = a.replace(b"onboarding_pending", b"active")
    cases = [
        case(a, ha, [NEW]),
        case(b, hb, [NEW]),
        case(c, hc, [NEW]),
        case(r, hr, [OLD]),  # during a rotation the app may still hold the old secret only
        case(r, hr, [NEW]),
        case(tampered, ha, [NEW]),
        case(a, ha, [OLD]),
    ]
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    client = (typescript_client / "dist" / "esm" / "index.js").as_uri()
    script = tmp_path / "verify.mjs"
    script.write_text(VERIFY % {"client": json.dumps(client), "mark": MARK})
    done = run([node_binary(), str(script), str(tmp_path / "cases.json")], tmp_path)
    assert done.code == 0, done.output
    line = next(x for x in done.output.splitlines() if x.startswith(MARK))
    results = json.loads(line[len(MARK) :])

    expected = [json.loads(raw) for raw in (a, b, c, r, r)]
    assert results[:5] == [{"ok": True, "event": e} for e in expected]
    assert expected[1]["user_id"] == "usér_ünïcode"
    assert results[5:] == [{"ok": False, "code": "invalid_signature"}] * 2
