"""``paystream reconcile``: recover events Stripe never delivered, from the Events API.

Pages through ``GET /v1/events`` (https://docs.stripe.com/api/events/list) with the
``stripe`` library, newest first, 100 per page, ``starting_after`` the last id of the page
before (https://docs.stripe.com/api/pagination), for ``created`` within the window, and
publishes every listed event to ``stripe.events`` exactly as a webhook is published: the
same envelope (``ingest.envelope``, ``source="reconcile"``), the same durable producer
(``ingest.publisher``: acks=all, idempotent, delivery reports). The worker's dedup by event
id makes a replay harmless; the worker counts the events that had never arrived as a
webhook (``paystream_reconcile_recovered_events_total{type}``: the delivery gap).

Rate limits (https://docs.stripe.com/rate-limits): the library's own retries
(``max_network_retries``) cover connection errors, 409 and 5xx but not an ordinary 429
(stripe-python ``_http_client.py``, ``HTTPClient._should_retry``: only
``Stripe-Should-Retry: true`` makes it retry one), so a 429 is retried here, with the
exponential back-off Stripe recommends (``reconcile_plan.retry_delay``).

With ``PAYSTREAM_WORKER_URL`` (and ``PAYSTREAM_API_TOKEN``) set, each listed event is first
looked up in the worker's dedup table (``GET /events/{id}?key=...``); the summary then says
how many were already processed and how many never arrived.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson
import stripe
import structlog
from tqdm import tqdm

from ingest import envelope
from ingest.errors import ListingFailed, PublishUnavailable, ReconcileRefused, RejectedRequest
from ingest.publisher import Publisher
from ingest.reconcile_plan import Summary, Window, pace_wait, plan_window, retry_delay
from ingest.settings import MIB, ReconcileSettings
from paystream.command_help import command_parser
from paystream.logging import configure_logging
from paystream.settings import load_settings
from schemas.codec import default_codec

#: "limit ... ranging between 1 and 100" (https://docs.stripe.com/api/pagination)
PAGE_SIZE = 100
#: Retries of connection errors and 5xx inside the library (not 429s: see above).
LIBRARY_NETWORK_RETRIES = 2
#: Events published at once (each waits for its own delivery report).
PUBLISH_CONCURRENCY = 50
#: Lookups in the worker's dedup table at once.
LOOKUP_CONCURRENCY = 16
#: Failed events logged one by one; the rest are only counted.
LOGGED_FAILURES = 10

_log = structlog.get_logger("reconcile")


@dataclass
class Page:
    """One page of the Events API: the events' bodies as Stripe sent them, in order."""

    bodies: list[dict[str, Any]]
    has_more: bool


class EventLister(Protocol):
    def __call__(self, window: Window, starting_after: str | None) -> Page: ...


def stripe_lister(settings: ReconcileSettings) -> EventLister:
    """List one page at a time through the ``stripe`` library (blocking; run in a thread)."""
    client = stripe.StripeClient(
        settings.stripe_api_key.get_secret_value(),
        base_addresses={"api": settings.stripe_api_base},
        max_network_retries=LIBRARY_NETWORK_RETRIES,
    )

    def list_page(window: Window, starting_after: str | None) -> Page:
        params: dict[str, Any] = {
            "created": {"gte": window.start, "lte": window.end},
            "limit": PAGE_SIZE,
        }
        if starting_after is not None:
            params["starting_after"] = starting_after
        page = client.v1.events.list(params=params)  # type: ignore[arg-type]
        # The page's own JSON, not the library's objects: every event is published as the
        # plain Stripe event body, like a webhook's.
        response = page.last_response
        raw: Any = orjson.loads(response.body) if response is not None else page.to_dict()
        return Page(list(raw.get("data") or []), bool(raw.get("has_more")))

    return list_page


@dataclass
class Tally:
    """Running counts of one run."""

    listed: int = 0
    published: int = 0
    failed: int = 0
    already_processed: int = 0
    missing: int = 0
    unanswered: int = 0
    would_publish: int = 0


def _failed(tally: Tally, what: str, **fields: Any) -> None:
    """Count a failed event; log the first few (a broker outage would flood the terminal:
    the summary has the count)."""
    tally.failed += 1
    if tally.failed <= LOGGED_FAILURES:
        _log.warning(what, **fields)
    elif tally.failed == LOGGED_FAILURES + 1:
        _log.warning("further_failures_not_logged", logged=LOGGED_FAILURES)


