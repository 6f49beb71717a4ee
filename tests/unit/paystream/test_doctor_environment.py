"""Doctor's per-process environment rules say what each process's own settings say.

Doctor cannot import a stage, so it rebuilds each process's rules from the ground floor's
models and rule functions (``paystream.commands.doctor.environment``). Here the stages'
real settings are loaded beside them over a table of environments: the line a process
would stop with (or none) must be the very line doctor reports for it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from admin.settings import AdminSettings
from ingest.settings import IngestSettings
from paystream.commands.doctor import environment
from paystream.errors import SettingsError
from paystream.runtime.running_stack import write_running_stack
from paystream.settings import load_settings
from processors.settings import WorkerSettings
from sinks.settings import SinkSettings

STAGES: dict[str, type[BaseSettings]] = {
    "ingest": IngestSettings,
    "worker": WorkerSettings,
    "sinks": SinkSettings,
    "admin": AdminSettings,
}
LONG = "x" * 40
HASH = "h" * 40
#: what every case starts from: a development setup each process starts with
BASE = {
    "PAYSTREAM_ENV": "development",
    "STRIPE_WEBHOOK_SECRETS": "whsec_" + LONG,
    "PAYSTREAM_ADMIN_TOKEN": LONG,
}
PRODUCTION = {
    "PAYSTREAM_ENV": "production",
    "STRIPE_MODE": "live",
    "PAYSTREAM_CUSTOMER_HASH_KEY": HASH,
    "KAFKA_SECURITY_PROTOCOL": "SSL",
}
CASES: dict[str, dict[str, str]] = {
    "development": {},
    "live outside production": {"PAYSTREAM_ENV": "preview", "STRIPE_MODE": "live"},
    "key of the other mode": {"STRIPE_API_KEY": "rk_live_abc"},
    "key of no mode": {"STRIPE_API_KEY": "pk_test_abc"},
    "preview writes": {"PAYSTREAM_ENV": "preview", "PAYSTREAM_SINK_WRITES": "enabled"},
    "preview writes allowed": {
        "PAYSTREAM_ENV": "preview",
        "PAYSTREAM_SINK_WRITES": "enabled",
        "PAYSTREAM_ALLOW_PREVIEW_WRITES": "yes",
    },
    "topic prefix of the other mode": {"PAYSTREAM_TOPIC_PREFIX": "paystream.live."},
    "production": PRODUCTION,
    "production without hash key": {**PRODUCTION, "PAYSTREAM_CUSTOMER_HASH_KEY": ""},
    "production in plaintext": {**PRODUCTION, "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"},
    "production in plaintext, allowed": {
        **PRODUCTION,
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": "u",
        "KAFKA_SASL_PASSWORD": "p",
        "PAYSTREAM_KAFKA_ALLOW_PLAINTEXT": "yes",
    },
    "SASL without mechanism": {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
    "production, plain http worker": {
        **PRODUCTION,
        "PAYSTREAM_WORKER_URL": "http://worker.internal:6066",
    },
    "production, loopback worker": {**PRODUCTION, "PAYSTREAM_WORKER_URL": "http://127.0.0.1:6066"},
    "production, plain http CRM": {**PRODUCTION, "HUBSPOT_API_BASE": "http://crm.example"},
    "preview, plain http helpdesk": {
        "PAYSTREAM_ENV": "preview",
        "ZENDESK_API_BASE": "http://x.zendesk.example",
    },
    "production, plain http store": {
        **PRODUCTION,
        "CLICKHOUSE_URL": "http://u:p@store.internal:8123/db",
    },
    "preview, short API token": {"PAYSTREAM_ENV": "preview", "PAYSTREAM_API_TOKEN": "short"},
    "preview, short app secret": {
        "PAYSTREAM_ENV": "preview",
        "PAYSTREAM_APP_SECRETS": f"{LONG},short-one",
    },
    "preview, short admin token": {"PAYSTREAM_ENV": "preview", "PAYSTREAM_ADMIN_TOKEN": "s" * 20},
    "no PAYSTREAM_ENV": {"PAYSTREAM_ENV": ""},
    "unknown mode": {"STRIPE_MODE": "prod"},
}


PREFIXES = ("STRIPE_", "PAYSTREAM_", "KAFKA_", "HUBSPOT_", "ZENDESK_", "CLICKHOUSE_")


def set_environment(patch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    """Only ``values`` (empty ones unset): no variable of this shell is left."""
    for name in list(os.environ):
        if name.startswith(PREFIXES):
            patch.delenv(name)
    for name, value in values.items():
        if value:
            patch.setenv(name, value)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No variable of this shell, no .env and no running stack: only what a case sets."""
    set_environment(monkeypatch, {})
    monkeypatch.chdir(tmp_path)
    return monkeypatch


