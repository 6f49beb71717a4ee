"""``paystream forget cus_...``: erase one customer from paystream's own stores.

Each stage is told over its own wire (``paystream.erasure`` says what goes where): an erase
event on ``app.events`` for the worker's record (its changelog tombstone written by the
worker that owns the key, confirmed through the worker API's 404), tombstones and erasure
markers on ``admin.exceptions`` for the exception queue, and the metrics store's rows by
the customer's keyed hash (through the metrics sink's loopback endpoint when the store is
embedded). Then it says, every time, what it cannot erase: HubSpot, Zendesk, the topics
that are not compacted until their retention, the logs. A line per store, ``--json`` for
machines; exit 1 when a store of paystream's own was not erased (or not confirmed).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import model_validator

from paystream.command_help import command_parser
from paystream.erasure import (
    CUSTOMER_ID,
    ERASED_STEP,
    FAILED,
    REQUESTED,
    DeadLetterAt,
    QueuePlan,
    Report,
    Step,
    cannot_erase,
    erase_event,
    erased_marker,
    marker_key,
    plan_queue,
    render,
)
from paystream.errors import PaystreamError
from paystream.hashing import customer_hash
from paystream.runtime.store import (
    MetricsStoreError,
    MetricsStoreSettings,
    claim_embedded_store,
    open_store,
)
from paystream.runtime.store_endpoint import HttpStoreReader, read_endpoint_file
from paystream.runtime.topic_feed import TopicFeed
from paystream.settings import (
    ApiToken,
    Environment,
    WorkerUrl,
    plain_http_problem,
    refuse,
    secret_values,
    short_secret_problem,
)
from schemas.codec import APP_EVENT, DEAD_LETTER, EXCEPTION_STATUS, SchemaError, default_codec

DAY_S = 86400.0


class ForgetSettings(MetricsStoreSettings, WorkerUrl, ApiToken):
    """What ``paystream forget`` reads: Kafka, the metrics store, the worker's API."""

    #: as ``paystream status``: beside ``paystream up`` nobody sets it (a deploy does)
    paystream_env: Environment = "development"
    # the worker's customer-state API (PAYSTREAM_WORKER_URL) is asked until the record is
    # gone (confirmation)

    @model_validator(mode="after")
    def _production_rules(self) -> ForgetSettings:
        tokens = {"PAYSTREAM_API_TOKEN": secret_values(self.paystream_api_token)}
        refuse(short_secret_problem(self.paystream_env, tokens))
        refuse(
            plain_http_problem(
                self.paystream_env, {"PAYSTREAM_WORKER_URL": self.paystream_worker_url}
            )
        )
        return self


# ------------------------------------------------------------------ the exception queue


class QueueRecords(TopicFeed):
    """``sink.dlq``'s dead letters (with their places) and ``admin.exceptions``' live keys."""

    name = "forget-reader"

    def __init__(self, settings: ForgetSettings) -> None:
        topics = settings.topics
        super().__init__(settings, [topics.sink_dlq, topics.admin_exceptions], quiet=True)
        self.decisions_topic = topics.admin_exceptions
        self.dead: list[DeadLetterAt] = []
        self.keys: set[str] = set()

    def apply(self, messages: Iterable[Any]) -> None:
        codec = default_codec()
        with self.lock:
            for msg in messages:
                if msg.error() is not None:
                    continue
                if msg.topic() == self.decisions_topic:
                    key = (msg.key() or b"").decode(errors="replace")
                    (self.keys.add if msg.value() else self.keys.discard)(key)
                    continue
                try:
                    decoded = codec.decode_as(DEAD_LETTER, msg.value() or b"")
                except SchemaError:
                    continue  # not a dead letter the admin could show either
                self.dead.append(DeadLetterAt(msg.partition(), msg.offset(), decoded))


