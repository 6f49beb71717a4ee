"""Decisions of ``paystream reconcile`` as plain functions on plain data (no I/O).

What window to list, how long to wait after a 429, and what the run amounts to (the
summary and the exit code). Whether ``STRIPE_API_KEY`` fits ``STRIPE_MODE`` is one of the
shared environment rules (``paystream.settings.environment_problem``). ``ingest.reconcile``
is the shell that calls Stripe and the broker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ingest.errors import ReconcileRefused
from paystream.backoff import jittered_delay

#: Stripe lists events "going back up to 30 days" (https://docs.stripe.com/api/events/list).
STRIPE_EVENT_RETENTION_S = 30 * 24 * 3600
#: A window may start this much before the 30 days (the clock between planning and the
#: first page); no more.
RETENTION_MARGIN_S = 60

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"(?:(\d+)([smhdw]))+")
_PART = re.compile(r"(\d+)([smhdw])")


@dataclass(frozen=True, slots=True)
class Window:
    """Events with ``start <= created <= end`` (unix seconds, both ends included)."""

    start: int
    end: int


def parse_duration(text: str) -> int:
    """``"3d"``, ``"12h"``, ``"1d12h"``, ``"90m"``, ``"45s"``, ``"1w"`` → seconds (> 0)."""
    value = text.strip().lower()
    if not _DURATION.fullmatch(value):
        raise ReconcileRefused(f"--since {text!r} is not a duration (use e.g. 3d, 12h, 1d12h, 90m)")
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(value))
    if seconds <= 0:
        raise ReconcileRefused(f"--since {text!r} is an empty window")
    return seconds


def parse_instant(text: str, flag: str) -> int:
    """Unix seconds, or ISO 8601 (``2026-11-28``, ``2026-11-28T09:00:00Z``, with an
    offset); a time without an offset is UTC."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ReconcileRefused(
            f"{flag} {text!r} is neither ISO 8601 (2026-11-28T09:00:00Z) nor unix seconds"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def plan_window(*, since: str | None, from_: str | None, to: str | None, now: int) -> Window:
    """The window to list from the command-line flags; refuse what Stripe cannot answer."""
    if (since is None) == (from_ is None):
        raise ReconcileRefused("give either --since DURATION or --from TIME (with optional --to)")
    if since is not None and to is not None:
        raise ReconcileRefused("--to goes with --from, not with --since")
    if since is not None:
        start, end = now - parse_duration(since), now
    else:
        assert from_ is not None
        start = parse_instant(from_, "--from")
        end = parse_instant(to, "--to") if to is not None else now
        if end > now:
            end = now  # nothing was created after now: the window simply ends here
        if start >= end:
            raise ReconcileRefused("--from must be before --to (and before now)")
    oldest = now - STRIPE_EVENT_RETENTION_S
    if start < oldest - RETENTION_MARGIN_S:
        raise ReconcileRefused(
            "the window starts more than 30 days ago; Stripe keeps events for 30 days only"
        )
    return Window(max(start, oldest), end)


def retry_delay(
    attempt: int,
    retry_after: str | None,
    *,
    base_s: float = 0.5,
    cap_s: float = 20.0,
    jitter: Callable[[], float],
) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...) after a 429.

    Stripe's 429 carries no ``Retry-After`` in general; its rate-limits page recommends an
    exponential back-off (https://docs.stripe.com/rate-limits#handling-limiting-gracefully),
    here the sinks' one (``paystream.backoff``): ``base * 2^(attempt-1)`` capped, times a
    jitter in [0.5, 1] so parallel clients spread out. A ``Retry-After`` in seconds, when
    present, is honoured (capped too).
    """
    if retry_after is not None:
        try:
            return min(max(float(retry_after), 0.0), cap_s)
        except ValueError:
            pass
    return jittered_delay(attempt, base_s, cap_s, jitter())


def pace_wait(last_request_at: float | None, now: float, requests_per_s: float) -> float:
    """Seconds to wait so that requests stay ``1 / requests_per_s`` apart."""
    if last_request_at is None:
        return 0.0
    return max(0.0, last_request_at + 1.0 / requests_per_s - now)


@dataclass(frozen=True, slots=True)
class Summary:
    """What one reconcile run did (the last lines it prints and its exit code).

    ``already_processed`` and ``missing`` are what the worker said about the listed events
    (seen before vs never seen: the delivery gap); None when it could not be asked.
    """

    window: Window
    listed: int
    published: int
    failed: int
    #: False when listing stopped early (rate limit not ridden out, API error)
    complete: bool
    already_processed: int | None = None
    missing: int | None = None
    #: events the worker was asked about but did not answer for (published anyway)
    unanswered: int = 0
    error: str | None = None
    #: ``--dry-run``: nothing was published; ``would_publish`` says what a run would send
    dry_run: bool = False
    would_publish: int = 0

    @property
    def exit_code(self) -> int:
        return 0 if self.complete and self.failed == 0 else 1

    def lines(self) -> list[str]:
        def known(value: int | None) -> str:
            if value is None:
                return "unknown (worker not asked)"
            if self.unanswered:
                return f"at least {value} (the worker did not answer for {self.unanswered})"
            return str(value)

        lines = [
            f"reconcile window: {_iso(self.window.start)} .. {_iso(self.window.end)}",
            f"listed: {self.listed}" + ("" if self.complete else " (listing incomplete)"),
            f"already processed: {known(self.already_processed)}",
            f"never arrived as a webhook (delivery gap): {known(self.missing)}",
            f"would publish: {self.would_publish} (dry run: nothing published)"
            if self.dry_run
            else f"published: {self.published}",
            f"failed: {self.failed}",
        ]
        if self.error:
            lines.append(f"error: {self.error}")
        lines.append("result: " + ("ok" if self.exit_code == 0 else "FAILED"))
        return lines

    def as_dict(self) -> dict[str, Any]:
        """The same figures for ``--json`` (None: the worker was not asked)."""
        return {
            "window": {"start": _iso(self.window.start), "end": _iso(self.window.end)},
            "dry_run": self.dry_run,
            "listed": self.listed,
            "complete": self.complete,
            "already_processed": self.already_processed,
            "missing": self.missing,
            "unanswered": self.unanswered,
            "published": self.published,
            "would_publish": self.would_publish,
            "failed": self.failed,
            "error": self.error,
            "result": "ok" if self.exit_code == 0 else "failed",
        }


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")
