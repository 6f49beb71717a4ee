"""``paystream crm-repair`` against the HubSpot stand-in, a real worker and a real CRM sink.

Six customers go through the pipeline (events → worker → sink.crm → ``paystream sinks crm``
→ stand-in). Then a person edits contacts by hand in HubSpot: one's billing state, one's
email and user id, one's change date (earlier), another's change date and state (a date
later than paystream's, which the sink's stale guard alone would keep), one contact is
deleted (a customer the CRM never got), and one customer's email moves to a new lead while
their own contact gets another address (a duplicate). The dry run names exactly these;
``--apply`` sends the corrections through sink.crm and a duplicate_contact dead letter;
once the sink has written, a second run finds nothing, though the search index still lags
behind those writes (the duplicate waits in the exception queue for a person's merge).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.hubspot import HubSpotStandin
from paystream.commands.crm_repair import main as crm_repair
from paystream.runtime.broker import free_port
from paystream.settings import CommonSettings
from tests.integration.worker.conftest import PAYSTREAM, WorkerProcess
from tests.kafka_helpers import consume, decode_all, produce
from tests.unit.processors.stripe_events import encoded_app, encoded_stripe

TOKEN = "crm-repair-test-api-token"
CUSTOMERS = ("cus_rpA", "cus_rpB", "cus_rpC", "cus_rpD", "cus_rpE", "cus_rpF", "cus_rpG")
LATER = "2030-01-01T00:00:00.000Z"  # a date a person typed into HubSpot
T0 = 1_765_000_000


def email(customer: str) -> str:
    return f"{customer.lower()}@example.com"


def events(customer: str, i: int) -> list[tuple[str, tuple[str, bytes]]]:
    t = T0 + 100 * i
    return [
        ("stripe", encoded_stripe("customer.created", f"evt_{customer}_0", t, customer,
                                  email=email(customer))),
        ("stripe", encoded_stripe("invoice.paid", f"evt_{customer}_1", t + 10, customer)),
        ("app", encoded_app("customer.linked", f"app_{customer}_1", t + 20, customer,
                            f"user_{i}")),
    ]  # fmt: skip


def wait_for(check: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def stack(
    pipeline_settings: CommonSettings,
    broker_env: Callable[..., dict[str, str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[HubSpotStandin]:
    """The stand-in, one worker and one CRM sink process on the test's topics; the
    command's environment pointed at them."""
    prefix = pipeline_settings.topic_prefix
    with HubSpotStandin() as hubspot:
        port = free_port()
        worker = WorkerProcess(
            broker_env(
                prefix,
                PAYSTREAM_DATA_DIR=str(tmp_path / "w"),
                PAYSTREAM_WORKER_PORT=str(port),
                PAYSTREAM_API_TOKEN=TOKEN,
                PAYSTREAM_WORKER_BATCH_WITHIN="0.05",
                PAYSTREAM_ONBOARDING_SCAN_INTERVAL="24h",
            ),
            port,
            tmp_path / "worker.log",
        )
        sink_env = broker_env(
            prefix,
            HUBSPOT_API_BASE=hubspot.url,
            HUBSPOT_ACCESS_TOKEN=hubspot.token,
            PAYSTREAM_SINK_WRITES="enabled",
            PAYSTREAM_SINKS_METRICS_PORT="0",
        )
        with open(tmp_path / "sinks.log", "wb") as log:
            sinks = subprocess.Popen(
                [str(PAYSTREAM), "sinks", "crm"], env=sink_env, stdout=log, stderr=log
            )
        env = {
            **broker_env(prefix),
            "HUBSPOT_API_BASE": hubspot.url,
            "HUBSPOT_ACCESS_TOKEN": hubspot.token,
            "PAYSTREAM_WORKER_URL": f"http://127.0.0.1:{port}",
            "PAYSTREAM_API_TOKEN": TOKEN,
            "PAYSTREAM_DATA_DIR": str(tmp_path / "cli"),
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        try:
            worker.wait_ready()
            yield hubspot
        finally:
            sinks.send_signal(signal.SIGTERM)
            try:
                sinks.wait(30)
            except subprocess.TimeoutExpired:
                sinks.kill()
            worker.stop()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = crm_repair(["--json", *args])
    return code, json.loads(capsys.readouterr().out)


def contact(hubspot: HubSpotStandin, customer: str) -> dict[str, Any]:
    found = hubspot.contact_by("stripe_customer_id", customer)
    return dict(found["properties"]) if found else {}


def test_drift_duplicates_and_missing_are_found_applied_and_gone(
    stack: HubSpotStandin,
    pipeline_settings: CommonSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    hubspot = stack
    topics = pipeline_settings.topics
    items = [e for i, c in enumerate(CUSTOMERS) for e in events(c, i)]
    produce(pipeline_settings, topics.stripe_events, [p for kind, p in items if kind == "stripe"])
    produce(pipeline_settings, topics.app_events, [p for kind, p in items if kind == "app"])
    wait_for(
        lambda: all(contact(hubspot, c).get("paystream_user_id") for c in CUSTOMERS),
        "the sink to write every contact",
    )
    code, first = run(capsys)
    assert (code, first["drifts"], first["duplicates"], first["missing"]) == (0, [], [], [])

    edited = ("cus_rpA", "cus_rpB", "cus_rpC", "cus_rpE", "cus_rpF", "cus_rpG")
    a, b, c, e, f, g = (hubspot.contact_by("stripe_customer_id", x) for x in edited)
    assert a and b and c and e and f and g
    hubspot.edit_contact(a["id"], billing_state="canceled")
    hubspot.edit_contact(b["id"], email="b.personal@example.com", paystream_user_id="someone")
    hubspot.edit_contact(f["id"], billing_state_changed_at="2020-01-01T00:00:00.000Z")
    hubspot.edit_contact(g["id"], billing_state="paused", billing_state_changed_at=LATER)
    hubspot.delete_contact(c["id"])
    hubspot.edit_contact(e["id"], email="e.personal@example.com")
    lead = hubspot.seed_contact(email=email("cus_rpE"), firstname="Lead")
    hubspot.advance(100)  # the stand-in's clock: the edits are 100 s old from here on

    code, found = run(capsys)
    assert code == 1
    drifted = {(d["customer_id"], d["field"]): d for d in found["drifts"]}
    assert sorted(drifted) == [
        ("cus_rpA", "billing_state"),
        ("cus_rpB", "email"),
        ("cus_rpB", "paystream_user_id"),
        ("cus_rpF", "billing_state_changed_at"),
        ("cus_rpG", "billing_state"),
        ("cus_rpG", "billing_state_changed_at"),
    ]
    assert drifted[("cus_rpA", "billing_state")]["crm_value"] == "canceled"
    assert drifted[("cus_rpB", "email")]["canonical_value"] == email("cus_rpB")
    later = {d["customer_id"] for d in found["drifts"] if d["crm_later_ms"]}
    assert later == {"cus_rpG"}
    assert found["duplicates"] == [
        {
            "customer_id": "cus_rpE",
            "kind": "email_held_by_second_contact",
            "contact_ids": [e["id"], lead],
        }
    ]
    assert [m["customer_id"] for m in found["missing"]] == ["cus_rpC"]
    assert found["applied"] is None

    code, applied = run(capsys, "--apply")
    assert code == 0
    assert applied["applied"] == {"corrections": 5, "duplicates": 1}

    def corrected() -> bool:
        return (
            contact(hubspot, "cus_rpA").get("billing_state") != "canceled"
            and contact(hubspot, "cus_rpB").get("email") == email("cus_rpB")
            and contact(hubspot, "cus_rpB").get("paystream_user_id") == "user_1"
            and not contact(hubspot, "cus_rpF")
            .get("billing_state_changed_at", "")
            .startswith("2020")
            and bool(contact(hubspot, "cus_rpC"))
            and contact(hubspot, "cus_rpG").get("billing_state_changed_at") != LATER
        )

    wait_for(corrected, "the sink to write the corrections")
    # the search index lags 50 s behind: it still holds the edits, and not C's new contact
    hubspot.search_lag_s = 50
    indexed = {c["id"]: c["properties"] for c in hubspot.indexed()}
    assert indexed[a["id"]]["billing_state"] == "canceled"
    assert not any(p.get("stripe_customer_id") == "cus_rpC" for p in indexed.values())
    code, again = run(capsys)
    assert (code, again["drifts"], again["missing"], again["duplicates"]) == (0, [], [], [])
    assert again["clean"] is True
    # the duplicate waits in the exception queue for a person's merge, not queued twice
    assert [d["customer_id"] for d in again["queued_duplicates"]] == ["cus_rpE"]

    letters = decode_all(
        consume(pipeline_settings, topics.sink_dlq, until=lambda ms: len(ms) >= 1, timeout=30)
    )
    row = next(d for d in letters if d["reason_code"] == "duplicate_contact")
    assert row["customer_id"] == "cus_rpE" and row["source_topic"] == topics.sink_crm
    assert email("cus_rpE") not in row["last_error"]
    results = decode_all(
        consume(
            pipeline_settings,
            topics.sink_results,
            until=lambda ms: sum(b"repaired" in (m.value() or b"") for m in ms) >= 6,
            timeout=30,
        )
    )
    repaired = sorted(r["customer_id"] for r in results if r["outcome"] == "repaired")
    assert repaired == ["cus_rpA", "cus_rpB", "cus_rpC", "cus_rpE", "cus_rpF", "cus_rpG"]