def read_queue_plan(
    settings: ForgetSettings, customer_id: str, timeout_s: float = 120.0
) -> QueuePlan:
    """Read ``sink.dlq`` and ``admin.exceptions`` whole, and plan the customer's erasure."""
    feed = QueueRecords(settings)
    feed.start()
    try:
        feed.wait_loaded(timeout_s)  # FeedNotLoaded: the topics could not be read
    finally:
        feed.stop()
    with feed.lock:
        return plan_queue(customer_id, feed.dead, feed.keys)


def publish(settings: ForgetSettings, items: Sequence[tuple[str, str, bytes | None]]) -> bool:
    """Produce ``(topic, key, value)`` items (None: a tombstone); True when all were acked."""
    from confluent_kafka import KafkaException, Producer

    producer = Producer(settings.producer_config(**{"log_level": 0}))
    acked: list[bool] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        acked.append(err is None)

    try:
        for topic, key, value in items:
            producer.produce(topic, key=key.encode(), value=value, on_delivery=on_delivery)
            producer.poll(0)
    except (BufferError, KafkaException):
        return False  # what was produced is harmless: running forget again repeats it
    finally:
        producer.flush(30)
    return len(acked) == len(items) and all(acked)


def erase_from_kafka(settings: ForgetSettings, customer_id: str, now_ms: int) -> list[Step]:
    """The worker's erase event and the exception queue's tombstones and markers."""
    topics, codec = settings.topics, default_codec()
    plan = read_queue_plan(settings, customer_id)
    items: list[tuple[str, str, bytes | None]] = [
        (topics.app_events, customer_id, codec.encode(APP_EVENT, erase_event(customer_id, now_ms)))
    ]
    items += [(topics.admin_exceptions, key, None) for key in plan.tombstones]
    items.append((topics.crm_contacts, customer_id, None))  # the CRM sink's contact id
    items += [
        (
            topics.admin_exceptions,
            marker_key(p, o),
            codec.encode(EXCEPTION_STATUS, erased_marker(p, o, now_ms)),
        )
        for p, o in plan.markers
    ]
    if not publish(settings, items):
        detail = "Kafka did not acknowledge every record: run `paystream forget` again"
        return [Step("worker record", FAILED, detail), Step("exception queue", FAILED, detail)]
    queue = Step(
        "exception queue",
        ERASED_STEP,
        f"{len(plan.markers)} dead letter(s) marked erased (the admin lists no row for them), "
        f"{len(plan.tombstones)} decision(s) tombstoned on {topics.admin_exceptions}; the CRM "
        f"sink's remembered contact id tombstoned on {topics.crm_contacts}",
    )
    return [
        Step("worker record", REQUESTED, f"erase event published to {topics.app_events}"),
        queue,
    ]


# ------------------------------------------------------------------------- the worker

Get = Callable[[str, str], int]


def http_status(url: str, token: str) -> int:
    """The status of ``GET url`` with the bearer token (0 when nothing answered)."""
    headers = {"Authorization": f"Bearer {token}"}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - http(s) setting
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - our worker
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def confirm_worker(
    settings: ForgetSettings, customer_id: str, wait_s: float, get: Get = http_status
) -> Step:
    """Ask the worker's API until the record is gone (404), at most ``wait_s``."""
    changelog = settings.topics.changelog("customers")
    if not settings.paystream_worker_url or settings.paystream_api_token is None:
        return Step(
            "worker record",
            REQUESTED,
            f"erase event published to {settings.topics.app_events}: the worker deletes the "
            f"record (and tombstones {changelog}) when it reads it; set PAYSTREAM_WORKER_URL "
            "and PAYSTREAM_API_TOKEN to have forget confirm it",
        )
    url = f"{settings.paystream_worker_url.rstrip('/')}/customers/{customer_id}"
    token = settings.paystream_api_token.get_secret_value()
    deadline = time.monotonic() + wait_s
    while (status := get(url, token)) != 404 and time.monotonic() < deadline:
        time.sleep(0.25)
    if status == 404:
        return Step(
            "worker record",
            ERASED_STEP,
            f"deleted from the worker's tables, tombstoned on {changelog} (and the dedup "
            "changelog for its onboarding deadlines); GET /customers/{id} answers 404",
        )
    return Step(
        "worker record",
        FAILED,
        f"not confirmed within {wait_s:g} s (the worker answered {status or 'nothing'}); "
        f"the erase event is in {settings.topics.app_events} and the worker applies it "
        "when it reads it: run `paystream forget` again to check",
    )


