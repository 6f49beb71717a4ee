"""SPEC §2's rules on each process's own settings: short secrets, plain-http URLs, and
PAYSTREAM_ENV required by every process but the local tools.

Each row is one environment a process starts from; a refused one stops with one line that
names the variable and never shows the secret.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from admin.settings import AdminSettings
from ingest.settings import IngestSettings, ReconcileSettings
from paystream.commands.demo import DemoSettings
from paystream.commands.status import StatusSettings
from paystream.commands.up import UpSettings
from paystream.settings import MIN_SECRET_CHARS, load_settings
from processors.settings import WorkerSettings
from sinks.settings import SinkSettings
from tests.unit.settings_env import clean_environment, refusal

LONG = "s" * MIN_SECRET_CHARS
SHORT = "s" * (MIN_SECRET_CHARS - 1)
#: passes every rule of production (TLS to Kafka, a hash key); rows add what they test
PRODUCTION = {
    "PAYSTREAM_ENV": "production",
    "PAYSTREAM_CUSTOMER_HASH_KEY": "k" * 32,
    "KAFKA_SECURITY_PROTOCOL": "SSL",
}
PREVIEW = {"PAYSTREAM_ENV": "preview"}
DEVELOPMENT = {"PAYSTREAM_ENV": "development"}
#: what each model needs besides the rows' variables
BASE: dict[type[BaseSettings], dict[str, str]] = {
    IngestSettings: {"STRIPE_WEBHOOK_SECRETS": "whsec_x"},
    WorkerSettings: {},
    AdminSettings: {},
    ReconcileSettings: {"STRIPE_API_KEY": "rk_test_x"},
    SinkSettings: {},
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_environment(monkeypatch, tmp_path)


REFUSED = [
    # secrets of at least 32 characters outside development (a short token falls to a word
    # list from any pod)
    (IngestSettings, {**PRODUCTION, "PAYSTREAM_APP_SECRETS": SHORT}, "PAYSTREAM_APP_SECRETS"),
    (IngestSettings, {**PREVIEW, "PAYSTREAM_APP_SECRETS": SHORT}, "PAYSTREAM_APP_SECRETS"),
    (
        IngestSettings,
        {**PRODUCTION, "PAYSTREAM_APP_SECRETS": f"{LONG},{SHORT}"},  # each one of a rotation
        "PAYSTREAM_APP_SECRETS",
    ),
    (
        IngestSettings,
        {**PRODUCTION, "PAYSTREAM_APP_SECRETS": f" {SHORT} "},  # blanks do not count
        "PAYSTREAM_APP_SECRETS",
    ),
    (WorkerSettings, {**PRODUCTION, "PAYSTREAM_API_TOKEN": SHORT}, "PAYSTREAM_API_TOKEN"),
    (WorkerSettings, {**PREVIEW, "PAYSTREAM_API_TOKEN": "tok"}, "PAYSTREAM_API_TOKEN"),
    (ReconcileSettings, {**PRODUCTION, "PAYSTREAM_API_TOKEN": SHORT}, "PAYSTREAM_API_TOKEN"),
    (AdminSettings, {**PRODUCTION, "PAYSTREAM_ADMIN_TOKEN": SHORT}, "PAYSTREAM_ADMIN_TOKEN"),
    (AdminSettings, {**PREVIEW, "PAYSTREAM_ADMIN_TOKEN": "a" * 20}, "PAYSTREAM_ADMIN_TOKEN"),
    (AdminSettings, {**DEVELOPMENT, "PAYSTREAM_ADMIN_TOKEN": "a" * 15}, "PAYSTREAM_ADMIN_TOKEN"),
    # production: no plain-http API base or worker URL off the host
    (
        ReconcileSettings,
        {**PRODUCTION, "STRIPE_API_BASE": "http://api.stripe.com"},
        "STRIPE_API_BASE",
    ),
    (
        ReconcileSettings,
        {**PRODUCTION, "PAYSTREAM_WORKER_URL": "http://paystream-worker:6066"},
        "PAYSTREAM_WORKER_URL",
    ),
    (
        ReconcileSettings,
        {**PRODUCTION, "PAYSTREAM_WORKER_URL": "http://10.0.0.7:6066"},
        "PAYSTREAM_WORKER_URL",
    ),
    (SinkSettings, {**PRODUCTION, "HUBSPOT_API_BASE": "http://api.hubapi.com"}, "HUBSPOT_API_BASE"),
    (
        SinkSettings,
        {**PRODUCTION, "ZENDESK_API_BASE": "http://acme.zendesk.com"},
        "ZENDESK_API_BASE",
    ),
    (
        SinkSettings,
        {**PRODUCTION, "CLICKHOUSE_URL": "http://u:p@clickhouse:8123/paystream"},
        "CLICKHOUSE_URL",
    ),
    (
        IngestSettings,
        {**PRODUCTION, "PAYSTREAM_WORKER_URL": "http://paystream-worker:6066"},
        "PAYSTREAM_WORKER_URL",
    ),
    (IngestSettings, {**PRODUCTION, "PAYSTREAM_API_TOKEN": SHORT}, "PAYSTREAM_API_TOKEN"),
    # and no Kafka without TLS, whichever process
    (
        IngestSettings,
        {
            **PRODUCTION,
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_MECHANISM": "PLAIN",
            "KAFKA_SASL_USERNAME": "paystream",
            "KAFKA_SASL_PASSWORD": "pw",
        },
        "KAFKA_SECURITY_PROTOCOL",
    ),
    (
        WorkerSettings,
        {**PRODUCTION, "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"},
        "KAFKA_SECURITY_PROTOCOL",
    ),
    (
        SinkSettings,
        {**PRODUCTION, "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"},
        "KAFKA_SECURITY_PROTOCOL",
    ),
    # the write switch, read by the sinks
    (SinkSettings, {**PRODUCTION, "PAYSTREAM_SINK_WRITES": "enable"}, "PAYSTREAM_SINK_WRITES"),
]

ACCEPTED = [
    (IngestSettings, {**PRODUCTION, "PAYSTREAM_APP_SECRETS": f"{LONG},{LONG}x"}),
    (IngestSettings, {**DEVELOPMENT, "PAYSTREAM_APP_SECRETS": "app_1"}),  # `paystream up`
    (IngestSettings, PRODUCTION),  # no app secrets: the endpoint is off
    (WorkerSettings, {**PRODUCTION, "PAYSTREAM_API_TOKEN": LONG}),
    (WorkerSettings, {**DEVELOPMENT, "PAYSTREAM_API_TOKEN": "tok"}),
    (WorkerSettings, PRODUCTION),  # no token: the API is off
    (AdminSettings, {**PRODUCTION, "PAYSTREAM_ADMIN_TOKEN": LONG}),
    (AdminSettings, {**DEVELOPMENT, "PAYSTREAM_ADMIN_TOKEN": "a" * 16}),
    (ReconcileSettings, {**PRODUCTION, "PAYSTREAM_API_TOKEN": LONG}),
    (ReconcileSettings, {**PRODUCTION, "STRIPE_API_BASE": "https://api.stripe.com"}),
    (ReconcileSettings, {**PRODUCTION, "STRIPE_API_BASE": "http://127.0.0.1:12111"}),
    (ReconcileSettings, {**PRODUCTION, "PAYSTREAM_WORKER_URL": "https://worker.internal"}),
    (ReconcileSettings, {**PRODUCTION, "PAYSTREAM_WORKER_URL": "http://localhost:6066"}),
    (ReconcileSettings, {**PREVIEW, "PAYSTREAM_WORKER_URL": "http://paystream-worker:6066"}),
    (SinkSettings, {**PRODUCTION, "PAYSTREAM_SINK_WRITES": "enabled"}),
    (SinkSettings, {**PRODUCTION, "CLICKHOUSE_URL": "https://u:p@clickhouse:8443/paystream"}),
    (SinkSettings, {**PRODUCTION, "CLICKHOUSE_URL": "http://u:p@127.0.0.1:8123/paystream"}),
    (SinkSettings, {**PREVIEW, "CLICKHOUSE_URL": "http://u:p@clickhouse:8123/paystream"}),
    (IngestSettings, {**PRODUCTION, "PAYSTREAM_WORKER_URL": "http://[::1]:6066"}),
    (IngestSettings, {**PRODUCTION, "PAYSTREAM_API_TOKEN": LONG}),
    (
        WorkerSettings,
        {
            **PRODUCTION,
            "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
            "PAYSTREAM_KAFKA_ALLOW_PLAINTEXT": "yes",
        },
    ),
]


def _ids(rows: list[tuple[object, ...]]) -> list[str]:
    return [f"{row[0].__name__}-{i}" for i, row in enumerate(rows)]  # type: ignore[attr-defined]


@pytest.mark.parametrize(("model", "env", "variable"), REFUSED, ids=_ids(REFUSED))  # type: ignore[arg-type]
def test_a_broken_rule_stops_the_process_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
    model: type[BaseSettings],
    env: dict[str, str],
    variable: str,
) -> None:
    defaults = {"PAYSTREAM_ADMIN_TOKEN": LONG} if model is AdminSettings else {}
    message = refusal(monkeypatch, {**defaults, **BASE[model], **env}, model)
    assert message.startswith(f"invalid setting {variable}:"), message
    for secret in (LONG, SHORT, "tok", "a" * 15, "a" * 20):
        assert secret not in message


@pytest.mark.parametrize(("model", "env"), ACCEPTED, ids=_ids(ACCEPTED))  # type: ignore[arg-type]
def test_a_consistent_environment_starts(
    monkeypatch: pytest.MonkeyPatch, model: type[BaseSettings], env: dict[str, str]
) -> None:
    defaults = {"PAYSTREAM_ADMIN_TOKEN": LONG} if model is AdminSettings else {}
    for key, value in {**defaults, **BASE[model], **env}.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(model)
    assert getattr(settings, "paystream_env") == env["PAYSTREAM_ENV"]  # noqa: B009


@pytest.mark.parametrize("model", list(BASE), ids=lambda m: m.__name__)
def test_every_process_requires_paystream_env(
    monkeypatch: pytest.MonkeyPatch, model: type[BaseSettings]
) -> None:
    monkeypatch.delenv("PAYSTREAM_ENV")
    defaults = {"PAYSTREAM_ADMIN_TOKEN": LONG} if model is AdminSettings else {}
    message = refusal(monkeypatch, {**defaults, **BASE[model]}, model)
    assert message.startswith("invalid setting PAYSTREAM_ENV: required"), message


@pytest.mark.parametrize(
    "model", [UpSettings, DemoSettings, StatusSettings], ids=lambda m: m.__name__
)
def test_up_and_the_local_tools_are_development_unless_told(
    monkeypatch: pytest.MonkeyPatch, model: type[BaseSettings]
) -> None:
    monkeypatch.delenv("PAYSTREAM_ENV")
    assert getattr(load_settings(model), "paystream_env") == "development"  # noqa: B009
    monkeypatch.setenv("PAYSTREAM_ENV", "preview")
    assert getattr(load_settings(model), "paystream_env") == "preview"  # noqa: B009
