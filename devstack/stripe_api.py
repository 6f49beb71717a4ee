"""A local Stripe API stand-in: the Events API that ``paystream reconcile`` pages through,
and the Billing Portal sessions the Next.js example (``examples/nextjs``) opens.

``GET /v1/events`` and ``GET /v1/events/{id}`` as Stripe documents them, built from real
webhook bodies (``../shared/stripe-fixtures/`` cloned with distinct ids and ``created``):

- List all events (https://docs.stripe.com/api/events/list): "List events, going back up
  to 30 days", newest first; ``created`` as an integer or a dictionary with ``gt``, ``gte``,
  ``lt``, ``lte`` (sent form-style as ``created[gte]=...``); ``limit`` 1-100, default 10;
  ``types[]`` / ``type`` filters. Events older than 30 days are simply absent.
- Pagination (https://docs.stripe.com/api/pagination): the answer is
  ``{"object": "list", "url": "/v1/events", "has_more": ..., "data": [...]}`` in reverse
  chronological order; ``starting_after`` (the next, older page) and ``ending_before``
  (the previous, newer page) take an object id and are mutually exclusive; an unknown id
  is a 400 ``resource_missing``.
- Authentication (https://docs.stripe.com/api/authentication): the secret key as the
  HTTP Basic user name (no password) or ``Authorization: Bearer <key>``; anything else is
  401 ``Invalid API Key provided``. A key of the other mode is refused as well.
- Rate limits (https://docs.stripe.com/rate-limits): 429 with Stripe's error body and, as
  in general for Stripe's rate limiter, no ``Retry-After`` header (inject one with
  ``fail_next(429, retry_after="1")`` to test a client that honours it). Faults are
  injected as for the other stand-ins (``devstack._http_standin``).
- ``delivery_success`` (List all events, https://docs.stripe.com/api/events/list): "Filter
  events by whether all webhooks were successfully delivered. If false, events which are
  still pending or have failed all delivery attempts to a webhook endpoint will be
  returned." Events marked with ``fail_delivery(ids)`` are the undelivered ones.
- ``GET /v1/webhook_endpoints`` (List all webhook endpoints,
  https://docs.stripe.com/api/webhook_endpoints/list): the same list object and cursors as
  events, ``limit`` 1-100 (default 10), newest first; each endpoint object has ``url``,
  ``enabled_events`` (``["*"]`` for all), ``api_version`` (null: the account's default),
  ``status`` ``enabled``/``disabled`` and ``livemode``; the ``secret`` is "only returned
  at creation", so a listing never carries it. ``add_webhook_endpoint(...)`` plants one.

- ``POST /v1/billing_portal/sessions`` (Create a portal session,
  https://docs.stripe.com/api/customer_portal/sessions/create): form-encoded ``customer``
  ("The ID of an existing customer") and optional ``return_url``; answers the
  ``billing_portal.session`` object, whose ``url`` (Stripe's is
  ``https://billing.stripe.com/p/session?secret=...``) is the stand-in's own
  ``/p/session?secret=...``: a page naming the customer with a link back to ``return_url``,
  so a browser test can follow it. A customer the stand-in does not know (neither planted
  with ``add_customers`` nor in an event) is Stripe's 400 ``resource_missing`` (Errors,
  https://docs.stripe.com/api/errors); no ``customer`` is 400 ``parameter_missing``.

    python -m devstack.stripe_api --port 8093 --fixtures ../shared/stripe-fixtures
"""

from __future__ import annotations

import argparse
import base64
import copy
import html
import json
import secrets
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from devstack._http_standin import Standin, serve_forever

DEFAULT_KEY = "sk_test_standin_reconcile"
#: "List events, going back up to 30 days" (https://docs.stripe.com/api/events/list)
RETENTION_S = 30 * 24 * 3600
MAX_LIMIT = 100
#: ``types`` takes "an array of up to 20 strings" (https://docs.stripe.com/api/events/list)
MAX_TYPES = 20
DEFAULT_LIMIT = 10
#: where a portal session's url leads (Stripe's: https://billing.stripe.com/p/session)
PORTAL_PAGE = "/p/session"


def _error(status: int, type_: str, message: str, **extra: Any) -> web.Response:
    """Stripe's error body (https://docs.stripe.com/api/errors)."""
    return web.json_response({"error": {"type": type_, "message": message, **extra}}, status=status)


