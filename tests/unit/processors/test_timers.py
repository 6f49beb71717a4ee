"""The onboarding scan: which customers' onboarding deadline is due."""

from __future__ import annotations

from processors.lifecycle import CustomerRecord
from processors.timers import overdue


def pending(customer: str, opened: int, tickets: tuple[str, ...] = ()) -> CustomerRecord:
    return CustomerRecord(
        customer,
        state="onboarding_pending",
        onboarding_opened_by=(opened, f"evt_{customer}"),
        tickets=tickets,
    )


def test_onboarding_scan_picks_only_overdue_unticketed_customers() -> None:
    records = [
        pending("a", 1000),
        pending("b", 5000),
        pending("c", 1000, ("paystream:onboarding_stuck:c:evt_c",)),
        CustomerRecord(
            "d",
            state="active",
            onboarding_opened_by=(1000, "evt_d"),
            onboarding_completed_by=(1200, "app_d"),
        ),
    ]
    due = list(overdue(records, now_ms=4_600_000, stuck_after_ms=3_600_000))
    assert [d["customer_id"] for d in due] == ["a"]
    assert due[0]["event_id"] == "deadline:a:evt_a"
    assert due[0]["created"] == 4600
