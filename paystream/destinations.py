"""The settings of the services the sinks write to: HubSpot, Zendesk, the metrics store and
the product's own notification endpoint (``PAYSTREAM_APP_WEBHOOK_URL``).

On the ground floor because two floors read them: the sinks (``sinks/settings.py`` adds
their batching, rate limits and retries) and ``paystream doctor``, which checks the same
credentials and judges the same rules without importing a stage.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator, model_validator

from paystream.runtime.store import MetricsStoreSettings
from paystream.settings import (
    HTTP_URL,
    Environment,
    is_https_or_loopback,
    plain_http_problem,
    refuse,
    short_secret_problem,
)

APP_WEBHOOK_URL = "PAYSTREAM_APP_WEBHOOK_URL"
APP_WEBHOOK_SECRET = "PAYSTREAM_APP_WEBHOOK_SECRET"  # noqa: S105 (its name, not a value)


def app_webhook_secrets(secret: str | None) -> list[str]:
    """The comma-separated ``PAYSTREAM_APP_WEBHOOK_SECRET`` as its secrets (rotation: each
    one signs, the app accepts any); [] when unset or blank."""
    return [part.strip() for part in (secret or "").split(",") if part.strip()]


def app_webhook_problem(
    env: Environment, url: str | None, secret: str | None
) -> tuple[str, str] | None:
    """What the product notifications refuse (pure): unset URL is off and fine; set, it
    needs its secret (each at least 32 characters outside development) and, outside
    development, an https URL (or loopback: the bytes never leave the host)."""
    if not url or not url.strip():
        return None
    if not re.fullmatch(r"https?://\S+", url):
        return APP_WEBHOOK_URL, "expected an http(s):// URL (the app's notification route)"
    secrets = app_webhook_secrets(secret)
    if not secrets:
        return (
            APP_WEBHOOK_SECRET,
            f"required when {APP_WEBHOOK_URL} is set (try `openssl rand -hex 32`; "
            "the app verifies with the same value)",
        )
    if env != "development" and not is_https_or_loopback(url):
        return APP_WEBHOOK_URL, f"must be an https:// URL when PAYSTREAM_ENV={env}"
    return short_secret_problem(env, {APP_WEBHOOK_SECRET: secrets})


class CrmToken(BaseModel):
    #: HubSpot private-app token; ``up`` starts the stand-in for writes without one
    hubspot_access_token: SecretStr | None = None


class HelpdeskToken(BaseModel):
    #: Zendesk API token; ``up`` starts the stand-in for writes without one
    zendesk_api_token: SecretStr | None = None


class AppWebhook(BaseModel):
    """Product notifications: read by the sinks (which post) and by ``up`` (which checks
    them before starting anything and passes them on)."""

    #: the product's endpoint for ``billing_state.changed`` notifications; unset: off
    paystream_app_webhook_url: str | None = Field(default=None, pattern=HTTP_URL)
    #: signs them (``Paystream-Signature``); comma-separated during a rotation
    paystream_app_webhook_secret: SecretStr | None = None

    @field_validator("paystream_app_webhook_url", "paystream_app_webhook_secret", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # ``PAYSTREAM_APP_WEBHOOK_URL=`` (a line left empty in .env, a blank k8s value): off
        return None if isinstance(value, str) and not value.strip() else value


class DestinationSettings(MetricsStoreSettings, CrmToken, HelpdeskToken, AppWebhook):
    """The CRM and helpdesk endpoints and credentials, the write switch, the store's URL."""

    hubspot_api_base: str = Field(default="https://api.hubapi.com", pattern=HTTP_URL)
    zendesk_api_base: str | None = Field(default=None, pattern=HTTP_URL)
    zendesk_email: str | None = None

    @field_validator("hubspot_api_base", "zendesk_api_base")
    @classmethod
    def _https_outside_development(cls, value: str | None, info: ValidationInfo) -> str | None:
        # The bearer token and the customers' data travel in every request: outside
        # development only https, or a loopback address (the bytes never leave the host:
        # a local egress proxy that does TLS, or the stand-ins of a drill).
        env = info.data.get("paystream_env", "development")
        if value and env != "development" and not is_https_or_loopback(value):
            raise ValueError(f"must be an https:// URL when PAYSTREAM_ENV={env}")
        return value

    @model_validator(mode="after")
    def _production_urls(self) -> DestinationSettings:
        # the store's password and every metrics row travel in the ClickHouse URL's requests
        url = self.clickhouse_url.get_secret_value() if self.clickhouse_url else None
        refuse(plain_http_problem(self.paystream_env, {"CLICKHOUSE_URL": url}))
        secret = self.paystream_app_webhook_secret
        refuse(
            app_webhook_problem(
                self.paystream_env,
                self.paystream_app_webhook_url,
                secret.get_secret_value() if secret is not None else None,
            )
        )
        return self

    @property
    def app_webhook(self) -> tuple[str, list[str]] | None:
        """The notification endpoint and its signing secrets; None when it is off."""
        if not self.paystream_app_webhook_url or self.paystream_app_webhook_secret is None:
            return None
        secrets = app_webhook_secrets(self.paystream_app_webhook_secret.get_secret_value())
        return self.paystream_app_webhook_url, secrets

    @property
    def writes_enabled(self) -> bool:
        return self.paystream_sink_writes == "enabled"


def split_url(url: str) -> tuple[str, str]:
    """``https://host:port/path?q`` → (``https://host:port``, ``/path?q``): the HTTP
    client's base and the request path, so the URL is posted to exactly as written (a
    base URL would gain a trailing slash, which Next.js answers with a redirect)."""
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{parts.scheme}://{parts.netloc}", path + (f"?{parts.query}" if parts.query else "")
