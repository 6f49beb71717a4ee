"""Settings shared by every process: frozen pydantic-settings models read once in __main__.

Every field name is the environment variable it reads (case-insensitive), so a validation
error names the variable. ``load_settings`` turns the first error into one line.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import ssl
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from paystream.errors import SettingsError
from paystream.proxies import Network, parse_trusted_proxies
from schemas.topics import Topics

StripeMode = Literal["test", "live"]
BrokerProfile = Literal["kafka", "embedded"]

# The embedded broker's profile (Tansu 0.6, memory engine): every produce request stores one
# object per partition it names, kept for the broker's life (it has no retention and no
# DeleteRecords), and every fetch that returns records lists all of a partition's objects,
# so the broker's CPU grows with fetches x stored batches (docs/benchmarks.md, "Broker round
# trips"). Its profile asks for fewer, larger batches and fewer fetches where no one waits.

#: least default linger of a producer on the embedded broker (a flush still sends at once)
EMBEDDED_LINGER_MS = 20
#: fetch wait of a consumer no one waits on (topic feeds, the metrics sink) on the
#: embedded broker, which holds every fetch for its whole wait
EMBEDDED_BACKGROUND_FETCH_WAIT_MS = 250
Environment = Literal["production", "preview", "development"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
#: ``enabled`` lets the sinks call the CRM and helpdesk; ``dry-run`` builds, records and
#: counts each call (as ``dry_run``) without sending it. Nothing else: a typo is refused.
SinkWrites = Literal["enabled", "dry-run"]

#: Stripe secret (``sk_``) and restricted (``rk_``) key prefixes of each mode.
API_KEY_PREFIXES = {"test": ("sk_test_", "rk_test_"), "live": ("sk_live_", "rk_live_")}
#: Shortest customer-hash key accepted in production (HMAC-SHA256 key of 256 bits).
MIN_HASH_KEY_BYTES = 32
#: The one value that turns an explicit override on (not "true", not "1": a typo stays off).
YES = "yes"
#: Shortest app secret, API token or admin token accepted outside development (SPEC §2).
MIN_SECRET_CHARS = 32
#: Kafka security protocols that send records (and SASL passwords) in the clear.
PLAINTEXT_PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT")

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")


def parse_duration(value: object) -> float:
    """``"24h"``, ``"30d"``, ``"90s"``, ``"500ms"`` or a number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 24h, 30m or 90s")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if match is None:
            raise ValueError("expected a duration such as 24h, 30m or 90s")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def is_https_or_loopback(url: str) -> bool:
    """True for an https URL, or an http URL to 127.0.0.0/8, ::1 or localhost."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "https":
        return True
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plaintext_kafka_problem(
    env: Environment, kafka_protocol: SecurityProtocol, allow_plaintext: str
) -> tuple[str, str] | None:
    """What production refuses of Kafka (pure): a connection without TLS, unless
    ``PAYSTREAM_KAFKA_ALLOW_PLAINTEXT=yes``. Every process checks it (``CommonSettings``)."""
    if env == "production" and kafka_protocol in PLAINTEXT_PROTOCOLS and allow_plaintext != YES:
        return (
            "KAFKA_SECURITY_PROTOCOL",
            f"{kafka_protocol} (no TLS) is refused when PAYSTREAM_ENV=production: use SSL or "
            "SASL_SSL, or set PAYSTREAM_KAFKA_ALLOW_PLAINTEXT=yes for a private network",
        )
    return None


def plain_http_problem(env: Environment, urls: Mapping[str, str | None]) -> tuple[str, str] | None:
    """What production refuses of URLs (pure): any ``http://`` URL (API base, worker URL)
    that is not loopback. ``urls`` maps each URL's variable to its value; each process
    passes the URLs it reads."""
    if env != "production":
        return None
    for variable, url in urls.items():
        if url and not is_https_or_loopback(url):
            return variable, "must be an https:// URL (or loopback) when PAYSTREAM_ENV=production"
    return None


def secret_values(secret: SecretStr | None) -> list[str]:
    """An optional secret setting's value as ``short_secret_problem`` takes it ([] unset)."""
    return [secret.get_secret_value()] if secret is not None else []


