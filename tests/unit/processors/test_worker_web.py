"""The worker's web server: what it binds, what it advertises, which of Faust's views it serves.

Faust's built-in ``/table/...`` and ``/router/...`` views answer anyone who reaches the port
with table contents; the worker serves only its own views. Building the Faust app does no
I/O, so this is a unit test of the configuration; the integration tests run two workers.
"""

from __future__ import annotations

from typing import Any

import pytest

from paystream.errors import SettingsError
from processors.app import create_worker
from processors.settings import WorkerSettings
from processors.web import event_answer


def worker_settings(tmp_path: Any, **values: Any) -> WorkerSettings:
    return WorkerSettings(
        kafka_bootstrap_servers="127.0.0.1:1",
        paystream_data_dir=str(tmp_path),
        paystream_worker_port=6099,
        **values,
    )


@pytest.mark.parametrize(
    ("values", "bind", "canonical"),
    [
        ({}, "127.0.0.1", "http://127.0.0.1:6099"),
        (
            {"paystream_worker_host": "0.0.0.0", "paystream_worker_advertised_host": "10.1.2.3"},
            "0.0.0.0",
            "http://10.1.2.3:6099",
        ),
        (
            {
                "paystream_worker_host": "127.0.0.1",
                "paystream_worker_advertised_host": "worker-0.worker.paystream.svc",
            },
            "127.0.0.1",
            "http://worker-0.worker.paystream.svc:6099",
        ),
    ],
)
def test_the_worker_binds_one_address_and_advertises_another(
    tmp_path: Any, values: dict[str, str], bind: str, canonical: str
) -> None:
    conf = create_worker(worker_settings(tmp_path, **values)).app.conf
    assert conf.web_bind == bind
    assert str(conf.canonical_url).rstrip("/") == canonical
    assert conf.web_host == canonical.split("//")[1].rsplit(":", 1)[0]


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_binding_every_interface_needs_an_advertised_address(tmp_path: Any, host: str) -> None:
    with pytest.raises(SettingsError, match=r"^invalid setting PAYSTREAM_WORKER_ADVERTISED_HOST:"):
        create_worker(worker_settings(tmp_path, paystream_worker_host=host))


def test_faust_builtin_views_are_off(tmp_path: Any) -> None:
    conf = create_worker(worker_settings(tmp_path)).app.conf
    assert not conf.web_tables_enabled
    assert not conf.web_router_enabled
    assert not conf.web_graph_enabled
    assert not conf.web_stats_enabled
    assert not conf.web_metrics_enabled


@pytest.mark.parametrize(
    ("value", "answer"),
    [
        (None, {"processed": False, "outcome": None, "repeated": False}),
        (b"100 applied", {"processed": True, "outcome": "applied", "repeated": False}),
        (b"100 stale duplicate", {"processed": True, "outcome": "stale", "repeated": True}),
        # an entry an earlier release wrote: processed, its outcome not recorded
        (b"100", {"processed": True, "outcome": None, "repeated": False}),
    ],
)
def test_the_event_lookup_answers_from_the_dedup_entry(
    value: bytes | None, answer: dict[str, Any]
) -> None:
    assert event_answer("evt_1", value) == {"event_id": "evt_1", **answer}
