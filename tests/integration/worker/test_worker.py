"""`paystream worker` on the real broker: a shuffled, repeated storyline ends right."""

from __future__ import annotations

import re

from paystream.settings import CommonSettings
from tests.integration.worker.conftest import (
    StartWorker,
    command_keys,
    publish,
    reference,
    storyline,
)
from tests.kafka_helpers import consume, decode_all

TOKEN = "api-test-token"


def test_storyline_with_duplicates_and_shuffling(
    pipeline_settings: CommonSettings, start_worker: StartWorker
) -> None:
    topics = pipeline_settings.topics
    items = storyline(customers=12, seed=3)
    publish(pipeline_settings, items)
    expected = reference(pipeline_settings, items)
    assert expected.commands[topics.sink_helpdesk]  # failed renewals and chargebacks

    worker = start_worker(PAYSTREAM_API_TOKEN=TOKEN)
    worker.wait_ready()

    tickets = command_keys(
        pipeline_settings, topics.sink_helpdesk, expected.commands[topics.sink_helpdesk]
    )
    assert sorted(tickets) == sorted(expected.commands[topics.sink_helpdesk]), sorted(tickets)

    final = {c: r.state for c, r in expected.records.items()}
    crm = consume(
        pipeline_settings,
        topics.sink_crm,
        until=lambda ms: {r["customer_id"]: r["billing_state"] for r in decode_all(ms)} == final,
        timeout=60,
    )
    last = {r["customer_id"]: r for r in decode_all(crm)}
    assert {c: r["billing_state"] for c, r in last.items()} == final
    for record in decode_all(crm):
        assert (
            record["idempotency_key"] == f"crm:{record['customer_id']}:{record['cause_event_id']}"
        )
        assert record["correlation_id"] == f"corr-{record['cause_event_id']}"
    assert len({r["idempotency_key"] for r in decode_all(crm)}) == len(crm)  # none repeated

    changes = decode_all(consume(pipeline_settings, topics.customer_lifecycle, idle=2))
    assert {c["customer_id"] for c in changes} == set(final)

    # the customer-state API answers from the table
    status, body = worker.get(f"/customers/{next(iter(final))}", TOKEN)
    customer = next(iter(final))
    assert status == 200
    assert body["billing_state"] == final[customer]
    assert body["user_id"] == expected.records[customer].user_id
    assert body["email"] == "billz@supabase.io"
    assert worker.get("/customers/cus_nobody", TOKEN)[0] == 404
    assert worker.get(f"/customers/{customer}")[0] == 401
    assert worker.get(f"/customers/{customer}", "wrong")[0] == 401
    assert worker.get("/readyz")[0] == 200

    metrics = worker.metrics()
    duplicates = sum(
        float(v)
        for v in re.findall(
            r'paystream_events_total\{[^}]*outcome="duplicate"[^}]*\} (\S+)', metrics
        )
    )
    stripe_items = [p for k, p in items if k == "stripe"]
    distinct = {p[1] for p in stripe_items}
    assert duplicates >= len(stripe_items) - len(distinct)  # every repeat counted
    assert 'outcome="applied"' in metrics


def test_api_is_off_without_a_token(
    pipeline_settings: CommonSettings, start_worker: StartWorker
) -> None:
    worker = start_worker()
    worker.wait_ready()
    assert worker.get("/customers/cus_any", "anything")[0] == 404
