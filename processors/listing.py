"""One page of the customers a worker holds (``GET /customers``), as plain data (pure).

``paystream crm-repair`` reads every canonical record this way and compares it with the
CRM. A worker answers for its own partitions only, and says which they are, so the reader
knows when it has asked every worker. Pages are in customer id order, continued with
``after`` (the last id of the previous page); a record the worker processed but has not yet
written to its table (the writer's overlay) is listed with its newest value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from processors.lifecycle import CustomerRecord

DEFAULT_LIMIT = 200
MAX_LIMIT = 1000
#: a customer id as it may appear in a cursor (Stripe ids are short and ASCII)
MAX_CURSOR = 255


@dataclass(frozen=True)
class ListingQuery:
    after: str
    limit: int


def listing_query(query: Mapping[str, str]) -> ListingQuery | None:
    """``?after=&limit=`` read and checked; None when either is not acceptable."""
    after = query.get("after", "")
    raw_limit = query.get("limit", str(DEFAULT_LIMIT))
    if len(after) > MAX_CURSOR or not after.isprintable():
        return None
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        return None
    return ListingQuery(after, int(raw_limit))


def customer_page(
    stored: Iterable[bytes],
    read: Callable[[bytes], bytes | None],
    overlay: Mapping[str, CustomerRecord],
    wanted: ListingQuery,
    partitions: Iterable[int],
) -> dict[str, Any]:
    """The page after ``wanted.after``: public records, the worker's partitions, the cursor.

    ``stored``: the table's keys; ``read``: a key's value (only the page's are read)."""
    later = sorted(i for i in {k.decode() for k in stored} | set(overlay) if i > wanted.after)
    page = later[: wanted.limit]
    records = []
    for customer in page:
        raw = read(customer.encode()) if customer not in overlay else None
        record = overlay.get(customer) or (CustomerRecord.from_json(raw) if raw else None)
        if record is not None:  # gone between the listing and the read (a rebalance)
            records.append(record.public())
    more = len(later) > wanted.limit
    return {
        "customers": records,
        "partitions": sorted(set(partitions)),
        "next_after": page[-1] if more and page else None,
    }
