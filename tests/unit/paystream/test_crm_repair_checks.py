"""crm-repair's comparison of the CRM with the canonical records (pure): which contacts
drifted and how, which are duplicates, which customers the CRM never got."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paystream.commands.crm_repair.checks import (
    EMAIL_HELD_BY_OTHER_CUSTOMER,
    EMAIL_HELD_BY_SECOND_CONTACT,
    SAME_CUSTOMER_ID,
    Contact,
    Duplicate,
    Missing,
    Record,
    compare,
    emails_to_look_up,
    iso8601_ms,
    parse_crm_datetime,
    set_apart_queued,
)
from paystream.vocabulary import BILLING_STATES

MS = 1_765_000_000_000
RECORD = Record("cus_1", "active", MS, "a@example.com", "user_1", "evt_1", "invoice.paid")


def written(record: Record, contact_id: str = "101", **changes: str | None) -> Contact:
    """The contact as the CRM sink writes the record, then ``changes`` made by hand."""
    contact = Contact(
        contact_id,
        record.customer_id,
        record.email,
        record.user_id,
        record.billing_state,
        iso8601_ms(record.changed_at_ms or 0),
        MS + 5_000,
    )
    return replace(contact, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({}, []),
        ({"billing_state": "canceled"}, [("billing_state", "canceled", "active")]),
        ({"billing_state": None}, [("billing_state", None, "active")]),
        ({"email": "A@Example.com"}, []),  # HubSpot keeps emails without regard to case
        ({"email": "b@example.com"}, [("email", "b@example.com", "a@example.com")]),
        ({"email": None}, [("email", None, "a@example.com")]),
        ({"user_id": "someone"}, [("paystream_user_id", "someone", "user_1")]),
        # the same instant written another way is no drift
        ({"changed_at": str(MS)}, []),
        (
            {"changed_at": "2020-01-01T00:00:00.000Z"},
            [("billing_state_changed_at", "2020-01-01T00:00:00.000Z", iso8601_ms(MS))],
        ),
        (
            {"changed_at": "not a date"},
            [("billing_state_changed_at", "not a date", iso8601_ms(MS))],
        ),
        (
            {"billing_state": "paused", "user_id": None},
            [("billing_state", "paused", "active"), ("paystream_user_id", None, "user_1")],
        ),
    ],
    ids=repr,
)
def test_a_drifted_field_is_named_with_both_values(
    changes: dict[str, str | None], fields: list[tuple[str, str | None, str | None]]
) -> None:
    found = compare([written(RECORD, **changes)], {"cus_1": RECORD})
    assert [(d.field, d.crm_value, d.canonical_value) for d in found.drifts] == fields
    assert found.correctable == (("cus_1",) if fields else ())
    assert found.clean == (not fields)
    assert (found.duplicates, found.missing) == ((), ())


@pytest.mark.parametrize(
    ("record", "contact"),
    [
        # the record knows no email or user id: the CRM's (a form's) are left alone
        (replace(RECORD, email=None, user_id=None), {"email": "x@example.com", "user_id": "u9"}),
    ],
)
def test_what_the_record_does_not_know_is_not_compared(
    record: Record, contact: dict[str, str]
) -> None:
    assert compare([written(record, **contact)], {"cus_1": record}).drifts == ()


def test_since_is_the_later_of_the_record_change_and_the_contact_edit() -> None:
    edited = written(RECORD, billing_state="canceled", modified_at_ms=MS + 60_000)
    assert compare([edited], {"cus_1": RECORD}).drifts[0].since_ms == MS + 60_000
    stale = written(RECORD, billing_state="canceled", modified_at_ms=MS - 60_000)
    assert compare([stale], {"cus_1": RECORD}).drifts[0].since_ms == MS


@pytest.mark.parametrize(
    ("changed_at", "later"),
    [
        (iso8601_ms(MS + 1), MS + 1),  # set later by hand: the correction overwrites it
        (str(MS + 60_000), MS + 60_000),  # written as epoch ms, the same instant kept
        (iso8601_ms(MS - 1), None),  # earlier: the stale guard lets it through anyway
        ("", None),
    ],
    ids=["later", "later, epoch ms", "earlier", "cleared"],
)
def test_a_crm_date_later_than_the_record_is_corrected_over_that_date(
    changed_at: str, later: int | None
) -> None:
    """The record is the truth: every drift is re-sent, and a later date is the one named."""
    edited = written(RECORD, billing_state="canceled", changed_at=changed_at)
    found = compare([edited], {"cus_1": RECORD})
    assert {d.field for d in found.drifts} == {"billing_state", "billing_state_changed_at"}
    assert {d.crm_later_ms for d in found.drifts} == {later}
    assert (found.correctable, found.clean) == (("cus_1",), False)
    assert found.overwrites == ({"cus_1": later} if later else {})


def test_a_customer_the_crm_never_got_is_missing_one_without_a_state_is_not() -> None:
    no_state = Record("cus_2", None, None, "n@example.com")
    found = compare([], {"cus_1": RECORD, "cus_2": no_state})
    assert found.missing == (Missing("cus_1", "active", MS),)
    assert found.correctable == ("cus_1",)


def test_two_contacts_with_one_customer_id_are_a_duplicate_not_a_drift() -> None:
    first, second = written(RECORD, "99"), written(RECORD, "1000", billing_state="canceled")
    found = compare([second, first], {"cus_1": RECORD})
    assert found.duplicates == (Duplicate("cus_1", SAME_CUSTOMER_ID, ("99", "1000")),)
    assert (found.drifts, found.correctable, found.clean) == ((), (), False)


def test_a_duplicate_whose_row_is_open_waits_for_the_merge() -> None:
    found = compare([written(RECORD, "99"), written(RECORD, "1000")], {"cus_1": RECORD})
    waiting = set_apart_queued(found, {"row:cus_1"}, lambda c: f"row:{c}")
    assert (waiting.duplicates, waiting.queued, waiting.clean) == ((), found.duplicates, True)
    elsewhere = set_apart_queued(found, {"row:cus_2"}, lambda c: f"row:{c}")
    assert (elsewhere.duplicates, elsewhere.queued) == (found.duplicates, ())


def test_a_second_contact_holding_the_customers_email_is_a_duplicate() -> None:
    own = written(RECORD, email="personal@example.com", billing_state="paused")
    lead = Contact("202", email="A@example.com")
    found = compare([own], {"cus_1": RECORD}, {"a@example.com": lead})
    assert found.duplicates == (Duplicate("cus_1", EMAIL_HELD_BY_SECOND_CONTACT, ("101", "202")),)
    # the email cannot be written (HubSpot keeps one contact per email); the state can
    assert [d.field for d in found.drifts] == ["billing_state"]
    assert found.correctable == ("cus_1",)


def test_another_customers_contact_holding_the_email_is_found_without_a_read() -> None:
    other = Record("cus_2", "active", MS, "b@example.com")
    mine = written(RECORD, email="personal@example.com")
    theirs = written(other, "102", email="a@example.com")
    found = compare([mine, theirs], {"cus_1": RECORD, "cus_2": other})
    assert [(d.customer_id, d.kind) for d in found.duplicates] == [
        ("cus_1", EMAIL_HELD_BY_SECOND_CONTACT)
    ]
    assert [(d.customer_id, d.field) for d in found.drifts] == [("cus_2", "email")]


def test_a_missing_customer_whose_email_another_customer_holds_is_for_a_person() -> None:
    """The sink would refuse to write it (email_held_by_other_customer): not re-sent."""
    other = Record("cus_2", "active", MS, "b@example.com")
    theirs = written(other, "102", email="a@example.com")
    found = compare([theirs], {"cus_1": RECORD, "cus_2": other})
    assert found.duplicates == (Duplicate("cus_1", EMAIL_HELD_BY_OTHER_CUSTOMER, ("102",)),)
    assert found.missing == () and "cus_1" not in found.correctable
    # a lead holding it is linked by the sink: still missing, re-sent
    lead = Contact("103", email="a@example.com")
    assert compare([], {"cus_1": RECORD}, {"a@example.com": lead}).missing[0].customer_id == "cus_1"


def test_a_contact_of_an_unknown_customer_is_listed_and_left_alone() -> None:
    found = compare([written(replace(RECORD, customer_id="cus_gone"), "7")], {})
    assert (found.unknown, found.correctable, found.clean) == (("7",), (), True)


def test_only_emails_no_searched_contact_holds_are_read() -> None:
    b = Record("cus_2", "active", MS, "b@example.com")
    c = Record("cus_3", "active", MS, "C@example.com")
    contacts = [
        written(RECORD),  # holds its own email
        written(b, "102", email="other@example.com"),  # b's email: only a read finds a lead
    ]
    # cus_3 has no contact: the sink links a lead itself when it writes it
    assert emails_to_look_up(contacts, {"cus_1": RECORD, "cus_2": b, "cus_3": c}) == [
        "b@example.com"
    ]


@pytest.mark.parametrize(
    ("value", "ms"),
    [
        ("2026-12-07T12:00:00.000Z", 1_796_644_800_000),
        ("2026-12-07T12:00:00+00:00", 1_796_644_800_000),
        ("2026-12-07T12:00:00", 1_796_644_800_000),
        ("1796644800000", 1_796_644_800_000),
        ("", None),
        (None, None),
        ("yesterday", None),
    ],
)
def test_crm_dates_are_read_in_both_of_hubspots_shapes(value: str | None, ms: int | None) -> None:
    assert parse_crm_datetime(value) == ms


records = st.builds(
    Record,
    customer_id=st.from_regex(r"cus_[A-Za-z0-9]{1,12}", fullmatch=True),
    billing_state=st.sampled_from(BILLING_STATES),
    changed_at_ms=st.integers(1, 4_000_000_000_000),
    email=st.none() | st.emails(),
    user_id=st.none() | st.text("abcdef0123456789", min_size=1, max_size=8),
)


@given(st.lists(records, max_size=8, unique_by=lambda r: r.customer_id))
def test_contacts_as_the_sink_writes_them_never_drift(batch: list[Record]) -> None:
    by_id = {r.customer_id: r for r in batch}
    emails = [r.email.lower() for r in batch if r.email]
    contacts = [written(r, str(100 + i)) for i, r in enumerate(batch)]
    found = compare(contacts, by_id)
    if len(emails) == len(set(emails)):  # HubSpot holds one contact per email
        assert found.drifts == () and found.duplicates == () and found.missing == ()
    assert compare([], by_id).correctable == tuple(sorted(by_id))
