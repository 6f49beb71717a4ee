"""What a page shows, as plain data: rows for the template, query strings, notices."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from paystream.exception_queue.fold import Filter, Page, Row, stripe_customer_url

#: notices a redirect may ask the page to show (fixed texts: nothing is reflected)
NOTICES = {
    "retried": "Sent again. The row shows retrying until the sink reports back.",
    "retried_none": "Nothing to retry: no open row matched.",
    "dismissed": "Dismissed.",
    "gone": "That row is no longer open (someone else may have handled it).",
    "reason_needed": "Say in a few words why the row is dismissed.",
}


@dataclass(frozen=True)
class RowView:
    row_id: str
    status: str
    when_iso: str
    when_utc: str
    reason_code: str
    sink: str
    customer_id: str
    customer_url: str | None
    event_id: str
    event_type: str
    attempts: int
    last_error: str
    retryable: bool


def utc_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def utc_text(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def row_view(row: Row, mode: str) -> RowView:
    dead = row.dead_letter
    return RowView(
        row_id=row.row_id,
        status=row.status,
        when_iso=utc_iso(dead.failed_at_ms),
        when_utc=utc_text(dead.failed_at_ms),
        reason_code=dead.reason_code,
        sink=dead.sink,
        customer_id=dead.customer_id,
        customer_url=stripe_customer_url(dead.customer_id, mode),
        event_id=dead.cause_event_id,
        event_type=dead.cause_event_type,
        attempts=row.attempts,
        last_error=dead.last_error,
        retryable=row.retryable,
    )


def parse_filter(sink: str | None, reason: str | None) -> Filter:
    """A filter from the query string; anything odd is ignored (no such rows then)."""
    return Filter((sink or "")[:64], (reason or "")[:64])


def parse_page(value: str | None) -> int:
    try:
        return max(1, min(1_000_000, int(value or "1")))
    except ValueError:
        return 1


def query(flt: Filter, page: int = 1, notice: str = "") -> str:
    """The page's query string (empty values left out)."""
    params = {"sink": flt.sink, "reason": flt.reason}
    if page > 1:
        params["page"] = str(page)
    if notice:
        params["notice"] = notice
    text = urlencode({k: v for k, v in params.items() if v})
    return "?" + text if text else ""


@dataclass(frozen=True)
class PageView:
    rows: list[RowView]
    page: Page
    flt: Filter
    open_total: int
    prev_query: str | None
    next_query: str | None
    self_query: str


def page_view(page: Page, flt: Filter, open_total: int, mode: str) -> PageView:
    return PageView(
        rows=[row_view(r, mode) for r in page.rows],
        page=page,
        flt=flt,
        open_total=open_total,
        prev_query=query(flt, page.number - 1) or "?" if page.number > 1 else None,
        next_query=query(flt, page.number + 1) if page.number < page.pages else None,
        self_query=query(flt, page.number),
    )
