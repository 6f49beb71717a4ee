"""The manifests run: each workload of deploy/k8s (as each overlay builds it) is
started as a process with exactly the environment its pod gets, the config map plus its own
Secret's keys with stub values, and must answer 200 on its readiness probe's path; the
topics Job must exit 0, and so must the reconcile CronJob's command once the workloads run
(against the Stripe API stand-in, devstack/stripe_api.py, listing a few events).

What is overridden, and why (nothing else is):

* the broker: ``KAFKA_BOOTSTRAP_SERVERS`` → the session's embedded broker, which speaks
  plaintext only, so ``KAFKA_SECURITY_PROTOCOL=PLAINTEXT`` with
  ``PAYSTREAM_KAFKA_ALLOW_PLAINTEXT=yes`` (the explicit opt-in SPEC §2 requires) and no
  ``KAFKA_SASL_MECHANISM``; ``PAYSTREAM_BROKER_PROFILE=embedded`` tunes the clients for it;
* ports: each listener on a free port (the machine is shared; in a pod each has its own);
* ``PAYSTREAM_DATA_DIR``: a temporary directory (the pod's volume);
* ``PAYSTREAM_WORKER_ADVERTISED_HOST``: 127.0.0.1 (the pod IP the downward API gives);
* ``CLICKHOUSE_URL``: empty, i.e. the embedded store (no ClickHouse server here);
* ``STRIPE_API_BASE``: the Stripe stand-in on loopback (production refuses ``http://`` off
  loopback only), which knows the stub ``STRIPE_API_KEY`` of the overlay's mode;
* ``PAYSTREAM_TOPIC_PREFIX``: a fresh one per run, so the session's other tests never share
  topics with it; with ``PAYSTREAM_TOPIC_PREFIX_WITHOUT_MODE=yes`` as production requires for
  a prefix that does not name the mode, and ``PAYSTREAM_REPLICATION_FACTOR=1`` (one broker).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from devstack.stripe_api import StripeApiStandin, events_from_fixtures
from paystream.runtime.broker import free_port
from tests.unit.deploy.kustomize import build

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
LONG_RUNNING = ("Deployment", "StatefulSet")
#: Which setting moves each container port (the manifests' ports are fixed, ours are free).
PORT_SETTINGS = {
    "ingest": "PAYSTREAM_INGEST_PORT",
    "admin": "PAYSTREAM_ADMIN_PORT",
    "sinks": "PAYSTREAM_SINKS_METRICS_PORT",
    "worker": "PAYSTREAM_WORKER_PORT",
}
STUB = "s" * 40  # at least 32 characters: production refuses shorter secrets
#: Stub values where a secret has a shape of its own.
STUBS = {
    "STRIPE_WEBHOOK_SECRETS": "whsec_" + STUB,
    "ZENDESK_EMAIL": "support@example.com",
    "CLICKHOUSE_URL": "",
}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    """The pod template's spec of a workload (a CronJob's inside its job template)."""
    spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    pod: dict[str, Any] = spec["template"]["spec"]
    return pod


def stripe_key(config: dict[str, str]) -> str:
    """A restricted key of the overlay's Stripe mode (the prefix must agree with it)."""
    return f"rk_{config['STRIPE_MODE']}_{STUB}"