class Pacer:
    """Keeps list requests under a rate: Stripe allows 25 reads/s in test mode and 100 in
    live mode for the whole account (https://docs.stripe.com/rate-limits), which the
    product's own calls share; reconcile takes a fraction of it instead of hitting 429s."""

    def __init__(self, requests_per_s: float, sleep: Callable[[float], Any]) -> None:
        self._rate = requests_per_s
        self._sleep = sleep
        self._last: float | None = None

    async def __call__(self) -> None:
        wait = pace_wait(self._last, time.monotonic(), self._rate)
        if wait > 0:
            await self._sleep(wait)
        self._last = time.monotonic()


async def _list_with_backoff(
    lister: EventLister,
    window: Window,
    starting_after: str | None,
    retries: int,
    sleep: Callable[[float], Any],
    pace: Pacer,
) -> Page:
    attempt = 0
    while True:
        await pace()
        try:
            return await asyncio.to_thread(lister, window, starting_after)
        except stripe.RateLimitError as exc:
            attempt += 1
            if attempt > retries:
                raise ListingFailed(
                    f"Stripe answered 429 (rate limit) {attempt} times in a row"
                ) from None
            headers = exc.headers or {}
            delay = retry_delay(attempt, headers.get("retry-after"), jitter=random.random)
            _log.info("stripe_rate_limited", attempt=attempt, wait_s=round(delay, 2))
            await sleep(delay)
        except stripe.AuthenticationError:
            raise ListingFailed("Stripe refused STRIPE_API_KEY (401)") from None
        except stripe.PermissionError:
            raise ListingFailed("STRIPE_API_KEY may not read events (403)") from None
        except stripe.StripeError as exc:
            status = exc.http_status or "no answer"
            raise ListingFailed(f"Stripe API error ({type(exc).__name__}, {status})") from None


class WorkerLookup:
    """Asks the worker whether it has processed an event (its dedup table)."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self._session = session
        self._base = base.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._limit = asyncio.Semaphore(LOOKUP_CONCURRENCY)

    async def processed(self, event_id: str, key: str) -> bool | None:
        """True/False as the worker says; None when it could not answer."""
        url = f"{self._base}/events/{event_id}"
        async with self._limit:
            for _ in range(3):
                try:
                    async with self._session.get(
                        url, params={"key": key}, headers=self._headers
                    ) as response:
                        if response.status == 200:
                            body = await response.json()
                            return bool(body.get("processed"))
                        if response.status != 503:  # 503: rebalancing, ask again
                            return None
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.5)
        return None


class _Recovery:
    """What one run does with each listed event: check it, ask the worker, publish it."""

    def __init__(
        self,
        settings: ReconcileSettings,
        publisher: Publisher | None,
        lookup: WorkerLookup | None,
    ) -> None:
        self.codec = default_codec()
        self.topic = settings.topics.stripe_events
        self.live = settings.stripe_mode == "live"
        self.run_id = f"reconcile-{uuid.uuid4().hex[:12]}"
        self.publisher = publisher
        self.lookup = lookup
        self.tally = Tally()
        self.publish_slots = asyncio.Semaphore(PUBLISH_CONCURRENCY)

    async def one(self, body: dict[str, Any]) -> None:
        out = self._parsed(body)
        if out is None or not await self._not_processed(out):
            return
        if self.publisher is None:
            self.tally.would_publish += 1
            return
        value = self.codec.encode(out.schema, out.record)
        headers: list[tuple[str, str | bytes | None]] = [("x-request-id", self.run_id.encode())]
        try:
            async with self.publish_slots:
                await self.publisher.publish(self.topic, out.key.encode(), value, headers)
        except PublishUnavailable as exc:
            _failed(self.tally, "publish_failed", event_id=out.event_id, error=type(exc).__name__)
        else:
            self.tally.published += 1

    def _parsed(self, body: dict[str, Any]) -> envelope.Outgoing | None:
        """The event as a webhook's would be published; None (counted) when refused."""
        text = orjson.dumps(body).decode()
        try:
            return envelope.parse_stripe_event(
                text,
                live=self.live,
                received_at_ms=int(time.time() * 1000),
                correlation_id=self.run_id,
                source="reconcile",
            )
        except RejectedRequest as exc:  # not an event, or the other mode's: never published
            _failed(self.tally, "event_refused", event_id=body.get("id"), reason=exc.reason)
            return None

    async def _not_processed(self, out: envelope.Outgoing) -> bool:
        """False when the worker says it has the event already (nothing to recover)."""
        if self.lookup is None:
            return True
        seen = await self.lookup.processed(out.event_id, out.key)
        if seen is None:
            self.tally.unanswered += 1  # published anyway: dedup decides
        elif seen:
            self.tally.already_processed += 1
            return False
        else:
            self.tally.missing += 1
        return True

    def summary(self, window: Window, error: str | None) -> Summary:
        tally, asked = self.tally, self.lookup is not None
        return Summary(
            window=window,
            listed=tally.listed,
            published=tally.published,
            failed=tally.failed,
            complete=error is None,
            already_processed=tally.already_processed if asked else None,
            missing=tally.missing if asked else None,
            unanswered=tally.unanswered,
            error=error,
            dry_run=self.publisher is None,
            would_publish=tally.would_publish,
        )


