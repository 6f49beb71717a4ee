"""KAFKA_SECURITY_PROTOCOL & co. rendered by one settings model for both client families.

librdkafka (confluent-kafka producers, consumers, admin) takes a dict of dotted keys;
Faust hands ``broker_credentials`` to aiokafka through ``credentials_to_aiokafka_auth``.
Each row is one managed-Kafka shape; both renderings are checked against it.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from paystream.settings import CommonSettings
from tests.tls import make_certificates
from tests.unit.settings_env import clean_environment, refusal

SECRET = "kafka-password-7d1e"


@pytest.fixture
def ca_file(tmp_path: Path) -> str:
    """A throw-away CA certificate in a file."""
    return str(make_certificates(tmp_path).ca)


def settings(**values: Any) -> CommonSettings:
    return CommonSettings(kafka_bootstrap_servers="kafka:9093", **values)


CASES = [
    # (settings, librdkafka security keys, aiokafka keys without ssl_context, TLS?)
    ({}, {}, {"security_protocol": "PLAINTEXT"}, False),
    (
        {"kafka_security_protocol": "SSL"},
        {"security.protocol": "SSL"},
        {"security_protocol": "SSL"},
        True,
    ),
    (
        {
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "PLAIN",
            "kafka_sasl_username": "svc",
            "kafka_sasl_password": SECRET,
        },
        {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "PLAIN",
            "sasl.username": "svc",
            "sasl.password": SECRET,
        },
        {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": "svc",
            "sasl_plain_password": SECRET,
        },
        True,
    ),
    (
        {
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-256",
            "kafka_sasl_username": "svc",
            "kafka_sasl_password": SECRET,
        },
        {
            "security.protocol": "SASL_SSL",
            "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": "svc",
            "sasl.password": SECRET,
        },
        {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-256",
            "sasl_plain_username": "svc",
            "sasl_plain_password": SECRET,
        },
        True,
    ),
    (
        {
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": "svc",
            "kafka_sasl_password": SECRET,
        },
        {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "svc",
            "sasl.password": SECRET,
        },
        {
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": "svc",
            "sasl_plain_password": SECRET,
        },
        False,
    ),
]


@pytest.mark.parametrize(("values", "librdkafka", "aiokafka", "tls"), CASES)
def test_one_model_renders_both_client_families(
    values: dict[str, str], librdkafka: dict[str, str], aiokafka: dict[str, Any], tls: bool
) -> None:
    s = settings(**values)
    for config in (
        s.producer_config(),
        s.consumer_config("g"),
        s.admin_config(),
    ):
        rendered = {k: v for k, v in config.items() if k.startswith(("security.", "sasl.", "ssl."))}
        assert rendered == librdkafka
        assert config["bootstrap.servers"] == "kafka:9093"
    auth = dict(credentials_to_aiokafka_auth(s.faust_credentials()))
    context = auth.pop("ssl_context", None)
    assert auth == aiokafka
    assert isinstance(context, ssl.SSLContext) is tls
    if tls:
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname


def test_the_ca_file_goes_to_both_families(ca_file: str) -> None:
    s = settings(kafka_security_protocol="SSL", kafka_ssl_ca_location=ca_file)
    assert s.producer_config()["ssl.ca.location"] == ca_file
    context = credentials_to_aiokafka_auth(s.faust_credentials())["ssl_context"]
    subjects = [dict(x[0] for x in cert["subject"]) for cert in context.get_ca_certs()]
    assert {"commonName": "paystream test CA"} in subjects


def test_the_password_is_a_secret_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="svc",
        kafka_sasl_password=SECRET,
    )
    assert SECRET not in repr(s)
    assert SECRET not in str(s.model_dump())
    assert SECRET not in repr(s.faust_credentials())


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI"},
            "KAFKA_SASL_MECHANISM",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN"},
            "KAFKA_SASL_USERNAME",
        ),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "KAFKA_SASL_MECHANISM": "PLAIN",
                "KAFKA_SASL_USERNAME": "svc",
            },
            "KAFKA_SASL_PASSWORD",
        ),
        ({"KAFKA_SASL_MECHANISM": "PLAIN"}, "KAFKA_SASL_MECHANISM"),  # SASL on PLAINTEXT
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": "/nonexistent/ca.pem"},
            "KAFKA_SSL_CA_LOCATION",
        ),
    ],
)
def test_an_incomplete_security_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], variable: str
) -> None:
    clean_environment(monkeypatch, tmp_path)
    message = refusal(monkeypatch, env)
    assert message.startswith(f"invalid setting {variable}:"), message
