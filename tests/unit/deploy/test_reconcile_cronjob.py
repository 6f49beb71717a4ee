"""The hourly reconcile CronJob: a window longer than its period, only its own secret."""

from __future__ import annotations

from ingest.reconcile_plan import STRIPE_EVENT_RETENTION_S, parse_duration
from tests.unit.deploy.test_compose_and_k8s import k8s_documents


def test_the_cronjob_reconciles_overlapping_windows_with_its_own_secret() -> None:
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
    env = {e["name"]: e for e in container["env"]}
    # the worker's web port is plain HTTP, refused off loopback in production (SPEC §2):
    # reconcile does not ask it (dedup makes re-publishing harmless)
    assert "PAYSTREAM_WORKER_URL" not in env
    secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in env.values() if "valueFrom" in e}
    assert secrets == {"paystream-reconcile"}
    assert "STRIPE_API_KEY" in env
    refs = {next(iter(r.values()))["name"] for r in container["envFrom"]}
    assert refs == {"paystream-config"}
