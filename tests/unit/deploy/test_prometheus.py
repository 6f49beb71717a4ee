"""Alert rules, their unit tests, the scrape config and the Alertmanager routing, checked by
the real promtool/amtool (``make install`` installs them from Debian's packages)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from paystream.metrics import PaystreamMetrics

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"

SPEC_ALERTS = {
    "PaystreamWebhookFailureRateHigh",
    "PaystreamSyncLatencyHigh",
    "PaystreamFailedPaymentNotificationsStopped",
    "PaystreamExceptionQueueNotEmpty",
    "PaystreamNoWebhooks",
    # the delivery gap `paystream reconcile` finds
    "PaystreamWebhooksMissed",
    # HubSpot's daily limit pauses the CRM sink
    "PaystreamHubSpotDailyLimitReached",
    # a destination outage is ridden out by retries for minutes: page while it lasts
    "PaystreamSinkDestinationFailing",
    # a record the worker never handles holds its commits back for good
    "PaystreamWorkerCommitsHeld",
    # a group's lag growing while its members run: a partition nobody reads any more
    "PaystreamConsumerLagGrowing",
}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: run `make install` (installs it through apt-get)")
    return path


def run(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)


def exported_sample_names() -> set[str]:
    names: set[str] = set()
    for family in PaystreamMetrics().registry.collect():
        names.add(family.name)
        for suffix in ("_total", "_bucket", "_sum", "_count", "_created"):
            names.add(family.name + suffix)
    return names


def test_alert_rules_are_valid() -> None:
    result = run(tool("promtool"), "check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(SPEC_ALERTS)} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = run(tool("promtool"), "test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_spec_alert_is_defined_and_tested_firing_and_quiet() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    defined = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    assert defined == SPEC_ALERTS
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    assert firing == SPEC_ALERTS
    assert quiet == SPEC_ALERTS


def test_alert_expressions_name_only_exported_metrics() -> None:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    exported = exported_sample_names()
    for group in rules["groups"]:
        for rule in group["rules"]:
            used = set(re.findall(r"\bpaystream_[a-z_]+", rule["expr"]))
            assert used, rule["alert"]
            assert used <= exported, (rule["alert"], used - exported)


def test_a_broken_rule_file_makes_promtool_fail(tmp_path: Path) -> None:
    """The checks above can fail: promtool rejects a rule whose unit test is wrong."""
    (tmp_path / "alerts.yml").write_text((PROMETHEUS / "alerts.yml").read_text())
    broken = (PROMETHEUS / "alerts_test.yml").read_text().replace("4.762%", "9.999%")
    (tmp_path / "alerts_test.yml").write_text(broken)
    result = run(tool("promtool"), "test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0


def test_scrape_config_is_valid(tmp_path: Path) -> None:
    config = (PROMETHEUS / "prometheus.yml").read_text()
    # The container path of the rule file, mapped onto this checkout.
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/alerts.yml", str(PROMETHEUS / "alerts.yml"))
    )
    result = run(tool("promtool"), "check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {j["job_name"] for j in yaml.safe_load(config)["scrape_configs"]}
    assert {"paystream-ingest", "paystream-worker", "paystream-sinks", "paystream-admin"} <= jobs


def test_alertmanager_routing_is_valid_and_routes_every_severity() -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool not installed (Debian package prometheus-alertmanager)")
    path = DEPLOY / "alertmanager" / "alertmanager.yml"
    result = run(amtool, "check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    severities = {r["labels"]["severity"] for g in rules["groups"] for r in g["rules"]}
    routing = path.read_text()
    for severity in severities:
        assert f'severity = "{severity}"' in routing
