"""``paystream forget`` against the real pieces: broker, a running worker and admin, chdb.

Two customers go through the pipeline, each with a dead letter in the exception queue (the
forgotten one's row also has a decision), and rows in the embedded metrics store, served
the way the metrics sink serves it (its loopback endpoint, published in the data
directory). ``paystream forget`` runs through its command-line entry point, settings from
the environment. Afterwards the worker API answers 404 for the forgotten customer (200 for
the other), the running admin lists no row of it, ``admin.exceptions`` has no key naming
it, the worker's changelogs end in tombstones for its record and its onboarding deadline's
dedup entry, and the store has no row with its hash; the other customer keeps everything.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from paystream import cli
from paystream.hashing import customer_hash
from paystream.runtime.store import MetricsStore, MetricsStoreSettings, load_ddl, open_store
from paystream.runtime.store_endpoint import QueryServer, write_endpoint_file
from paystream.settings import CommonSettings
from paystream.vocabulary import ONBOARDING_DEADLINE
from processors.dedup import deadline_id, dedup_key
from schemas.codec import EXCEPTION_STATUS, default_codec
from tests.integration.admin.conftest import (  # noqa: F401 - the fixture, used by name
    AdminClient,
    AdminProcess,
    admin_factory,
    dead_letter_record,
    publish_dead_letters,
    wait_for,
)
from tests.integration.worker.conftest import (  # noqa: F401 - the fixture, used by name
    StartWorker,
    publish,
    start_worker,
)
from tests.kafka_helpers import consume, produce
from tests.unit.processors.stripe_events import encoded_app, encoded_stripe

pytestmark = pytest.mark.broker

TOKEN = "api-token-for-the-forget-test-0123456789"
GONE = "cus_forgetMe01"
KEPT = "cus_keepMe02"


@pytest.fixture
def served_store(tmp_path: Path) -> Iterator[tuple[Path, MetricsStore]]:
    """An embedded store owned by this process, with the metrics sink's endpoint file."""
    data_dir = tmp_path / "data"
    settings = MetricsStoreSettings(paystream_env="development", paystream_data_dir=str(data_dir))
    store = open_store(settings)
    store.apply_ddl(load_ddl(settings.store_database, 90))
    server = QueryServer(store)
    server.start()
    write_endpoint_file(settings.query_endpoint_file, server.url, server.token)
    yield data_dir, store
    server.stop()
    store.close()


def _store_rows(store: MetricsStore) -> None:
    now = datetime.datetime.now(datetime.UTC)
    rows = [
        [now, now, f"evt_{c}_{i}", "invoice.paid", False, "2024-06-20", customer_hash(c), "c", "w"]
        for c in (GONE, KEPT)
        for i in range(2)
    ]
    store.insert("webhook_events", rows)


def _hashes(store: MetricsStore) -> set[str]:
    found = store.query("SELECT DISTINCT customer_hash FROM paystream.webhook_events")
    return {row[0] for row in found.rows}


def _queue(settings: CommonSettings) -> None:
    records = [
        dead_letter_record(settings, customer, failed_at_ms=1_700_000_000_000)
        for customer in (GONE, KEPT)
    ]
    publish_dead_letters(settings, records)
    decision = {
        "row_id": records[0]["idempotency_key"],
        "sink": "crm",
        "status": "retrying",
        "failed_at_ms": records[0]["failed_at_ms"],
        "at_ms": 1_700_000_100_000,
        "note": "",
    }
    value = default_codec().encode(EXCEPTION_STATUS, decision)
    produce(settings, settings.topics.admin_exceptions, [(decision["row_id"], value)])


def _latest(settings: CommonSettings, topic: str) -> dict[bytes, bytes | None]:
    latest: dict[bytes, bytes | None] = {}
    for msg in consume(settings, topic, idle=1.0):
        latest[msg.key() or b""] = msg.value()
    return latest


def test_forget_erases_the_customer_from_every_store_of_paystream(
    pipeline_settings: CommonSettings,
    start_worker: StartWorker,  # noqa: F811 - the imported fixture
    admin_factory: Callable[..., AdminProcess],  # noqa: F811 - the imported fixture
    broker_env: Callable[..., dict[str, str]],
    served_store: tuple[Path, MetricsStore],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, (data_dir, store) = pipeline_settings, served_store
    worker = start_worker(PAYSTREAM_API_TOKEN=TOKEN)
    t = int(time.time()) - 60
    events = [
        ("stripe", encoded_stripe("checkout.session.completed", f"evt_f_{c}", t, c))
        for c in (GONE, KEPT)
    ]
    # an onboarding deadline's dedup entry names the customer in its id
    events += [
        ("app", encoded_app(ONBOARDING_DEADLINE, deadline_id(c, f"evt_f_{c}"), t, c))
        for c in (GONE, KEPT)
    ]
    publish(settings, events)
    _queue(settings)
    _store_rows(store)
    admin = AdminClient(admin_factory(settings).url)
    admin.login()
    wait_for(lambda: GONE in admin.page() and KEPT in admin.page(), what="both rows listed")
    worker.wait_ready()
    for customer in (GONE, KEPT):
        wait_for(lambda c=customer: worker.get(f"/customers/{c}", TOKEN)[0] == 200, 60, customer)

    env = broker_env(
        settings.topic_prefix,
        PAYSTREAM_WORKER_URL=f"http://127.0.0.1:{worker.port}",
        PAYSTREAM_API_TOKEN=TOKEN,
        PAYSTREAM_DATA_DIR=str(data_dir),
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = cli.main(["forget", GONE, "--json"])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    steps = {s["store"]: s for s in report["steps"]}
    assert code == 0, report
    assert [steps[s]["status"] for s in ("worker record", "exception queue", "metrics store")] == [
        "erased"
    ] * 3, report
    assert "1 dead letter(s)" in steps["exception queue"]["detail"]
    assert "1 decision(s)" in steps["exception queue"]["detail"]
    assert _latest(settings, settings.topics.crm_contacts) == {GONE.encode(): None}
    assert {"HubSpot", "Zendesk", "logs"} <= {s for s, v in steps.items() if v["status"] == "kept"}

    assert worker.get(f"/customers/{GONE}", TOKEN)[0] == 404
    assert worker.get(f"/customers/{KEPT}", TOKEN)[0] == 200
    wait_for(lambda: GONE not in admin.page(), what="the forgotten customer's row gone")
    assert KEPT in admin.page()
    assert _hashes(store) == {customer_hash(KEPT)}

    decisions = _latest(settings, settings.topics.admin_exceptions)
    assert not [k for k, v in decisions.items() if v is not None and GONE.encode() in k]
    changelog = _latest(settings, settings.topics.changelog("customers"))
    assert changelog[GONE.encode()] is None  # the worker's tombstone
    assert changelog[KEPT.encode()] is not None
    seen = _latest(settings, settings.topics.changelog("dedup"))
    assert seen[dedup_key("app", deadline_id(GONE, f"evt_f_{GONE}")).encode()] is None
    assert seen[dedup_key("app", deadline_id(KEPT, f"evt_f_{KEPT}")).encode()] is not None
    assert seen[f"evt_f_{GONE}".encode()] is not None  # a Stripe event id names nobody
