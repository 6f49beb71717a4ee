"""The worker's settings: durations, their defaults, a bad one named, the API token kept secret."""

from __future__ import annotations

import pytest

from paystream.errors import SettingsError
from paystream.settings import load_settings
from processors.settings import WorkerSettings, parse_duration

DAY_MS = 86_400_000


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("24h", 86400.0),
        ("30d", 2_592_000.0),
        ("90s", 90.0),
        ("500ms", 0.5),
        ("15m", 900.0),
        ("2", 2.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-1h", "0s", "1y"])
def test_bad_duration_names_the_variable(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSTREAM_ONBOARDING_STUCK_AFTER", text)
    with pytest.raises(SettingsError, match="PAYSTREAM_ONBOARDING_STUCK_AFTER"):
        load_settings(WorkerSettings)


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "PAYSTREAM_ONBOARDING_STUCK_AFTER",
        "PAYSTREAM_DEDUP_RETENTION",
        "PAYSTREAM_API_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(WorkerSettings)
    assert settings.stuck_after_ms == 86_400_000
    assert settings.dedup_retention_ms == 30 * DAY_MS
    assert settings.paystream_worker_port == 6066
    assert settings.paystream_api_token is None


def test_api_token_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSTREAM_API_TOKEN", "s3cret-token")
    settings = load_settings(WorkerSettings)
    assert "s3cret-token" not in repr(settings)
