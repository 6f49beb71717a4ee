"""The pods of deploy/k8s and its overlays: every long-running one probed (readiness and
liveness on a named port of its own container, on /readyz and /healthz); every one meets the
Pod Security Standard "restricted" and paystream's hardening; each workload reads only its
own Secret's keys; only ingest and admin take outside traffic. The overlays are built by
tests/unit/deploy/kustomize.py (kustomize itself is not installed)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tests.unit.deploy.kustomize import build, merge
from tests.unit.deploy.test_compose_and_k8s import DEPLOY, k8s_documents

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


# --- the overlays, the Pod Security Standard "restricted" profile, least privilege -------

OVERLAYS = ("staging", "production")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job", "CronJob")


def overlay(name: str) -> list[dict[str, Any]]:
    return build(DEPLOY / "k8s" / "overlays" / name)


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod: dict[str, Any] = spec["template"]["spec"]
    return pod


def pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    labels: dict[str, str] = spec["template"]["metadata"]["labels"]
    return labels


def _workloads() -> list[tuple[str, dict[str, Any]]]:
    return [(o, d) for o in OVERLAYS for d in overlay(o) if d["kind"] in WORKLOAD_KINDS]


def _wid(case: tuple[str, dict[str, Any]]) -> str:
    return f"{case[0]}:{_name(case[1])}"


#: The volume types the restricted profile allows.
RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral"} | {
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def restricted_violations(pod: dict[str, Any]) -> list[str]:
    """The rules of the Pod Security Standard "restricted" (baseline included) that ``pod``
    breaks, from https://kubernetes.io/docs/concepts/security/pod-security-standards/
    (pure; [] when it would be admitted)."""
    problems = [f"host namespace {k}" for k in ("hostNetwork", "hostPID", "hostIPC") if pod.get(k)]
    pod_sc = pod.get("securityContext", {})
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']} of type {sorted(kinds)}")
    containers = [*pod.get("containers", []), *pod.get("initContainers", [])]
    for c in containers:
        sc = c.get("securityContext", {})
        where = c["name"]
        if sc.get("privileged"):
            problems.append(f"{where}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation not false")
        if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
            problems.append(f"{where}: runAsNonRoot not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            problems.append(f"{where}: runAsUser 0")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{where}: seccompProfile {seccomp}")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            problems.append(f"{where}: capabilities not dropping ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{where}: adds capabilities {caps['add']}")
        if any("hostPort" in p for p in c.get("ports", [])):
            problems.append(f"{where}: hostPort")
    return problems


def hardening_problems(pod: dict[str, Any]) -> list[str]:
    """What paystream asks beyond "restricted": read-only root with a volume at /tmp, no
    service-account token, requests and limits of CPU and memory."""
    problems = [] if pod.get("automountServiceAccountToken") is False else ["token mounted"]
    for c in pod["containers"]:
        if c.get("securityContext", {}).get("readOnlyRootFilesystem") is not True:
            problems.append(f"{c['name']}: root filesystem writable")
        if "/tmp" not in {m["mountPath"] for m in c.get("volumeMounts", [])}:
            problems.append(f"{c['name']}: no volume at /tmp")
        resources = c.get("resources", {})
        for kind in ("requests", "limits"):
            if set(resources.get(kind, {})) != {"cpu", "memory"}:
                problems.append(f"{c['name']}: {kind} not both cpu and memory")
    return problems


@pytest.mark.parametrize("case", _workloads(), ids=_wid)
def test_every_pod_meets_the_restricted_profile_and_is_hardened(
    case: tuple[str, dict[str, Any]],
) -> None:
    pod = pod_spec(case[1])
    assert restricted_violations(pod) == []
    assert hardening_problems(pod) == []


GOOD_CONTAINER: dict[str, Any] = {
    "name": "c",
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    },
    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    "resources": {
        "requests": {"cpu": "1", "memory": "1Mi"},
        "limits": {"cpu": "1", "memory": "1Mi"},
    },
}
GOOD_POD: dict[str, Any] = {
    "automountServiceAccountToken": False,
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [GOOD_CONTAINER],
    "volumes": [{"name": "tmp", "emptyDir": {}}],
}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"hostNetwork": True}, "host namespace hostNetwork"),
        ({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, "volume h of type ['hostPath']"),
        (
            {"securityContext": {"seccompProfile": {"type": "RuntimeDefault"}}},
            "c: runAsNonRoot not true",
        ),
        ({"securityContext": {"runAsNonRoot": True}}, "c: seccompProfile None"),
        (
            {
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 0,
                    "seccompProfile": {"type": "RuntimeDefault"},
                }
            },
            "c: runAsUser 0",
        ),
        (
            {
                "containers": [
                    {**GOOD_CONTAINER, "securityContext": {"capabilities": {"drop": ["ALL"]}}}
                ]
            },
            "c: allowPrivilegeEscalation not false",
        ),
        (
            {
                "containers": [
                    {
                        **GOOD_CONTAINER,
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN"]},
                        },
                    }
                ]
            },
            "c: adds capabilities ['NET_ADMIN']",
        ),
        (
            {
                "containers": [
                    {**GOOD_CONTAINER, "securityContext": {"allowPrivilegeEscalation": False}}
                ]
            },
            "c: capabilities not dropping ALL",
        ),
        (
            {"containers": [{**GOOD_CONTAINER, "ports": [{"containerPort": 80, "hostPort": 80}]}]},
            "c: hostPort",
        ),
    ],
)
def test_the_restricted_check_catches(change: dict[str, Any], problem: str) -> None:
    assert restricted_violations(GOOD_POD) == []
    assert problem in restricted_violations({**GOOD_POD, **change})


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"automountServiceAccountToken": True}, "token mounted"),
        ({"containers": [{**GOOD_CONTAINER, "volumeMounts": []}]}, "c: no volume at /tmp"),
        (
            {"containers": [{**GOOD_CONTAINER, "securityContext": {}}]},
            "c: root filesystem writable",
        ),
        (
            {
                "containers": [
                    {**GOOD_CONTAINER, "resources": {"requests": {"cpu": "1", "memory": "1Mi"}}}
                ]
            },
            "c: limits not both cpu and memory",
        ),
    ],
)
def test_the_hardening_check_catches(change: dict[str, Any], problem: str) -> None:
    assert hardening_problems(GOOD_POD) == []
    assert problem in hardening_problems({**GOOD_POD, **change})


def test_the_worker_volume_is_writable_by_its_user() -> None:
    worker = next(d for d in k8s_documents() if d["kind"] == "StatefulSet")
    sc = pod_spec(worker)["securityContext"]
    assert sc["fsGroup"] == sc["runAsUser"] == 10001  # the image's user (deploy/Dockerfile)
    assert "--uid 10001" in (DEPLOY / "Dockerfile").read_text()


#: Every process needs these in production: its own Kafka user, the customer-hash key.
COMMON = {"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "PAYSTREAM_CUSTOMER_HASH_KEY"}
#: The keys each workload's Secret holds (SPEC §2: least privilege).
SECRET_KEYS = {
    "ingest": COMMON | {"STRIPE_WEBHOOK_SECRETS", "PAYSTREAM_APP_SECRETS"},
    "worker": COMMON | {"PAYSTREAM_API_TOKEN"},
    "sinks": COMMON
    | {
        "HUBSPOT_ACCESS_TOKEN",
        "ZENDESK_EMAIL",
        "ZENDESK_API_TOKEN",
        "CLICKHOUSE_URL",
        "PAYSTREAM_APP_WEBHOOK_SECRET",
    },
    "admin": COMMON | {"PAYSTREAM_ADMIN_TOKEN"},
    "reconcile": COMMON | {"STRIPE_API_KEY"},
    "topics": COMMON,
}


def secret_keys(pod: dict[str, Any]) -> dict[str, set[str]]:
    """Secret name → the keys the pod's containers read from it (envFrom: every key, '*')."""
    found: dict[str, set[str]] = {}
    for c in pod["containers"]:
        for ref in c.get("envFrom", []):
            if "secretRef" in ref:
                found.setdefault(ref["secretRef"]["name"], set()).add("*")
        for env in c.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] == env["name"], env  # one name per setting
                found.setdefault(ref["name"], set()).add(ref["key"])
    return found


