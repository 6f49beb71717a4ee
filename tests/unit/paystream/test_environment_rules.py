"""Environment separation (SPEC §9): each rule refuses to start with one line naming the variable.

The rules are a pure function of the settings (``environment_problem``); every case is also
run through ``load_settings`` from the environment, the way a process starts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from paystream.settings import CommonSettings, load_settings
from tests.unit.settings_env import clean_environment, refusal

KEY = "k" * 32
#: A production environment that passes every rule; each case changes one thing.
PRODUCTION = {
    "PAYSTREAM_ENV": "production",
    "PAYSTREAM_CUSTOMER_HASH_KEY": KEY,
    "KAFKA_SECURITY_PROTOCOL": "SSL",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_environment(monkeypatch, tmp_path)


REFUSED = [
    # STRIPE_MODE and the API key's prefix agree
    ({"STRIPE_API_KEY": "sk_live_abc"}, "STRIPE_API_KEY"),
    ({"STRIPE_API_KEY": "rk_live_abc"}, "STRIPE_API_KEY"),
    ({**PRODUCTION, "STRIPE_MODE": "live", "STRIPE_API_KEY": "sk_test_abc"}, "STRIPE_API_KEY"),
    ({**PRODUCTION, "STRIPE_MODE": "live", "STRIPE_API_KEY": "rk_test_abc"}, "STRIPE_API_KEY"),
    ({"STRIPE_API_KEY": "pk_test_abc"}, "STRIPE_API_KEY"),  # a publishable key
    ({"STRIPE_API_KEY": "whatever"}, "STRIPE_API_KEY"),
    # live mode only in production
    ({"STRIPE_MODE": "live"}, "STRIPE_MODE"),
    ({"STRIPE_MODE": "live", "PAYSTREAM_ENV": "preview"}, "STRIPE_MODE"),
    ({"STRIPE_MODE": "live", "PAYSTREAM_ENV": "development"}, "STRIPE_MODE"),
    # test and live never share topics
    ({"PAYSTREAM_TOPIC_PREFIX": "acme.live."}, "PAYSTREAM_TOPIC_PREFIX"),
    ({"PAYSTREAM_TOPIC_PREFIX": "live-acme."}, "PAYSTREAM_TOPIC_PREFIX"),
    (
        {**PRODUCTION, "STRIPE_MODE": "live", "PAYSTREAM_TOPIC_PREFIX": "acme.test."},
        "PAYSTREAM_TOPIC_PREFIX",
    ),
    (
        {
            **PRODUCTION,
            "STRIPE_MODE": "live",
            "PAYSTREAM_TOPIC_PREFIX": "acme.test.",
            "PAYSTREAM_TOPIC_PREFIX_WITHOUT_MODE": "yes",  # no override names the other mode
        },
        "PAYSTREAM_TOPIC_PREFIX",
    ),
    # an explicit prefix that drops the mode needs the override (outside development)
    (
        {**PRODUCTION, "STRIPE_MODE": "live", "PAYSTREAM_TOPIC_PREFIX": "acme."},
        "PAYSTREAM_TOPIC_PREFIX",
    ),
    ({**PRODUCTION, "PAYSTREAM_TOPIC_PREFIX": "acme."}, "PAYSTREAM_TOPIC_PREFIX"),
    ({"PAYSTREAM_ENV": "preview", "PAYSTREAM_TOPIC_PREFIX": "pr-42."}, "PAYSTREAM_TOPIC_PREFIX"),
    (
        {
            **PRODUCTION,
            "PAYSTREAM_TOPIC_PREFIX": "acme.",
            "PAYSTREAM_TOPIC_PREFIX_WITHOUT_MODE": "true",
        },
        "PAYSTREAM_TOPIC_PREFIX",
    ),
    # preview deploys do not write to the CRM and helpdesk unless told twice
    ({"PAYSTREAM_ENV": "preview", "PAYSTREAM_SINK_WRITES": "enabled"}, "PAYSTREAM_SINK_WRITES"),
    (
        {
            "PAYSTREAM_ENV": "preview",
            "PAYSTREAM_SINK_WRITES": "enabled",
            "PAYSTREAM_ALLOW_PREVIEW_WRITES": "true",
        },
        "PAYSTREAM_SINK_WRITES",
    ),
    # production needs a customer-hash key of at least 32 bytes
    ({"PAYSTREAM_ENV": "production"}, "PAYSTREAM_CUSTOMER_HASH_KEY"),
    ({**PRODUCTION, "PAYSTREAM_CUSTOMER_HASH_KEY": "k" * 31}, "PAYSTREAM_CUSTOMER_HASH_KEY"),
    # production talks to Kafka over TLS (anyone on a plaintext path can forge a paid invoice
    # past the signature check) unless the network is declared private, with the exact word
    ({**PRODUCTION, "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}, "KAFKA_SECURITY_PROTOCOL"),
    (
        {
            **PRODUCTION,
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "paystream",
            "KAFKA_SASL_PASSWORD": "pw",
        },
        "KAFKA_SECURITY_PROTOCOL",
    ),
    (
        {
            **PRODUCTION,
            "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
            "PAYSTREAM_KAFKA_ALLOW_PLAINTEXT": "true",
        },
        "KAFKA_SECURITY_PROTOCOL",
    ),
    # the write switch has two words; a typo is refused, never taken for dry-run
    ({"PAYSTREAM_SINK_WRITES": "enable"}, "PAYSTREAM_SINK_WRITES"),
    ({**PRODUCTION, "PAYSTREAM_SINK_WRITES": "Enabled"}, "PAYSTREAM_SINK_WRITES"),
    ({"PAYSTREAM_SINK_WRITES": "dry_run"}, "PAYSTREAM_SINK_WRITES"),
    ({"PAYSTREAM_ENV": "prod"}, "PAYSTREAM_ENV"),
]

ACCEPTED = [
    {},  # development defaults: `paystream up` and the tests
    {"STRIPE_API_KEY": "sk_test_abc"},
    {"STRIPE_API_KEY": "rk_test_abc"},
    {**PRODUCTION, "STRIPE_MODE": "live", "STRIPE_API_KEY": "sk_live_abc"},
    {**PRODUCTION, "STRIPE_MODE": "live", "STRIPE_API_KEY": "rk_live_abc"},
    {**PRODUCTION, "STRIPE_MODE": "test"},  # a production deploy of test mode (staging)
    {"PAYSTREAM_TOPIC_PREFIX": "t1a2b3c."},  # development: only test mode exists there
    {"PAYSTREAM_TOPIC_PREFIX": "acme.test."},
    {**PRODUCTION, "STRIPE_MODE": "live", "PAYSTREAM_TOPIC_PREFIX": "acme.live."},
    {**PRODUCTION, "STRIPE_MODE": "live", "PAYSTREAM_TOPIC_PREFIX": "acme-live-"},
    {
        **PRODUCTION,
        "STRIPE_MODE": "live",
        "PAYSTREAM_TOPIC_PREFIX": "acme.",
        "PAYSTREAM_TOPIC_PREFIX_WITHOUT_MODE": "yes",
    },
    {"PAYSTREAM_ENV": "preview", "PAYSTREAM_TOPIC_PREFIX": "pr-42.test."},
    {"PAYSTREAM_ENV": "preview"},
    {"PAYSTREAM_ENV": "preview", "PAYSTREAM_SINK_WRITES": "dry-run"},
    {
        "PAYSTREAM_ENV": "preview",
        "PAYSTREAM_SINK_WRITES": "enabled",
        "PAYSTREAM_ALLOW_PREVIEW_WRITES": "yes",
    },
    {"PAYSTREAM_SINK_WRITES": "enabled"},
    {**PRODUCTION, "PAYSTREAM_SINK_WRITES": "enabled"},
    {**PRODUCTION, "PAYSTREAM_CUSTOMER_HASH_KEY": "ü" * 16},  # 32 bytes in UTF-8
    {
        **PRODUCTION,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        **{
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": "paystream",
            "KAFKA_SASL_PASSWORD": "pw",
        },
    },
    {
        **PRODUCTION,
        "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        "PAYSTREAM_KAFKA_ALLOW_PLAINTEXT": "yes",
    },
    {"PAYSTREAM_ENV": "preview"},  # PLAINTEXT by default: the TLS rule is production's
]


@pytest.mark.parametrize(("env", "variable"), REFUSED)
def test_a_broken_rule_refuses_to_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    message = refusal(monkeypatch, env)
    assert message.startswith(f"invalid setting {variable}:"), message
    for secret in ("sk_live_abc", "rk_live_abc", "sk_test_abc", "rk_test_abc", KEY):
        assert secret not in message


@pytest.mark.parametrize("env", ACCEPTED)
def test_a_consistent_environment_starts(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(CommonSettings)
    assert settings.stripe_mode == env.get("STRIPE_MODE", "test")


def test_test_and_live_defaults_never_share_a_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    test = load_settings(CommonSettings).topics
    for key, value in PRODUCTION.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("STRIPE_MODE", "live")
    live = load_settings(CommonSettings).topics
    assert {s.name for s in test.specs()}.isdisjoint({s.name for s in live.specs()})


def test_the_exit_code_of_a_refusal_is_2(monkeypatch: pytest.MonkeyPatch) -> None:
    from paystream.cli import main

    monkeypatch.setenv("STRIPE_MODE", "live")
    assert main(["topics"]) == 2


def test_a_process_without_paystream_env_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    # No default: a preview deploy that forgot it ran with development's leniency (no
    # preview-writes rule, no https rule) and wrote to the real CRM.
    monkeypatch.delenv("PAYSTREAM_ENV")
    message = refusal(monkeypatch, {})
    assert message.startswith("invalid setting PAYSTREAM_ENV: required"), message
    assert "paystream up" in message


def test_given_in_code_counts_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYSTREAM_ENV")
    assert load_settings(CommonSettings, paystream_env="preview").paystream_env == "preview"
