"""The metrics store: a ClickHouse server at CLICKHOUSE_URL, else the embedded engine (chdb).

Both are reached through clickhouse-connect, so one code path and one DDL serve both.
chdb locks its directory to one process: only the process that owns the embedded store
(the metrics sink) opens it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import clickhouse_connect


def open_metrics_store(clickhouse_url: str | None, embedded_dir: Path) -> Any:
    """Return a clickhouse-connect client for the server URL or the embedded directory."""
    if clickhouse_url:
        return clickhouse_connect.get_client(dsn=clickhouse_url)
    embedded_dir.mkdir(parents=True, exist_ok=True)
    return clickhouse_connect.get_client(dsn=f"chdb://{embedded_dir.resolve()}")
