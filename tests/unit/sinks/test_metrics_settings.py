"""Settings of the metrics sink and `paystream status`: one line naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from paystream.commands.status import StatusSettings
from paystream.errors import SettingsError
from paystream.settings import load_settings
from sinks.settings import SinkSettings


@pytest.mark.parametrize(
    ("override", "variable"),
    [
        ({"clickhouse_url": "ftp://user:hunter2@db:21/x"}, "CLICKHOUSE_URL"),
        ({"paystream_metrics_batch_size": 0}, "PAYSTREAM_METRICS_BATCH_SIZE"),
        ({"paystream_metrics_batch_interval_s": -1}, "PAYSTREAM_METRICS_BATCH_INTERVAL_S"),
        ({"paystream_metrics_retention_days": 0}, "PAYSTREAM_METRICS_RETENTION_DAYS"),
        ({"paystream_metrics_database": "x; DROP"}, "PAYSTREAM_METRICS_DATABASE"),
    ],
)
def test_bad_setting_names_the_variable_and_never_the_secret(
    override: dict[str, object], variable: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(SinkSettings, **override)
    message = str(raised.value)
    assert message.startswith(f"invalid setting {variable}:")
    assert "hunter2" not in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("url", "database"),
    [
        ("http://u:p@clickhouse:8123/analytics", "analytics"),
        ("https://u:p@clickhouse:8443", "paystream"),
        ("http://clickhouse:8123/", "paystream"),
    ],
)
def test_database_comes_from_the_url_path_when_it_names_one(url: str, database: str) -> None:
    settings = load_settings(SinkSettings, clickhouse_url=url)
    assert settings.store_database == database
    assert not settings.embedded_store
    assert "p@" not in repr(settings)  # the URL (with its password) is a secret


def test_an_empty_clickhouse_url_means_the_embedded_store() -> None:
    assert load_settings(SinkSettings, clickhouse_url="").embedded_store


def test_embedded_store_lives_in_the_data_dir() -> None:
    settings = load_settings(StatusSettings, clickhouse_url=None, paystream_data_dir="/srv/ps")
    assert settings.embedded_store
    assert settings.embedded_store_dir == Path("/srv/ps/clickhouse")
    assert settings.query_endpoint_file == Path("/srv/ps/metrics-query.json")
    assert settings.ingest_metrics_url == "http://127.0.0.1:8080/metrics"


def test_consumer_group_follows_the_topic_prefix() -> None:
    settings = load_settings(SinkSettings, paystream_topic_prefix="acme.test.")
    assert settings.metrics_consumer_group == "acme.test.metrics"
