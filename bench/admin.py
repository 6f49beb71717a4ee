"""Exception-queue paging: a page with 10,000 open rows vs with 100, measured in one run.

    .venv/bin/python bench/admin.py

Fills the admin's queue (the same fold the service uses) with N dead letters, then serves
pages the way a request does: ``ExceptionQueue.page`` (filter, newest first, slice),
``page_view`` and the real ``queue.html`` template. Prints µs per page for 100 and
10,000 open rows, unfiltered and filtered, and the ratio (≈ 1 means paging does not grow
with the queue; the sort happens once per change, not per request).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jinja2

from admin.view import page_view
from paystream.exception_queue.fold import DeadLetter, ExceptionQueue, Filter

PAGES = 300


def filled(n: int) -> ExceptionQueue:
    queue = ExceptionQueue()
    for i in range(n):
        key = f"crm:cus_{i:06d}:evt_{i}"
        queue.add_dead_letter(
            DeadLetter(
                row_id=key,
                sink="crm" if i % 4 else "helpdesk",
                idempotency_key=key,
                reason_code=("bad_request", "unavailable", "rate_limited")[i % 3],
                last_error="HubSpot batch upsert answered 400: invalid input",
                attempts=1 + i % 6,
                failed_at_ms=1_700_000_000_000 + i * 1000,
                customer_id=f"cus_{i:06d}",
                cause_event_id=f"evt_{i}",
                cause_event_type="invoice.paid",
                source_topic="paystream.test.sink.crm",
                command=b"\xc3\x01",
            )
        )
    return queue


def per_page_us(
    queue: ExceptionQueue, template: jinja2.Template | None, flt: Filter
) -> tuple[float, int]:
    """Median µs per page request (and rows on a page); without a template: the core only."""
    queue.page(flt, 1, 50)  # the first request after a change builds the sorted view
    pages = max(1, queue.page(flt, 1, 50).pages)
    samples = []
    shown = 0
    for round_ in range(5):
        started = time.perf_counter()
        for i in range(PAGES):
            page = queue.page(flt, 1 + (i + round_) % pages, 50)
            view = page_view(page, flt, queue.open_count, "test")
            shown = len(view.rows)
            if template is not None:
                template.render(view=view, csrf="x", loaded=True, notice="", mode="test")
        samples.append((time.perf_counter() - started) / PAGES * 1e6)
    return statistics.median(samples), shown


def main() -> None:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("admin", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    template = env.get_template("queue.html")
    results = {}
    for n in (100, 10_000):
        queue = filled(n)
        for name, flt in (("all", Filter()), ("filtered", Filter("crm", "unavailable"))):
            core, shown = per_page_us(queue, None, flt)
            full, _ = per_page_us(queue, template, flt)
            results[(n, name)] = (core, full)
            print(
                f"{n:>6} open rows, {name:<8} ({shown:>2} on the page): "
                f"core {core:6.0f} µs, with the HTML {full:6.0f} µs per page"
            )
    for name in ("all", "filtered"):
        core = results[(10_000, name)][0] / results[(100, name)][0]
        print(f"core ratio 10,000 / 100 rows ({name}): {core:.2f}")


if __name__ == "__main__":
    main()
