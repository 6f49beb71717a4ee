"""SinkSettings: the write switch, credentials checks and one-line errors naming variables."""

from __future__ import annotations

import pytest

from paystream.errors import SettingsError
from paystream.metrics import PaystreamMetrics
from paystream.settings import load_settings
from sinks.__main__ import default_sinks
from sinks.app import RunnerService, create_app_webhook_sink
from sinks.retry import DEFAULT_RETRY
from sinks.settings import SinkSettings, paced_under


@pytest.mark.parametrize(("value", "enabled"), [("enabled", True), ("dry-run", False)])
def test_writes_need_the_exact_word(value: str, enabled: bool) -> None:
    assert SinkSettings(paystream_sink_writes=value).writes_enabled is enabled


@pytest.mark.parametrize(
    "value", ["enable", "ENABLED", " enabled ", "yes", "true", "1", "dryrun", "off", ""]
)
def test_any_other_word_is_refused_not_taken_for_dry_run(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    # A typo used to mean dry-run in silence: a deploy that meant to write wrote nothing.
    monkeypatch.setenv("PAYSTREAM_SINK_WRITES", value)
    with pytest.raises(SettingsError) as raised:
        load_settings(SinkSettings)
    message = str(raised.value)
    assert message.startswith("invalid setting PAYSTREAM_SINK_WRITES:"), message
    assert "\n" not in message


def test_writes_are_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYSTREAM_SINK_WRITES", raising=False)
    assert load_settings(SinkSettings).writes_enabled is False


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PAYSTREAM_SINK_MAX_ATTEMPTS", "0"),
        ("PAYSTREAM_HUBSPOT_RATE_LIMIT", "lots"),
        ("HUBSPOT_API_BASE", "not a url"),
        ("PAYSTREAM_SINK_BATCH_SIZE", "101"),
        ("PAYSTREAM_SINKS_METRICS_PORT", "70000"),
    ],
)
def test_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"^invalid setting {variable}:"):
        load_settings(SinkSettings)


def test_missing_credentials_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="HUBSPOT_ACCESS_TOKEN"):
        SinkSettings(hubspot_access_token=None).require_hubspot()
    with pytest.raises(SettingsError, match="ZENDESK_EMAIL"):
        SinkSettings(zendesk_api_base="https://x.zendesk.com", zendesk_email=None).require_zendesk()


def test_token_never_shows_in_repr() -> None:
    settings = SinkSettings(hubspot_access_token="pat-secret-123", zendesk_api_token="zd-secret")
    assert "pat-secret-123" not in repr(settings)
    assert "zd-secret" not in str(settings)


def test_the_settings_default_to_the_default_retry_policy() -> None:
    assert SinkSettings().retry_policy() == DEFAULT_RETRY


def test_retry_policy_comes_from_the_settings() -> None:
    policy = SinkSettings(
        paystream_sink_max_attempts=3, paystream_sink_backoff_base_s=0.01
    ).retry_policy()
    assert (policy.max_attempts, policy.backoff_base_s) == (3, 0.01)


@pytest.mark.parametrize(
    ("env", "base", "ok"),
    [
        ("production", "https://api.hubapi.com", True),
        ("production", "http://api.hubapi.com", False),
        ("preview", "http://eu1.api.hubapi.com", False),
        ("production", "http://127.0.0.1:8091", True),  # loopback: never leaves the host
        ("production", "http://localhost:8091", True),
        ("production", "http://[::1]:8091", True),
        ("production", "http://10.0.0.7:8091", False),
        ("development", "http://api.hubapi.com", True),
    ],
)
@pytest.mark.parametrize("variable", ["HUBSPOT_API_BASE", "ZENDESK_API_BASE"])
def test_api_bases_are_https_outside_development(
    monkeypatch: pytest.MonkeyPatch, env: str, base: str, ok: bool, variable: str
) -> None:
    monkeypatch.setenv("PAYSTREAM_ENV", env)
    monkeypatch.setenv("PAYSTREAM_CUSTOMER_HASH_KEY", "k" * 32)
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv(variable, base)
    if ok:
        load_settings(SinkSettings)
        return
    with pytest.raises(SettingsError) as raised:
        load_settings(SinkSettings)
    message = str(raised.value)
    assert message.startswith(f"invalid setting {variable}:") and "https://" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("plan", "override", "limit"),
    [
        ("free", None, 100),
        ("starter", None, 100),
        ("professional", None, 190),
        ("enterprise", None, 190),
        ("free", 50, 50),
    ],
)
def test_hubspot_limit_follows_the_documented_plan(
    plan: str, override: int | None, limit: int
) -> None:
    settings = SinkSettings(
        paystream_hubspot_plan=plan,  # type: ignore[arg-type]
        paystream_hubspot_rate_limit=override,
    )
    assert settings.hubspot_rate_limit == limit


