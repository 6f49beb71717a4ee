"""The metrics store: a ClickHouse server at CLICKHOUSE_URL, else the embedded engine (chdb).

Both are reached through clickhouse-connect, so one code path and one DDL serve both. The
DDL ships inside the package (``paystream/runtime/clickhouse/*.sql``), so an installed wheel
finds it. chdb locks its directory to one process: only the process that owns the embedded
store (the metrics sink) opens it; ``paystream status`` then reads through that process's
loopback query endpoint (``paystream.runtime.store_endpoint``).

Reads are read-only because ClickHouse says so, not because a pattern matched: every
``MetricsStore.query`` runs with ``readonly=1`` (no writes, no DDL, no settings changes, no
table functions such as ``file()`` or ``url()``), as a subquery, so ClickHouse's parser
itself accepts only one SELECT/WITH query (no ``INTO OUTFILE``, which the embedded engine
would execute as a local file export). On a server, give readers a user with ``SELECT``
grants only (``docs/metrics.md``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import threading
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from pydantic import BaseModel, Field, SecretStr, field_validator

from paystream.errors import PaystreamError
from paystream.settings import CommonSettings

#: The DDL shipped with the package, applied in file-name order.
DDL_DIR = Path(__file__).resolve().parent / "clickhouse"
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)

#: Tables and their columns in insert order (checked against clickhouse/001_tables.sql).
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
        "delivery",
    ),
}


class MetricsStoreError(PaystreamError):
    """Root of the metrics store's errors."""


class MetricsStoreUnavailable(MetricsStoreError):
    """Raised when the store cannot be reached or refused a write; retryable."""


class QueryRejected(MetricsStoreError):
    """Raised when a read-only query is refused or fails; permanent for that query."""


class EmbeddedStoreOwned(MetricsStoreError):
    """Raised when another process already owns the embedded store's directory."""


#: the file whose lock marks the embedded store's owner (beside chdb's own files)
OWNER_FILE = ".paystream-owner"


def claim_embedded_store(directory: Path) -> IO[str]:
    """Become the one process that owns the embedded store in ``directory``.

    The embedded engine belongs to one process (chdb keeps its directory to itself, and a
    second owner would only retry to open it, forever): a second ``paystream sinks`` with
    the metrics sink on the same data directory is refused here, with one line. The lock is
    a POSIX record lock (``fcntl.lockf``), held while the returned file stays open and
    released by the kernel when the process ends, however it ends; the file says which
    process holds it. Hand-written because the lock must be this one, non-blocking, with
    the holder named: no library's lock does that.
    """
    directory.mkdir(parents=True, exist_ok=True)
    handle = (directory / OWNER_FILE).open("a+")
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise EmbeddedStoreOwned(
            f"invalid setting PAYSTREAM_DATA_DIR: the embedded metrics store in {directory} "
            f"belongs to pid {holder}: run one metrics sink per data directory (`paystream "
            "sinks crm helpdesk` for the others), or set CLICKHOUSE_URL for any number"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


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


def load_ddl(database: str, ttl_days: int, ddl_dir: Path = DDL_DIR) -> list[str]:
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


def as_subquery(sql: str) -> str:
    """``sql`` as the subquery of ``SELECT *``: ClickHouse parses only a SELECT/WITH there.

    The line breaks keep a trailing ``--`` comment from swallowing the closing parenthesis.
    """
    return "SELECT * FROM (\n" + sql.strip().removesuffix(";") + "\n)"  # noqa: S608 - readonly=1


#: per-query settings of every read: ClickHouse refuses writes, DDL and setting changes
READ_ONLY = {"readonly": 1}


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
        """Run one read-only query; ClickHouse refuses anything else (see the module doc)."""
        try:
            with self._lock:
                result = self._client.query(as_subquery(sql), settings=READ_ONLY)
        except Exception as exc:
            raise QueryRejected(_short_db_error(exc)) from None
        rows = [[_jsonable(v) for v in row] for row in result.result_rows]
        return QueryResult(list(result.column_names), rows)

    def erase_customer(self, customer_hash: str) -> dict[str, int]:
        """Delete every row of one customer (by its keyed hash) from every table, waiting
        for the deletion to be done; the rows each table had. ``paystream forget`` runs it
        (through the metrics sink's endpoint when the store is embedded)."""
        if not CUSTOMER_HASH.fullmatch(customer_hash):
            raise QueryRejected("a customer hash is 32 lowercase hex characters")
        erased: dict[str, int] = {}
        where = "customer_hash = {h:String}"
        try:
            with self._lock:
                for table in TABLE_COLUMNS:
                    name = f"{self.database}.{table}"
                    found = self._client.query(
                        f"SELECT count() FROM {name} WHERE {where}",  # noqa: S608 - fixed names
                        parameters={"h": customer_hash},
                    ).result_rows[0][0]
                    if found:
                        self._client.command(
                            f"ALTER TABLE {name} DELETE WHERE {where}",
                            parameters={"h": customer_hash},
                            settings={"mutations_sync": 2},
                        )
                    erased[table] = int(found)
        except Exception as exc:
            raise MetricsStoreUnavailable(f"erase failed: {type(exc).__name__}") from None
        return erased

    def close(self) -> None:
        with self._lock:
            self._client.close()


#: what ``paystream.hashing.customer_hash`` gives
CUSTOMER_HASH = re.compile(r"[0-9a-f]{32}")


def _short_db_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = next((ln for ln in text if "DB::Exception" in ln), text[0] if text else "")
    return f"{type(exc).__name__}: {first[:300]}"


class StoreUrl(BaseModel):
    #: ``http(s)://user:pass@host:8123/db``; unset: the embedded engine (chdb)
    clickhouse_url: SecretStr | None = None


class MetricsStoreSettings(CommonSettings, StoreUrl):
    """Where the metrics store is: a ClickHouse server, or the embedded engine in the data dir."""

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


def open_metrics_store(clickhouse_url: str | None, embedded_dir: Path) -> Any:
    """Return a clickhouse-connect client for the server URL or the embedded directory."""
    import clickhouse_connect  # heavy: only where a store is really opened

    if clickhouse_url:
        return clickhouse_connect.get_client(dsn=clickhouse_url)
    embedded_dir.mkdir(parents=True, exist_ok=True)
    return clickhouse_connect.get_client(dsn=f"chdb://{embedded_dir.resolve()}")


def open_store(settings: MetricsStoreSettings) -> MetricsStore:
    """The store the settings name: a ClickHouse server at CLICKHOUSE_URL, else chdb."""
    url = settings.clickhouse_url.get_secret_value() if settings.clickhouse_url else None
    client = open_metrics_store(url, settings.embedded_store_dir)
    return MetricsStore(client, settings.store_database)
