"""``GET /v1/customers/{stripe_customer_id}``: the worker's customer record, through ingest.

An app hosted elsewhere (Vercel) reaches only ingest's public host; ingest checks the
bearer token (``PAYSTREAM_API_TOKEN``, wrong ones throttled per client by
``paystream.throttle``; the client is the address a trusted proxy reports,
``paystream.proxies``) and asks the worker's ``GET /customers/{id}`` (any worker: it
routes the request to the one that owns the key), with one aiohttp session for the app's
life. Answers (docs/ingest.md#customer-state-api):

* 200 and the worker's JSON record, as the worker sent it;
* 401 ``unauthorized`` without the right token, 429 ``too_many_attempts`` + ``Retry-After``
  once a client spent its wrong attempts (the token is then not compared);
* 404 ``not_found`` for an unknown customer, an id that cannot be a Stripe customer id,
  or when the API is off (no worker URL or token set);
* 503 ``unavailable`` + ``Retry-After`` when the worker is unreachable, slow, rebalancing
  or answers anything else (a 401 from it: the two tokens differ, logged once per answer).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import structlog
from aiohttp import web

from ingest.envelope import correlation_id
from ingest.requestlog import RequestLog
from paystream.proxies import Network, client_address
from paystream.throttle import FailureThrottle, bearer_attempt

#: A Stripe customer id (``cus_`` and letters/digits); anything else is not a customer.
CUSTOMER_ID = re.compile(r"cus_[A-Za-z0-9_]{1,240}")
JSON = "application/json"
BODIES = {
    error: json.dumps({"error": error}).encode()
    for error in ("unauthorized", "too_many_attempts", "not_found", "unavailable")
}
STATUS = {"unauthorized": 401, "too_many_attempts": 429, "not_found": 404, "unavailable": 503}


@dataclass
class CustomerApi:
    """What the read needs: where the worker is, the token, the throttle, the session."""

    worker_url: str | None
    token: str | None
    timeout_s: float
    retry_after: str
    log: RequestLog
    hash_customer: Callable[[str | None], str]
    request_ids: Callable[[], str]
    throttle: FailureThrottle = field(default_factory=FailureThrottle)
    #: ``PAYSTREAM_TRUSTED_PROXIES``: whose ``X-Forwarded-For`` names the client
    trusted_proxies: tuple[Network, ...] = ()
    session: aiohttp.ClientSession | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.worker_url and self.token)


CUSTOMER_API = web.AppKey("customer_api", CustomerApi)


async def worker_session(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: the one client session to the worker, opened and closed with the app."""
    api = app[CUSTOMER_API]
    if not api.enabled:
        yield
        return
    timeout = aiohttp.ClientTimeout(total=api.timeout_s)
    async with aiohttp.ClientSession(timeout=timeout, raise_for_status=False) as session:
        api.session = session
        yield
        api.session = None


def _answer(error: str, cid: str, retry_after: str | None = None) -> web.Response:
    headers = {"X-Request-Id": cid}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return web.Response(
        body=BODIES[error], status=STATUS[error], content_type=JSON, headers=headers
    )


async def _ask_worker(api: CustomerApi, customer_id: str, cid: str) -> web.Response:
    """The worker's answer for ``customer_id``, as ingest's answer."""
    assert api.session is not None and api.worker_url is not None  # enabled, started
    url = f"{api.worker_url.rstrip('/')}/customers/{customer_id}"
    headers = {"Authorization": f"Bearer {api.token}", "X-Request-Id": cid}
    try:
        async with api.session.get(url, headers=headers, allow_redirects=False) as resp:
            body = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError):
        return _answer("unavailable", cid, api.retry_after)
    if status == 200 and _is_object(body):
        return web.Response(body=body, content_type=JSON, headers={"X-Request-Id": cid})
    if status == 404:
        return _answer("not_found", cid)
    if status == 401:  # PAYSTREAM_API_TOKEN differs between ingest and the worker
        structlog.get_logger("ingest").error("worker_refused_token", correlation_id=cid)
    return _answer("unavailable", cid, api.retry_after)


def _is_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False


async def read_customer(request: web.Request) -> web.Response:
    """``GET /v1/customers/{stripe_customer_id}`` (thin: token, id, worker, one log line)."""
    api = request.app[CUSTOMER_API]
    started, now = time.perf_counter(), time.time()
    cid = correlation_id(request.headers.get("X-Request-Id"), api.request_ids)
    customer_id = request.match_info["customer_id"]
    if not api.enabled or api.token is None:
        response = _answer("not_found", cid)
    else:
        forwarded = request.headers.get("X-Forwarded-For")
        client = client_address(request.remote, forwarded, api.trusted_proxies)
        auth = request.headers.get("Authorization")
        verdict, wait_s = bearer_attempt(api.throttle, client, auth, api.token, time.monotonic())
        if verdict == "throttled":
            response = _answer("too_many_attempts", cid, str(max(wait_s, 1)))
        elif verdict == "unauthorized":
            response = _answer("unauthorized", cid)
        elif not CUSTOMER_ID.fullmatch(customer_id):
            response = _answer("not_found", cid)
        else:
            response = await _ask_worker(api, customer_id, cid)
    known = CUSTOMER_ID.fullmatch(customer_id) is not None
    api.log.write(
        "customer_read",
        correlation_id=cid,
        event_id=None,
        type=None,
        customer=api.hash_customer(customer_id) if known else None,
        status=response.status,
        outcome="ok" if response.status == 200 else _error_of(response),
        latency_ms=round((time.perf_counter() - started) * 1000, 2),
        now=now,
    )
    return response


def _error_of(response: web.Response) -> str:
    return next((e for e, s in STATUS.items() if s == response.status), "unknown")


def route(app: web.Application, api: CustomerApi) -> None:
    """Serve the read on ``app`` (404 for every id while the API is off)."""
    app[CUSTOMER_API] = api
    app.router.add_get("/v1/customers/{customer_id}", read_customer)
    app.cleanup_ctx.append(worker_session)