def test_default_plan_matches_the_spec_190_per_10s() -> None:
    settings = SinkSettings()
    assert (settings.hubspot_rate_limit, settings.paystream_hubspot_rate_period_s) == (190, 10.0)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("PAYSTREAM_HUBSPOT_TIME_ZONE", "Mars/Olympus"), ("PAYSTREAM_HUBSPOT_PLAN", "gold")],
)
def test_bad_plan_or_time_zone_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=f"^invalid setting {variable}:"):
        load_settings(SinkSettings)


@pytest.mark.parametrize(
    ("settings", "names"),
    [
        ({}, ["crm", "helpdesk", "metrics"]),
        (
            {
                "paystream_app_webhook_url": "http://127.0.0.1:3000/api/paystream",
                "paystream_app_webhook_secret": "dev-secret",
            },
            ["crm", "helpdesk", "metrics", "app_webhook"],
        ),
    ],
)
def test_the_product_notifications_run_by_default_when_their_url_is_set(
    settings: dict[str, str], names: list[str]
) -> None:
    assert default_sinks(SinkSettings(**settings)) == names  # type: ignore[arg-type]


def test_naming_the_app_webhook_sink_without_its_url_names_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"^invalid setting PAYSTREAM_APP_WEBHOOK_URL:"):
        create_app_webhook_sink(SinkSettings(), PaystreamMetrics())


def test_the_app_webhook_sink_posts_in_dry_run_too() -> None:
    settings = SinkSettings(
        paystream_sink_writes="dry-run",
        paystream_app_webhook_url="http://127.0.0.1:3000/api/paystream",
        paystream_app_webhook_secret="dev-secret",
    )
    service = create_app_webhook_sink(settings, PaystreamMetrics())
    assert isinstance(service, RunnerService)
    assert (service.name, service.writes, service.source_topic) == (
        "app_webhook",
        True,
        settings.topics.customer_lifecycle,
    )
    assert service.group_id == f"{settings.topic_prefix}sinks.app_webhook"


@pytest.mark.parametrize(
    ("plan", "override", "paced"),
    [
        ("professional", None, 187),  # 190 documented: a margin for HubSpot's own window
        ("enterprise", None, 187),
        ("free", None, 98),
        ("starter", None, 98),
        ("professional", 50, 50),  # a limit set by hand is taken as is
        ("professional", 1, 1),
    ],
)
def test_the_sink_paces_under_the_plans_quota(plan: str, override: int | None, paced: int) -> None:
    settings = SinkSettings(
        paystream_hubspot_plan=plan,  # type: ignore[arg-type]
        paystream_hubspot_rate_limit=override,
    )
    assert settings.hubspot_paced_limit == paced
    assert settings.hubspot_paced_limit <= settings.hubspot_rate_limit


@pytest.mark.parametrize("quota", [1, 2, 49, 50, 99, 100, 190, 1000])
def test_paced_under_keeps_at_least_one_request_and_a_margin(quota: int) -> None:
    paced = paced_under(quota)
    assert paced >= 1
    assert paced < quota or quota == 1
