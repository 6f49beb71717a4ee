"""deploy/k8s/monitoring (prometheus-operator): the committed PrometheusRule is alerts.yml's
rules exactly, the PodMonitor scrapes every workload's metrics port by the name the
manifests give it, and both are what deploy/prometheus/operator.py generates today."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.unit.deploy.kustomize import build
from tests.unit.deploy.test_compose_and_k8s import k8s_documents

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
MONITORING = DEPLOY / "k8s" / "monitoring"
ALERTS = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
RULE = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
POD_MONITOR = yaml.safe_load((MONITORING / "podmonitor.yaml").read_text())
FIELDS = ("expr", "for", "labels", "annotations")


def _rules(groups: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(g["name"], r["alert"]): r for g in groups for r in g["rules"]}


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "operator_gen", DEPLOY / "prometheus" / "operator.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_rule_holds_the_same_groups_and_alerts() -> None:
    assert [g["name"] for g in RULE["spec"]["groups"]] == [g["name"] for g in ALERTS["groups"]]
    assert list(_rules(RULE["spec"]["groups"])) == list(_rules(ALERTS["groups"]))
    assert (RULE["apiVersion"], RULE["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")


@pytest.mark.parametrize("key", list(_rules(ALERTS["groups"])), ids=lambda k: k[1])
@pytest.mark.parametrize("field", FIELDS)
def test_each_rule_agrees_field_by_field(key: tuple[str, str], field: str) -> None:
    ours, theirs = _rules(ALERTS["groups"])[key], _rules(RULE["spec"]["groups"])[key]
    assert theirs.get(field) == ours.get(field)
    assert set(theirs) == set(ours)  # no field added or dropped on the way


def _scraped(doc: dict[str, Any]) -> tuple[str, str]:
    """The name and path of the container port a workload's scrape annotations point at."""
    template = doc["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    (container,) = template["spec"]["containers"]
    port = int(annotations["prometheus.io/port"])
    (name,) = [p["name"] for p in container["ports"] if p["containerPort"] == port]
    return name, annotations["prometheus.io/path"]


WORKLOADS = [d for d in k8s_documents() if d["kind"] in ("Deployment", "StatefulSet")]


@pytest.mark.parametrize("doc", WORKLOADS, ids=lambda d: d["metadata"]["name"])
def test_the_pod_monitor_scrapes_every_workload_metrics_port(doc: dict[str, Any]) -> None:
    spec = POD_MONITOR["spec"]
    labels = doc["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items())
    endpoints = {e["port"]: e["path"] for e in spec["podMetricsEndpoints"]}
    name, path = _scraped(doc)
    assert endpoints.get(name) == path, (name, endpoints)


def test_the_pod_monitor_names_only_ports_a_workload_has() -> None:
    names = {_scraped(d)[0] for d in WORKLOADS}
    assert {e["port"] for e in POD_MONITOR["spec"]["podMetricsEndpoints"]} == names


def test_the_committed_files_are_what_the_generator_makes() -> None:
    for path, text in _generator().rendered().items():
        assert path.read_text() == text, (
            f"{path.name} is stale: python deploy/prometheus/operator.py"
        )


def test_the_generator_sees_a_renamed_port() -> None:
    """The port check can fail: a workload whose metrics port is renamed changes the monitor."""
    gen = _generator()
    docs = k8s_documents()
    sinks = next(d for d in docs if d["metadata"]["name"] == "sinks" and d["kind"] == "Deployment")
    sinks["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"] = "prom"
    assert "prom" in gen.metrics_ports(docs)
    assert "metrics" not in gen.metrics_ports(docs)


def test_the_monitoring_directory_builds_as_a_kustomization() -> None:
    kinds = [d["kind"] for d in build(MONITORING)]
    assert kinds == ["PodMonitor", "PrometheusRule"]
