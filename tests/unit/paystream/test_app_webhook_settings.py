"""The product notifications' settings (``paystream.destinations``): off unless
PAYSTREAM_APP_WEBHOOK_URL is set; set, fail closed on the secret and the scheme."""

from __future__ import annotations

import pytest

from paystream.destinations import (
    DestinationSettings,
    app_webhook_problem,
    app_webhook_secrets,
)
from paystream.errors import SettingsError
from paystream.settings import Environment, load_settings

LONG = "s" * 32
SHORT = "s" * 31
HTTPS = "https://app.example.com/api/paystream/notifications"
HTTP = "http://app.example.com/api/paystream/notifications"
LOOPBACK = "http://127.0.0.1:3000/api/paystream/notifications"


@pytest.mark.parametrize(
    ("env", "url", "secret", "variable"),
    [
        # unset URL: off, whatever else is set
        ("production", None, None, None),
        ("production", "", SHORT, None),
        ("development", "localhost:3000/api", LONG, "PAYSTREAM_APP_WEBHOOK_URL"),
        ("development", "ftp://app.example.com/x", LONG, "PAYSTREAM_APP_WEBHOOK_URL"),
        # set: the secret is required, in every environment
        ("development", LOOPBACK, None, "PAYSTREAM_APP_WEBHOOK_SECRET"),
        ("development", LOOPBACK, " , ", "PAYSTREAM_APP_WEBHOOK_SECRET"),
        ("production", HTTPS, "", "PAYSTREAM_APP_WEBHOOK_SECRET"),
        # 32 characters outside development; any length in development
        ("development", HTTP, "short", None),
        ("preview", HTTPS, SHORT, "PAYSTREAM_APP_WEBHOOK_SECRET"),
        ("production", HTTPS, SHORT, "PAYSTREAM_APP_WEBHOOK_SECRET"),
        ("production", HTTPS, LONG, None),
        # during a rotation every secret counts
        ("production", HTTPS, f"{LONG},{SHORT}", "PAYSTREAM_APP_WEBHOOK_SECRET"),
        ("production", HTTPS, f"{LONG}, {LONG}x", None),
        # https outside development; loopback http is fine (never leaves the host)
        ("preview", HTTP, LONG, "PAYSTREAM_APP_WEBHOOK_URL"),
        ("production", HTTP, LONG, "PAYSTREAM_APP_WEBHOOK_URL"),
        ("production", LOOPBACK, LONG, None),
        ("production", "http://localhost:3000/x", LONG, None),
    ],
)
def test_app_webhook_rules(
    env: Environment, url: str | None, secret: str | None, variable: str | None
) -> None:
    problem = app_webhook_problem(env, url, secret)
    assert (problem[0] if problem else None) == variable


@pytest.mark.parametrize(
    ("value", "secrets"),
    [(None, []), ("", []), ("a", ["a"]), (" a , b ,", ["a", "b"]), ("a,,b", ["a", "b"])],
)
def test_secrets_are_comma_separated(value: str | None, secrets: list[str]) -> None:
    assert app_webhook_secrets(value) == secrets


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"PAYSTREAM_APP_WEBHOOK_URL": HTTPS}, "PAYSTREAM_APP_WEBHOOK_SECRET"),
        (
            {"PAYSTREAM_APP_WEBHOOK_URL": HTTPS, "PAYSTREAM_APP_WEBHOOK_SECRET": SHORT},
            "PAYSTREAM_APP_WEBHOOK_SECRET",
        ),
        (
            {"PAYSTREAM_APP_WEBHOOK_URL": HTTP, "PAYSTREAM_APP_WEBHOOK_SECRET": LONG},
            "PAYSTREAM_APP_WEBHOOK_URL",
        ),
        ({"PAYSTREAM_APP_WEBHOOK_URL": "not a url"}, "PAYSTREAM_APP_WEBHOOK_URL"),
    ],
)
def test_a_bad_setting_stops_the_process_with_one_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    monkeypatch.setenv("PAYSTREAM_ENV", "preview")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings(DestinationSettings)
    message = str(raised.value)
    assert message.startswith(f"invalid setting {variable}:"), message
    assert "\n" not in message
    assert SHORT not in message and LONG not in message


def test_off_when_unset_or_blank(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSTREAM_ENV", "production")
    monkeypatch.setenv("PAYSTREAM_CUSTOMER_HASH_KEY", "k" * 32)
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("PAYSTREAM_APP_WEBHOOK_URL", " ")
    monkeypatch.setenv("PAYSTREAM_APP_WEBHOOK_SECRET", "")
    assert load_settings(DestinationSettings).app_webhook is None


def test_on_with_url_and_every_secret() -> None:
    settings = DestinationSettings(
        paystream_env="production",
        paystream_customer_hash_key="k" * 32,
        kafka_security_protocol="SSL",
        paystream_app_webhook_url=HTTPS,
        paystream_app_webhook_secret=f"{LONG}1,{LONG}2",
    )
    assert settings.app_webhook == (HTTPS, [f"{LONG}1", f"{LONG}2"])
    assert LONG not in repr(settings)