def short_secret_problem(
    env: Environment, secrets: Mapping[str, Iterable[str]]
) -> tuple[str, str] | None:
    """The first secret shorter than ``MIN_SECRET_CHARS`` outside development (pure).

    ``secrets`` maps each variable to its values (a comma-separated list has several);
    an unset secret is an empty iterable, not checked here.
    """
    if env == "development":
        return None
    for variable, values in secrets.items():
        if any(len(value.strip()) < MIN_SECRET_CHARS for value in values):
            return (
                variable,
                f"at least {MIN_SECRET_CHARS} characters are required when PAYSTREAM_ENV={env} "
                "(try `openssl rand -hex 32`)",
            )
    return None


def refuse(problem: tuple[str, str] | None) -> None:
    """Raise the one-line SettingsError of a rule's (variable, why); nothing for None."""
    if problem is not None:
        # Not a ValueError: pydantic would wrap it without the variable's name.
        raise SettingsError(f"invalid setting {problem[0]}: {problem[1]}")


def environment_problem(
    *,
    env: Environment,
    mode: StripeMode,
    api_key: str | None,
    topic_prefix: str | None,
    prefix_without_mode: str,
    sink_writes: str,
    allow_preview_writes: str,
    hash_key: str,
) -> tuple[str, str] | None:
    """The first environment-separation rule these settings break: (variable, why), or None.

    Pure, so every rule is a row of a table in the tests; ``CommonSettings`` refuses to
    build when it returns something, and the process exits 2 with one line.
    """
    other = "live" if mode == "test" else "test"
    if api_key is not None and api_key != "":
        if api_key.startswith(API_KEY_PREFIXES[other]):
            return "STRIPE_API_KEY", f"a {other}-mode key while STRIPE_MODE={mode}"
        if not api_key.startswith(API_KEY_PREFIXES[mode]):
            return "STRIPE_API_KEY", "expected a secret (sk_) or restricted (rk_) key of the mode"
    if mode == "live" and env != "production":
        return "STRIPE_MODE", f"live mode is refused outside PAYSTREAM_ENV=production (is {env})"
    if topic_prefix is not None:
        words = set(re.split(r"[._-]+", topic_prefix.lower()))
        if other in words:
            return "PAYSTREAM_TOPIC_PREFIX", f"names {other} mode while STRIPE_MODE={mode}"
        if mode not in words and env != "development" and prefix_without_mode != YES:
            return (
                "PAYSTREAM_TOPIC_PREFIX",
                f"does not name the mode ({mode}); set PAYSTREAM_TOPIC_PREFIX_WITHOUT_MODE=yes "
                "if this cluster never sees the other mode",
            )
    if (
        env == "preview"
        and sink_writes.strip().lower() == "enabled"
        and allow_preview_writes != YES
    ):
        return (
            "PAYSTREAM_SINK_WRITES",
            "preview deploys stay dry-run unless PAYSTREAM_ALLOW_PREVIEW_WRITES=yes",
        )
    if env == "production" and len(hash_key.encode()) < MIN_HASH_KEY_BYTES:
        return (
            "PAYSTREAM_CUSTOMER_HASH_KEY",
            f"at least {MIN_HASH_KEY_BYTES} bytes are required when PAYSTREAM_ENV=production",
        )
    return None


def kafka_security_problem(
    *,
    protocol: SecurityProtocol,
    mechanism: SaslMechanism | None,
    username: str | None,
    password: str | None,
    ca_location: str | None,
) -> tuple[str, str] | None:
    """What is missing for the Kafka security protocol: (variable, why), or None (pure)."""
    sasl = protocol.startswith("SASL_")
    if mechanism is not None and not sasl:
        return "KAFKA_SASL_MECHANISM", f"set, but KAFKA_SECURITY_PROTOCOL={protocol} has no SASL"
    if sasl and mechanism is None:
        return "KAFKA_SASL_MECHANISM", f"required with KAFKA_SECURITY_PROTOCOL={protocol}"
    if sasl and not username:
        return "KAFKA_SASL_USERNAME", f"required with KAFKA_SECURITY_PROTOCOL={protocol}"
    if sasl and not password:
        return "KAFKA_SASL_PASSWORD", f"required with KAFKA_SECURITY_PROTOCOL={protocol}"
    if ca_location and not Path(ca_location).is_file():
        return "KAFKA_SSL_CA_LOCATION", "no such file"
    return None


