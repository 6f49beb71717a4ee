"""The Grafana dashboard only queries metrics the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from paystream.metrics import PaystreamMetrics

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "paystream-slo.json"
#: SPEC §7: the metrics every dashboard user expects to see
SPEC_METRICS = (
    "paystream_webhook_requests",
    "paystream_webhook_duration_seconds",
    "paystream_events",
    "paystream_sink_requests",
    "paystream_sync_latency_seconds",
    "paystream_exceptions_open",
    "paystream_manual_interventions",
)
METRIC = re.compile(r"\b(paystream_[a-z0-9_]+)")


def exported_sample_names() -> set[str]:
    names: set[str] = set()
    for family in PaystreamMetrics().registry.collect():
        names.add(family.name)
        for suffix in ("_total", "_bucket", "_sum", "_count", "_created"):
            names.add(family.name + suffix)
    return names


def query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # rows hold their panels
    return [p for p in panels if p.get("type") not in ("alertlist", "row", "text")]


def test_every_panel_queries_an_exported_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exported = exported_sample_names()
    panels = query_panels(dashboard)
    assert len(panels) >= 8
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used = set(METRIC.findall(target["expr"]))
            assert used, (panel["title"], target["expr"])
            assert used <= exported, (panel["title"], used - exported)


def test_the_dashboard_covers_every_spec_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    used = {
        m for p in query_panels(dashboard) for t in p["targets"] for m in METRIC.findall(t["expr"])
    }
    for family in SPEC_METRICS:
        assert any(name.startswith(family) for name in used), family


def test_checker_rejects_a_metric_the_code_does_not_export() -> None:
    exported = exported_sample_names()
    assert "paystream_webhook_requests_total" in exported
    assert "paystream_sync_latency_seconds_bucket" in exported
    assert not set(METRIC.findall("rate(paystream_webhook_request_total[5m])")) <= exported


def test_panel_ids_are_unique() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