def stage_says(cls: type[BaseSettings]) -> str | None:
    try:
        load_settings(cls)
    except SettingsError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("case", list(CASES))
def test_doctor_says_what_each_process_says(
    case: str, clean_environment: pytest.MonkeyPatch
) -> None:
    set_environment(clean_environment, {**BASE, **CASES[case]})
    verdicts = {p: environment.judge(cls)[0] for p, (cls, _req) in environment.PROCESSES.items()}
    assert verdicts == {p: stage_says(cls) for p, cls in STAGES.items()}
    findings = {f.check: f for f in environment.environment_findings()}
    for process, refusal in verdicts.items():
        finding = findings[f"pipeline.environment.{process}"]
        assert finding.ok is (refusal is None)
        assert refusal is None or refusal in finding.message


def test_the_table_has_cases_each_process_refuses(clean_environment: pytest.MonkeyPatch) -> None:
    """The comparison above can fail: every process is refused by some case, and some
    cases refuse one process while another starts."""
    refused = dict.fromkeys(STAGES, 0)
    mixed = 0
    for values in CASES.values():
        set_environment(clean_environment, {**BASE, **values})
        says = {p: stage_says(cls) is not None for p, cls in STAGES.items()}
        for process, no in says.items():
            refused[process] += no
        mixed += len(set(says.values())) == 2
    assert all(refused.values()), refused
    assert mixed >= 3


def test_a_secret_this_environment_does_not_hold_is_not_judged(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    clean_environment.setenv("PAYSTREAM_ENV", "preview")
    findings = {f.check: f for f in environment.environment_findings()}
    assert findings["pipeline.environment.ingest"].ok
    assert "STRIPE_WEBHOOK_SECRETS not set here" in findings["pipeline.environment.ingest"].message
    assert "PAYSTREAM_ADMIN_TOKEN not set here" in findings["pipeline.environment.admin"].message
    assert "not set here" not in findings["pipeline.environment.worker"].message


def test_beside_a_running_up_the_processes_are_judged_as_up_runs_them(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``up`` gives its children PAYSTREAM_ENV=development, which its stack file does not
    hold: without it here, no process would start; beside a running ``up`` each does."""
    found = {f.check: f for f in environment.environment_findings()}
    assert not found["pipeline.environment.worker"].ok
    assert "PAYSTREAM_ENV" in found["pipeline.environment.worker"].message
    # this process stands in for the running up (the file names a live pid)
    (tmp_path / "var").mkdir()
    write_running_stack(tmp_path / "var", {"stripe_webhook_secrets": "whsec_" + LONG}, {})
    found = {f.check: f for f in environment.environment_findings()}
    assert all(f.ok for f in found.values()), found
    assert "not set here" not in found["pipeline.environment.ingest"].message  # the stack's
    clean_environment.setenv("PAYSTREAM_ENV", "preview")  # named here: judged as named
    clean_environment.setenv("PAYSTREAM_API_TOKEN", "short")
    assert not {f.check: f for f in environment.environment_findings()}[
        "pipeline.environment.worker"
    ].ok
