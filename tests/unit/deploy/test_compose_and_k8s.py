"""deploy/compose.yaml and deploy/k8s, checked statically (no container engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from paystream.cli import COMMANDS

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
PAYSTREAM_SERVICES = {"topics", "ingest", "worker", "sinks", "admin"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


BROKERS = ("kafka-1", "kafka-2", "kafka-3")
BOOTSTRAP = ",".join(f"{b}:9092" for b in BROKERS)


def test_compose_runs_the_platform_and_every_paystream_process(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {*BROKERS, "clickhouse", "prometheus", "alertmanager", "grafana"} <= set(services)
    assert set(services) >= PAYSTREAM_SERVICES


def test_kafka_is_apache_kafka_in_kraft_mode(compose: dict[str, Any]) -> None:
    for name in BROKERS:
        kafka = compose["services"][name]
        assert kafka["image"].startswith("apache/kafka:")
        env = kafka["environment"]
        assert "controller" in env["KAFKA_PROCESS_ROLES"]
        assert "KAFKA_ZOOKEEPER_CONNECT" not in env
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # `paystream topics` creates them


def test_three_kraft_brokers_replicate_3_and_acknowledge_with_2(compose: dict[str, Any]) -> None:
    services = compose["services"]
    envs = [services[name]["environment"] for name in BROKERS]
    assert sorted(env["KAFKA_NODE_ID"] for env in envs) == [1, 2, 3]
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in envs}
    assert voters == {"1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093"}
    assert len({env["CLUSTER_ID"] for env in envs}) == 1
    for name, env in zip(BROKERS, envs, strict=True):
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == 2
    volumes = {services[name]["volumes"][0].split(":")[0] for name in BROKERS}
    assert len(volumes) == 3  # one log directory each
    assert set(services["topics"]["depends_on"]) == set(BROKERS)
    for name in PAYSTREAM_SERVICES:
        assert services[name]["environment"]["PAYSTREAM_REPLICATION_FACTOR"] == "3"


def test_paystream_services_share_one_image_and_run_real_commands(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    images = {services[name]["image"] for name in PAYSTREAM_SERVICES}
    assert len(images) == 1
    dockerfile = DEPLOY.parent / services["ingest"]["build"]["dockerfile"]
    assert dockerfile.is_file()
    assert 'ENTRYPOINT ["paystream"]' in dockerfile.read_text()
    for name in PAYSTREAM_SERVICES:
        command = services[name]["command"][0]
        assert command in COMMANDS, (name, command)
        env = services[name]["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == BOOTSTRAP
        assert env["CLICKHOUSE_URL"].startswith("http://")
        assert "@clickhouse:8123/" in env["CLICKHOUSE_URL"]


def test_no_secret_is_written_into_compose(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    for marker in ("whsec_", "sk_live_", "sk_test_", "pat-"):
        assert marker not in text
    for name in PAYSTREAM_SERVICES:
        env = compose["services"][name]["environment"]
        for key in ("STRIPE_WEBHOOK_SECRETS", "HUBSPOT_ACCESS_TOKEN", "PAYSTREAM_ADMIN_TOKEN"):
            assert key not in env


def test_compose_refuses_to_start_without_a_clickhouse_password() -> None:
    # ``${VAR:?message}``: compose stops with the message when VAR is unset or empty, so no
    # deployment runs on a password every reader of this file knows.
    text = (DEPLOY / "compose.yaml").read_text()
    assert "change-me" not in text
    uses = re.findall(r"\$\{CLICKHOUSE_PASSWORD([^}]*)\}", text)
    assert len(uses) >= 2
    assert all(use.startswith(":?") and len(use) > 10 for use in uses), uses


def test_every_mounted_config_file_exists(compose: dict[str, Any]) -> None:
    mounted = 0
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), source
                mounted += 1
    assert mounted >= 5


def test_prometheus_scrapes_the_ports_compose_uses(compose: dict[str, Any]) -> None:
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {
        t for job in scrape["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]
    }
    services = compose["services"]
    assert "ingest:8080" in targets
    assert services["sinks"]["environment"]["PAYSTREAM_SINKS_METRICS_PORT"] == "8082"
    assert "sinks:8082" in targets
    assert services["worker"]["environment"]["PAYSTREAM_WORKER_PORT"] == "6066"
    assert "worker:6066" in targets
    assert "alertmanager:9093" in str(scrape["alerting"])


def k8s_documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((DEPLOY / "k8s" / resource).read_text()) if d]
    return docs


def test_k8s_manifests_parse_and_run_each_process_from_the_one_image() -> None:
    docs = k8s_documents()
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]
    commands = set()
    for workload in workloads:
        spec = workload["spec"]["template"]["spec"]
        for container in spec["containers"]:
            assert container["image"] == "paystream"
            assert container["args"][0] in COMMANDS
            commands.add(container["args"][0])
            refs = {r.get("configMapRef", {}).get("name") for r in container.get("envFrom", [])}
            assert "paystream-config" in refs
    assert commands == PAYSTREAM_SERVICES
    assert {d["kind"] for d in docs} >= {"ConfigMap", "Service", "NetworkPolicy"}


def test_k8s_scrape_annotations_match_container_ports() -> None:
    for doc in k8s_documents():
        if doc["kind"] not in ("Deployment", "StatefulSet"):
            continue
        template = doc["spec"]["template"]
        port = int(template["metadata"]["annotations"]["prometheus.io/port"])
        ports = {p["containerPort"] for c in template["spec"]["containers"] for p in c["ports"]}
        assert port in ports, doc["metadata"]["name"]


LISTENER_HOSTS = (
    "PAYSTREAM_INGEST_HOST",
    "PAYSTREAM_WORKER_HOST",
    "PAYSTREAM_SINKS_METRICS_HOST",
    "PAYSTREAM_ADMIN_HOST",
)


def test_deploy_sets_every_listener_to_all_interfaces_explicitly(compose: dict[str, Any]) -> None:
    """Processes bind loopback by default; a container must say 0.0.0.0 for each listener."""
    for name in PAYSTREAM_SERVICES:
        env = compose["services"][name]["environment"]
        assert all(env[host] == "0.0.0.0" for host in LISTENER_HOSTS), name
    assert compose["services"]["worker"]["environment"]["PAYSTREAM_WORKER_ADVERTISED_HOST"]
    config = next(d for d in k8s_documents() if d["kind"] == "ConfigMap")
    assert all(config["data"][host] == "0.0.0.0" for host in LISTENER_HOSTS)
    worker = next(d for d in k8s_documents() if d["metadata"]["name"] == "worker")
    env = {e["name"]: e for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
    advertised = env["PAYSTREAM_WORKER_ADVERTISED_HOST"]["valueFrom"]["fieldRef"]
    assert advertised["fieldPath"] == "status.podIP"
