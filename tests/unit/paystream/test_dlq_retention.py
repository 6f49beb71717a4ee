"""PAYSTREAM_DLQ_RETENTION: the retention.ms of sink.dlq, a duration like the others."""

from __future__ import annotations

from pathlib import Path

import pytest

from paystream.runtime.topics_admin import config_differences
from paystream.settings import CommonSettings, load_settings
from schemas.topics import DAY_MS, Topics
from tests.unit.settings_env import clean_environment, refusal


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_environment(monkeypatch, tmp_path)


def dlq_config(topics: Topics) -> dict[str, str]:
    (spec,) = [s for s in topics.specs() if s.name == topics.sink_dlq]
    return spec.config


def test_the_default_is_30_days_and_sink_dlq_expires_with_it() -> None:
    topics = load_settings(CommonSettings).topics
    assert topics.dlq_retention_ms == 30 * DAY_MS
    assert dlq_config(topics) == {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)}


@pytest.mark.parametrize(
    ("text", "ms"),
    [("90d", 90 * DAY_MS), ("12h", 12 * 3600 * 1000), ("3600", 3_600_000), ("1w", 7 * DAY_MS)],
)
def test_a_value_sets_retention_ms_of_sink_dlq_only(
    monkeypatch: pytest.MonkeyPatch, text: str, ms: int
) -> None:
    default = {s.name: s.config for s in load_settings(CommonSettings).topics.specs()}
    monkeypatch.setenv("PAYSTREAM_DLQ_RETENTION", text)
    topics = load_settings(CommonSettings).topics
    assert dlq_config(topics)["retention.ms"] == str(ms)
    others = {s.name: s.config for s in topics.specs() if s.name != topics.sink_dlq}
    assert others == {k: v for k, v in default.items() if k != topics.sink_dlq}


@pytest.mark.parametrize("text", ["", "forever", "-1", "0s", "30 days", "1y"])
def test_a_bad_value_is_refused_in_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    message = refusal(monkeypatch, {"PAYSTREAM_DLQ_RETENTION": text})
    assert message.startswith("invalid setting PAYSTREAM_DLQ_RETENTION:"), message


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        ({"retention.ms": "-1"}, ["p.sink.dlq: retention.ms=-1, needs 2592000000"]),
        ({"retention.ms": "2592000000", "cleanup.policy": "delete"}, []),
        ({"cleanup.policy": "compact"}, ["p.sink.dlq: cleanup.policy=compact, needs delete"]),
        ({}, []),  # a broker that does not report configs: nothing compared
    ],
)
def test_an_existing_topic_whose_retention_differs_is_reported(
    reported: dict[str, str], expected: list[str]
) -> None:
    topics = Topics("p.")
    assert config_differences(topics.specs(), {topics.sink_dlq: reported}) == expected
