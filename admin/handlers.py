"""The admin's HTTP handlers: check the session and CSRF token, call the core, render."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Any

import aiohttp_jinja2
import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from admin.errors import QueueUnavailable
from admin.kafka import QueueWriter, SessionFeed, wall_ms
from admin.security import (
    CSRF_FIELD,
    SESSION_COOKIE,
    Sessions,
    token_matches,
)
from admin.sessions import EVERYWHERE, Ended, session_id
from admin.settings import AdminSettings
from admin.view import NOTICES, page_view, parse_filter, parse_page, query
from paystream.exception_queue.feed import QueueFeed
from paystream.exception_queue.fold import (
    VISIBLE,
    clean_reason,
    dismiss_decision,
    retry_decisions,
)
from paystream.metrics import PaystreamMetrics
from paystream.proxies import client_address, forwarded_https
from paystream.throttle import FailureThrottle

log = structlog.get_logger("paystream.admin")

LOGIN_COOKIE = "paystream_admin_login"
ERROR_TEXT = {
    401: "Please sign in.",
    403: "This request was refused.",
    404: "There is nothing here.",
    405: "There is nothing here.",
    429: "Too many attempts. Wait a minute and try again.",
    500: "Something went wrong. Try again in a moment.",
    503: "Kafka is not reachable right now: nothing was changed. Try again in a moment.",
}


@dataclass
class AdminState:
    settings: AdminSettings
    metrics: PaystreamMetrics
    feed: QueueFeed
    sessions: Sessions
    throttle: FailureThrottle
    writer: QueueWriter | None
    session_feed: SessionFeed


STATE = web.AppKey("admin_state", AdminState)


def error_page(request: web.Request, status: int) -> web.Response:
    """The same short page for every refusal: no detail about why."""
    text = ERROR_TEXT.get(status, ERROR_TEXT[500])
    response = aiohttp_jinja2.render_template(
        "error.html", request, {"status": status, "text": text}, status=status
    )
    if status == 429:
        response.headers["Retry-After"] = "60"
    return response


def _now_s() -> float:
    return time.time()


def over_https(request: web.Request) -> bool:
    """The browser's connection was https (ours, or a trusted proxy's): Secure, HSTS."""
    return forwarded_https(
        request.scheme,
        request.remote,
        request.headers.get("X-Forwarded-Proto"),
        request.app[STATE].settings.trusted_proxies,
    )


def _client(request: web.Request) -> str:
    """Who the sign-in throttle counts a failure against (what a trusted proxy reports)."""
    return client_address(
        request.remote,
        request.headers.get("X-Forwarded-For"),
        request.app[STATE].settings.trusted_proxies,
    )


def _session(request: web.Request) -> str | None:
    """The nonce of the request's session: genuine, not expired, not signed out."""
    state = request.app[STATE]
    found = state.sessions.read(request.cookies.get(SESSION_COOKIE), _now_s())
    if found is None:
        return None
    if not state.session_feed.loaded.is_set():
        raise web.HTTPServiceUnavailable()  # which sessions ended is not known yet
    nonce, issued_ms = found
    return None if state.session_feed.is_ended(nonce, issued_ms) else nonce


def _set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str) -> None:
    state = request.app[STATE]
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="Strict",
        secure=over_https(request),
        path="/",
        max_age=int(state.settings.paystream_admin_session_hours * 3600),
    )


# --------------------------------------------------------------------------- login


