"""Metrics-store client helpers: the DDL, batched idempotent inserts, read-only queries.

One code path for the embedded engine (chdb) and a ClickHouse server, both reached through
clickhouse-connect (``paystream.runtime.store.open_metrics_store``). chdb locks its
directory to one process, so with the embedded store the metrics sink is the only opener;
``paystream status`` then reads through the sink's loopback query endpoint
(``HttpStoreReader``, served by ``sinks.metrics_sink.QueryServer``).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pydantic import Field, SecretStr, field_validator

from paystream.settings import CommonSettings
from sinks.errors import SinkError

#: The DDL shipped in the repository (``deploy/clickhouse``), applied in file-name order.
DEFAULT_DDL_DIR = Path(__file__).resolve().parents[1] / "deploy" / "clickhouse"
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)
_READ_ONLY_START = re.compile(r"^\s*(SELECT|WITH)\b", re.IGNORECASE)
#: what a read query must not do even under readonly: write files or reach other systems
_OUTSIDE_WORLD = re.compile(
    r"\bINTO\s+OUTFILE\b|\b(file|url|s3|s3Cluster|gcs|hdfs|azureBlobStorage|remote|remoteSecure"
    r"|cluster|clusterAllReplicas|mysql|postgresql|mongodb|redis|sqlite|jdbc|odbc|executable"
    r"|deltaLake|iceberg|hudi|urlCluster|fileCluster)\s*\(",
    re.IGNORECASE,
)

#: Tables and their columns in insert order (must match deploy/clickhouse/001_tables.sql).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "webhook_events": (
        "received_at",
        "event_created",
        "event_id",
        "event_type",
        "livemode",
        "api_version",
        "customer_hash",
        "correlation_id",
        "source",
    ),
    "lifecycle_changes": (
        "event_created",
        "received_at",
        "processed_at",
        "changed_at",
        "customer_hash",
        "previous_state",
        "new_state",
        "cause_event_id",
        "cause_event_type",
        "livemode",
        "correlation_id",
    ),
    "sink_attempts": (
        "acked_at",
        "event_created",
        "received_at",
        "processed_at",
        "sink",
        "idempotency_key",
        "outcome",
        "attempts",
        "reason_code",
        "call_latency_ms",
        "customer_hash",
        "cause_event_id",
        "cause_event_type",
        "correlation_id",
    ),
}


class MetricsStoreError(SinkError):
    """Root of the metrics store's errors."""


class MetricsStoreUnavailable(MetricsStoreError):
    """Raised when the store cannot be reached or refused a write; retryable."""


class QueryRejected(MetricsStoreError):
    """Raised when a read-only query is refused or fails; permanent for that query."""


def render_ddl(sql: str, database: str, ttl_days: int) -> list[str]:
    """Substitute the placeholders and split a DDL file into statements."""
    text = sql.replace("${DATABASE}", database).replace("${TTL_DAYS}", str(int(ttl_days)))
    statements = []
    for chunk in _STATEMENT_END.split(text):
        lines = [ln for ln in chunk.splitlines() if not ln.strip().startswith("--")]
        statement = "\n".join(lines).strip()
        if statement:
            statements.append(statement)
    return statements


def load_ddl(database: str, ttl_days: int, ddl_dir: Path = DEFAULT_DDL_DIR) -> list[str]:
    """Every statement of ``ddl_dir/*.sql`` in file-name order, placeholders filled in."""
    files = sorted(ddl_dir.glob("*.sql"))
    if not files:
        raise MetricsStoreUnavailable(f"no DDL files in {ddl_dir}")
    statements: list[str] = []
    for path in files:
        statements += render_ddl(path.read_text(), database, ttl_days)
    return statements


def batch_token(table: str, keys: Sequence[str]) -> str:
    """Deterministic insert_deduplication_token of a batch: same rows, same token."""
    h = hashlib.sha256(table.encode())
    for key in keys:
        h.update(b"\x00" + key.encode())
    return h.hexdigest()


