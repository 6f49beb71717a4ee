"""Settings: defaults, derived names and one-line errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from paystream.errors import SettingsError
from paystream.settings import CommonSettings, load_settings
from tests.unit.settings_env import clean_environment, refusal


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_environment(monkeypatch, tmp_path)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"STRIPE_MODE": "production"}, "STRIPE_MODE"),
        ({"PAYSTREAM_TOPIC_PARTITIONS": "0"}, "PAYSTREAM_TOPIC_PARTITIONS"),
        ({"PAYSTREAM_TOPIC_PARTITIONS": "many"}, "PAYSTREAM_TOPIC_PARTITIONS"),
        ({"PAYSTREAM_ENV": "staging"}, "PAYSTREAM_ENV"),
        ({"PAYSTREAM_BROKER_PROFILE": "redpanda"}, "PAYSTREAM_BROKER_PROFILE"),
        ({"PAYSTREAM_TOPIC_PREFIX": "bad prefix!"}, "PAYSTREAM_TOPIC_PREFIX"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    message = refusal(monkeypatch, env)
    assert message.startswith(f"invalid setting {variable}:"), message


def test_the_default_prefix_carries_the_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(CommonSettings).topics.stripe_events == "paystream.test.stripe.events"
    monkeypatch.setenv("STRIPE_MODE", "live")
    monkeypatch.setenv("PAYSTREAM_ENV", "production")  # live mode only there
    monkeypatch.setenv("PAYSTREAM_CUSTOMER_HASH_KEY", "k" * 32)
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    assert load_settings(CommonSettings).topics.sink_dlq == "paystream.live.sink.dlq"


def test_a_dotenv_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    with open(f"{tmp_path}/.env", "w") as env_file:
        env_file.write("PAYSTREAM_TOPIC_PARTITIONS=7\n")
    assert load_settings(CommonSettings).paystream_topic_partitions == 7


def test_settings_are_frozen() -> None:
    settings = load_settings(CommonSettings)
    with pytest.raises(Exception, match="frozen"):
        settings.stripe_mode = "live"  # type: ignore[misc]


def test_missing_bootstrap_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="KAFKA_BOOTSTRAP_SERVERS"):
        _ = load_settings(CommonSettings).bootstrap_servers


@pytest.mark.parametrize(("profile", "session_timeout"), [("embedded", 6000), ("kafka", None)])
def test_consumer_tuning_only_for_the_embedded_broker(
    profile: str, session_timeout: int | None
) -> None:
    settings = CommonSettings(
        kafka_bootstrap_servers="h:9092",
        paystream_broker_profile=profile,  # type: ignore[arg-type]
    )
    config = settings.consumer_config("g")
    assert config.get("session.timeout.ms") == session_timeout
    assert config["enable.auto.commit"] is False
    producer = settings.producer_config()
    assert producer["acks"] == "all"
    assert producer["enable.idempotence"] is True
    assert producer["partitioner"] == "murmur2_random"


def _profile(profile: str) -> CommonSettings:
    return CommonSettings(
        kafka_bootstrap_servers="h:9092",
        paystream_broker_profile=profile,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("profile", "asked", "linger"),
    [
        ("kafka", None, 2),
        ("kafka", 0.5, 0.5),
        ("kafka", 50, 50),
        ("embedded", None, 20),
        ("embedded", 0.5, 0.5),
        ("embedded", 50, 50),
    ],
)
def test_the_embedded_broker_gets_fewer_larger_batches_unless_a_linger_is_named(
    profile: str, asked: float | None, linger: float
) -> None:
    extra = {} if asked is None else {"linger.ms": asked}
    config = _profile(profile).producer_config(**extra)
    assert config["linger.ms"] == linger
    assert (config["acks"], config["enable.idempotence"]) == ("all", True)


@pytest.mark.parametrize(
    ("profile", "wanted", "linger"),
    [("kafka", 5, 5), ("kafka", 0.5, 0.5), ("embedded", 5, 20), ("embedded", 50, 50)],
)
def test_a_default_linger_is_at_least_the_embedded_profiles(
    profile: str, wanted: float, linger: float
) -> None:
    assert _profile(profile).linger_ms(wanted) == linger


@pytest.mark.parametrize(
    ("profile", "background", "wait_ms"),
    [
        ("kafka", False, 20),
        ("kafka", True, 20),
        ("embedded", False, 20),
        ("embedded", True, 250),
    ],
)
def test_a_background_consumer_fetches_less_often_on_the_embedded_broker(
    profile: str, background: bool, wait_ms: int
) -> None:
    config = _profile(profile).consumer_config("g", background=background)
    assert config["fetch.wait.max.ms"] == wait_ms
    assert config["client.id"] == "g"
