"""Settings of ``paystream worker``: the common ones plus timers, retention and the API."""

from __future__ import annotations

from pydantic import Field, model_validator

from paystream.errors import SettingsError
from paystream.settings import (
    ApiToken,
    CommonSettings,
    Duration,
    WorkerPort,
    parse_duration,
    refuse,
    secret_values,
    short_secret_problem,
)

__all__ = ["Duration", "WorkerSettings", "parse_duration"]


class WorkerSettings(CommonSettings, WorkerPort, ApiToken):
    """Settings of the Faust worker (field name == environment variable); its port and the
    API token (unset: GET /customers/{id} answers 404) are declared in paystream.settings."""

    #: how long a customer may stay ``onboarding_pending`` before a helpdesk ticket
    paystream_onboarding_stuck_after: Duration = 24 * 3600.0
    #: how often the onboarding timer scans the local customers
    paystream_onboarding_scan_interval: Duration = 60.0
    #: how long an event id is remembered for deduplication (and how often it is purged)
    paystream_dedup_retention: Duration = 30 * 86400.0
    paystream_dedup_purge_interval: Duration = 3600.0
    #: address the web server binds (loopback unless told otherwise; deploy/ sets 0.0.0.0)
    paystream_worker_host: str = "127.0.0.1"
    #: address other workers reach this one at (Faust routes /customers/{id} there);
    #: default: the bind address, required when that is every interface
    paystream_worker_advertised_host: str | None = None
    #: stream.take() batch size and wait (seconds)
    paystream_worker_batch_size: int = Field(default=1000, ge=1, le=100_000)
    paystream_worker_batch_within: Duration = 0.05

    @model_validator(mode="after")
    def _secrets_long_enough(self) -> WorkerSettings:
        tokens = {"PAYSTREAM_API_TOKEN": secret_values(self.paystream_api_token)}
        refuse(short_secret_problem(self.paystream_env, tokens))
        return self

    @property
    def advertised_host(self) -> str:
        if self.paystream_worker_advertised_host:
            return self.paystream_worker_advertised_host
        if self.paystream_worker_host in ("0.0.0.0", "::", ""):  # noqa: S104 - a comparison
            raise SettingsError(
                "invalid setting PAYSTREAM_WORKER_ADVERTISED_HOST: required when "
                f"PAYSTREAM_WORKER_HOST={self.paystream_worker_host or '(empty)'} binds every "
                "interface (other workers route requests to it)"
            )
        return self.paystream_worker_host

    @property
    def stuck_after_ms(self) -> int:
        return int(self.paystream_onboarding_stuck_after * 1000)

    @property
    def dedup_retention_ms(self) -> int:
        return int(self.paystream_dedup_retention * 1000)