def check_read_only(sql: str) -> str:
    """Accept one SELECT/WITH statement; raise QueryRejected otherwise."""
    stripped = sql.strip().rstrip(";").strip()
    if not _READ_ONLY_START.match(stripped) or ";" in stripped:
        raise QueryRejected("only a single SELECT or WITH query is accepted")
    if _OUTSIDE_WORLD.search(stripped):
        raise QueryRejected("queries may not write files or read other systems")
    return stripped


@dataclass(frozen=True)
class QueryResult:
    """Column names and rows of a read-only query, JSON-friendly."""

    columns: list[str]
    rows: list[list[Any]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class StoreReader(Protocol):
    """What ``paystream status`` needs from the store: read-only queries."""

    def query(self, sql: str) -> QueryResult: ...

    def close(self) -> None: ...


def _jsonable(value: Any) -> Any:
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


class MetricsStore:
    """A clickhouse-connect client made safe to share between threads (one call at a time)."""

    def __init__(self, client: Any, database: str) -> None:
        self._client = client
        self.database = database
        self._lock = threading.Lock()

    def apply_ddl(self, statements: Sequence[str]) -> None:
        with self._lock:
            for statement in statements:
                self._client.command(statement)

    def insert(self, table: str, rows: Sequence[Sequence[Any]], token: str | None = None) -> None:
        """Insert rows into ``database.table``; raise MetricsStoreUnavailable on any failure."""
        if not rows:
            return
        settings = {"insert_deduplication_token": token} if token else {}
        try:
            with self._lock:
                self._client.insert(
                    f"{self.database}.{table}",
                    list(rows),
                    column_names=list(TABLE_COLUMNS[table]),
                    settings=settings,
                )
        except Exception as exc:
            raise MetricsStoreUnavailable(
                f"insert into {table} failed: {type(exc).__name__}"
            ) from None

    def query(self, sql: str) -> QueryResult:
        """Run one read-only query (the store enforces it too: readonly=2)."""
        checked = check_read_only(sql)
        try:
            with self._lock:
                # readonly=2: no writes or DDL, yet the client may still pass its own settings
                result = self._client.query(checked, settings={"readonly": 2})
        except Exception as exc:
            raise QueryRejected(_short_db_error(exc)) from None
        rows = [[_jsonable(v) for v in row] for row in result.result_rows]
        return QueryResult(list(result.column_names), rows)

    def close(self) -> None:
        with self._lock:
            self._client.close()


def _short_db_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = next((ln for ln in text if "DB::Exception" in ln), text[0] if text else "")
    return f"{type(exc).__name__}: {first[:300]}"


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
        request = urllib.request.Request(  # noqa: S310 - loopback URL we wrote ourselves
            self.url,
            data=sql.encode(),
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
        return QueryResult(list(body["columns"]), list(body["rows"]))

    def close(self) -> None:
        return None


class MetricsStoreSettings(CommonSettings):
    """Where the metrics store is: a ClickHouse server, or the embedded engine in the data dir."""

    #: ``http(s)://user:pass@host:8123/db``; unset: the embedded engine (chdb)
    clickhouse_url: SecretStr | None = None
    #: database of the paystream tables; the URL's path wins when it names one
    paystream_metrics_database: str = Field(
        default="paystream", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$"
    )

    @field_validator("clickhouse_url")
    @classmethod
    def _http_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None  # unset or empty: the embedded store
        if not re.fullmatch(r"https?://\S+", value.get_secret_value()):
            raise ValueError("expected http(s)://user:password@host:8123/database")
        return value

    @property
    def embedded_store(self) -> bool:
        return self.clickhouse_url is None

    @property
    def store_database(self) -> str:
        if self.clickhouse_url is not None:
            path = urllib.parse.urlsplit(self.clickhouse_url.get_secret_value()).path.strip("/")
            if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", path):
                return path
        return self.paystream_metrics_database

    @property
    def embedded_store_dir(self) -> Path:
        return Path(self.paystream_data_dir) / "clickhouse"

    @property
    def query_endpoint_file(self) -> Path:
        """Where the metrics sink publishes its loopback query endpoint (embedded store only)."""
        return Path(self.paystream_data_dir) / "metrics-query.json"