@pytest.mark.parametrize(
    "doc", [d for d in k8s_documents() if d["kind"] in WORKLOAD_KINDS], ids=_name
)
def test_each_workload_reads_only_its_own_secret_keys(doc: dict[str, Any]) -> None:
    component = pod_labels(doc)["app.kubernetes.io/component"]
    assert secret_keys(pod_spec(doc)) == {f"paystream-{component}": SECRET_KEYS[component]}


def test_ingest_never_holds_the_stripe_key_or_the_crm_token() -> None:
    assert not {"STRIPE_API_KEY", "HUBSPOT_ACCESS_TOKEN"} & SECRET_KEYS["ingest"]
    assert {c for c, keys in SECRET_KEYS.items() if "STRIPE_API_KEY" in keys} == {"reconcile"}


def _outside_ingress(policies: list[dict[str, Any]], labels: dict[str, str]) -> bool:
    """Whether any policy selecting ``labels`` lets in traffic from anywhere (no ``from``)."""
    for policy in policies:
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        selected = all(labels.get(k) == v for k, v in selector.items())
        if selected and any("from" not in r for r in policy["spec"].get("ingress", [])):
            return True
    return False


def test_only_ingest_and_admin_take_outside_traffic() -> None:
    docs = k8s_documents()
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    deny = [p for p in policies if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]]
    assert deny and deny[0]["spec"]["policyTypes"] == ["Ingress"]  # default deny
    open_to_all = {
        pod_labels(d)["app.kubernetes.io/component"]
        for d in docs
        if d["kind"] in WORKLOAD_KINDS and _outside_ingress(policies, d["metadata"]["labels"])
    }
    assert open_to_all == {"ingest", "admin"}


