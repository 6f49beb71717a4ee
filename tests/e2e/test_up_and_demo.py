"""``paystream up`` brings the whole stack up, ``paystream demo`` gets 200s, Ctrl-C stops all.

``demo`` and ``status`` run beside it with no secret, port or broker address given: they read
them from the 0600 file ``up`` leaves in its data directory (removed when it stops).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from paystream.runtime.broker import free_port
from tests.e2e.conftest import Service, wait_until


def control_bytes(output: str | bytes) -> list[str]:
    """Escape codes, backspaces and other control bytes a file or pipe should never get."""
    data = output.encode() if isinstance(output, str) else output
    return sorted({hex(b) for b in data if b < 0x20 and b not in b"\n\t"})


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def worker_page(url: str, token: str) -> dict[str, object] | None:
    """The worker's answer, or None while it is not ready (503: joining, rebalancing)."""
    asking = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(asking, timeout=10) as answer:  # noqa: S310 (loopback)
            page: dict[str, object] = json.loads(answer.read())
            return page
    except urllib.error.HTTPError as exc:
        if exc.code == 503:
            return None
        raise


APP_WEBHOOK_SECRET = "up-app-webhook-secret-0123456789"


@pytest.fixture
def product() -> Iterator[tuple[str, list[tuple[bytes, str]]]]:
    """The product's notification endpoint: keeps each POST's raw body and signature."""
    posts: list[tuple[bytes, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posts.append(
                (
                    self.rfile.read(int(self.headers["Content-Length"])),
                    self.headers["Paystream-Signature"],
                )
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/api/paystream/notifications", posts
    server.shutdown()
    server.server_close()


def signed(raw: bytes, header: str) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(","))
    mac = hmac.new(APP_WEBHOOK_SECRET.encode(), parts["t"].encode() + b"." + raw, hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), parts["v1"])


def test_up_then_demo_then_sigterm_stops_everything(
    services: Callable[..., Service],
    tmp_path: Path,
    product: tuple[str, list[tuple[bytes, str]]],
) -> None:
    ports = {name: free_port() for name in ("BROKER", "INGEST", "ADMIN", "WORKER", "SINKS_METRICS")}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAYSTREAM_"))}
    env.update({f"PAYSTREAM_{name}_PORT": str(port) for name, port in ports.items()})
    data_dir = tmp_path / "var"
    env.update(PAYSTREAM_DATA_DIR=str(data_dir), PAYSTREAM_TOPIC_PARTITIONS="2")
    env["PAYSTREAM_ADMIN_TOKEN"] = "up-admin-token-0123456789"  # up starts the admin too
    # and the sinks post every billing-state change to the product
    env["PAYSTREAM_APP_WEBHOOK_URL"], posts = product
    env["PAYSTREAM_APP_WEBHOOK_SECRET"] = APP_WEBHOOK_SECRET
    embedded = "KAFKA_BOOTSTRAP_SERVERS" not in os.environ
    # What an earlier run left: the embedded store's rows, unknown to a new embedded broker.
    (data_dir / "clickhouse" / "store").mkdir(parents=True)
    (data_dir / "clickhouse" / "store" / "earlier-run").write_text("rows")
    up = services("up", ["up"], env)

    banner = wait_until(
        lambda: "Ctrl-C stops everything" in up.log.read_text() and up.log.read_text(),
        90,
        "paystream up to print its banner",
        [up],
    )
    assert isinstance(banner, str)
    assert f"app notifications {product[0]} (billing_state.changed" in banner
    secret = re.search(r"webhook secret\s+(whsec_\w+)", banner)
    assert secret, banner
    assert (
        f"stripe listen --forward-to http://127.0.0.1:{ports['INGEST']}/webhooks/stripe" in banner
    )
    if embedded:
        assert f"127.0.0.1:{ports['BROKER']} (embedded" in banner
        assert "clickhouse reset: the embedded broker starts empty" in banner
        assert not (data_dir / "clickhouse" / "store" / "earlier-run").exists()

    stack_file = data_dir / "stack.json"
    assert stat.S_IMODE(stack_file.stat().st_mode) == 0o600
    assert json.loads(stack_file.read_text())["settings"]["stripe_webhook_secrets"] == (
        secret.group(1)
    )
    # Beside it: only the data directory, as from the same working directory.
    beside = {k: v for k, v in env.items() if not k.startswith(("STRIPE_", "PAYSTREAM_"))}
    beside = dict(beside, PAYSTREAM_DATA_DIR=str(data_dir))
    demo = subprocess.run(
        [sys.executable, "-m", "paystream", "demo"],
        env=beside,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    answers = [line.split()[0] for line in demo.stdout.splitlines() if line[:3].isdigit()]
    assert len(answers) == 16  # the storyline (10 and one resent), the add-on customer (5)
    assert set(answers) == {"200"}

    status = subprocess.run(
        [sys.executable, "-m", "paystream", "status", "--json"],
        env=beside,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # the demo's customers changed state: the product heard of each change, signed
    wait_until(lambda: len(posts) >= 3, 60, "notifications of the demo's changes", [up])
    bodies = [json.loads(raw) for raw, _ in posts]
    assert all(signed(raw, header) for raw, header in posts)
    assert {b["type"] for b in bodies} == {"billing_state.changed"}
    by_id = {b["id"]: b for b in bodies}
    assert all(by_id[b["id"]] == b for b in bodies)  # a redelivery is the same notification
    figures = json.loads(status.stdout)
    assert figures["webhooks"]["total"] >= 16, status.stdout + status.stderr  # ingest's port
    assert figures["lag"] is not None, status.stdout  # the broker, topic prefix
    assert figures["exceptions"] == {}, status.stdout  # dry-run: nothing dead-lettered
    admin = f"http://127.0.0.1:{ports['ADMIN']}"
    with urllib.request.urlopen(admin + "/readyz", timeout=5) as ready:  # noqa: S310
        assert ready.status == 200
    with urllib.request.urlopen(admin + "/login", timeout=5) as login:  # noqa: S310
        assert "Admin token" in login.read().decode()
    # The worker's API token up made (none was given): in the stack file for crm-repair and
    # doctor beside it, never in up's output; the worker answers it with the demo's customers.
    token = json.loads(stack_file.read_text())["settings"]["paystream_api_token"]
    assert len(token) >= 32 and token not in up.log.read_text()
    worker = f"http://127.0.0.1:{ports['WORKER']}/customers?limit=500"
    listed = wait_until(lambda: worker_page(worker, token), 60, "the worker's API", [up])
    assert isinstance(listed, dict) and listed["customers"], "the demo's customers"
    # ingest's read-through (what a Next.js app on the outside calls) reaches that worker
    first = listed["customers"][0]  # type: ignore[index]
    through = f"http://127.0.0.1:{ports['INGEST']}/v1/customers/{first['stripe_customer_id']}"
    record = wait_until(lambda: worker_page(through, token), 60, "ingest's customer read", [up])
    assert isinstance(record, dict) and record["billing_state"] == first["billing_state"]

    assert up.stop(signal.SIGTERM, timeout=40) == 0
    assert not stack_file.exists()
    assert not port_open(ports["INGEST"])
    assert not port_open(ports["WORKER"])
    assert not port_open(ports["ADMIN"])
    if "KAFKA_BOOTSTRAP_SERVERS" not in os.environ:
        assert not port_open(ports["BROKER"])
    # Every process wrote to a file or a pipe, not a terminal: no escape code (Faust's
    # spinner showed the cursor with ESC[?25h), no backspace, no other control byte in the
    # output of up and the processes it runs (ingest, worker, sinks, admin), demo or status.
    stray = control_bytes(up.log.read_bytes())
    assert not stray, f"control bytes {stray} in the output of paystream up:\n{up.tail()}"
    assert control_bytes(demo.stdout + demo.stderr) == []
    assert control_bytes(status.stdout + status.stderr) == []
