"""Settings of ``paystream admin`` (read once, in ``__main__``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator

from paystream.settings import (
    AdminPort,
    CommonSettings,
    TrustedProxies,
    refuse,
    short_secret_problem,
)


class AdminSettings(CommonSettings, AdminPort, TrustedProxies):
    """The exception-queue view: its token, listener, cookies and paging."""

    #: required: the admin refuses to start without it (at least 16 characters; 32 outside
    #: development)
    paystream_admin_token: SecretStr
    paystream_admin_host: str = "127.0.0.1"
    # PAYSTREAM_ADMIN_PORT and PAYSTREAM_TRUSTED_PROXIES (the sign-in throttle's client,
    # Secure and HSTS) are declared once in paystream.settings
    #: replaced by PAYSTREAM_TRUSTED_PROXIES: refused when set, so no deploy loses its
    #: Secure cookies silently
    paystream_admin_trust_forwarded_proto: str = ""
    paystream_admin_page_size: int = Field(default=50, ge=1, le=1000)
    #: how long a login lasts
    paystream_admin_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    #: failed logins allowed per client address per minute
    paystream_admin_login_attempts_per_minute: int = Field(default=5, ge=1, le=1000)

    @field_validator("paystream_admin_token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().strip()) < 16:
            raise ValueError("must be at least 16 characters (try `openssl rand -hex 24`)")
        return value

    @model_validator(mode="after")
    def _secrets_long_enough(self) -> AdminSettings:
        token = self.paystream_admin_token.get_secret_value()
        refuse(short_secret_problem(self.paystream_env, {"PAYSTREAM_ADMIN_TOKEN": [token]}))
        return self

    @field_validator("paystream_admin_trust_forwarded_proto")
    @classmethod
    def _replaced(cls, value: str) -> str:
        if value.strip().lower() not in ("", "false", "no", "0"):
            raise ValueError(
                "replaced by PAYSTREAM_TRUSTED_PROXIES (the CIDRs of the proxies whose "
                "X-Forwarded-For and X-Forwarded-Proto are believed)"
            )
        return value

    @property
    def consumer_group(self) -> str:
        return self.topic_prefix + "admin"