@pytest.mark.parametrize(
    ("overlay_name", "values"),
    [
        (
            "staging",
            {"STRIPE_MODE": "test", "PAYSTREAM_ENV": "preview", "PAYSTREAM_SINK_WRITES": "dry-run"},
        ),
        (
            "production",
            {
                "STRIPE_MODE": "live",
                "PAYSTREAM_ENV": "production",
                "PAYSTREAM_SINK_WRITES": "enabled",
            },
        ),
    ],
)
def test_each_overlay_sets_its_mode_and_namespace(
    overlay_name: str, values: dict[str, str]
) -> None:
    docs = overlay(overlay_name)
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert {k: config[k] for k in values} == values
    namespace = next(d for d in docs if d["kind"] == "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {
        namespace["metadata"]["name"]
    }
    assert config["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"  # production refuses PLAINTEXT
    assert all(not v.startswith("http://") for v in config.values())


@pytest.mark.parametrize("overlay_name", OVERLAYS)
def test_every_overlay_object_is_valid_kubernetes(overlay_name: str) -> None:
    for doc in overlay(overlay_name):
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize(
    ("base", "patch", "merged"),
    [
        ({"a": 1, "b": {"c": 2}}, {"b": {"d": 3}}, {"a": 1, "b": {"c": 2, "d": 3}}),
        ({"l": [1, 2]}, {"l": [3]}, {"l": [3]}),
        (
            {"l": [{"name": "x", "v": 1}, {"name": "y", "v": 2}]},
            {"l": [{"name": "y", "v": 3}]},
            {"l": [{"name": "x", "v": 1}, {"name": "y", "v": 3}]},
        ),
    ],
)
def test_the_overlay_merge(base: Any, patch: Any, merged: Any) -> None:
    assert merge(base, patch) == merged