async def login_form(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    if "token" in request.query:
        return _link_login(request)
    if _session(request) is not None:
        raise web.HTTPSeeOther("/")
    nonce = secrets.token_urlsafe(18)
    response = aiohttp_jinja2.render_template(
        "login.html",
        request,
        {"csrf": state.sessions.csrf_token("login:" + nonce), "failed": "failed" in request.query},
    )
    _set_cookie(request, response, LOGIN_COOKIE, nonce)
    return response


def _link_login(request: web.Request) -> web.StreamResponse:
    """``/login?token=...``: the one-click sign-in link ``paystream up`` prints, development only.

    A GET that signs in, so: refused (404) outside ``PAYSTREAM_ENV=development``, throttled
    like the form, and only with the admin token itself (a forged cross-site request cannot
    know it); it answers with a redirect, so the token leaves the address bar at once.
    """
    if request.app[STATE].settings.paystream_env != "development":
        raise web.HTTPNotFound()
    redirect = web.HTTPSeeOther("/", headers={"Referrer-Policy": "no-referrer"})
    response = _signed_in(request, request.query.get("token", "")[:500], redirect)
    log.info("login_succeeded", via="link")
    raise response


def _signed_in(request: web.Request, offered: str, response: web.HTTPSeeOther) -> web.HTTPSeeOther:
    """``response`` with a new session cookie when ``offered`` is the admin token; throttled
    per client, a wrong token is counted and sent back to the form."""
    state = request.app[STATE]
    client = _client(request)
    now = time.monotonic()
    if state.throttle.retry_after(client, now):
        log.warning("login_throttled")
        raise web.HTTPTooManyRequests()
    if not token_matches(offered, state.sessions.token):
        state.throttle.failed(client, now)
        log.info("login_failed")
        raise web.HTTPSeeOther("/login?failed=1")
    _set_cookie(request, response, SESSION_COOKIE, state.sessions.issue(_now_s()))
    return response


async def login(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    form = await request.post()
    nonce = request.cookies.get(LOGIN_COOKIE)
    if not nonce or not state.sessions.csrf_ok("login:" + nonce, _field(form, CSRF_FIELD)):
        raise web.HTTPForbidden()
    response = _signed_in(request, _field(form, "token"), web.HTTPSeeOther("/"))
    response.del_cookie(LOGIN_COOKIE, path="/")
    log.info("login_succeeded")
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """Ends this session on every replica (a copied cookie stops working too)."""
    nonce = _checked_form(request, await request.post())
    return await _end(request, session_id(nonce), "signed_out")


async def logout_everywhere(request: web.Request) -> web.StreamResponse:
    """Ends every session issued until now, on every replica."""
    _checked_form(request, await request.post())
    return await _end(request, EVERYWHERE, "signed_out_everywhere")


async def _end(request: web.Request, session: str, event: str) -> web.StreamResponse:
    state = request.app[STATE]
    ended = Ended(session, wall_ms())
    writer = state.writer
    assert writer is not None  # set when the app started
    try:
        await asyncio.get_running_loop().run_in_executor(None, writer.end_session, ended)
    except QueueUnavailable:
        raise web.HTTPServiceUnavailable() from None
    state.session_feed.add([ended])
    log.info(event)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


# --------------------------------------------------------------------------- the queue


def _field(form: Any, name: str, limit: int = 500) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def _checked_form(request: web.Request, form: Any) -> str:
    """The session nonce, after checking the session (401) and the CSRF token (403)."""
    nonce = _session(request)
    if nonce is None:
        raise web.HTTPUnauthorized()
    if not request.app[STATE].sessions.csrf_ok(nonce, _field(form, CSRF_FIELD)):
        log.warning("csrf_refused", path=request.path)
        raise web.HTTPForbidden()
    return nonce


async def queue_page(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    nonce = _session(request)
    if nonce is None:
        raise web.HTTPSeeOther("/login")
    flt = parse_filter(request.query.get("sink"), request.query.get("reason"))
    number = parse_page(request.query.get("page"))
    with state.feed.lock:
        page = state.feed.queue.page(flt, number, state.settings.paystream_admin_page_size)
        total = state.feed.queue.open_count
    notice = NOTICES.get(request.query.get("notice", ""), "")
    return aiohttp_jinja2.render_template(
        "queue.html",
        request,
        {
            "view": page_view(page, flt, total, state.settings.stripe_mode),
            "csrf": state.sessions.csrf_token(nonce),
            "loaded": state.feed.loaded.is_set(),
            "notice": notice,
            "mode": state.settings.stripe_mode,
        },
    )


def _back(form: Any, notice: str) -> web.HTTPSeeOther:
    flt = parse_filter(_field(form, "sink"), _field(form, "reason"))
    return web.HTTPSeeOther("/" + (query(flt, parse_page(_field(form, "page")), notice) or ""))


async def retry(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    _checked_form(request, form)
    state = request.app[STATE]
    with state.feed.lock:
        row = state.feed.queue.row(_field(form, "row_id"))
    rows = [row] if row is not None else []
    return await _retry(request, form, rows, single=True)


async def retry_all(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    _checked_form(request, form)
    state = request.app[STATE]
    flt = parse_filter(_field(form, "sink"), _field(form, "reason"))
    with state.feed.lock:
        rows = list(state.feed.queue.matching(flt))
    return await _retry(request, form, rows, single=False)


async def _retry(
    request: web.Request, form: Any, rows: list[Any], *, single: bool
) -> web.StreamResponse:
    state = request.app[STATE]
    at = wall_ms()
    decisions = retry_decisions(rows, at)
    if not decisions:
        raise _back(form, "gone" if single else "retried_none")
    writer = state.writer
    assert writer is not None  # set when the app started
    loop = asyncio.get_running_loop()
    try:
        resent = await loop.run_in_executor(None, writer.retry, rows, decisions, at)
    except QueueUnavailable:
        raise web.HTTPServiceUnavailable() from None
    by_id = {d.row_id: d for d in decisions}
    with state.feed.lock:
        for row in resent:
            state.feed.queue.add_decision(by_id[row.row_id])
    state.metrics.manual_interventions.labels(action="retry").inc(len(resent))
    log.info("exceptions_retried", count=len(resent))
    raise _back(form, "retried")


async def dismiss(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    _checked_form(request, form)
    state = request.app[STATE]
    reason = clean_reason(_field(form, "dismiss_reason", 1000))
    if not reason:
        raise _back(form, "reason_needed")
    with state.feed.lock:
        row = state.feed.queue.row(_field(form, "row_id"))
    if row is None or row.status not in VISIBLE:
        raise _back(form, "gone")
    at = wall_ms()
    decision = dismiss_decision(row, reason, at)
    writer = state.writer
    assert writer is not None
    try:
        await asyncio.get_running_loop().run_in_executor(None, writer.dismiss, row, decision, at)
    except QueueUnavailable:
        raise web.HTTPServiceUnavailable() from None
    with state.feed.lock:
        state.feed.queue.add_decision(decision)
    state.metrics.manual_interventions.labels(action="dismiss").inc()
    log.info("exception_dismissed", sink=row.sink, reason_code=row.reason_code)
    raise _back(form, "dismissed")


# --------------------------------------------------------------------------- probes


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    loaded = state.feed.loaded.is_set() and state.session_feed.loaded.is_set()
    return web.json_response({"ready": loaded}, status=200 if loaded else 503)


async def metrics_handler(request: web.Request) -> web.Response:
    body = generate_latest(request.app[STATE].metrics.registry)
    response = web.Response(body=body)
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response
