"""Doctor's alerting checks against a real Prometheus (Debian's package, as ``make
install`` installs it beside promtool), one per module, reloaded between setups.

It runs deploy/prometheus/prometheus.yml with the targets pointed at four local
``/metrics`` endpoints (each serving ``PaystreamMetrics``, as the processes do) and its
rule file deploy/prometheus/alerts.yml. Broken: no rule file, a rule failing at evaluation,
a process down. Healthy: the same file, and the same processes as a cluster's
kubernetes-pods job would label them (one job for all, told apart by the pods' labels).
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import start_http_server

from paystream.commands.doctor import shell
from paystream.commands.doctor.checks import PROCESSES, Finding
from paystream.metrics import PaystreamMetrics
from paystream.runtime.broker import free_port
from tests.integration.doctor.conftest import Group

pytestmark = pytest.mark.broker

PROMETHEUS_DIR = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"
#: a rule that fails at every evaluation: two series with one label set once the alert's
#: labels are applied ("vector contains metrics with the same labelset")
FAILING_RULE = {
    "groups": [
        {
            "name": "paystream-broken",
            "rules": [
                {
                    "alert": "PaystreamBrokenOnPurpose",
                    "expr": 'label_replace(vector(1), "x", "a", "", "") or '
                    'label_replace(vector(2), "x", "b", "", "")',
                    "labels": {"x": "same"},
                }
            ],
        }
    ]
}


class Prometheus:
    """``prometheus`` on loopback with a config file this test rewrites and reloads."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus not found: run `make install` (Debian package prometheus)")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "prometheus.yml"
        self.workdir = workdir
        self.config.write_text(yaml.safe_dump({"global": {"scrape_interval": "1s"}}))
        self.log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [binary, f"--config.file={self.config}", f"--storage.tsdb.path={workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._wait(lambda: self._get("/-/ready") == 200, "ready")

    def _get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(self.url + path, timeout=2) as answer:  # noqa: S310
                return int(answer.status)
        except OSError:
            return 0

    def _wait(self, done: Callable[[], bool], what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline or self.process.poll() is not None:
                log = (self.workdir / "prometheus.log").read_text()[-3000:]
                raise AssertionError(f"prometheus not {what}:\n{log}")
            time.sleep(0.2)

    def load(self, config: dict[str, Any]) -> None:
        """Write and reload a configuration (``/-/reload`` answers once it is applied)."""
        self.config.write_text(yaml.safe_dump(config))
        request = urllib.request.Request(self.url + "/-/reload", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            assert answer.status == 200

    def wait_scraped(self, config: dict[str, Any]) -> None:
        """Until the targets of ``config`` (just loaded) are the active ones, each scraped
        at least once: discovery after a reload takes some seconds."""
        wanted = {
            t for j in config["scrape_configs"] for s in j["static_configs"] for t in s["targets"]
        }

        def scraped() -> bool:
            with urllib.request.urlopen(self.url + "/api/v1/targets", timeout=5) as answer:  # noqa: S310
                active = json.load(answer)["data"]["activeTargets"]
            found = {t["labels"]["instance"] for t in active}
            return found == wanted and all(t["health"] != "unknown" for t in active)

        self._wait(scraped, f"scraping {sorted(wanted)}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path_factory.mktemp("prometheus"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def processes() -> Iterator[dict[str, int]]:
    """A ``/metrics`` endpoint per process (its metrics, as the process serves them)."""
    ports = {p: free_port() for p in PROCESSES}
    servers = [
        start_http_server(port, "127.0.0.1", PaystreamMetrics().registry) for port in ports.values()
    ]
    yield ports
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(5)


def deploy_config(ports: dict[str, int], rule_files: list[str]) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with its targets on this machine's ports."""
    config: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config.pop("alerting")
    config["rule_files"] = rule_files
    jobs = []
    for job in config["scrape_configs"]:
        process = job["job_name"].removeprefix("paystream-")
        if process in ports:
            for static in job["static_configs"]:
                static["targets"] = [f"127.0.0.1:{ports[process]}"]
            jobs.append(job)
    assert len(jobs) == len(PROCESSES)
    config["scrape_configs"] = jobs
    return config


def as_kubernetes_pods(config: dict[str, Any]) -> dict[str, Any]:
    """One job named as a cluster's, its targets labelled only as the k8s pods are (their
    app.kubernetes.io/* labels through labelmap): no job name tells the processes apart."""
    pods = copy.deepcopy(config)
    statics = [s for job in pods["scrape_configs"] for s in job["static_configs"]]
    pods["scrape_configs"] = [{"job_name": "kubernetes-pods", "static_configs": statics}]
    return pods


def settled(alerting: Group, prometheus: Prometheus, config: dict[str, Any]) -> dict[str, Finding]:
    """Load ``config``; the findings once Prometheus scrapes its targets."""
    prometheus.load(config)
    prometheus.wait_scraped(config)
    time.sleep(1.5)  # one more evaluation of every rule
    return alerting()


@pytest.fixture
def alerting(group: Callable[..., Group], prometheus: Prometheus) -> Group:
    run = group(shell.alerting_findings)
    return lambda **env: run(**{"PROMETHEUS_URL": prometheus.url, **env})


def test_rules_not_loaded_and_a_process_down(
    alerting: Group, prometheus: Prometheus, processes: dict[str, int]
) -> None:
    ports = {**processes, "admin": free_port()}  # nothing listens there
    found = settled(alerting, prometheus, deploy_config(ports, []))
    assert (
        not found["alerting.rules"].ok
        and "no paystream alert rule" in found["alerting.rules"].message
    )
    targets = found["alerting.targets"]
    assert not targets.ok and "1 target(s) down" in targets.message, targets
    assert targets.details[0].startswith("admin: ")


def test_a_rule_failing_at_evaluation(
    alerting: Group, prometheus: Prometheus, processes: dict[str, int], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump(FAILING_RULE))
    prometheus.load(deploy_config(processes, [str(PROMETHEUS_DIR / "alerts.yml"), str(broken)]))
    deadline = time.monotonic() + 60
    while (rules := alerting()["alerting.rules"]).ok and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not rules.ok and "1 of " in rules.message, rules
    assert rules.details[0].startswith("PaystreamBrokenOnPurpose: ")


@pytest.mark.parametrize("layout", ["deploy/prometheus", "kubernetes-pods"])
def test_the_rules_loaded_and_every_process_scraped(
    alerting: Group, prometheus: Prometheus, processes: dict[str, int], layout: str
) -> None:
    config = deploy_config(processes, [str(PROMETHEUS_DIR / "alerts.yml")])
    loaded = config if layout == "deploy/prometheus" else as_kubernetes_pods(config)
    found = settled(alerting, prometheus, loaded)
    assert found["alerting.rules"].ok, found["alerting.rules"]
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    count = sum(len(g["rules"]) for g in rules["groups"])
    assert found["alerting.rules"].message == f"{count} paystream rules loaded and healthy"
    targets = found["alerting.targets"]
    assert targets.ok, targets
    assert targets.message.endswith("ingest 1, worker 1, sinks 1, admin 1")


def test_prometheus_unreachable(alerting: Group) -> None:
    found = alerting(PROMETHEUS_URL=f"http://127.0.0.1:{free_port()}")
    assert not found["alerting"].ok and "Prometheus not reachable" in found["alerting"].message
