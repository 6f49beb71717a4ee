"""The exception queue as plain data: folding three topics into rows, filtering, paging.

Inputs, in any order and any number of times (Kafka delivers at least once, and the three
topics are read side by side with no order between them):

- a dead letter from ``sink.dlq`` (a command that failed for good, with its attempts);
- a sink result from ``sink.results`` (only ``delivered`` / ``dry_run`` matter here);
- a decision from ``admin.exceptions`` (``retrying``, ``dismissed``, ``resolved``), or
  an erasure marker there (``erased``, written by ``paystream forget``: the dead letter at
  one place of ``sink.dlq`` is a forgotten customer's, so it makes no row; see
  ``paystream.erasure``). A marker drops the row whose latest dead letter it names, with
  the row's earlier dead letters (``forget`` marks every one of a customer's).

The fold keeps maxima only (latest dead letter, latest delivery, latest decision), so it
is commutative and idempotent: any permutation or repetition of the same inputs gives
the same queue (a hypothesis property checks it). A decision is about one dead letter
(``failed_at_ms``): when the command dead-letters again, the old decision no longer
applies and the row is open again with the new error and the attempts added up.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from paystream.erasure import dead_letter_row_id, marker_position
from paystream.vocabulary import DELIVERED, DELIVERY_FIRST, DRY_RUN, ERASED, customer_dashboard_url

OPEN = "open"
RETRYING = "retrying"
DISMISSED = "dismissed"
RESOLVED = "resolved"
#: statuses shown on the page (and counted by ``paystream_exceptions_open``)
VISIBLE = frozenset({OPEN, RETRYING})
DECISIONS = frozenset({RETRYING, DISMISSED, RESOLVED})
#: sink outcomes that mean the command reached the API (or would have, in dry-run)
DELIVERED_OUTCOMES = frozenset({DELIVERED, DRY_RUN})
#: outcomes the admin writes to ``sink.results`` for the metrics store
RETRIED_OUTCOME = "retried"
DISMISSED_OUTCOME = "dismissed"

DISMISS_REASON_MAX = 200
_CUSTOMER_ID = re.compile(r"cus_[A-Za-z0-9]{1,64}")


@dataclass(frozen=True)
class DeadLetter:
    """One ``sink.dlq`` record, as the queue needs it."""

    row_id: str
    sink: str
    idempotency_key: str
    reason_code: str
    last_error: str
    attempts: int
    failed_at_ms: int
    customer_id: str
    cause_event_id: str
    cause_event_type: str
    source_topic: str
    command: bytes = field(repr=False)
    #: ``(partition, offset)`` in ``sink.dlq`` (what an erasure marker names)
    position: tuple[int, int] = (-1, -1)


@dataclass(frozen=True)
class Decision:
    """One ``admin.exceptions`` record."""

    row_id: str
    sink: str
    status: str
    failed_at_ms: int
    at_ms: int
    note: str = ""


@dataclass(frozen=True)
class Row:
    """One line of the page."""

    row_id: str
    status: str
    dead_letter: DeadLetter
    #: attempts of every distinct dead letter of this command, added up
    attempts: int
    decided_at_ms: int | None
    note: str
    #: the status of the decision that applies to the latest dead letter, if any
    decision_status: str | None = None

    @property
    def sink(self) -> str:
        return self.dead_letter.sink

    @property
    def reason_code(self) -> str:
        return self.dead_letter.reason_code

    @property
    def failed_at_ms(self) -> int:
        return self.dead_letter.failed_at_ms

    @property
    def retryable(self) -> bool:
        """Only a command that could be decoded (it has an idempotency key) can be re-sent."""
        return self.status == OPEN and bool(self.dead_letter.idempotency_key)


def row_id_of(record: Mapping[str, Any], partition: int, offset: int) -> str:
    """The command's idempotency key; a command that could not be decoded has none, so its
    place in ``sink.dlq`` names it instead."""
    return dead_letter_row_id(record, partition, offset)


def dead_letter_of(
    record: Mapping[str, Any], partition: int, offset: int, cause_event_type: str = ""
) -> DeadLetter:
    """A decoded ``dead_letter`` record → ``DeadLetter``."""
    return DeadLetter(
        row_id=row_id_of(record, partition, offset),
        sink=str(record["sink"]),
        idempotency_key=str(record.get("idempotency_key") or ""),
        reason_code=str(record["reason_code"]),
        last_error=" ".join(str(record.get("last_error") or "").split())[:300],
        attempts=int(record["attempts"]),
        failed_at_ms=int(record["failed_at_ms"]),
        customer_id=str(record.get("customer_id") or ""),
        cause_event_id=str(record.get("cause_event_id") or ""),
        cause_event_type=cause_event_type,
        source_topic=str(record.get("source_topic") or ""),
        command=bytes(record.get("command") or b""),
        position=(partition, offset),
    )


def decision_of(record: Mapping[str, Any]) -> Decision:
    return Decision(
        row_id=str(record["row_id"]),
        sink=str(record["sink"]),
        status=str(record["status"]),
        failed_at_ms=int(record["failed_at_ms"]),
        at_ms=int(record["at_ms"]),
        note=str(record.get("note") or ""),
    )


def decision_record(decision: Decision) -> dict[str, Any]:
    return {
        "row_id": decision.row_id,
        "sink": decision.sink,
        "status": decision.status,
        "failed_at_ms": decision.failed_at_ms,
        "at_ms": decision.at_ms,
        "note": decision.note,
    }


def _newer_dead_letter(a: DeadLetter, b: DeadLetter) -> bool:
    """True when ``a`` should replace ``b`` (later failure; ties broken deterministically)."""
    return (a.failed_at_ms, a.attempts, a.reason_code, a.last_error) > (
        b.failed_at_ms,
        b.attempts,
        b.reason_code,
        b.last_error,
    )


_STATUS_RANK = {RETRYING: 0, DISMISSED: 1, RESOLVED: 2}


def _newer_decision(a: Decision, b: Decision) -> bool:
    return (a.failed_at_ms, a.at_ms, _STATUS_RANK.get(a.status, -1), a.note) > (
        b.failed_at_ms,
        b.at_ms,
        _STATUS_RANK.get(b.status, -1),
        b.note,
    )


def row_status(dead: DeadLetter, decision: Decision | None, delivered_at_ms: int | None) -> str:
    """The status of a row from its latest dead letter, decision and delivery."""
    if delivered_at_ms is not None and delivered_at_ms >= dead.failed_at_ms:
        return RESOLVED
    if decision is not None and decision.failed_at_ms == dead.failed_at_ms:
        return decision.status
    return OPEN


@dataclass(frozen=True)
class Filter:
    """What the founder narrowed the list to ("" = any)."""

    sink: str = ""
    reason: str = ""

    def matches(self, row: Row) -> bool:
        return (not self.sink or row.sink == self.sink) and (
            not self.reason or row.reason_code == self.reason
        )


@dataclass(frozen=True)
class Page:
    rows: tuple[Row, ...]
    number: int
    pages: int
    total: int
    sinks: tuple[str, ...]
    reasons: tuple[str, ...]


class ExceptionQueue:
    """The folded state of the queue; every ``add_*`` returns the row id it touched (or None).

    Sorted views are cached and rebuilt only after a change, so serving a page of 10,000
    open rows costs a slice, not a sort (``work`` counts the rows sorted, for the tests).
    """

    def __init__(self) -> None:
        self._dead: dict[str, DeadLetter] = {}
        #: row id → {failed_at_ms: attempts} of every distinct dead letter seen
        self._runs: dict[str, dict[int, int]] = {}
        self._decisions: dict[str, Decision] = {}
        self._delivered: dict[str, int] = {}
        self._rows: dict[str, Row] = {}
        self._sorted: tuple[Row, ...] | None = None
        self._filtered: dict[Filter, tuple[Row, ...]] = {}
        self._counts: dict[CountKey, int] | None = None
        #: places in ``sink.dlq`` an erasure marker named, and the row seen at each place
        self._erased: set[tuple[int, int]] = set()
        self._at: dict[tuple[int, int], str] = {}
        self.version = 0
        self.work = 0

    # ------------------------------------------------------------------ the fold
    def add_dead_letter(self, dead: DeadLetter) -> str | None:
        if dead.position in self._erased:
            return None
        self._at[dead.position] = dead.row_id
        runs = self._runs.setdefault(dead.row_id, {})
        changed = runs.get(dead.failed_at_ms) != dead.attempts
        runs[dead.failed_at_ms] = max(dead.attempts, runs.get(dead.failed_at_ms, 0))
        current = self._dead.get(dead.row_id)
        if current is None or _newer_dead_letter(dead, current):
            self._dead[dead.row_id] = dead
            changed = True
        return self._refresh(dead.row_id) if changed else None

    def add_result(self, record: Mapping[str, Any]) -> str | None:
        """A ``sink_result``: a delivery after a dead letter resolves its row."""
        if record.get("outcome") not in DELIVERED_OUTCOMES:
            return None
        key = str(record.get("idempotency_key") or "")
        acked = int(record.get("acked_at_ms") or 0)
        if not key or acked <= self._delivered.get(key, -1):
            return None
        self._delivered[key] = acked
        return self._refresh(key) if key in self._dead else None

    def add_decision(self, decision: Decision) -> str | None:
        if decision.status == ERASED:
            return self._erase(decision.row_id)
        if decision.status not in DECISIONS:
            return None
        current = self._decisions.get(decision.row_id)
        if current is not None and not _newer_decision(decision, current):
            return None
        self._decisions[decision.row_id] = decision
        return self._refresh(decision.row_id) if decision.row_id in self._dead else None

    def _erase(self, marker: str) -> str | None:
        """An erasure marker: no row from the dead letter at its place, now or later."""
        position = marker_position(marker)
        if position is None or position in self._erased:
            return None
        self._erased.add(position)
        row_id = self._at.pop(position, None)
        dead = self._dead.get(row_id) if row_id is not None else None
        if row_id is None or dead is None or dead.position != position:
            return None  # not seen yet (skipped when it comes), or an older dead letter
        del self._dead[row_id]
        self._runs.pop(row_id, None)
        self._rows.pop(row_id, None)
        self._sorted = None
        self._counts = None
        self._filtered.clear()
        self.version += 1
        return row_id

    def _refresh(self, row_id: str) -> str:
        dead = self._dead[row_id]
        decision = self._decisions.get(row_id)
        status = row_status(dead, decision, self._delivered.get(row_id))
        applies = decision is not None and decision.failed_at_ms == dead.failed_at_ms
        row = Row(
            row_id=row_id,
            status=status,
            dead_letter=dead,
            attempts=sum(self._runs.get(row_id, {}).values()),
            decided_at_ms=decision.at_ms if decision is not None and applies else None,
            note=decision.note if decision is not None and applies else "",
            decision_status=decision.status if decision is not None and applies else None,
        )
        if self._rows.get(row_id) != row:
            was_visible = row_id in self._rows and self._rows[row_id].status in VISIBLE
            self._rows[row_id] = row
            if was_visible or row.status in VISIBLE:
                self._sorted = None
                self._counts = None
                self._filtered.clear()
            self.version += 1
        return row_id

    # ------------------------------------------------------------------ reading
    def row(self, row_id: str) -> Row | None:
        return self._rows.get(row_id)

    def visible(self) -> tuple[Row, ...]:
        """Rows on the page, newest failure first."""
        if self._sorted is None:
            rows = [r for r in self._rows.values() if r.status in VISIBLE]
            self.work += len(rows)
            rows.sort(key=lambda r: (-r.failed_at_ms, r.row_id))
            self._sorted = tuple(rows)
        return self._sorted

    def matching(self, flt: Filter) -> tuple[Row, ...]:
        if not flt.sink and not flt.reason:
            return self.visible()
        found = self._filtered.get(flt)
        if found is None:
            rows = self.visible()
            self.work += len(rows)
            found = tuple(r for r in rows if flt.matches(r))
            if len(self._filtered) > 64:  # a handful of filters are in use at once
                self._filtered.clear()
            self._filtered[flt] = found
        return found

    def page(self, flt: Filter, number: int, size: int) -> Page:
        rows = self.matching(flt)
        pages = max(1, -(-len(rows) // size))
        number = min(max(1, number), pages)
        start = (number - 1) * size
        counts = self.counts()
        return Page(
            rows=rows[start : start + size],
            number=number,
            pages=pages,
            total=len(rows),
            sinks=tuple(sorted({k.sink for k in counts})),
            reasons=tuple(sorted({k.reason_code for k in counts})),
        )

    def counts(self) -> dict[CountKey, int]:
        """Rows on the page by sink and reason (what ``paystream status`` prints)."""
        if self._counts is None:
            counts: dict[CountKey, int] = {}
            rows = self.visible()
            self.work += len(rows)
            for row in rows:
                key = CountKey(row.sink, row.reason_code)
                counts[key] = counts.get(key, 0) + 1
            self._counts = dict(sorted(counts.items()))
        return self._counts

    def resolved_unrecorded(self) -> list[Row]:
        """Rows a delivery resolved that ``admin.exceptions`` does not say are resolved."""
        return [
            r for r in self._rows.values() if r.status == RESOLVED and r.decision_status != RESOLVED
        ]

    @property
    def open_count(self) -> int:
        """``paystream_exceptions_open``: exactly the rows the page lists."""
        return len(self.visible())


@dataclass(frozen=True, order=True)
class CountKey:
    sink: str
    reason_code: str


# ---------------------------------------------------------------------- decisions to make


def retry_decisions(rows: Iterable[Row], at_ms: int) -> list[Decision]:
    """``retrying`` for every row that is open (a row already retrying is left alone)."""
    return [
        Decision(r.row_id, r.sink, RETRYING, r.failed_at_ms, at_ms) for r in rows if r.retryable
    ]


def dismiss_decision(row: Row, reason: str, at_ms: int) -> Decision:
    return Decision(row.row_id, row.sink, DISMISSED, row.failed_at_ms, at_ms, clean_reason(reason))


def resolved_decision(row: Row, at_ms: int) -> Decision | None:
    """Record a delivery seen in ``sink.results`` in the compacted topic (that topic keeps it
    after ``sink.results`` expires); None when already recorded."""
    if row.status != RESOLVED or row.decision_status == RESOLVED:
        return None
    return Decision(row.row_id, row.sink, RESOLVED, row.failed_at_ms, at_ms)


def clean_reason(reason: str) -> str:
    """A dismissal reason on one line, at most ``DISMISS_REASON_MAX`` characters."""
    return " ".join(reason.split())[:DISMISS_REASON_MAX]


def intervention_result(row: Row, outcome: str, at_ms: int) -> dict[str, Any]:
    """The ``sink_result`` record of a person's action, for the metrics store."""
    dead = row.dead_letter
    return {
        "sink": dead.sink,
        "idempotency_key": dead.idempotency_key or row.row_id,
        "outcome": outcome,
        "attempts": row.attempts,
        "reason_code": dead.reason_code,
        "latency_ms": 0.0,
        "customer_id": dead.customer_id,
        "cause_event_id": dead.cause_event_id,
        "cause_event_type": dead.cause_event_type,
        "event_created": 0,
        "received_at_ms": 0,
        "processed_at_ms": 0,
        "acked_at_ms": at_ms,
        "correlation_id": "",
        "delivery": DELIVERY_FIRST,  # the schema's default: a person's action is no sync
    }


def stripe_customer_url(customer_id: str, mode: str) -> str | None:
    """The customer's page in the Stripe dashboard (test or live path), None without an id."""
    if not _CUSTOMER_ID.fullmatch(customer_id):
        return None
    return customer_dashboard_url(customer_id, mode != "test")