def _key_of(header: str) -> str | None:
    if header.startswith("Bearer "):
        return header[len("Bearer ") :]
    if header.startswith("Basic "):
        try:
            decoded = base64.b64decode(header[len("Basic ") :], validate=True).decode()
        except ValueError:
            return None
        return decoded.split(":", 1)[0]
    return None


def events_from_fixtures(
    fixtures: Path,
    count: int,
    *,
    newest: int,
    spacing_s: int = 60,
    prefix: str = "evt_rc",
    livemode: bool = False,
) -> list[dict[str, Any]]:
    """``count`` real event bodies (the fixture files in turn), each with its own id and a
    ``created`` ``spacing_s`` apart ending at ``newest``; newest first."""
    templates = [json.loads(p.read_text()) for p in sorted(fixtures.glob("*.json")) if p.is_file()]
    if not templates:
        raise FileNotFoundError(f"no *.json Stripe event fixtures in {fixtures}")
    events = []
    for i in range(count):
        event = copy.deepcopy(templates[i % len(templates)])
        event["id"] = f"{prefix}{i:06d}"
        event["created"] = newest - i * spacing_s
        event["livemode"] = livemode
        events.append(event)
    return events


class StripeApiStandin(Standin):
    """Events by id; lists answered from them as Stripe's Events API does."""

    error_bodies = {
        # https://docs.stripe.com/error-codes#rate-limit and https://docs.stripe.com/rate-limits
        429: {
            "error": {
                "type": "invalid_request_error",
                "code": "rate_limit",
                "message": "Too many requests hit the API too quickly. We recommend an "
                "exponential backoff of your requests.",
            }
        },
        500: {"error": {"type": "api_error", "message": "An unknown error occurred"}},
        503: {"error": {"type": "api_error", "message": "Service unavailable"}},
    }

    def __init__(self, api_key: str = DEFAULT_KEY, *, now: float | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        #: a fixed clock for the 30-day window (None: the wall clock)
        self.now = now
        self.reset_state()
        self.route("GET", "/v1/events", self.list_events)
        self.route("GET", "/v1/events/{id}", self.retrieve_event)
        self.route("GET", "/v1/webhook_endpoints", self.list_webhook_endpoints)
        self.route("POST", "/v1/billing_portal/sessions", self.create_portal_session)
        self.route("GET", PORTAL_PAGE, self.portal_page)

    def reset_state(self) -> None:
        self.events: dict[str, dict[str, Any]] = {}
        #: ids of events whose webhook delivery is still pending or failed
        self.undelivered: set[str] = set()
        self.webhook_endpoints: list[dict[str, Any]] = []
        self.customers: set[str] = set()
        #: portal sessions by their url's secret
        self.portal_sessions: dict[str, dict[str, Any]] = {}

    def state(self) -> Any:
        return {"events": len(self.events), "portal_sessions": list(self.portal_sessions.values())}

    def add_customers(self, ids: Iterable[str]) -> None:
        """Customers that exist in the account (besides those the events name)."""
        with self.lock:
            self.customers.update(ids)

    def _customer_exists(self, customer: str) -> bool:
        if customer in self.customers:
            return True
        return any(_customer_of(e) == customer for e in self.events.values())

    def add_events(self, events: Iterable[dict[str, Any]]) -> None:
        with self.lock:
            for event in events:
                self.events[str(event["id"])] = event

    def fail_delivery(self, ids: Iterable[str]) -> None:
        """Mark events as not delivered to every endpoint (``delivery_success=false``)."""
        with self.lock:
            self.undelivered.update(ids)

    def add_webhook_endpoint(
        self,
        url: str,
        enabled_events: Sequence[str] = ("*",),
        *,
        api_version: str | None = None,
        status: str = "enabled",
        livemode: bool = False,
        created: int | None = None,
    ) -> dict[str, Any]:
        """Plant a webhook endpoint as the Dashboard or the API would have created it."""
        with self.lock:
            n = len(self.webhook_endpoints)
            endpoint: dict[str, Any] = {
                "id": f"we_standin{n:04d}",
                "object": "webhook_endpoint",
                "api_version": api_version,
                "application": None,
                "created": created if created is not None else int(self._clock()) - 1000 + n,
                "description": None,
                "enabled_events": list(enabled_events),
                "livemode": livemode,
                "metadata": {},
                "status": status,
                "url": url,
            }
            self.webhook_endpoints.append(endpoint)
            return endpoint

    def remove_events(self, ids: Iterable[str]) -> None:
        with self.lock:
            for event_id in ids:
                self.events.pop(event_id, None)

    # ------------------------------------------------------------------ auth
    def authorized(self, request: web.Request) -> bool:
        if request.path == PORTAL_PAGE:  # the customer's browser, holding the url's secret
            return True
        return _key_of(request.headers.get("Authorization", "")) == self.api_key

    def unauthorized(self) -> web.Response:
        return _error(401, "invalid_request_error", "Invalid API Key provided")

    # ------------------------------------------------------------------ routes
    def _clock(self) -> float:
        return self.now if self.now is not None else time.time()

    def _kept(self) -> list[dict[str, Any]]:
        """Events Stripe still lists (the last 30 days), newest first (ties: by id)."""
        oldest = self._clock() - RETENTION_S
        kept = [e for e in self.events.values() if e["created"] >= oldest]
        kept.sort(key=lambda e: (e["created"], e["id"]), reverse=True)
        return kept

    async def retrieve_event(self, request: web.Request, _body: Any) -> web.Response:
        event = next((e for e in self._kept() if e["id"] == request.match_info["id"]), None)
        if event is None:
            return _error(
                404,
                "invalid_request_error",
                f"No such event: '{request.match_info['id']}'",
                code="resource_missing",
                param="id",
            )
        return web.json_response(event)

    async def list_events(self, request: web.Request, _body: Any) -> web.Response:
        query = request.query
        paging = _paging(query)
        if isinstance(paging, web.Response):
            return paging
        limit, after, before = paging
        try:
            bounds = _created_bounds(query)
        except ValueError:
            return _error(400, "invalid_request_error", "Invalid integer", param="limit")
        # "types: An array of up to 20 strings containing specific event names ... You may
        # pass either type or types, but not both." (https://docs.stripe.com/api/events/list)
        if query.getall("types[]", []) and query.getall("type", []):
            return _error(400, "invalid_request_error", "Pass either type or types, not both")
        if len(query.getall("types[]", [])) > MAX_TYPES:
            return _error(
                400, "invalid_request_error", f"types: at most {MAX_TYPES}", param="types"
            )
        types = set(query.getall("types[]", [])) | set(query.getall("type", []))
        events = [e for e in self._kept() if _within(e["created"], bounds)]
        if types:
            events = [e for e in events if e["type"] in types]
        delivered = query.get("delivery_success")
        if delivered in ("true", "false"):
            failed = delivered == "false"
            events = [e for e in events if (e["id"] in self.undelivered) == failed]
        return _page(events, "/v1/events", limit, after, before, "event")

    async def list_webhook_endpoints(self, request: web.Request, _body: Any) -> web.Response:
        paging = _paging(request.query)
        if isinstance(paging, web.Response):
            return paging
        limit, after, before = paging
        endpoints = sorted(
            self.webhook_endpoints, key=lambda e: (e["created"], e["id"]), reverse=True
        )
        return _page(endpoints, "/v1/webhook_endpoints", limit, after, before, "webhook endpoint")

    async def create_portal_session(self, _request: web.Request, body: Any) -> web.Response:
        params = body if isinstance(body, dict) else {}
        customer = params.get("customer")
        if not customer:
            return _error(
                400,
                "invalid_request_error",
                "Missing required param: customer.",
                code="parameter_missing",
                param="customer",
            )
        if not self._customer_exists(str(customer)):
            return _error(
                400,
                "invalid_request_error",
                f"No such customer: '{customer}'",
                code="resource_missing",
                param="customer",
            )
        secret = f"test_{secrets.token_urlsafe(24)}"
        session = {
            "id": f"bps_{secrets.token_hex(12)}",
            "object": "billing_portal.session",
            "configuration": "bpc_standin",
            "created": int(self._clock()),
            "customer": str(customer),
            "flow": None,
            "livemode": not self.api_key.startswith(("sk_test_", "rk_test_")),
            "locale": None,
            "on_behalf_of": None,
            "return_url": params.get("return_url"),
            "url": f"{self.url}{PORTAL_PAGE}?secret={secret}",
        }
        self.portal_sessions[secret] = session
        return web.json_response(session)

    async def portal_page(self, request: web.Request, _body: Any) -> web.Response:
        session = self.portal_sessions.get(request.query.get("secret", ""))
        if session is None:
            return web.Response(status=404, text="This portal session does not exist.")
        back = session["return_url"]
        link = f'<a id="return" href="{html.escape(back)}">Return</a>' if back else ""
        page = (
            "<!doctype html><title>Billing portal (Stripe stand-in)</title>"
            f'<h1>Billing portal</h1><p id="customer">{html.escape(session["customer"])}</p>'
            f"<p>Update your payment method here.</p>{link}"
        )
        return web.Response(text=page, content_type="text/html")


def _customer_of(event: dict[str, Any]) -> str | None:
    obj = event.get("data", {}).get("object", {})
    customer = obj.get("id") if obj.get("object") == "customer" else obj.get("customer")
    return customer if isinstance(customer, str) else None


def _paging(query: Any) -> tuple[int, str | None, str | None] | web.Response:
    """A list request's ``limit`` and cursors, or Stripe's 400 for them
    (https://docs.stripe.com/api/pagination: ``limit`` 1-100, one cursor at most)."""
    try:
        limit = int(query.get("limit", DEFAULT_LIMIT))
    except ValueError:
        return _error(400, "invalid_request_error", "Invalid integer", param="limit")
    if not 1 <= limit <= MAX_LIMIT:
        return _error(
            400,
            "invalid_request_error",
            "Invalid limit: must be between 1 and 100",
            param="limit",
        )
    after, before = query.get("starting_after"), query.get("ending_before")
    if after and before:
        return _error(
            400,
            "invalid_request_error",
            "You may only specify one of these parameters: ending_before, starting_after.",
        )
    return limit, after, before


def _page(
    items: list[dict[str, Any]],
    url: str,
    limit: int,
    after: str | None,
    before: str | None,
    what: str,
) -> web.Response:
    """One page of a Stripe list (https://docs.stripe.com/api/pagination), newest first."""
    cursor = after or before
    if cursor:
        position = next((i for i, e in enumerate(items) if e["id"] == cursor), None)
        if position is None:
            return _error(
                400,
                "invalid_request_error",
                f"No such {what}: '{cursor}'",
                code="resource_missing",
                param="starting_after" if after else "ending_before",
            )
        if after:
            page = items[position + 1 : position + 1 + limit]
            has_more = len(items) > position + 1 + limit
        else:
            start = max(0, position - limit)
            page, has_more = items[start:position], start > 0
    else:
        page, has_more = items[:limit], len(items) > limit
    return web.json_response({"object": "list", "url": url, "has_more": has_more, "data": page})


Bounds = dict[str, int]


def _created_bounds(query: Any) -> Bounds:
    """``created=N`` or ``created[gt|gte|lt|lte]=N`` (form encoding of the dictionary)."""
    bounds: Bounds = {}
    if "created" in query:
        bounds["eq"] = int(query["created"])
    for op in ("gt", "gte", "lt", "lte"):
        value = query.get(f"created[{op}]")
        if value is not None:
            bounds[op] = int(value)
    return bounds


def _within(created: int, bounds: Bounds) -> bool:
    checks = {
        "eq": created == bounds.get("eq", created),
        "gt": created > bounds.get("gt", created - 1),
        "gte": created >= bounds.get("gte", created),
        "lt": created < bounds.get("lt", created + 1),
        "lte": created <= bounds.get("lte", created),
    }
    return all(checks.values())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="local Stripe Events API stand-in")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default: loopback)")
    parser.add_argument("--api-key", default=DEFAULT_KEY)
    parser.add_argument("--fixtures", type=Path, help="directory of Stripe event bodies")
    parser.add_argument("--count", type=int, default=250, help="events to serve")
    args = parser.parse_args(argv)
    standin = StripeApiStandin(args.api_key)
    if args.fixtures is not None:
        standin.add_events(
            events_from_fixtures(args.fixtures, args.count, newest=int(time.time()) - 60)
        )
    serve_forever(standin, args.port, args.host)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
