"""Shared machinery of the HubSpot and Zendesk stand-ins: an aiohttp server that records
every API request, answers injected faults, and runs in a thread or as a process.

Control endpoints (for tests driving a stand-in in another process):
  GET  /__standin/requests   every API request received, oldest first (``?since=N``: from
                             the N-th on, so a poller reads only what is new)
  POST /__standin/faults     {"status": 429, "count": 3, "retry_after": 1, "delay_s": 0,
                              "path": "/api/v2/tickets"} answer the next matching requests so
                              (status null: answer normally, after delay_s; "drop": true:
                              do the work, then close the connection without an answer —
                              the write happened, the answer is lost; "for_s": 30: every
                              matching request for 30 s, an outage)
  POST /__standin/advance    {"seconds": 7200} move the stand-in's clock (key expiry, days)
  POST /__standin/reset      forget requests, faults and stored objects
  GET  /__standin/state      the stand-in's stored objects (contacts, tickets...)
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Self

from aiohttp import web

from paystream.runtime.broker import free_port

Handler = Callable[[web.Request, Any], Awaitable[web.Response]]


@dataclass
class Fault:
    """Answer the next ``count`` matching requests with ``status`` (None: normally)."""

    status: int | None = 503
    count: int = 1
    retry_after: str | None = None
    delay_s: float = 0.0
    path: str = ""
    body: Any = None
    #: handle the request normally, then drop the connection before answering
    drop: bool = False
    headers: dict[str, str] | None = None
    #: set: answer every matching request so for this many seconds (``count`` is ignored)
    for_s: float | None = None
    until: float = 0.0


@dataclass
class Recorded:
    """One API request as the stand-in saw it (the Authorization header is not kept)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0
    at: float = field(default_factory=time.time)
    #: the client's TCP port: one value per connection, so keep-alive reuse is visible
    connection: int = 0


