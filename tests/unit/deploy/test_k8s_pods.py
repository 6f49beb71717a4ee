"""Every long-running pod in deploy/k8s is probed: readiness and liveness on a named port of
its own container, on the paths the process serves (/readyz, /healthz)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.deploy.test_compose_and_k8s import k8s_documents

LONG_RUNNING = ("Deployment", "StatefulSet")


def _services() -> list[dict[str, Any]]:
    return [d for d in k8s_documents() if d["kind"] in LONG_RUNNING]


def _name(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def probe_problems(container: dict[str, Any]) -> list[str]:
    """What is wrong with a long-running container's probes (pure; [] when all is well)."""
    ports = {p.get("name") for p in container.get("ports", [])}
    wanted = {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}
    problems = []
    for kind, path in wanted.items():
        probe = container.get(kind, {}).get("httpGet")
        if probe is None:
            problems.append(f"no {kind}")
        elif probe["path"] != path:
            problems.append(f"{kind} on {probe['path']}, not {path}")
        elif probe["port"] not in ports:
            problems.append(f"{kind} on port {probe['port']!r}, not a named container port")
    return problems


def test_there_are_four_long_running_workloads() -> None:
    assert sorted(_name(d) for d in _services()) == [
        "Deployment/admin",
        "Deployment/ingest",
        "Deployment/sinks",
        "StatefulSet/worker",
    ]


@pytest.mark.parametrize("doc", _services(), ids=_name)
def test_every_long_running_container_is_probed(doc: dict[str, Any]) -> None:
    for container in doc["spec"]["template"]["spec"]["containers"]:
        assert probe_problems(container) == [], container["name"]


@pytest.mark.parametrize(
    ("container", "problem"),
    [
        ({"ports": [{"name": "http"}]}, "no readinessProbe"),
        (
            {
                "ports": [{"name": "http"}],
                "readinessProbe": {"httpGet": {"path": "/metrics", "port": "http"}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
            },
            "readinessProbe on /metrics, not /readyz",
        ),
        (
            {
                "ports": [{"name": "http"}],
                "readinessProbe": {"httpGet": {"path": "/readyz", "port": "web"}},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}},
            },
            "readinessProbe on port 'web', not a named container port",
        ),
    ],
)
def test_the_probe_check_catches(container: dict[str, Any], problem: str) -> None:
    assert problem in probe_problems(container)