# ------------------------------------------------------------------- the metrics store


def erase_metrics(settings: ForgetSettings, customer_id: str) -> Step:
    """Delete the store's rows with the customer's hash (the store's owner does it)."""
    hashed = customer_hash(customer_id, settings.paystream_customer_hash_key.get_secret_value())
    try:
        if settings.clickhouse_url is not None:
            erased = _erase_directly(settings, hashed)
        elif settings.query_endpoint_file.exists():
            erased = HttpStoreReader(
                *read_endpoint_file(settings.query_endpoint_file)
            ).erase_customer(hashed)
        elif not settings.embedded_store_dir.exists():
            return Step(
                "metrics store",
                ERASED_STEP,
                f"no embedded store in {settings.embedded_store_dir}: no row",
            )
        else:
            with claim_embedded_store(settings.embedded_store_dir):
                erased = _erase_directly(settings, hashed)
    except MetricsStoreError as exc:
        return Step("metrics store", FAILED, str(exc))
    tables = ", ".join(f"{table} {n}" for table, n in erased.items())
    return Step(
        "metrics store",
        ERASED_STEP,
        f"{sum(erased.values())} row(s) with the customer's hash ({tables})",
    )


def _erase_directly(settings: ForgetSettings, hashed: str) -> dict[str, int]:
    store = open_store(settings)
    try:
        return store.erase_customer(hashed)
    finally:
        store.close()


# ------------------------------------------------------------------------ the command


def forget(settings: ForgetSettings, customer_id: str, wait_s: float) -> Report:
    report = Report(customer_id)
    now_ms = int(time.time() * 1000)
    try:
        kafka = erase_from_kafka(settings, customer_id, now_ms)
    except PaystreamError as exc:
        why = f"Kafka could not be read ({exc}): nothing was written, run forget again"
        kafka = [Step("worker record", FAILED, why), Step("exception queue", FAILED, why)]
    worker, queue = kafka
    if worker.status != FAILED:
        worker = confirm_worker(settings, customer_id, wait_s)
    report.steps += [worker, queue, erase_metrics(settings, customer_id)]
    t = settings.topics
    weekly = [
        t.stripe_events,
        t.app_events,
        t.customer_lifecycle,
        t.sink_crm,
        t.sink_helpdesk,
        t.sink_results,
    ]
    report.steps += cannot_erase(weekly, t.sink_dlq, settings.paystream_dlq_retention / DAY_S)
    return report


def main(argv: list[str]) -> int:
    parser = command_parser("forget")
    parser.add_argument(
        "customer_id", metavar="CUSTOMER_ID", help="the Stripe customer id (cus_ and letters)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--wait", type=float, default=30.0, metavar="S", help="seconds to wait for the worker (30)"
    )
    args = parser.parse_args(argv)
    if not CUSTOMER_ID.fullmatch(args.customer_id):
        print(
            "paystream forget: expected a Stripe customer id (cus_ and letters/digits)",
            file=sys.stderr,
        )
        return 2
    from paystream.runtime.running_stack import load_beside_running_stack

    logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)
    settings = load_beside_running_stack(ForgetSettings)
    report = forget(settings, args.customer_id, max(0.0, args.wait))
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(
            render(
                report, f"paystream forget {args.customer_id}  (topics {settings.topic_prefix}*)"
            )
        )
    return 0 if report.ok else 1