def pod_env(doc: dict[str, Any], config: dict[str, str]) -> dict[str, str]:
    """The environment a pod of ``doc`` gets: its config map, then its own env entries."""
    (container,) = pod_spec(doc)["containers"]
    env: dict[str, str] = {}
    for ref in container.get("envFrom", []):
        assert set(ref) == {"configMapRef"}, ref  # secrets come key by key
        env.update(config)
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        elif entry["name"] == "STRIPE_API_KEY":
            env[entry["name"]] = stripe_key(config)
        elif "secretKeyRef" in entry["valueFrom"]:
            env[entry["name"]] = STUBS.get(entry["name"], STUB)
        else:
            assert entry["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
            env[entry["name"]] = "127.0.0.1"
    return env


def overrides(kafka: str, data_dir: Path, prefix: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
        "PAYSTREAM_KAFKA_ALLOW_PLAINTEXT": "yes",
        "PAYSTREAM_BROKER_PROFILE": "embedded",
        "PAYSTREAM_DATA_DIR": str(data_dir),
        "PAYSTREAM_TOPIC_PREFIX": prefix,
        "PAYSTREAM_TOPIC_PREFIX_WITHOUT_MODE": "yes",
        "PAYSTREAM_REPLICATION_FACTOR": "1",
    }


#: ``paystream`` of the work tree (the image's entry point is the installed one)
PAYSTREAM = (sys.executable, "-m", "paystream")


def start(
    args: list[str], env: dict[str, str], log: Path, program: tuple[str, ...] = PAYSTREAM
) -> subprocess.Popen[bytes]:
    """``paystream ARGS`` as a process with ``env`` (plus PATH and HOME), output in ``log``."""
    keep = ("PATH", "HOME") if program != PAYSTREAM else ("PATH", "HOME", "PYTHONPATH")
    base = {k: os.environ[k] for k in keep if k in os.environ}
    with log.open("wb") as out:
        return subprocess.Popen(
            [*program, *args],
            env={**base, **env},
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def args(doc: dict[str, Any]) -> list[str]:
    (container,) = pod_spec(doc)["containers"]
    found: list[str] = container["args"]
    return found


def wait_ready(procs: dict[str, tuple[subprocess.Popen[bytes], str]], logs: Path) -> None:
    """Until every process answers 200 on its URL; fails at once when one exits."""
    waiting = dict(procs)
    deadline = time.monotonic() + 90
    while waiting and time.monotonic() < deadline:
        for name, (proc, url) in list(waiting.items()):
            assert proc.poll() is None, (name, (logs / name / "out.log").read_text())
            if answers_200(url):
                del waiting[name]
        time.sleep(0.2)
    assert not waiting, {n: (logs / n / "out.log").read_text()[-2000:] for n in waiting}


def stop(procs: dict[str, tuple[subprocess.Popen[bytes], str]]) -> None:
    for proc, _ in procs.values():
        proc.terminate()
    for proc, _ in procs.values():
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our http URL)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def run_reconcile(cron: dict[str, Any], env: dict[str, str], fixtures: Path, log: Path) -> None:
    """The CronJob's command, once, against the Stripe stand-in listing three events."""
    live = env["STRIPE_MODE"] == "live"
    events = events_from_fixtures(fixtures, 3, newest=int(time.time()) - 60, livemode=live)
    with StripeApiStandin(env["STRIPE_API_KEY"]) as stripe:
        stripe.add_events(events)
        proc = start(args(cron), {**env, "STRIPE_API_BASE": stripe.url}, log)
        assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
    assert "listed: 3" in log.read_text().splitlines(), log.read_text()[-3000:]


@pytest.mark.parametrize(
    ("overlay", "env_name"), [("staging", "preview"), ("production", "production")]
)
def test_every_workload_of_the_overlay_runs(
    overlay: str, env_name: str, kafka_bootstrap: str, stripe_fixtures_dir: Path, tmp_path: Path
) -> None:
    docs = build(DEPLOY / "k8s" / "overlays" / overlay)
    config: dict[str, str] = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert config["PAYSTREAM_ENV"] == env_name
    common = overrides(kafka_bootstrap, tmp_path, f"d{uuid.uuid4().hex[:8]}.")
    job = next(d for d in docs if d["kind"] == "Job")
    env = {**pod_env(job, config), **common}
    env.pop("KAFKA_SASL_MECHANISM")
    topics = start(args(job), env, tmp_path / "topics.log")
    assert topics.wait(timeout=60) == 0, (tmp_path / "topics.log").read_text()

    procs: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    try:
        for doc in (d for d in docs if d["kind"] in LONG_RUNNING):
            name = doc["metadata"]["name"]
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            port = free_port()
            data = tmp_path / name
            data.mkdir()
            env = {**pod_env(doc, config), **common, PORT_SETTINGS[name]: str(port)}
            env["PAYSTREAM_DATA_DIR"] = str(data)
            env.pop("KAFKA_SASL_MECHANISM")
            path = container["readinessProbe"]["httpGet"]["path"]
            procs[name] = (
                start(args(doc), env, data / "out.log"),
                f"http://127.0.0.1:{port}{path}",
            )
        assert set(procs) == set(PORT_SETTINGS)
        wait_ready(procs, tmp_path)
        (cron,) = [d for d in docs if d["kind"] == "CronJob"]
        env = {**pod_env(cron, config), **common}
        env.pop("KAFKA_SASL_MECHANISM")
        run_reconcile(cron, env, stripe_fixtures_dir, tmp_path / "reconcile.log")
    finally:
        stop(procs)
