"""IngestSettings: comma-separated secrets, defaults, one-line errors naming the variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest.__main__ import main as ingest_main
from ingest.app import ENVELOPE_OVERHEAD_BYTES, producer_config
from ingest.settings import IngestSettings
from paystream.errors import SettingsError
from paystream.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("STRIPE_", "PAYSTREAM_", "KAFKA_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PAYSTREAM_ENV", "development")  # required; the tests' environment
    monkeypatch.chdir(tmp_path)  # no .env file


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", "whsec_a")
    s = load_settings(IngestSettings)
    assert s.webhook_secrets == ("whsec_a",)
    assert s.app_secrets == ()
    assert s.stripe_signature_tolerance_s == 300
    assert s.paystream_ingest_port == 8080
    assert s.paystream_ingest_publish_timeout_s == 2.0
    assert s.paystream_ingest_max_body_bytes == 1024 * 1024


def test_secrets_are_comma_separated_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", " whsec_new , whsec_old")
    monkeypatch.setenv("PAYSTREAM_APP_SECRETS", "app_1")
    s = load_settings(IngestSettings)
    assert s.webhook_secrets == ("whsec_new", "whsec_old")
    assert s.app_secrets == ("app_1",)
    assert "whsec_new" not in repr(s) and "app_1" not in str(s)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "STRIPE_WEBHOOK_SECRETS"),
        ({"STRIPE_WEBHOOK_SECRETS": ""}, "STRIPE_WEBHOOK_SECRETS"),
        ({"STRIPE_WEBHOOK_SECRETS": "whsec_a,,whsec_b"}, "STRIPE_WEBHOOK_SECRETS"),
        ({"STRIPE_SIGNATURE_TOLERANCE_S": "0"}, "STRIPE_SIGNATURE_TOLERANCE_S"),
        ({"PAYSTREAM_INGEST_PORT": "http"}, "PAYSTREAM_INGEST_PORT"),
        ({"PAYSTREAM_INGEST_PUBLISH_TIMEOUT_S": "-1"}, "PAYSTREAM_INGEST_PUBLISH_TIMEOUT_S"),
        ({"PAYSTREAM_APP_SECRETS": "x,"}, "PAYSTREAM_APP_SECRETS"),
        ({"STRIPE_MODE": "prod"}, "STRIPE_MODE"),
    ],
)
def test_bad_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    if variable != "STRIPE_WEBHOOK_SECRETS":
        monkeypatch.setenv("STRIPE_WEBHOOK_SECRETS", "whsec_secretvalue")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as err:
        load_settings(IngestSettings)
    message = str(err.value)
    assert message.startswith(f"invalid setting {variable}:")
    assert "\n" not in message
    assert "whsec_secretvalue" not in message


def test_producer_is_durable_and_sized_for_the_body_limit() -> None:
    s = IngestSettings(stripe_webhook_secrets="whsec_a", kafka_bootstrap_servers="k:9092")
    config = producer_config(s)
    assert config["acks"] == "all"
    assert config["enable.idempotence"] is True
    assert (
        config["message.max.bytes"] == s.paystream_ingest_max_body_bytes + ENVELOPE_OVERHEAD_BYTES
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, "STRIPE_WEBHOOK_SECRETS"),
        ({"STRIPE_WEBHOOK_SECRETS": "whsec_a"}, "KAFKA_BOOTSTRAP_SERVERS"),
    ],
)
def test_paystream_ingest_refuses_to_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"^invalid setting {variable}:"):
        ingest_main([])