class Standin:
    """Base stand-in; subclasses add routes with ``self.route(method, path, handler)``."""

    error_bodies: dict[int, Any] = {}

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._requests: list[Recorded] = []
        self._faults: deque[Fault] = deque()
        self._routes: list[tuple[str, str, Handler]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        #: listen address: loopback unless told otherwise (``start(host=...)``, ``--host``)
        self.host = "127.0.0.1"
        #: seconds added to the wall clock (tests move time: key expiry, daily resets)
        self.clock_offset_s = 0.0

    def now_s(self) -> float:
        """The stand-in's clock: the wall clock plus whatever the test advanced it by."""
        return time.time() + self.clock_offset_s

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.clock_offset_s += seconds

    @property
    def connections(self) -> set[int]:
        """Distinct client connections that sent API requests."""
        return {r.connection for r in self.requests}

    # ------------------------------------------------------------------ test API
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[Recorded]:
        with self.lock:
            return list(self._requests)

    def requests_to(self, path_part: str) -> list[Recorded]:
        return [r for r in self.requests if path_part in r.path]

    def inject(self, fault: Fault) -> None:
        if fault.for_s is not None:
            fault.until = time.monotonic() + fault.for_s
        with self.lock:
            self._faults.append(fault)

    def fail_next(
        self,
        status: int | None,
        count: int = 1,
        *,
        retry_after: str | None = None,
        delay_s: float = 0.0,
        path: str = "",
    ) -> None:
        self.inject(Fault(status, count, retry_after, delay_s, path))

    def drop_answers(self, path: str, count: int = 1) -> None:
        """Do the next ``count`` matching requests, then drop the connection unanswered."""
        self.inject(Fault(None, count, path=path, drop=True))

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    def reset(self) -> None:
        with self.lock:
            self._requests.clear()
            self._faults.clear()
            self.reset_state()

    def reset_state(self) -> None:
        """Forget stored objects (subclasses)."""

    def state(self) -> Any:
        """Stored objects as JSON-able data (subclasses)."""
        return {}

    # ------------------------------------------------------------------ plumbing
    def route(self, method: str, path: str, handler: Handler) -> None:
        self._routes.append((method, path, handler))

    def authorized(self, request: web.Request) -> bool:
        return True

    def unauthorized(self) -> web.Response:
        return web.json_response({"error": "unauthorized"}, status=401)

    def fault_response(self, fault: Fault) -> web.Response:
        body = fault.body if fault.body is not None else self.error_bodies.get(fault.status or 0)
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        headers.update(fault.headers or {})
        return web.json_response(
            body if body is not None else {"error": f"injected {fault.status}"},
            status=fault.status or 500,
            headers=headers,
        )

    def _take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in list(self._faults):
                if fault.for_s is not None and time.monotonic() >= fault.until:
                    self._faults.remove(fault)  # an outage that is over
                    continue
                if fault.path in path:
                    if fault.for_s is not None:
                        return fault
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _wrap(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            raw = await request.read()
            try:
                body: Any = await request.json() if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            if raw and request.content_type == "application/x-www-form-urlencoded":
                body = dict((await request.post()).items())  # Stripe's API encoding
            headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
            peer = request.transport.get_extra_info("peername") if request.transport else None
            record = Recorded(request.method, request.path_qs, headers, body)
            record.connection = int(peer[1]) if peer else 0
            with self.lock:
                self._requests.append(record)
            fault = self._take_fault(request.path)
            if fault is not None and fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault is not None and fault.status is not None:
                response = self.fault_response(fault)
            elif not self.authorized(request):
                response = self.unauthorized()
            elif isinstance(body, str):
                response = self.bad_json()
            else:
                with self.lock:
                    response = await handler(request, body)
            record.status = response.status
            if fault is not None and fault.drop and request.transport is not None:
                record.status = 0  # the work is done; the client never hears of it
                request.transport.close()
            return response

        return handle

    def bad_json(self) -> web.Response:
        return web.json_response({"error": "invalid JSON body"}, status=400)

    async def _get_requests(self, request: web.Request) -> web.Response:
        since = request.query.get("since", "0")
        if not since.isdigit():
            return web.json_response({"error": "since must be a whole number"}, status=400)
        with self.lock:
            recorded = self._requests[int(since) :]
        return web.json_response([asdict(r) for r in recorded])

    async def _post_faults(self, request: web.Request) -> web.Response:
        spec = await request.json()
        for item in spec if isinstance(spec, list) else [spec]:
            self.inject(Fault(**item))
        return web.json_response({"ok": True})

    async def _post_advance(self, request: web.Request) -> web.Response:
        spec = await request.json()
        self.advance(float(spec.get("seconds", 0)))
        return web.json_response({"ok": True, "offset_s": self.clock_offset_s})

    async def _post_reset(self, _request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})

    async def _get_state(self, _request: web.Request) -> web.Response:
        with self.lock:
            return web.json_response(self.state())

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/__standin/requests", self._get_requests)
        app.router.add_post("/__standin/faults", self._post_faults)
        app.router.add_post("/__standin/reset", self._post_reset)
        app.router.add_post("/__standin/advance", self._post_advance)
        app.router.add_get("/__standin/state", self._get_state)
        for method, path, handler in self._routes:
            app.router.add_route(method, path, self._wrap(handler))
        return app

    # ------------------------------------------------------------------ in a thread
    def start(self, port: int | None = None, host: str = "127.0.0.1") -> str:
        """Serve on ``host`` (loopback by default; a free port by default) from a thread."""
        self.port = port or free_port()
        self.host = host
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                runner = web.AppRunner(self.make_app(), access_log=None)
                loop.run_until_complete(runner.setup())
                loop.run_until_complete(web.TCPSite(runner, self.host, self.port).start())
                self._runner = runner
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name=type(self).__name__, daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]
        return self.url

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def serve_forever(standin: Standin, port: int, host: str = "127.0.0.1") -> None:
    """Run a stand-in in the foreground (``python -m devstack.<name> --port N``)."""
    print(f"{type(standin).__name__} listening on http://{host}:{port}", flush=True)
    web.run_app(standin.make_app(), host=host, port=port, print=None, access_log=None)
