"""The admin application factory: routes, typed app state, the queue feed's life."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources

import aiohttp_jinja2
import jinja2
import structlog
from aiohttp import web

from admin import handlers
from admin.kafka import QueueWriter, SessionFeed, wall_ms
from admin.security import Sessions, login_throttle
from admin.settings import AdminSettings
from paystream.exception_queue.feed import QueueFeed
from paystream.exception_queue.fold import ExceptionQueue, Row
from paystream.metrics import PaystreamMetrics

log = structlog.get_logger("paystream.admin")

#: Every HTML answer: scripts and styles from this origin only, no framing, no referrer.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
#: a year, the usual minimum for preload lists; no includeSubDomains (other hosts are not ours)
HSTS = "max-age=31536000"


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status in (401, 403, 404, 405, 429) or exc.status >= 500:
            response = handlers.error_page(request, exc.status)
        else:  # a redirect: aiohttp answers it as it is
            if handlers.over_https(request):
                exc.headers.setdefault("Strict-Transport-Security", HSTS)
            raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # one line in the log, nothing in the page
        log.error("request_failed", error=type(exc).__name__, path=request.path)
        response = handlers.error_page(request, 500)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if handlers.over_https(request):  # a browser ignores it over http: sent over https only
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def create_app(
    settings: AdminSettings,
    *,
    feed: QueueFeed | None = None,
    writer: QueueWriter | None = None,
) -> web.Application:
    """Build the admin view; the feed starts with the app and stops with it."""
    app = web.Application(middlewares=[security_headers], client_max_size=64 * 1024)
    metrics = PaystreamMetrics()
    writer_ = writer
    holder: dict[str, QueueWriter] = {}

    def on_resolved(rows: list[Row]) -> None:
        if "writer" in holder:
            holder["writer"].record_resolved(rows, wall_ms())

    feed_ = feed or QueueFeed(settings, ExceptionQueue(), on_resolved=on_resolved)
    metrics.exceptions_open.set_function(feed_.open_count)
    token = settings.paystream_admin_token.get_secret_value()
    max_age_s = int(settings.paystream_admin_session_hours * 3600)
    app[handlers.STATE] = handlers.AdminState(
        settings=settings,
        metrics=metrics,
        feed=feed_,
        sessions=Sessions(token, max_age_s),
        throttle=login_throttle(settings.paystream_admin_login_attempts_per_minute),
        writer=writer_,
        session_feed=SessionFeed(settings, max_age_s * 1000),
    )

    async def run_feed(app: web.Application) -> AsyncIterator[None]:
        state = app[handlers.STATE]
        if state.writer is None:
            state.writer = QueueWriter(settings)
        holder["writer"] = state.writer
        if state.feed.on_resolved is None:
            state.feed.on_resolved = on_resolved
        state.feed.start()
        state.session_feed.start()
        yield
        state.session_feed.stop()
        state.feed.stop()
        await asyncio.get_running_loop().run_in_executor(None, state.writer.close)

    app.cleanup_ctx.append(run_feed)
    _pages_and_routes(app)
    return app


def _pages_and_routes(app: web.Application) -> None:
    """The templates, the static files and every route of the admin view."""
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("admin", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )
    static = resources.files("admin") / "static"
    app.router.add_get("/login", handlers.login_form)
    app.router.add_post("/login", handlers.login)
    app.router.add_post("/logout", handlers.logout)
    app.router.add_post("/logout-everywhere", handlers.logout_everywhere)
    app.router.add_get("/", handlers.queue_page)
    app.router.add_post("/retry", handlers.retry)
    app.router.add_post("/retry-all", handlers.retry_all)
    app.router.add_post("/dismiss", handlers.dismiss)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/metrics", handlers.metrics_handler)
    app.router.add_static("/static/", str(static), show_index=False, follow_symlinks=False)
