"""The hourly reconcile CronJob: a window longer than its period, the worker it asks."""

from __future__ import annotations

from urllib.parse import urlparse

from ingest.reconcile_plan import STRIPE_EVENT_RETENTION_S, parse_duration
from tests.unit.deploy.test_compose_and_k8s import k8s_documents


def test_the_cronjob_reconciles_overlapping_windows_and_asks_the_worker() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in k8s_documents()}
    cron = docs["CronJob", "reconcile"]["spec"]
    minute, hour, *_rest = cron["schedule"].split()
    assert minute.isdigit() and hour == "*"  # hourly
    assert cron["concurrencyPolicy"] == "Forbid"  # never two runs at once
    container = cron["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "paystream"
    command, flag, window = container["args"]
    assert (command, flag) == ("reconcile", "--since")
    # windows overlap, so a run that failed is covered by the next; Stripe keeps 30 days
    assert 3600 < parse_duration(window) <= STRIPE_EVENT_RETENTION_S
    env = {e["name"]: e["value"] for e in container["env"]}
    url = urlparse(env["PAYSTREAM_WORKER_URL"])
    service = docs["Service", "worker"]["spec"]
    assert url.hostname == "worker"
    assert url.port in {p["port"] for p in service["ports"]}
    refs = {next(iter(r.values()))["name"] for r in container["envFrom"]}
    assert refs == {"paystream-config", "paystream-secrets"}  # STRIPE_API_KEY, API token
