"""The I/O of ``paystream crm-repair``: read HubSpot and the worker, produce the repairs.

* HubSpot's contact search (``POST /crm/v3/objects/contacts/search``, "Search" guide,
  https://developers.hubspot.com/docs/api-reference/search/guide): every contact with a
  ``stripe_customer_id``, 200 per page paged with ``after``, sorted by ``hs_object_id``;
  since one query stops at 10,000 results, the next query starts after the last id seen.
  The search has its own per-second limit: requests are paced under it, and a 429 (which
  carries no ``Retry-After``: "API usage guidelines") is retried after a growing wait.
* What a finding names is read again with ``batch/read`` (100 per request), which answers
  from the records, not the search index (that lags behind writes): drifted contacts by id,
  missing customers by ``stripe_customer_id``, and the contacts holding some customers'
  emails by ``email``.
* The worker's records: ``GET /customers`` of every worker (``PAYSTREAM_WORKER_URL``, comma
  separated), each answering for its own partitions; all partitions must be answered for.
* ``--apply``: the plan's records produced to ``sink.crm``, ``sink.dlq`` and
  ``sink.results`` with the pipeline's producer settings, each acknowledged by the broker.

Secrets go only into request headers; an error names its class or status, never a body.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx
from pydantic import Field

from paystream.backoff import jittered_delay
from paystream.commands.crm_repair import plan
from paystream.commands.crm_repair.checks import Contact, Findings, Record
from paystream.crm_properties import (
    BILLING_STATE,
    BILLING_STATE_CHANGED_AT,
    EMAIL,
    STRIPE_CUSTOMER_ID,
    USER_ID,
    parse_crm_datetime,
)
from paystream.destinations import DestinationSettings
from paystream.errors import PaystreamError
from paystream.settings import ApiToken, WorkerUrl
from paystream.vocabulary import DELIVERY_HEADER, DELIVERY_RETRY

SEARCH_PATH = "/crm/v3/objects/contacts/search"
READ_PATH = "/crm/v3/objects/contacts/batch/read"
#: "Search" guide, Limitations: 200 per page, 10,000 results per query
SEARCH_PAGE = 200
SEARCH_MAX_RESULTS = 10_000
READ_BATCH = 100
PROPERTIES = [
    STRIPE_CUSTOMER_ID,
    EMAIL,
    USER_ID,
    BILLING_STATE,
    BILLING_STATE_CHANGED_AT,
    "lastmodifieddate",
]
WORKER_PAGE = 500


class CrmRepairSettings(DestinationSettings, WorkerUrl, ApiToken):
    """What ``paystream crm-repair`` reads: HubSpot, the workers' API, the broker."""

    # PAYSTREAM_WORKER_URL here names every worker's customer-state API (comma separated
    # when there are several)
    paystream_crm_repair_timeout_s: float = Field(default=10.0, gt=0, le=120)
    #: requests per second paced under the search API's own limit (HubSpot: 5 per token)
    paystream_crm_search_per_second: float = Field(default=4.0, gt=0, le=50)
    #: attempts of one request answered 429 or 5xx before the command gives up
    paystream_crm_repair_attempts: int = Field(default=6, ge=1, le=20)


class RepairError(PaystreamError):
    """HubSpot, the worker or the broker refused or did not answer: nothing more is done."""


