"""The CRM sink's pure decisions, as tables: contacts by email, the newest email in a
batch, HubSpot's daily reset and daily-limit retry, safe ids, crm-setup's property check,
conflicts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devstack.commands import crm_command
from paystream.crm_properties import contact_properties, property_differences
from sinks import crm_plan
from sinks.crm_plan import HeldContact
from sinks.hubspot import is_conflict
from sinks.retry import (
    DAILY_LIMIT,
    RATE_LIMITED,
    Attempts,
    RetryPolicy,
    after_failure,
    is_safe_id,
    next_daily_reset,
)


def upsert(customer: str, email: str | None, changed_s: int = 100) -> crm_plan.CrmUpsert:
    (one,) = crm_plan.coalesce_crm([crm_command(customer, "active", changed_s, email=email)])
    return one


def contact(
    cid: str, customer: str | None, email: str | None, at_s: int | None = None
) -> HeldContact:
    return HeldContact(cid, customer, email, at_s * 1000 if at_s is not None else None)


LEAD = contact("7", None, "a@x.com")
OTHER_CUSTOMER = contact("8", "cus_OTHER", "a@x.com")


@pytest.mark.parametrize(
    ("name", "by_customer", "by_email", "wanted", "upserts", "links", "reason", "refused"),
    [
        ("new customer, free email", {}, {}, "a@x.com", 1, 0, None, None),
        (
            "new customer, a lead has the email",
            {},
            {"a@x.com": LEAD},
            "a@x.com",
            0,
            1,
            "linked_existing_contact",
            None,
        ),
        (
            "new customer, another customer has it",
            {},
            {"a@x.com": OTHER_CUSTOMER},
            "a@x.com",
            0,
            0,
            None,
            "email_held_by_other_customer",
        ),
        (
            "known customer, same email",
            {"cus_A": contact("5", "cus_A", "a@x.com")},
            {},
            None,
            1,
            0,
            None,
            None,
        ),
        (
            "known customer, email taken by a lead",
            {"cus_A": contact("5", "cus_A", "old@x.com")},
            {"a@x.com": LEAD},
            "a@x.com",
            1,
            0,
            "email_held_by_other_contact",
            None,
        ),
        (
            "known customer, newer state held: stale",
            {"cus_A": contact("5", "cus_A", "a@x.com", 200)},
            {},
            None,
            0,
            0,
            "stale",
            None,
        ),
        (
            "read lag: the contact by email is ours",
            {},
            {"a@x.com": contact("5", "cus_A", "a@x.com")},
            "a@x.com",
            1,
            0,
            None,
            None,
        ),
    ],
)
def test_plan_contacts(
    name: str,
    by_customer: dict[str, HeldContact],
    by_email: dict[str, HeldContact],
    wanted: str | None,
    upserts: int,
    links: int,
    reason: str | None,
    refused: str | None,
) -> None:
    one = upsert("cus_A", "A@x.com")
    assert crm_plan.emails_to_look_up([one], by_customer) == ([wanted] if wanted else [])
    plan = crm_plan.plan_contacts([one], by_customer, by_email)
    assert (len(plan.upserts), len(plan.links)) == (upserts, links), name
    assert plan.reasons.get("cus_A") == reason
    assert plan.refused.get("cus_A") == refused
    if links:
        assert plan.links[0] == {"id": "7", "properties": one.input["properties"]}
    if reason == "email_held_by_other_contact":
        assert "email" not in plan.upserts[0]["properties"]
        assert plan.upserts[0]["properties"]["billing_state"] == "active"


def test_two_new_customers_with_one_email_in_one_batch_never_share_a_contact() -> None:
    plan = crm_plan.plan_contacts([upsert("cus_1", "s@x.com"), upsert("cus_2", "S@x.com")], {}, {})
    assert [u["id"] for u in plan.upserts] == ["cus_1"]
    assert plan.refused == {"cus_2": "email_held_by_other_customer"}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["cus_1", "cus_2", "cus_3"]),
            st.sampled_from([None, "a@x.com", "b@x.com"]),
            st.booleans(),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_plan_never_writes_one_email_to_two_contacts(batch: list[tuple[str, Any, bool]]) -> None:
    upserts = crm_plan.coalesce_crm(
        [crm_command(c, "active", 100 + i, email=e) for i, (c, e, _) in enumerate(batch)]
    )
    held = {c: contact(f"h{c}", c, None) for c, _, known in batch if known}
    plan = crm_plan.plan_contacts(upserts, held, {})
    emails = [u["properties"].get("email") for u in plan.upserts if u["properties"].get("email")]
    emails += [link["properties"].get("email") for link in plan.links]
    assert len(emails) == len(set(emails))
    # every customer is accounted for: written, linked, stale or refused
    written = {u["id"] for u in plan.upserts} | set(plan.refused) | set(plan.reasons)
    assert written == {u.customer_id for u in upserts}


def test_coalescing_keeps_the_email_of_the_contact_change() -> None:
    """Worker order: the state change (no email), then the contact-only change with the
    same change time and an older Stripe ``created``: the email must survive."""
    state = crm_command("cus_A", "active", 200)
    contact_change = crm_command(
        "cus_A",
        "active",
        200,
        email="a@x.com",
        user_id="u1",
        event_created=100,
        cause_event_id="evt_c",
    )
    (one,) = crm_plan.coalesce_crm([state, contact_change])
    assert one.input["properties"]["email"] == "a@x.com"
    assert one.input["properties"]["paystream_user_id"] == "u1"
    assert one.input["properties"]["billing_state"] == "active"
    assert one.covers == (0, 1)


@pytest.mark.parametrize(
    ("emails", "expected"),
    [
        (["old@x.com", "new@x.com"], "new@x.com"),  # the later command knows the newer one
        (["old@x.com", None], "old@x.com"),  # unknown never blanks a known one
        ([None, None], None),
    ],
)
def test_coalescing_takes_the_latest_known_email(
    emails: list[str | None], expected: str | None
) -> None:
    commands = [crm_command("cus_A", "active", 100 + i, email=e) for i, e in enumerate(emails)]
    (one,) = crm_plan.coalesce_crm(commands)
    assert one.input["properties"].get("email") == expected


@pytest.mark.parametrize(
    ("now", "zone", "reset"),
    [
        ("2026-11-30T15:00:00+00:00", "UTC", "2026-12-01T00:00:00+00:00"),
        ("2026-11-30T23:59:59+00:00", "UTC", "2026-12-01T00:00:00+00:00"),
        ("2026-11-30T15:00:00+00:00", "America/New_York", "2026-12-01T05:00:00+00:00"),
        ("2026-11-30T23:30:00+00:00", "Europe/Berlin", "2026-12-01T23:00:00+00:00"),
        ("2026-03-28T12:00:00+00:00", "Europe/Berlin", "2026-03-28T23:00:00+00:00"),  # DST eve
    ],
)
def test_daily_limit_resets_at_midnight_in_the_accounts_time_zone(
    now: str, zone: str, reset: str
) -> None:
    got = next_daily_reset(datetime.fromisoformat(now).timestamp(), zone)
    assert datetime.fromtimestamp(got, UTC) == datetime.fromisoformat(reset)


def test_daily_limit_waits_until_the_reset_and_spends_no_budget() -> None:
    policy = RetryPolicy(max_rate_limited=0, max_attempts=1, retry_after_max_s=120)
    seen = Attempts(total=5, errors=0, rate_limited=0)
    decision = after_failure(policy, seen, DAILY_LIMIT, 9 * 3600.0, 0.5)
    assert (decision.retry, decision.delay_s, decision.attempts) == (True, 9 * 3600.0, seen)
    # a ten-secondly 429 under the same policy gives up: the budgets still apply there
    assert after_failure(policy, seen, RATE_LIMITED, 10.0, 0.5).retry is False


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("paystream:chargeback:du_1", True),
        ("cus_NffrFeUfNV2Hib", True),
        ("paystream:x:du\nbad", False),
        ("cus_bäd", False),
        ("has space", False),
        ("", False),
        ("x" * 256, False),
    ],
)
def test_safe_ids(value: str, ok: bool) -> None:
    assert is_safe_id(value) is ok


@pytest.mark.parametrize(
    ("held", "differences"),
    [
        ({"type": "string", "hasUniqueValue": True}, []),
        ({"type": "string", "hasUniqueValue": False}, ["hasUniqueValue is False, needs True"]),
        ({"type": "number", "hasUniqueValue": True}, ["type is 'number', needs 'string'"]),
    ],
)
def test_crm_setup_compares_the_customer_id_property(
    held: dict[str, Any], differences: list[str]
) -> None:
    wanted = next(p for p in contact_properties() if p["name"] == "stripe_customer_id")
    got = property_differences(wanted, held)
    assert len(got) == len(differences)
    for text, expected in zip(got, differences, strict=True):
        assert expected in text


def test_crm_setup_needs_every_billing_state_option_and_accepts_extra_ones() -> None:
    wanted = next(p for p in contact_properties() if p["name"] == "billing_state")
    values = [o["value"] for o in wanted["options"]]
    extra = [{"value": v} for v in [*values, "vip"]]
    assert property_differences(wanted, {"type": "enumeration", "options": extra}) == []
    short = [{"value": v} for v in values if v != "paused"]
    (difference,) = property_differences(wanted, {"type": "enumeration", "options": short})
    assert "options lack paused" in difference


@pytest.mark.parametrize(
    ("status", "body", "conflict"),
    [
        (409, {"message": "Contact already exists. Existing ID: 1001"}, True),
        (207, {"errors": [{"category": "CONFLICT", "message": "x"}]}, True),
        (207, {"errors": [{"message": "Contact already exists. Existing ID: 9"}]}, True),
        (207, {"errors": [{"category": "OBJECT_NOT_FOUND", "message": "gone"}]}, False),
        (200, {"results": []}, False),
        (400, {"message": "Property does not exist"}, False),
    ],
)
def test_whole_batch_409_and_207_per_input_conflicts_read_the_same(
    status: int, body: dict[str, Any], conflict: bool
) -> None:
    assert is_conflict(status, body) is conflict
