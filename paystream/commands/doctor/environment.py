"""The environment rules as each long-running process would judge them (SPEC §2).

Each process refuses to start on the first rule its settings break, with one line naming
the variable. Doctor asks the same question of each, with the same validators and without
importing a stage: per process a settings model built on the ground floor's own
(``CommonSettings``: mode against key prefix and topic prefix, preview writes, the
customer-hash key, Kafka's TLS in production; ``DestinationSettings`` for the sinks:
https API bases and store URL), plus the process's own variables checked with the
ground floor's rule functions (``short_secret_problem``, ``plain_http_problem``), exactly
as ``ingest/settings.py``, ``processors/settings.py``, ``sinks/settings.py`` and
``admin/settings.py`` call them. ``tests/unit/paystream/test_doctor_environment.py`` loads
the stages' real settings beside these over a table of environments and checks that both
say the same.

Beside a running ``paystream up`` the processes are judged as ``up`` runs them (its stack
file's settings, ``PAYSTREAM_ENV=development`` unless this environment names one). A
secret a process requires but this environment does not hold (each process is given
only its own, least privilege) is not judged: the finding says it was not set here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings

from paystream.commands.doctor import checks
from paystream.commands.doctor.checks import Finding
from paystream.destinations import DestinationSettings
from paystream.errors import SettingsError
from paystream.runtime.running_stack import load_beside_running_stack, read_running_stack
from paystream.settings import (
    AdminToken,
    ApiToken,
    AppSecrets,
    CommonSettings,
    Environment,
    WebhookSecrets,
    WorkerUrl,
    plain_http_problem,
    refuse,
    secret_list,
    secret_values,
    short_secret_problem,
)


class IngestRules(CommonSettings, WebhookSecrets, AppSecrets, ApiToken, WorkerUrl):
    """What ``ingest/settings.py`` checks besides the common rules (the same declarations:
    ``paystream.settings``'; the webhook secret optional here, judged apart)."""

    @model_validator(mode="after")
    def _ingest_rules(self) -> IngestRules:
        secrets = {
            "PAYSTREAM_APP_SECRETS": list(secret_list(self.paystream_app_secrets)),
            "PAYSTREAM_API_TOKEN": secret_values(self.paystream_api_token),
        }
        refuse(short_secret_problem(self.paystream_env, secrets))
        refuse(
            plain_http_problem(
                self.paystream_env, {"PAYSTREAM_WORKER_URL": self.paystream_worker_url}
            )
        )
        return self


class WorkerRules(CommonSettings, ApiToken):
    """What ``processors/settings.py`` checks besides the common rules."""

    @model_validator(mode="after")
    def _worker_rules(self) -> WorkerRules:
        tokens = {"PAYSTREAM_API_TOKEN": secret_values(self.paystream_api_token)}
        refuse(short_secret_problem(self.paystream_env, tokens))
        return self


class SinksRules(DestinationSettings):
    """``sinks/settings.py`` adds no environment rule to ``DestinationSettings``'."""


class AdminRules(CommonSettings, AdminToken):
    """What ``admin/settings.py`` checks besides the common rules."""

    @model_validator(mode="after")
    def _admin_rules(self) -> AdminRules:
        tokens = {"PAYSTREAM_ADMIN_TOKEN": secret_values(self.paystream_admin_token)}
        refuse(short_secret_problem(self.paystream_env, tokens))
        return self


#: each long-running process, its rules and the secret it cannot start without
PROCESSES: dict[str, tuple[type[CommonSettings], str | None]] = {
    "ingest": (IngestRules, "stripe_webhook_secrets"),
    "worker": (WorkerRules, None),
    "sinks": (SinksRules, None),
    "admin": (AdminRules, "paystream_admin_token"),
}


class _Here(BaseSettings):
    """Where doctor runs: its data directory, and whether it names an environment."""

    model_config = CommonSettings.model_config
    paystream_data_dir: str = "var"
    paystream_env: Environment | None = None


def up_overrides() -> dict[str, Any]:
    """What a ``paystream up`` running here gives its children beyond its stack file:
    ``PAYSTREAM_ENV=development``, unless this environment names one."""
    try:
        here = _Here()
    except ValidationError:  # a bad PAYSTREAM_ENV: each process's own rules name it
        return {}
    if here.paystream_env is None and read_running_stack(Path(here.paystream_data_dir)) is not None:
        return {"paystream_env": "development"}
    return {}


def _given(secret: SecretStr | None) -> bool:
    """Whether a required secret holds anything."""
    return secret is not None and bool(secret.get_secret_value().strip())


def judge(cls: type[CommonSettings]) -> tuple[str | None, CommonSettings | None]:
    """The one line the process would stop with, or None and the settings it starts with."""
    try:
        return None, load_beside_running_stack(cls, **up_overrides())
    except SettingsError as exc:
        return str(exc), None


def environment_findings() -> list[Finding]:
    """One finding per process: starts, or the line it would refuse to start with."""
    findings = []
    for process, (cls, required) in PROCESSES.items():
        check = f"pipeline.environment.{process}"
        refusal, settings = judge(cls)
        if refusal is not None:
            findings.append(
                checks.problem(
                    check,
                    f"`paystream {process}` would refuse to start: {refusal}",
                    f"correct that variable in {process}'s environment (its Secret or "
                    "config map); the process stops until then",
                )
            )
            continue
        unset = required is not None and not _given(getattr(settings, required))
        note = f" ({required.upper()} not set here: not judged)" if unset and required else ""
        findings.append(checks.ok(check, "passes every environment rule" + note))
    return findings
