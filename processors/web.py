"""The worker's web port: GET /customers/{id} and /events/{id}?key= (routed to the key's
owner; the second answers what the worker did with the event), GET /customers (this
worker's own partitions, paged), /metrics, /readyz.

``/customers/{id}`` checks the bearer token on whichever worker the request lands on, then
Faust's router forwards it (headers included) to the worker that owns the customer's
partition, which answers from its table. Wrong tokens are throttled per client address
(``paystream.throttle``): past the burst, 429 ``too_many_attempts`` with ``Retry-After``,
and the token is not even compared.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from paystream.throttle import FailureThrottle, bearer_attempt
from processors import dedup
from processors.lifecycle import CustomerRecord
from processors.listing import customer_page, listing_query
from processors.parts import WorkerParts


def refused(view: View, request: Request, token: str, throttle: FailureThrottle) -> Response | None:
    """The 401 or 429 answer of a request whose bearer token does not pass, else None."""
    client = str(getattr(request, "remote", None) or "unknown")
    header = request.headers.get("Authorization")
    verdict, wait_s = bearer_attempt(throttle, client, header, token, time.monotonic())
    if verdict == "ok":
        return None
    if verdict == "throttled":
        headers: Any = {"Retry-After": str(wait_s)}
        return view.json({"error": "too_many_attempts"}, status=429, headers=headers)
    return view.json({"error": "unauthorized"}, status=401)


def register(parts: WorkerParts) -> None:
    app, settings = parts.app, parts.settings
    token = (
        settings.paystream_api_token.get_secret_value() if settings.paystream_api_token else None
    )
    throttle = FailureThrottle()

    @app.page("/customers/{customer_id}")
    class CustomerView(View):
        async def get(self, request: Request, customer_id: str) -> Response:
            if token is None:
                return self.json({"error": "not_found"}, status=404)
            if (answer := refused(self, request, token, throttle)) is not None:
                return answer
            if not parts.state["ready"]:
                return self.json({"error": "unavailable"}, status=503)
            try:
                response: Response = await self.routed(request, customer_id=customer_id)  # type: ignore[call-arg]
            except Exception:  # owner unknown or unreachable (rebalancing)
                return self.json({"error": "unavailable"}, status=503)
            return response

        @app.table_route(table=parts.customers, match_info="customer_id")  # type: ignore[arg-type]
        async def routed(self, request: Request, customer_id: str) -> Response:
            raw = parts.customers.data.get(customer_id.encode())
            if raw is None:
                return self.json({"error": "not_found"}, status=404)
            return self.json(CustomerRecord.from_json(raw).public())

    register_event_lookup(parts, token, throttle)

    @app.page("/metrics")
    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            body = generate_latest(parts.metrics.registry)
            return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/readyz")
    class ReadyView(View):
        async def get(self, request: Request) -> Response:
            ready = parts.state["ready"] and not app.rebalancing
            partitions = sorted(
                {tp.partition for tp in app.consumer.assignment()} if ready else set()
            )
            body = {"ready": ready, "partitions": partitions}
            return self.json(body, status=200 if ready else 503)

    register_readiness(parts)
    register_listing(parts, token, throttle)

    @app.page("/healthz")
    class HealthView(View):
        async def get(self, request: Request) -> Response:
            return self.json({"alive": True})


def event_answer(event_id: str, table_value: bytes | None) -> dict[str, Any]:
    """What the worker did with an event, from its dedup entry (pure): ``processed``; the
    ``outcome`` of its first processing (``applied``, ``stale``, ``ignored``; None for an
    entry of an earlier release, or not processed); ``repeated``: it came again after."""
    entry = dedup.read_entry(table_value) if table_value is not None else None
    return {
        "event_id": event_id,
        "processed": entry is not None,
        "outcome": entry.outcome if entry else None,
        "repeated": entry.repeated if entry else False,
    }


def register_event_lookup(parts: WorkerParts, token: str | None, throttle: FailureThrottle) -> None:
    """``GET /events/{id}?key=``: has the worker processed this event, and with what outcome?
    (``paystream reconcile`` asks before it publishes, ``paystream doctor`` for the last
    events.) ``?key=`` is the event's Kafka key (its customer id, else its id): the dedup
    entry lives on the partition of that key, so the request is routed there."""
    app = parts.app

    @app.page("/events/{event_id}")
    class EventView(View):
        async def get(self, request: Request, event_id: str) -> Response:
            if token is None:
                return self.json({"error": "not_found"}, status=404)
            if (answer := refused(self, request, token, throttle)) is not None:
                return answer
            if not request.query.get("key"):
                return self.json({"error": "key_required"}, status=400)
            if not parts.state["ready"]:
                return self.json({"error": "unavailable"}, status=503)
            try:
                response: Response = await self.routed(request, event_id=event_id)  # type: ignore[call-arg]
            except Exception:  # owner unknown or unreachable (rebalancing)
                return self.json({"error": "unavailable"}, status=503)
            return response

        # the customers table is co-partitioned with dedup: same key, same owner
        @app.table_route(table=parts.customers, query_param="key")  # type: ignore[arg-type]
        async def routed(self, request: Request, event_id: str) -> Response:
            # the writer's overlay holds what was processed but is not in the table yet
            value = parts.writer.seen.get(event_id) or parts.dedup.data.get(event_id.encode())
            return self.json(event_answer(event_id, value))


def register_readiness(parts: WorkerParts) -> None:
    """Mark the worker ready (``/readyz`` 200, one ``worker ready`` log line) after recovery."""
    app = parts.app

    @app.task  # type: ignore[untyped-decorator]
    async def mark_ready() -> None:
        recovery = app.tables.recovery  # type: ignore[attr-defined]
        while not (recovery.completed.is_set() and not app.rebalancing):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        parts.state["ready"] = True
        structlog.get_logger().info(
            "worker ready",
            app_id=app.conf.id,
            port=parts.settings.paystream_worker_port,
            partitions=sorted({tp.partition for tp in app.consumer.assignment()}),
        )


def register_listing(parts: WorkerParts, token: str | None, throttle: FailureThrottle) -> None:
    """``GET /customers?after=&limit=``: the records of this worker's partitions, in id order
    (``processors.listing``), for ``paystream crm-repair``; the same bearer token and throttle
    as ``/customers/{id}``. Not routed: each worker answers for the partitions it names."""
    app = parts.app
    source = parts.settings.topics.stripe_events

    @app.page("/customers")
    class CustomerListView(View):
        async def get(self, request: Request) -> Response:
            if token is None:
                return self.json({"error": "not_found"}, status=404)
            if (answer := refused(self, request, token, throttle)) is not None:
                return answer
            wanted = listing_query(dict(request.query))
            if wanted is None:
                return self.json({"error": "bad_paging"}, status=400)
            if not parts.state["ready"] or app.rebalancing:
                return self.json({"error": "unavailable"}, status=503)
            partitions = [tp.partition for tp in app.consumer.assignment() if tp.topic == source]
            table = parts.customers.data
            page = customer_page(
                table.keys(), table.get, dict(parts.writer.records), wanted, partitions
            )
            return self.json(page)