class Client:
    """One base URL and bearer token; JSON answers; 429 and 5xx retried with back-off."""

    def __init__(
        self,
        base: str,
        token: str,
        settings: CrmRepairSettings,
        name: str,
        token_hint: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.http = httpx.Client(
            base_url=base.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=settings.paystream_crm_repair_timeout_s,
        )
        self.name = name
        #: which setting holds the token, named when it is refused
        self.token_hint = token_hint
        self.attempts = settings.paystream_crm_repair_attempts
        self.sleep = sleep
        self.gap_s = 0.0
        self._last = 0.0
        self.waits: list[float] = []

    def call(self, method: str, path: str, ok: tuple[int, ...] = (200,), **kwargs: Any) -> Any:
        for attempt in range(1, self.attempts + 1):
            wait = self._last + self.gap_s - time.monotonic()
            if wait > 0:
                self.sleep(wait)
            self._last = time.monotonic()
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise RepairError(f"{self.name} did not answer ({type(exc).__name__})") from None
            status = response.status_code
            if status in ok:
                try:
                    return response.json()
                except ValueError:
                    raise RepairError(f"{self.name} answered {path} with no JSON") from None
            if status in (401, 403):
                raise RepairError(f"{self.name} refused the token ({status}): {self.token_hint}")
            if status != 429 and status < 500:
                raise RepairError(f"{self.name} answered {status} to {path}")
            if response.status_code == 429 and _policy(response) == "DAILY":
                # "API usage guidelines": nothing succeeds before the account's midnight
                raise RepairError(f"{self.name}'s daily request limit is spent; run after midnight")
            if attempt < self.attempts:
                delay = retry_delay(response.headers.get("Retry-After"), attempt)
                self.waits.append(delay)
                self.sleep(delay)
        raise RepairError(f"{self.name} kept answering 429/5xx to {path}; try again later")

    def close(self) -> None:
        self.http.close()


def _policy(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("policyName") or "") if isinstance(body, dict) else ""


def retry_delay(retry_after: str | None, attempt: int) -> float:
    """``Retry-After`` when given (seconds), else 1, 2, 4 ... s with jitter, at most 30 s."""
    if retry_after and retry_after.strip().isdigit():
        return min(60.0, float(retry_after))
    return jittered_delay(attempt, 1.0, 30.0, random.random())


# ------------------------------------------------------------------------------ HubSpot
def contact_of(found: Mapping[str, Any]) -> Contact:
    props = found.get("properties") or {}
    modified = props.get("lastmodifieddate") or found.get("updatedAt")
    return Contact(
        contact_id=str(found.get("id")),
        customer_id=props.get(STRIPE_CUSTOMER_ID) or None,
        email=props.get(EMAIL) or None,
        user_id=props.get(USER_ID) or None,
        billing_state=props.get(BILLING_STATE) or None,
        changed_at=props.get(BILLING_STATE_CHANGED_AT) or None,
        modified_at_ms=parse_crm_datetime(modified),
    )


def search_body(after_id: int, after: str | None) -> dict[str, Any]:
    filters = [
        {"propertyName": STRIPE_CUSTOMER_ID, "operator": "HAS_PROPERTY"},
        {"propertyName": "hs_object_id", "operator": "GT", "value": str(after_id)},
    ]
    body: dict[str, Any] = {
        "filterGroups": [{"filters": filters}],
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        "properties": PROPERTIES,
        "limit": SEARCH_PAGE,
    }
    if after is not None:
        body["after"] = after
    return body


def search_contacts(hubspot: Client) -> list[Contact]:
    """Every contact with a customer id, by id, however many (see the module doc)."""
    contacts: list[Contact] = []
    after_id, after, in_query = 0, None, 0
    while True:
        page = hubspot.call("POST", SEARCH_PATH, json=search_body(after_id, after))
        found = [contact_of(c) for c in page.get("results") or []]
        contacts += found
        in_query += len(found)
        after = ((page.get("paging") or {}).get("next") or {}).get("after")
        if after is None or not found:
            return contacts
        if in_query + SEARCH_PAGE > SEARCH_MAX_RESULTS:  # the next page would pass the cap
            after_id, after, in_query = int(found[-1].contact_id), None, 0


def read_by(hubspot: Client, id_property: str, ids: Sequence[str]) -> list[Contact]:
    """The contacts these ids name (``batch/read``, 100 per request): from the records
    themselves, not the search index. ``hs_object_id`` reads by contact id."""
    found: list[Contact] = []
    for start in range(0, len(ids), READ_BATCH):
        body: dict[str, Any] = {
            "inputs": [{"id": i} for i in ids[start : start + READ_BATCH]],
            "properties": PROPERTIES,
        }
        if id_property != "hs_object_id":
            body["idProperty"] = id_property
        # 207: some ids name no contact ("Batch read contacts", multi-status errors)
        answer = hubspot.call("POST", READ_PATH, ok=(200, 207), json=body)
        found += [contact_of(c) for c in answer.get("results") or []]
    return found


def email_holders(hubspot: Client, emails: Sequence[str]) -> dict[str, Contact]:
    """The contacts holding these emails (leads included), by lower-cased email."""
    return {c.email.lower(): c for c in read_by(hubspot, "email", emails) if c.email}


def confirmed(hubspot: Client, contacts: Sequence[Contact], findings: Findings) -> list[Contact]:
    """``contacts`` with what a finding names read again from the records: the search index
    lags behind writes (a correction just written can still be searched as it was, a contact
    just created not at all), so each drifted contact is re-read by id and each missing
    customer looked up by ``stripe_customer_id``."""
    suspects = sorted({d.contact_id for d in findings.drifts})
    fresh = read_by(hubspot, "hs_object_id", suspects) if suspects else []
    missing = [m.customer_id for m in findings.missing]
    found = read_by(hubspot, STRIPE_CUSTOMER_ID, missing) if missing else []
    by_id = {c.contact_id: c for c in contacts}
    for gone in set(suspects) - {c.contact_id for c in fresh}:
        by_id.pop(gone, None)  # deleted since the search
    by_id.update((c.contact_id, c) for c in [*fresh, *found])
    return sorted(by_id.values(), key=lambda c: (len(c.contact_id), c.contact_id))


# ------------------------------------------------------------------------------- worker
def record_of(public: Mapping[str, Any]) -> Record:
    return Record(
        customer_id=str(public["stripe_customer_id"]),
        billing_state=public.get("billing_state"),
        changed_at_ms=public.get("billing_state_changed_at_ms"),
        email=public.get("email"),
        user_id=public.get("user_id"),
        cause_event_id=public.get("cause_event_id"),
        cause_event_type=public.get("cause_event_type"),
        livemode=bool(public.get("livemode")),
    )


def worker_pages(worker: Client) -> Iterator[dict[str, Any]]:
    after = ""
    while True:
        page: dict[str, Any] = worker.call(
            "GET", "/customers", params={"after": after, "limit": WORKER_PAGE}
        )
        yield page
        after = page.get("next_after") or ""
        if not after:
            return


def read_records(settings: CrmRepairSettings) -> dict[str, Record]:
    """Every canonical record, from every worker; refused unless all partitions answered."""
    if not settings.paystream_worker_url or settings.paystream_api_token is None:
        raise RepairError("set PAYSTREAM_WORKER_URL and PAYSTREAM_API_TOKEN (the worker's API)")
    token = settings.paystream_api_token.get_secret_value()
    records: dict[str, Record] = {}
    partitions: set[int] = set()
    for url in [u.strip() for u in settings.paystream_worker_url.split(",") if u.strip()]:
        worker = Client(url, token, settings, "the worker", "check PAYSTREAM_API_TOKEN")
        try:
            for page in worker_pages(worker):
                partitions.update(int(p) for p in page.get("partitions") or [])
                records.update((r.customer_id, r) for r in map(record_of, page["customers"]))
        finally:
            worker.close()
    expected = set(range(settings.topics.partitions))
    if partitions != expected:
        raise RepairError(
            f"the workers answered for partitions {sorted(partitions)} of "
            f"{settings.topics.partitions}: give every worker's URL in PAYSTREAM_WORKER_URL "
            "(comma separated), or wait until the group has rebalanced"
        )
    return records


def hubspot_client(settings: CrmRepairSettings) -> Client:
    token = settings.hubspot_access_token
    if token is None or not token.get_secret_value():
        raise RepairError("set HUBSPOT_ACCESS_TOKEN (a private app with contacts read)")
    client = Client(
        settings.hubspot_api_base,
        token.get_secret_value(),
        settings,
        "HubSpot",
        "HUBSPOT_ACCESS_TOKEN expired or lacks crm.objects.contacts.read",
    )
    client.gap_s = 1.0 / settings.paystream_crm_search_per_second
    return client


# -------------------------------------------------------------------------------- apply
def apply(settings: CrmRepairSettings, messages: Sequence[plan.Message]) -> int:
    """Produce every message (corrections with the re-send header); how many were acked."""
    from confluent_kafka import Producer

    from schemas.codec import default_codec

    codec = default_codec()
    topics = {
        "sink_crm": settings.topics.sink_crm,
        "sink_dlq": settings.topics.sink_dlq,
        "sink_results": settings.topics.sink_results,
    }
    acked: list[bool] = []
    producer = Producer(settings.producer_config())
    for m in messages:
        headers: list[tuple[str, str | bytes | None]] | None = (
            [(DELIVERY_HEADER, DELIVERY_RETRY.encode())] if m.topic == "sink_crm" else None
        )
        producer.produce(
            topics[m.topic],
            key=m.key.encode(),
            value=codec.encode(m.schema, m.value),
            headers=headers,
            on_delivery=lambda err, _msg: acked.append(err is None),
        )
        producer.poll(0)
    left = producer.flush(30)
    refused = left + acked.count(False)
    if refused:
        raise RepairError(
            f"the broker did not acknowledge {refused} of {len(messages)} records; "
            "run again (the corrections are idempotent)"
        )
    return len(acked)


def open_rows(settings: CrmRepairSettings) -> set[str]:
    """The row ids open (or being retried) in the exception queue, read whole from Kafka."""
    from paystream.exception_queue.feed import read_queue
    from paystream.runtime.topic_feed import FeedNotLoaded

    try:
        queue = read_queue(settings, timeout=30)
    except FeedNotLoaded as exc:
        raise RepairError(f"the exception queue could not be read ({exc})") from None
    return {row.row_id for row in queue.visible()}


def encoder() -> Callable[[str, Mapping[str, Any]], bytes]:
    from schemas.codec import default_codec

    return default_codec().encode


def run_id() -> str:
    """The correlation id of one run's records."""
    return f"crm-repair-{uuid.uuid4().hex[:16]}"
