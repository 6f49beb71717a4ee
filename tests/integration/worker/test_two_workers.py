"""GET /customers/{id} across two workers: either one answers for every customer; GET
/customers lists each worker's own partitions."""

from __future__ import annotations

import time

from paystream.settings import CommonSettings
from tests.integration.worker.conftest import (
    StartWorker,
    WorkerProcess,
    command_keys,
    publish,
    reference,
    storyline,
)

TOKEN = "two-worker-token"


def answer(worker: WorkerProcess, customer: str, timeout: float = 90) -> dict[str, object]:
    """The worker's answer once the group has settled (503 while rebalancing)."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = worker.get(f"/customers/{customer}", TOKEN)
        if status == 200 or time.monotonic() > deadline:
            assert status == 200, (status, body)
            return body
        time.sleep(0.5)


def test_customer_state_answers_from_either_worker(
    pipeline_settings: CommonSettings, start_worker: StartWorker
) -> None:
    topics = pipeline_settings.topics
    items = storyline(customers=10, seed=5, duplicates=False)
    publish(pipeline_settings, items)
    expected = reference(pipeline_settings, items)

    # each binds loopback and advertises another name for it: routing follows the advertised
    advertised = {"PAYSTREAM_API_TOKEN": TOKEN, "PAYSTREAM_WORKER_ADVERTISED_HOST": "localhost"}
    one = start_worker("w1", **advertised)
    two = start_worker("w2", **advertised)
    one.wait_ready()
    two.wait_ready()
    command_keys(pipeline_settings, topics.sink_helpdesk, expected.commands[topics.sink_helpdesk])

    for customer, record in expected.records.items():
        for worker in (one, two):
            body = answer(worker, customer)
            assert body["stripe_customer_id"] == customer
            assert body["billing_state"] == record.state
            assert body["user_id"] == record.user_id
    assert answer_status(one, "cus_unknown") == 404
    assert answer_status(two, "cus_unknown") == 404

    # both workers own partitions: the requests above crossed between them
    owned = [_partitions(w) for w in (one, two)]
    assert owned[0] and owned[1] and not (owned[0] & owned[1]), owned

    # GET /customers (paystream crm-repair): each worker lists its own partitions' records
    # and names those partitions; together, every customer once
    listed: list[str] = []
    for worker, mine in zip((one, two), owned, strict=True):
        status, page = worker.get("/customers?limit=3", TOKEN)
        assert status == 200 and set(page["partitions"]) == mine, (status, page)
        while True:
            listed += [str(c["stripe_customer_id"]) for c in page["customers"]]
            if not page["next_after"]:
                break
            status, page = worker.get(f"/customers?limit=3&after={page['next_after']}", TOKEN)
            assert status == 200, (status, page)
    assert sorted(listed) == sorted(expected.records)

    # Faust's own views would hand table contents to anyone reaching the port: all off
    customer = next(iter(expected.records))
    for path in (
        "/table/customers/",
        f"/table/customers/{customer}/",
        "/table/",
        "/router/",
        f"/router/customers/{customer}/",
        "/graph/",
        "/stats/",
        "/assignments/",
        "/performance/",
    ):
        for worker in (one, two):
            status, body = worker.get(path, TOKEN)
            assert status == 404, (path, status, body)
            assert customer not in str(body)

    # A routed request still checks the token on the worker it lands on. Last, and for five
    # customers (ten failures from one address, the throttle's burst): past the burst a
    # worker answers 429 before it looks at any token, the right one included.
    for customer in list(expected.records)[:5]:
        assert one.get(f"/customers/{customer}", "wrong")[0] == 401
        assert two.get(f"/customers/{customer}")[0] == 401


def answer_status(worker: WorkerProcess, customer: str) -> int:
    status, _ = worker.get(f"/customers/{customer}", TOKEN)
    return status


def _partitions(worker: WorkerProcess) -> set[int]:
    status, body = worker.get("/readyz")
    assert status == 200
    return set(body.get("partitions", []))  # type: ignore[arg-type]
