"""``paystream worker`` start-up: the keep-or-wipe step asks the broker as every client does."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from processors import localstate
from processors.__main__ import open_local_tables
from processors.settings import WorkerSettings
from tests.tls import make_certificates

SECRET = "kafka-password-3f9a"


@pytest.mark.parametrize(
    ("security", "expected"),
    [
        ({}, {}),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "SCRAM-SHA-512",
                "kafka_sasl_username": "svc",
                "kafka_sasl_password": SECRET,
            },
            {
                "security.protocol": "SASL_SSL",
                "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": "svc",
                "sasl.password": SECRET,
            },
        ),
        ({"kafka_security_protocol": "SSL"}, {"security.protocol": "SSL"}),
    ],
)
def test_the_changelog_identity_is_read_with_the_clusters_security_settings(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    security: dict[str, str],
    expected: dict[str, str],
) -> None:
    ca = str(make_certificates(tmp_path / "tls").ca)
    if security.get("kafka_security_protocol", "").endswith("SSL"):
        security = {**security, "kafka_ssl_ca_location": ca}
        expected = {**expected, "ssl.ca.location": ca}
    settings = WorkerSettings(kafka_bootstrap_servers="kafka:9093", **security)  # type: ignore[arg-type]
    asked: list[dict[str, Any]] = []

    def broker_identity(
        config: Mapping[str, Any], topics: Iterable[str], timeout_s: float = 10.0
    ) -> localstate.BrokerIdentity | None:
        asked.append(dict(config))
        return None

    monkeypatch.setattr(localstate, "broker_identity", broker_identity)
    local = open_local_tables(settings, tmp_path / "data")

    rendered = {k: v for k, v in asked[0].items() if k.startswith(("security.", "sasl.", "ssl."))}
    assert rendered == expected
    assert asked[0]["bootstrap.servers"] == "kafka:9093"
    assert asked == [settings.admin_config()]
    assert not local.decision.keep  # no marker: wiped, as on a first start
    assert (tmp_path / "data").is_dir()
    local.broker_identity()  # the check at a clean exit asks with the same settings
    assert asked[1] == asked[0]
