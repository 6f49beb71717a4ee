"""Settings of ``paystream ingest`` (SPEC §2): read once in ``__main__``, passed down."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from paystream.proxies import Network, parse_trusted_proxies
from paystream.settings import (
    CommonSettings,
    plain_http_problem,
    refuse,
    secret_values,
    short_secret_problem,
)

MIB = 1024 * 1024

Secrets = Annotated[tuple[SecretStr, ...], NoDecode]


def _split_secrets(value: object) -> object:
    """``"a, b"`` → ``("a", "b")``; an entry that is blank is an error, not a silent skip."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        if not value.strip():
            return ()
        parts = [p.strip() for p in value.split(",")]
        if any(not p for p in parts):
            raise ValueError("empty secret in the comma-separated list")
        return tuple(parts)
    return value


class IngestSettings(CommonSettings):
    """What the webhook service needs on top of the common settings."""

    #: Comma-separated ``whsec_...`` endpoint secrets; any one may match (rotation).
    stripe_webhook_secrets: Secrets = Field(min_length=1)
    #: Accepted age (and clock skew into the future) of the signature timestamp.
    stripe_signature_tolerance_s: int = Field(default=300, ge=1, le=86_400)
    #: Secrets of first-party app events (``POST /events/app``); empty turns the endpoint off.
    paystream_app_secrets: Secrets = ()
    #: listen address; loopback unless told otherwise (deploy/ sets 0.0.0.0)
    paystream_ingest_host: str = "127.0.0.1"
    paystream_ingest_port: int = Field(default=8080, ge=0, le=65_535)
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
    #: The worker's web port, asked by ``GET /v1/customers/{id}`` (any worker: it routes
    #: to the key's owner); with ``PAYSTREAM_API_TOKEN`` unset or this unset, that read is
    #: off (404). ``http://`` off loopback is refused in production (paystream.settings).
    paystream_worker_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    #: Bearer token of ``/v1/customers`` and of the worker's API (the same token).
    paystream_api_token: SecretStr | None = None
    #: How long a customer read waits for the worker before answering 503.
    paystream_ingest_worker_timeout_s: float = Field(default=2.0, gt=0, le=60)
    #: CIDRs of the proxies (ingress, load balancer) whose ``X-Forwarded-For`` names the
    #: client the ``/v1/customers`` throttle counts wrong tokens against (as the admin's)
    paystream_trusted_proxies: str = ""

    @field_validator("paystream_trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        parse_trusted_proxies(value)
        return value

    @property
    def trusted_proxies(self) -> tuple[Network, ...]:
        return parse_trusted_proxies(self.paystream_trusted_proxies)

    @field_validator("stripe_webhook_secrets", "paystream_app_secrets", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split_secrets(value)

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

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        return tuple(s.get_secret_value() for s in self.stripe_webhook_secrets)

    @property
    def app_secrets(self) -> tuple[str, ...]:
        return tuple(s.get_secret_value() for s in self.paystream_app_secrets)


class ReconcileSettings(CommonSettings):
    """What ``paystream reconcile`` needs on top of the common settings."""

    #: A secret (``sk_``) or read-only restricted (``rk_``) key of ``STRIPE_MODE``'s mode
    #: (required here; the prefix rule is ``CommonSettings``' environment rules').
    stripe_api_key: SecretStr
    #: Stripe's API base URL; tests point it at ``paystream.devstack.stripe_api``.
    stripe_api_base: str = Field(default="https://api.stripe.com", pattern=r"^https?://\S+$")
    #: List requests per second at most (Stripe: 25 reads/s in test mode, 100 in live mode,
    #: shared with everything else using the account's keys).
    paystream_reconcile_requests_per_s: float = Field(default=10.0, gt=0, le=100)
    #: How many 429s in a row one page may meet before the run gives up (back-off between).
    paystream_reconcile_rate_limit_retries: int = Field(default=8, ge=0, le=100)
    #: How long one event may wait for the broker's acknowledgement.
    paystream_reconcile_publish_timeout_s: float = Field(default=30.0, gt=0, le=600)
    #: The worker's customer-state API (same bearer token), asked which listed events it
    #: has already processed; unset: not asked, the summary says "unknown".
    paystream_worker_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    paystream_api_token: SecretStr | None = None

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
