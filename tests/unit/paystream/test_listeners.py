"""Every HTTP listener binds loopback unless its host setting says otherwise (SPEC §2)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic_settings import BaseSettings

from admin.settings import AdminSettings
from ingest.settings import IngestSettings
from processors.settings import WorkerSettings
from sinks.settings import SinkSettings

LISTENERS: list[tuple[type[BaseSettings], str, dict[str, Any]]] = [
    (IngestSettings, "paystream_ingest_host", {"stripe_webhook_secrets": "whsec_x"}),
    (WorkerSettings, "paystream_worker_host", {}),
    (SinkSettings, "paystream_sinks_metrics_host", {}),
    (AdminSettings, "paystream_admin_host", {"paystream_admin_token": "t" * 32}),
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for _, field, _ in LISTENERS:
        monkeypatch.delenv(field.upper(), raising=False)


@pytest.mark.parametrize(("cls", "field", "required"), LISTENERS)
def test_every_listener_binds_loopback_by_default(
    cls: type[BaseSettings], field: str, required: dict[str, Any]
) -> None:
    assert getattr(cls(**required), field) == "127.0.0.1"


@pytest.mark.parametrize(("cls", "field", "required"), LISTENERS)
def test_every_listener_address_is_a_setting(
    monkeypatch: pytest.MonkeyPatch, cls: type[BaseSettings], field: str, required: dict[str, Any]
) -> None:
    monkeypatch.setenv(field.upper(), "0.0.0.0")
    assert getattr(cls(**required), field) == "0.0.0.0"
