"""Settings shared by every process: frozen pydantic-settings models read once in __main__.

Every field name is the environment variable it reads (case-insensitive), so a validation
error names the variable. ``load_settings`` turns the first error into one line.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from paystream.errors import SettingsError
from schemas.topics import Topics

StripeMode = Literal["test", "live"]
BrokerProfile = Literal["kafka", "embedded"]


class CommonSettings(BaseSettings):
    """What every process needs: the mode, the broker and the topic names."""

    model_config = SettingsConfigDict(
        frozen=True, env_file=".env", extra="ignore", case_sensitive=False
    )

    stripe_mode: StripeMode = "test"
    paystream_env: Literal["production", "preview", "development"] = "development"
    kafka_bootstrap_servers: str | None = None
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

    @property
    def topic_prefix(self) -> str:
        if self.paystream_topic_prefix is not None:
            return self.paystream_topic_prefix
        return f"paystream.{self.stripe_mode}."

    @property
    def topics(self) -> Topics:
        return Topics(
            self.topic_prefix, self.paystream_topic_partitions, self.paystream_replication_factor
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

    def producer_config(self, **extra: Any) -> dict[str, Any]:
        """librdkafka producer settings: durable (acks=all, idempotent), Java-compatible keys."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
            # Same partition for a key as Faust (aiokafka) and the Java client.
            "partitioner": "murmur2_random",
            "linger.ms": 2,
            "compression.type": "lz4",
        }
        config.update(extra)
        return config

    def consumer_config(self, group_id: str, **extra: Any) -> dict[str, Any]:
        """librdkafka consumer settings: a consumer group with manual commits."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
        }
        if self.embedded_broker:
            config.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000})
        config.update(extra)
        return config


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build a settings model from the environment; raise SettingsError naming the variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err.get("loc") or ()
        name = str(loc[0]).upper() if loc else cls.__name__
        raise SettingsError(f"invalid setting {name}: {err['msg']}") from None
