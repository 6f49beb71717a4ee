"""The settings of the services the sinks write to: HubSpot, Zendesk and the metrics store.

On the ground floor because two floors read them: the sinks (``sinks/settings.py`` adds
their batching, rate limits and retries) and ``paystream doctor``, which checks the same
credentials and judges the same rules without importing a stage.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from paystream.runtime.store import MetricsStoreSettings
from paystream.settings import is_https_or_loopback, plain_http_problem, refuse


class DestinationSettings(MetricsStoreSettings):
    """The CRM and helpdesk endpoints and credentials, the write switch, the store's URL."""

    hubspot_api_base: str = Field(default="https://api.hubapi.com", pattern=r"^https?://\S+$")
    hubspot_access_token: SecretStr | None = None
    zendesk_api_base: str | None = Field(default=None, pattern=r"^https?://\S+$")
    zendesk_email: str | None = None
    zendesk_api_token: SecretStr | None = None

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
        return self

    @property
    def writes_enabled(self) -> bool:
        return self.paystream_sink_writes == "enabled"
