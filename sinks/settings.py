"""Settings of ``paystream sinks`` and ``paystream crm-setup`` (read once, in ``__main__``)."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator

from paystream.destinations import DestinationSettings
from paystream.errors import SettingsError
from paystream.runtime.store import DDL_DIR
from sinks.hubspot import PLAN_LIMITS_PER_10S
from sinks.retry import DEFAULT_RETRY, RetryPolicy

HubSpotPlan = Literal["free", "starter", "professional", "enterprise"]


def paced_under(quota: int) -> int:
    """A documented quota less 2 % (at least one request): 190 → 187, 100 → 98."""
    return max(1, quota - max(1, quota // 50))


class SinkSettings(DestinationSettings):
    """The destinations (``DestinationSettings``: endpoints, credentials, write switch, the
    store's URL) and how the sinks reach them: rate limits, retries, batching, retention."""

    #: Prometheus ``/metrics`` of the sinks process; 0 turns it off.
    paystream_sinks_metrics_port: int = Field(default=8082, ge=0, le=65535)
    #: its listen address; loopback unless told otherwise (deploy/ sets 0.0.0.0)
    paystream_sinks_metrics_host: str = "127.0.0.1"
    #: how often the sinks process reads every group's lag into its metrics
    #: (``paystream_consumer_lag``); 0: never (another sinks replica may)
    paystream_lag_interval_s: float = Field(default=30.0, ge=0)
    #: the HubSpot account's plan: picks the documented per-10 s limit (100 free/starter,
    #: 190 professional/enterprise) unless PAYSTREAM_HUBSPOT_RATE_LIMIT says otherwise
    paystream_hubspot_plan: HubSpotPlan = "professional"
    paystream_hubspot_rate_limit: int | None = Field(default=None, ge=1)
    paystream_hubspot_rate_period_s: float = Field(default=10.0, gt=0)
    #: the account's time zone (HubSpot settings): its daily limit resets at midnight there
    paystream_hubspot_time_zone: str = "UTC"
    #: make the customer the Zendesk ticket's requester when the email is known
    paystream_zendesk_set_requester: bool = True
    paystream_zendesk_rate_limit: int = Field(default=400, ge=1)
    paystream_zendesk_rate_period_s: float = Field(default=60.0, gt=0)
    #: attempts for 5xx, timeouts and connection errors (the first call included); with the
    #: default back-off, 26 attempts ride out 5-10 minutes of outage (``sinks.retry``)
    paystream_sink_max_attempts: int = Field(default=DEFAULT_RETRY.max_attempts, ge=1, le=100)
    #: how many 429 answers one call may ride out before it is dead-lettered
    paystream_sink_max_rate_limited: int = Field(
        default=DEFAULT_RETRY.max_rate_limited, ge=0, le=10_000
    )
    #: first back-off step and its cap (each step doubles; half fixed, half random)
    paystream_sink_backoff_base_s: float = Field(default=DEFAULT_RETRY.backoff_base_s, ge=0)
    paystream_sink_backoff_max_s: float = Field(default=DEFAULT_RETRY.backoff_max_s, ge=0)
    #: a Retry-After longer than this is capped (a misbehaving API cannot park a sink for hours)
    paystream_sink_retry_after_max_s: float = Field(default=DEFAULT_RETRY.retry_after_max_s, ge=0)
    #: wait used after a 429 that carries no Retry-After
    paystream_sink_retry_after_default_s: float = Field(
        default=DEFAULT_RETRY.retry_after_default_s, ge=0
    )
    paystream_sink_timeout_s: float = Field(default=10.0, gt=0)
    paystream_sink_batch_size: int = Field(default=100, ge=1, le=100)
    #: how long a batch stays open after its first command for more to join it (latency
    #: vs calls: under load, commands queue up while a call is out and batches grow anyway)
    paystream_sink_batch_wait_s: float = Field(default=0.02, gt=0)
    #: read the contacts' billing_state_changed_at before an upsert and skip older states
    paystream_crm_stale_guard: bool = True

    #: metrics sink: rows per insert; a batch is written when it reaches this size ...
    paystream_metrics_batch_size: int = Field(default=1000, ge=1, le=1_000_000)
    #: ... or when its oldest row has waited this long
    paystream_metrics_batch_interval_s: float = Field(default=2.0, gt=0, le=3600)
    #: rows older than this are dropped by the tables' TTL
    paystream_metrics_retention_days: int = Field(default=90, ge=1, le=36_500)
    #: loopback port of the read-only query endpoint (embedded store only); 0 = any free port
    paystream_metrics_query_port: int = Field(default=0, ge=0, le=65535)
    #: first and longest wait between insert retries while the store is unavailable
    paystream_metrics_retry_base_s: float = Field(default=0.5, gt=0)
    paystream_metrics_retry_max_s: float = Field(default=15.0, gt=0)
    #: DDL directory; default: the DDL shipped in the package (paystream/runtime/clickhouse)
    paystream_metrics_ddl_dir: str = str(DDL_DIR)

    @property
    def metrics_consumer_group(self) -> str:
        return self.topic_prefix + "metrics"

    def metrics_retry_policy(self) -> RetryPolicy:
        """The back-off of store writes, retried without limit (``DestinationUnavailable``)."""
        return RetryPolicy(
            backoff_base_s=self.paystream_metrics_retry_base_s,
            backoff_max_s=self.paystream_metrics_retry_max_s,
        )

    @field_validator("paystream_hubspot_time_zone")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone (e.g. Europe/Berlin)") from None
        return value

    @property
    def hubspot_rate_limit(self) -> int:
        """Requests per PAYSTREAM_HUBSPOT_RATE_PERIOD_S: the setting, else the plan's."""
        if self.paystream_hubspot_rate_limit is not None:
            return self.paystream_hubspot_rate_limit
        return PLAN_LIMITS_PER_10S[self.paystream_hubspot_plan]

    @property
    def hubspot_paced_limit(self) -> int:
        """What the sink lets out per window: a limit set here as is; the plan's documented
        figure less a margin (``paced_under``), since HubSpot counts arrivals in its own
        rolling window, and a request paced at exactly the quota that arrives late makes the
        191st: a 429 without ``Retry-After`` and a whole window's wait."""
        if self.paystream_hubspot_rate_limit is not None:
            return self.paystream_hubspot_rate_limit
        return paced_under(PLAN_LIMITS_PER_10S[self.paystream_hubspot_plan])

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.paystream_sink_max_attempts,
            max_rate_limited=self.paystream_sink_max_rate_limited,
            backoff_base_s=self.paystream_sink_backoff_base_s,
            backoff_max_s=self.paystream_sink_backoff_max_s,
            retry_after_max_s=self.paystream_sink_retry_after_max_s,
            retry_after_default_s=self.paystream_sink_retry_after_default_s,
        )

    def require_hubspot(self) -> SecretStr:
        """The HubSpot token, or a SettingsError naming the variable."""
        if self.hubspot_access_token is None or not self.hubspot_access_token.get_secret_value():
            raise SettingsError(
                "invalid setting HUBSPOT_ACCESS_TOKEN: required when PAYSTREAM_SINK_WRITES=enabled"
            )
        return self.hubspot_access_token

    def require_zendesk(self) -> tuple[str, str, SecretStr]:
        """Zendesk base, email and token, or a SettingsError naming the first missing one."""
        if not self.zendesk_api_base:
            raise SettingsError(
                "invalid setting ZENDESK_API_BASE: required when PAYSTREAM_SINK_WRITES=enabled"
            )
        if not self.zendesk_email:
            raise SettingsError(
                "invalid setting ZENDESK_EMAIL: required when PAYSTREAM_SINK_WRITES=enabled"
            )
        if self.zendesk_api_token is None or not self.zendesk_api_token.get_secret_value():
            raise SettingsError(
                "invalid setting ZENDESK_API_TOKEN: required when PAYSTREAM_SINK_WRITES=enabled"
            )
        return self.zendesk_api_base, self.zendesk_email, self.zendesk_api_token