#: librdkafka writes its own log lines (``%3|1796…|FAIL|rdkafka#producer-1| …``) straight to
#: stderr; given a Python logger it hands them to it instead, on the client's next poll, so
#: they come out as one JSON line like any other library's (``paystream.logging``).
#: Producers and consumers poll all the time; admin clients are polled after their calls.
LIBRDKAFKA_LOGS: dict[str, Any] = {"logger": logging.getLogger("librdkafka")}


class CommonSettings(BaseSettings):
    """What every process needs: the mode, the broker and the topic names."""

    model_config = SettingsConfigDict(
        frozen=True, env_file=".env", extra="ignore", case_sensitive=False
    )

    stripe_mode: StripeMode = "test"
    #: required (no default: a deploy that forgets it must not run with development's
    #: leniency); ``paystream up`` sets ``development`` for the processes it starts
    paystream_env: Environment
    #: Stripe API key (``reconcile``); its prefix must match the mode
    stripe_api_key: SecretStr | None = None
    kafka_bootstrap_servers: str | None = None
    #: TLS and SASL of every Kafka client (librdkafka and Faust/aiokafka alike)
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    #: PEM file of the CA that signed the brokers' certificates (default: the system's CAs)
    kafka_ssl_ca_location: str | None = None
    #: ``embedded`` tunes clients for the local Tansu broker (set by ``paystream up``
    #: and the tests); ``kafka`` is the right choice for any real cluster.
    paystream_broker_profile: BrokerProfile = "kafka"
    paystream_topic_prefix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._-]*$")
    paystream_topic_partitions: int = Field(default=4, ge=1, le=10_000)
    paystream_replication_factor: int = Field(default=1, ge=1, le=32)
    paystream_log_level: Literal["debug", "info", "warning", "error"] = "info"
    paystream_data_dir: str = "var"
    #: key of the customer-id hash in logs and metrics rows (keep it stable)
    paystream_customer_hash_key: SecretStr = SecretStr("")
    #: longest a consumer's fetch waits at the broker for new records (latency floor on a
    #: broker that answers only when the wait is over, as the embedded one does)
    paystream_consumer_fetch_wait_ms: int = Field(default=20, ge=1, le=10_000)
    #: ``yes`` accepts an explicit topic prefix that does not name the mode (outside development)
    paystream_topic_prefix_without_mode: str = ""
    #: ``enabled`` lets the sinks call the CRM and helpdesk (read here for the preview rule)
    paystream_sink_writes: SinkWrites = "dry-run"
    #: ``yes`` lets a preview deploy write to the CRM and helpdesk
    paystream_allow_preview_writes: str = ""
    #: ``yes`` lets production use a Kafka connection without TLS (a private network only)
    paystream_kafka_allow_plaintext: str = ""
    #: how long a dead letter stays in ``sink.dlq`` (its ``retention.ms``; ``paystream
    #: topics`` creates it so, ``paystream doctor`` reports an existing topic that differs)
    paystream_dlq_retention: Duration = 30 * 86400.0

    @model_validator(mode="after")
    def _environment_rules(self) -> CommonSettings:
        problem = environment_problem(
            env=self.paystream_env,
            mode=self.stripe_mode,
            api_key=self.stripe_api_key.get_secret_value() if self.stripe_api_key else None,
            topic_prefix=self.paystream_topic_prefix,
            prefix_without_mode=self.paystream_topic_prefix_without_mode.strip().lower(),
            sink_writes=self.paystream_sink_writes,
            allow_preview_writes=self.paystream_allow_preview_writes.strip().lower(),
            hash_key=self.paystream_customer_hash_key.get_secret_value(),
        )
        problem = problem or kafka_security_problem(
            protocol=self.kafka_security_protocol,
            mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_sasl_username,
            password=self.kafka_sasl_password.get_secret_value()
            if self.kafka_sasl_password
            else None,
            ca_location=self.kafka_ssl_ca_location,
        )
        refuse(
            problem
            or plaintext_kafka_problem(
                self.paystream_env,
                self.kafka_security_protocol,
                self.paystream_kafka_allow_plaintext.strip().lower(),
            )
        )
        return self

    @property
    def topic_prefix(self) -> str:
        if self.paystream_topic_prefix is not None:
            return self.paystream_topic_prefix
        return f"paystream.{self.stripe_mode}."

    @property
    def topics(self) -> Topics:
        return Topics(
            self.topic_prefix,
            self.paystream_topic_partitions,
            self.paystream_replication_factor,
            dlq_retention_ms=int(self.paystream_dlq_retention * 1000),
        )

    @property
    def bootstrap_servers(self) -> str:
        if not self.kafka_bootstrap_servers:
            raise SettingsError(
                "invalid setting KAFKA_BOOTSTRAP_SERVERS: not set "
                "(run `paystream up` for a local broker, or point it at a cluster)"
            )
        return self.kafka_bootstrap_servers

    @property
    def embedded_broker(self) -> bool:
        return self.paystream_broker_profile == "embedded"

    # -- Kafka clients: every one is configured here, librdkafka and Faust/aiokafka alike --

    def kafka_security(self) -> dict[str, Any]:
        """librdkafka's security keys (empty for PLAINTEXT): part of every client's config."""
        protocol = self.kafka_security_protocol
        if protocol == "PLAINTEXT":
            return {}
        config: dict[str, Any] = {"security.protocol": protocol}
        if protocol.startswith("SASL_") and self.kafka_sasl_password is not None:
            config["sasl.mechanism"] = self.kafka_sasl_mechanism
            config["sasl.username"] = self.kafka_sasl_username
            config["sasl.password"] = self.kafka_sasl_password.get_secret_value()
        if protocol.endswith("SSL") and self.kafka_ssl_ca_location:
            config["ssl.ca.location"] = self.kafka_ssl_ca_location
        return config

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of aiokafka (verifies the broker's certificate and host name)."""
        if not self.kafka_security_protocol.endswith("SSL"):
            return None
        return ssl.create_default_context(cafile=self.kafka_ssl_ca_location or None)

    def faust_credentials(self) -> Any:
        """Faust's ``broker_credentials`` for the same settings (None for PLAINTEXT)."""
        import faust  # only the worker pays for importing Faust

        context = self.kafka_ssl_context()
        if self.kafka_security_protocol.startswith("SASL_"):
            password = self.kafka_sasl_password
            return faust.SASLCredentials(
                username=self.kafka_sasl_username,
                password=password.get_secret_value() if password else None,
                mechanism=self.kafka_sasl_mechanism,
                ssl_context=context,
            )
        if context is not None:
            return faust.SSLCredentials(context)
        return None

    def admin_config(self, **extra: Any) -> dict[str, Any]:
        """librdkafka admin-client settings (topics, consumer-group offsets)."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers, **LIBRDKAFKA_LOGS}
        config.update(self.kafka_security())
        config.update(extra)
        return config

    def producer_config(self, **extra: Any) -> dict[str, Any]:
        """librdkafka producer settings: durable (acks=all, idempotent), Java-compatible keys."""
        config: dict[str, Any] = {
            **self.kafka_security(),
            **LIBRDKAFKA_LOGS,
            "bootstrap.servers": self.bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            # Same partition for a key as Faust (aiokafka) and the Java client.
            "partitioner": "murmur2_random",
            "linger.ms": self.linger_ms(2),
            "compression.type": "lz4",
        }
        config.update(extra)  # a linger the caller names is kept (ingest's is a setting)
        return config

    def linger_ms(self, wanted: float) -> float:
        """A producer's default linger: ``wanted``, at least ``EMBEDDED_LINGER_MS`` on the
        embedded broker (each produce request is one more object in each partition it names)."""
        return max(wanted, EMBEDDED_LINGER_MS) if self.embedded_broker else wanted

    def consumer_config(
        self, group_id: str, *, background: bool = False, **extra: Any
    ) -> dict[str, Any]:
        """librdkafka consumer settings: a consumer group with manual commits.

        ``background``: no one waits on what it reads (topic feeds, the metrics sink), so on
        the embedded broker it fetches every ``EMBEDDED_BACKGROUND_FETCH_WAIT_MS``.
        """
        config: dict[str, Any] = {
            **self.kafka_security(),
            **LIBRDKAFKA_LOGS,
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": group_id,
            # the group names the client in the broker's view (and bench/_kafka_requests.py)
            "client.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "fetch.wait.max.ms": self.paystream_consumer_fetch_wait_ms,
        }
        if self.embedded_broker:
            config.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000})
            if background:
                config["fetch.wait.max.ms"] = max(
                    self.paystream_consumer_fetch_wait_ms, EMBEDDED_BACKGROUND_FETCH_WAIT_MS
                )
        config.update(extra)
        return config


# Settings more than one process reads, each declared once here: a model that reads one
# inherits it (``class IngestSettings(CommonSettings, IngestPort, ...)``), so its type and
# bounds cannot drift between the process that serves and the tools that find it.
# ``tests/unit/paystream/test_settings_declared_once.py`` walks every model to keep it so.
# Plain ``BaseModel`` mixins: they carry fields only, never a settings config of their own.

#: a TCP port a process listens on (0, "any port", is no address for the tools beside it)
PortNumber = Annotated[int, Field(ge=1, le=65_535)]
#: an ``http(s)://`` URL (which of the two is allowed is each environment's rule)
HTTP_URL = r"^https?://\S+$"


def secret_list(value: SecretStr | None) -> tuple[str, ...]:
    """``"a, b"`` → ``("a", "b")``; blank or unset → ``()``."""
    text = value.get_secret_value() if value is not None else ""
    return tuple(p.strip() for p in text.split(",")) if text.strip() else ()


def _no_blank_entry(value: SecretStr | None) -> SecretStr | None:
    text = value.get_secret_value() if value is not None else ""
    if text.strip() and any(not p.strip() for p in text.split(",")):
        raise ValueError("empty secret in the comma-separated list")
    return value


#: a comma-separated list of secrets (rotation: any one may match), kept whole and secret;
#: ``secret_list`` reads its entries. An entry that is blank is an error, not a silent skip.
Secrets = Annotated[SecretStr | None, AfterValidator(_no_blank_entry)]


class IngestPort(BaseModel):
    paystream_ingest_port: PortNumber = 8080


class AdminPort(BaseModel):
    paystream_admin_port: PortNumber = 8081


class WorkerPort(BaseModel):
    paystream_worker_port: PortNumber = 6066


class AdminToken(BaseModel):
    #: the admin view's token: optional for ``up`` (which makes one in development) and
    #: doctor; the admin itself requires it (the same type, without the None)
    paystream_admin_token: SecretStr | None = None


class ApiToken(BaseModel):
    #: Bearer token of the worker's API and of ingest's ``/v1/customers`` (the same token)
    paystream_api_token: SecretStr | None = None


class WorkerUrl(BaseModel):
    #: The worker's web address, asked for customer state (any worker: it routes to the
    #: key's owner). ``http://`` off loopback is refused in production (plain_http_problem).
    paystream_worker_url: str | None = Field(default=None, pattern=HTTP_URL)


class StripeApiBase(BaseModel):
    #: Stripe's API base URL; the tests point it at the stand-in (``devstack.stripe_api``)
    stripe_api_base: str = Field(default="https://api.stripe.com", pattern=HTTP_URL)


class WebhookSecrets(BaseModel):
    #: Comma-separated ``whsec_...`` endpoint secrets; any one may match (rotation).
    #: Optional here (``up`` makes one, ``demo`` finds ``up``'s); ingest requires one.
    stripe_webhook_secrets: Secrets = None


class AppSecrets(BaseModel):
    #: Secrets of first-party app events (``POST /events/app``); empty turns the endpoint off.
    paystream_app_secrets: Secrets = None


class TrustedProxies(BaseModel):
    #: CIDRs of the proxies (ingress, load balancer) whose ``X-Forwarded-For`` (and the
    #: admin's ``X-Forwarded-Proto``) are believed: the client a throttle counts against
    paystream_trusted_proxies: str = ""

    @field_validator("paystream_trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        parse_trusted_proxies(value)
        return value

    @property
    def trusted_proxies(self) -> tuple[Network, ...]:
        return parse_trusted_proxies(self.paystream_trusted_proxies)


S = TypeVar("S", bound=BaseSettings)

#: What to say instead of pydantic's "Field required" for a variable every process needs.
REQUIRED_HINTS = {
    "PAYSTREAM_ENV": "required (production, preview or development; `paystream up` sets "
    "development)",
}


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build a settings model from the environment; raise SettingsError naming the variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err.get("loc") or ()
        name = str(loc[0]).upper() if loc else cls.__name__
        why = REQUIRED_HINTS.get(name, err["msg"]) if err["type"] == "missing" else err["msg"]
        raise SettingsError(f"invalid setting {name}: {why}") from None
