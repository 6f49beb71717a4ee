"""Settings of ``paystream ingest`` (SPEC §2): read once in ``__main__``, passed down."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from paystream.settings import (
    ApiToken,
    AppSecrets,
    CommonSettings,
    IngestPort,
    Secrets,
    StripeApiBase,
    TrustedProxies,
    WorkerUrl,
    plain_http_problem,
    refuse,
    secret_list,
    secret_values,
    short_secret_problem,
)

MIB = 1024 * 1024


class IngestSettings(CommonSettings, IngestPort, AppSecrets, WorkerUrl, ApiToken, TrustedProxies):
    """What the webhook service needs on top of the common settings (and the ones it shares
    with the tools beside it, declared once in paystream.settings: its port, the app
    secrets, the worker's URL and API token for ``GET /v1/customers/{id}``, the trusted
    proxies its throttle counts wrong tokens behind)."""

    #: Comma-separated ``whsec_...`` endpoint secrets; any one may match (rotation). The
    #: type of ``paystream.settings.WebhookSecrets``, required here: at least one.
    stripe_webhook_secrets: Secrets
    #: Accepted age (and clock skew into the future) of the signature timestamp.
    stripe_signature_tolerance_s: int = Field(default=300, ge=1, le=86_400)
    #: listen address; loopback unless told otherwise (deploy/ sets 0.0.0.0)
    paystream_ingest_host: str = "127.0.0.1"
    #: How long a request waits for the broker's delivery report before answering 503.
    paystream_ingest_publish_timeout_s: float = Field(default=2.0, gt=0, le=60)
    #: How long the producer waits to batch messages. Every request waits for its delivery
    #: report, so this is on every answer's latency and, with a client per connection
    #: waiting, on throughput; a longer one means fewer broker requests per webhook, which
    #: pays only where the broker shares ingest's cores: 0.5 ms (docs/ingest.md#performance).
    paystream_ingest_linger_ms: float = Field(default=0.5, ge=0, le=1000)
    #: ``Retry-After`` of a 503, in seconds.
    paystream_ingest_retry_after_s: int = Field(default=5, ge=1, le=3600)
    #: Largest accepted request body (413 above).
    paystream_ingest_max_body_bytes: int = Field(default=MIB, ge=1024, le=16 * MIB)
    #: How long a request body may take to arrive once the headers are in (408 after).
    paystream_ingest_body_timeout_s: float = Field(default=10.0, gt=0, le=300)
    #: How many requests may wait for their body at once (503 + Retry-After above).
    paystream_ingest_max_slow_bodies: int = Field(default=128, ge=1, le=100_000)
    #: How long SIGTERM waits for in-flight requests and the producer flush.
    paystream_ingest_shutdown_timeout_s: float = Field(default=10.0, gt=0, le=300)
    # GET /v1/customers/{id} asks PAYSTREAM_WORKER_URL with PAYSTREAM_API_TOKEN: with
    # either unset that read is off (404)
    #: How long a customer read waits for the worker before answering 503.
    paystream_ingest_worker_timeout_s: float = Field(default=2.0, gt=0, le=60)

    @model_validator(mode="after")
    def _secrets_long_enough(self) -> IngestSettings:
        secrets = {
            "PAYSTREAM_APP_SECRETS": self.app_secrets,
            "PAYSTREAM_API_TOKEN": secret_values(self.paystream_api_token),
        }
        refuse(short_secret_problem(self.paystream_env, secrets))
        urls = {"PAYSTREAM_WORKER_URL": self.paystream_worker_url}
        refuse(plain_http_problem(self.paystream_env, urls))
        return self

    @field_validator("stripe_webhook_secrets")
    @classmethod
    def _at_least_one(cls, value: SecretStr | None) -> SecretStr | None:
        if not secret_list(value):
            raise ValueError("at least one whsec_... secret is required")
        return value

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        return secret_list(self.stripe_webhook_secrets)

    @property
    def app_secrets(self) -> tuple[str, ...]:
        return secret_list(self.paystream_app_secrets)


class ReconcileSettings(CommonSettings, StripeApiBase, WorkerUrl, ApiToken):
    """What ``paystream reconcile`` needs on top of the common settings; it asks the
    worker's API (PAYSTREAM_WORKER_URL, same bearer token) which listed events it has
    already processed; unset: not asked, the summary says "unknown"."""

    #: A secret (``sk_``) or read-only restricted (``rk_``) key of ``STRIPE_MODE``'s mode
    #: (required here; the prefix rule is ``CommonSettings``' environment rules').
    stripe_api_key: SecretStr
    #: List requests per second at most (Stripe: 25 reads/s in test mode, 100 in live mode,
    #: shared with everything else using the account's keys).
    paystream_reconcile_requests_per_s: float = Field(default=10.0, gt=0, le=100)
    #: How many 429s in a row one page may meet before the run gives up (back-off between).
    paystream_reconcile_rate_limit_retries: int = Field(default=8, ge=0, le=100)
    #: How long one event may wait for the broker's acknowledgement.
    paystream_reconcile_publish_timeout_s: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _production_rules(self) -> ReconcileSettings:
        tokens = {"PAYSTREAM_API_TOKEN": secret_values(self.paystream_api_token)}
        refuse(short_secret_problem(self.paystream_env, tokens))
        urls = {
            "STRIPE_API_BASE": self.stripe_api_base,
            "PAYSTREAM_WORKER_URL": self.paystream_worker_url,
        }
        refuse(plain_http_problem(self.paystream_env, urls))
        return self
