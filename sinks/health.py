"""The sinks process's HTTP listener: ``/metrics``, ``/healthz`` and ``/readyz`` on one port.

``/healthz`` answers 200 while the process serves at all (liveness); ``/readyz`` answers 200
while every sink thread runs and no stop was asked (readiness), 503 otherwise. The answer is a
pure function of the path and that state (:func:`answer`); the server is a thin shell.

Hand-written on the standard library's ``http.server`` because prometheus_client's
``start_http_server`` serves its registry and nothing else, and the sinks process runs
threads, not an event loop an aiohttp app could share; ``generate_latest`` still renders
the metrics.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

TEXT = "text/plain; charset=utf-8"


class SinkHealth:
    """Readiness of the sink threads: ready once all started, not ready once any ended."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._stop: threading.Event | None = None

    def watch(self, threads: list[threading.Thread], stop: threading.Event) -> None:
        self._threads = list(threads)
        self._stop = stop

    def ready(self) -> bool:
        return (
            bool(self._threads)
            and self._stop is not None
            and not self._stop.is_set()
            and all(t.is_alive() for t in self._threads)
        )


def answer(path: str, ready: bool, metrics: Callable[[], bytes]) -> tuple[int, str, bytes]:
    """(status, content type, body) for a GET of ``path`` (pure but for the metrics callable)."""
    route = path.split("?", 1)[0]
    if route == "/metrics":
        return 200, CONTENT_TYPE_LATEST, metrics()
    if route == "/healthz":
        return 200, TEXT, b"ok\n"
    if route == "/readyz":
        return (200, TEXT, b"ready\n") if ready else (503, TEXT, b"not ready\n")
    return 404, TEXT, b"not found\n"


def serve(
    host: str, port: int, registry: CollectorRegistry, health: SinkHealth
) -> ThreadingHTTPServer:
    """Start the listener in a daemon thread and return the server."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, ctype, body = answer(
                self.path, health.ready(), lambda: generate_latest(registry)
            )
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # no access log: probes every few seconds would drown the JSON log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="sinks-http", daemon=True).start()
    return server