async def reconcile(
    settings: ReconcileSettings,
    window: Window,
    lister: EventLister,
    publisher: Publisher | None,
    lookup: WorkerLookup | None = None,
    progress: Any = None,
    sleep: Callable[[float], Any] = asyncio.sleep,
) -> Summary:
    """Page through the window and publish every listed event; say what happened.

    Without a publisher (``--dry-run``) nothing is published: each event that would be is
    counted instead, after the same checks and the same question to the worker.
    """
    recovery = _Recovery(settings, publisher, lookup)
    pace = Pacer(settings.paystream_reconcile_requests_per_s, sleep)
    retries = settings.paystream_reconcile_rate_limit_retries
    cursor: str | None = None
    while True:
        try:
            page = await _list_with_backoff(lister, window, cursor, retries, sleep, pace)
        except ListingFailed as exc:
            return recovery.summary(window, str(exc))
        recovery.tally.listed += len(page.bodies)
        await asyncio.gather(*(recovery.one(body) for body in page.bodies))
        if progress is not None:
            progress.update(len(page.bodies))
        if not page.has_more or not page.bodies:
            return recovery.summary(window, None)
        cursor = str(page.bodies[-1].get("id"))


@contextmanager
def progress_bar() -> Iterator[Any]:
    """A progress bar on stderr when it is a terminal (events listed so far); else none."""
    if not sys.stderr.isatty():
        yield None
        return
    bar = tqdm(unit=" events", desc="reconcile", file=sys.stderr, leave=True)
    try:
        yield bar
    finally:
        bar.close()


async def run(settings: ReconcileSettings, window: Window, dry_run: bool = False) -> Summary:
    """Start the producer (none in a dry run) and the worker client, reconcile, flush."""
    if dry_run:
        return await _listed_and_asked(settings, window, None)
    publisher = Publisher(
        settings.producer_config(
            **{
                "client.id": "paystream-reconcile",
                # the largest message stripe.events takes (topic max.message.bytes)
                "message.max.bytes": 2 * MIB,
            }
        ),
        settings.paystream_reconcile_publish_timeout_s,
    )
    await publisher.start()
    try:
        return await _listed_and_asked(settings, window, publisher)
    finally:
        left = await publisher.close(settings.paystream_reconcile_publish_timeout_s)
        if left:
            _log.error("producer_flush_incomplete", unsent=left)


async def _listed_and_asked(
    settings: ReconcileSettings, window: Window, publisher: Publisher | None
) -> Summary:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        lookup = None
        if settings.paystream_worker_url and settings.paystream_api_token:
            lookup = WorkerLookup(
                session,
                settings.paystream_worker_url,
                settings.paystream_api_token.get_secret_value(),
            )
        with progress_bar() as bar:
            lister = stripe_lister(settings)
            return await reconcile(settings, window, lister, publisher, lookup, bar)


def main(argv: list[str]) -> int:
    parser = command_parser("reconcile")
    parser.add_argument("--since", help="how far back from now: 3d, 12h, 1d12h, 90m (max 30d)")
    parser.add_argument("--from", dest="from_", help="window start: ISO 8601 or unix seconds")
    parser.add_argument("--to", help="window end (with --from; default now)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list and check the events, publish nothing (no broker needed)",
    )
    parser.add_argument("--json", action="store_true", help="the summary as one JSON object")
    args = parser.parse_args(argv)
    settings = load_settings(ReconcileSettings)
    if not args.dry_run:
        settings.bootstrap_servers  # noqa: B018 - fail now, with one line, when it is unset
    try:
        window = plan_window(since=args.since, from_=args.from_, to=args.to, now=int(time.time()))
    except ReconcileRefused as exc:
        print(f"paystream reconcile: {exc}", file=sys.stderr)
        return 2
    configure_logging("reconcile", settings.paystream_log_level)
    summary = asyncio.run(run(settings, window, dry_run=args.dry_run))
    if args.json:
        print(json.dumps(summary.as_dict()), flush=True)
    else:
        for line in summary.lines():
            print(line, flush=True)
    return summary.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
