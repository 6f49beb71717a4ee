"""The embedded store's read path (and its one erase): a loopback endpoint and its client.

chdb locks its directory to one process, so with the embedded store the metrics sink
serves ``POST /query`` on loopback (``QueryServer``) and publishes its address and a
random bearer token in ``PAYSTREAM_DATA_DIR/metrics-query.json`` (owner-readable only);
``paystream status`` reads through it (``HttpStoreReader``). The token is compared in
constant time; each query runs through ``MetricsStore.query``, where ClickHouse itself
refuses anything but one read (``readonly=1``). The one write is ``POST /erase`` with a
customer hash (``paystream forget``): ``MetricsStore.erase_customer`` deletes that
customer's rows, a fixed statement whose only input is the hash.

Standard library ``http.server`` on purpose: one loopback route in a worker thread of a
process that has no event loop; aiohttp would add a loop thread for nothing.
"""

from __future__ import annotations

import json
import secrets
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import structlog

from paystream.bearer import bearer_matches
from paystream.runtime.store import (
    MetricsStore,
    MetricsStoreUnavailable,
    QueryRejected,
    QueryResult,
)

log = structlog.get_logger("paystream.store")

#: the largest query text the endpoint reads
MAX_QUERY_BYTES = 64 * 1024


class _OneLineErrorServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that logs a failed request in one line, never a stack trace."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("query_endpoint_error")


class QueryServer:
    """Loopback HTTP endpoint: ``POST /query`` (bearer token) runs one read-only query."""

    def __init__(self, store: MetricsStore, port: int = 0) -> None:
        self.token = secrets.token_urlsafe(24)
        token = self.token

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path not in ("/query", "/erase"):
                    return self._send(404, {"error": "not_found"})
                if not bearer_matches(self.headers.get("Authorization"), token):
                    return self._send(401, {"error": "unauthorized"})
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_QUERY_BYTES:
                    return self._send(413, {"error": "too_large"})
                text = self.rfile.read(length).decode(errors="replace")
                try:
                    if self.path == "/erase":
                        return self._send(200, {"erased": store.erase_customer(text.strip())})
                    result = store.query(text)
                except QueryRejected as exc:
                    return self._send(400, {"error": "query_rejected", "detail": str(exc)})
                except MetricsStoreUnavailable as exc:
                    return self._send(503, {"error": "unavailable", "detail": str(exc)})
                return self._send(200, {"columns": result.columns, "rows": result.rows})

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = _OneLineErrorServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-query", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/query"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def write_endpoint_file(path: Path, url: str, token: str) -> None:
    """Publish the loopback query endpoint for ``paystream status`` (owner-readable only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "token": token}))
    tmp.chmod(0o600)
    tmp.replace(path)


def read_endpoint_file(path: Path) -> tuple[str, str]:
    """``(url, token)`` of a running metrics sink; MetricsStoreUnavailable when absent."""
    try:
        data = json.loads(path.read_text())
        return str(data["url"]), str(data["token"])
    except (OSError, ValueError, KeyError):
        raise MetricsStoreUnavailable(
            f"no running metrics sink owns the embedded store ({path} not found): "
            "start `paystream sinks metrics` or set CLICKHOUSE_URL"
        ) from None


class HttpStoreReader:
    """Reads the embedded store through the metrics sink's loopback query endpoint."""

    def __init__(self, url: str, token: str, timeout: float = 10.0) -> None:
        self.url = url
        self._token = token
        self._timeout = timeout

    def query(self, sql: str) -> QueryResult:
        body = self._post(self.url, sql)
        return QueryResult(list(body["columns"]), list(body["rows"]))

    def erase_customer(self, customer_hash: str) -> dict[str, int]:
        """``MetricsStore.erase_customer`` in the process that owns the store."""
        url = self.url.removesuffix("/query") + "/erase"
        return {str(k): int(v) for k, v in self._post(url, customer_hash)["erased"].items()}

    def _post(self, url: str, text: str) -> Any:
        request = urllib.request.Request(  # noqa: S310 - loopback URL we wrote ourselves
            url,
            data=text.encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "text/plain"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise QueryRejected(f"query endpoint answered {exc.code}: {detail}") from None
        except (OSError, ValueError) as exc:
            raise MetricsStoreUnavailable(
                f"metrics sink query endpoint unreachable ({type(exc).__name__})"
            ) from None
        return body

    def close(self) -> None:
        return None
