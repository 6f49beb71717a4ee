"""deploy/k8s validated offline against the Kubernetes JSON schemas (kubernetes-validate),
and the production shape: ingest has a PodDisruptionBudget and an autoscaler, the worker
is a StatefulSet whose table store lives on its own volume."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from tests.unit.deploy.test_compose_and_k8s import k8s_documents

#: Oldest Kubernetes minor the manifests must validate against, and the newest bundled.
VERSIONS = ["1.29", kubernetes_validate.latest_version()]


def _id(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("doc", k8s_documents(), ids=_id)
def test_every_manifest_is_valid_kubernetes(doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)  # raises on any schema error


def test_the_validator_catches_a_broken_manifest() -> None:
    ingest = copy.deepcopy(next(d for d in k8s_documents() if _id(d) == "Deployment/ingest"))
    ingest["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ingest, VERSIONS[-1], strict=True)
    ingest["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = 8080
    ingest["spec"]["replica"] = 2  # a typo: strict mode refuses unknown fields
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ingest, VERSIONS[-1], strict=True)


def _pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = doc["spec"]["template"]["metadata"]["labels"]
    return labels


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def test_ingest_has_a_disruption_budget_and_an_autoscaler() -> None:
    docs = {_id(d): d for d in k8s_documents()}
    ingest = docs["Deployment/ingest"]
    pdb = docs["PodDisruptionBudget/ingest"]
    assert _selects(pdb["spec"]["selector"], _pod_labels(ingest))
    assert pdb["spec"]["minAvailable"] >= 1
    hpa = docs["HorizontalPodAutoscaler/ingest"]
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "ingest")
    assert hpa["spec"]["minReplicas"] > pdb["spec"]["minAvailable"]  # a drain can proceed
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    container = ingest["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["requests"]["cpu"]  # CPU utilisation needs a request


def test_the_worker_is_a_statefulset_with_its_table_store_on_a_volume() -> None:
    docs = {_id(d): d for d in k8s_documents()}
    worker = docs["StatefulSet/worker"]
    assert docs["Service/worker"]["spec"]["clusterIP"] == "None"  # stable pod names
    assert worker["spec"]["serviceName"] == "worker"
    claims = {t["metadata"]["name"] for t in worker["spec"]["volumeClaimTemplates"]}
    container = worker["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    config = docs["ConfigMap/paystream-config"]["data"]
    data_dir = config["PAYSTREAM_DATA_DIR"]
    assert any(mounts.get(claim) == data_dir for claim in claims), (mounts, data_dir)
    assert _selects(docs["PodDisruptionBudget/worker"]["spec"]["selector"], _pod_labels(worker))
