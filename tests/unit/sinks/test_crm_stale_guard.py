"""The CRM sink's stale guard (pure planning): a worker's command never writes an older state
over a newer date; a crm-repair correction writes the canonical state over the one later date
it names (``overwrites_changed_at_ms``: set by hand), and over no other."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devstack.commands import crm_command
from paystream import crm_properties
from schemas.codec import default_codec
from sinks import crm_plan
from sinks.crm_plan import HeldContact

S = 1_765_000_000  # the command's change time, in seconds
MS = S * 1000
HAND = MS + 86_400_000  # a date a person set a day later in HubSpot


def upsert(**extra: Any) -> crm_plan.CrmUpsert:
    """The one upsert of a command that went through the wire schema, as the sink reads it."""
    codec = default_codec()
    command = codec.decode_as(
        "crm_command", codec.encode("crm_command", crm_command("cus_A", "active", S, **extra))
    )
    (one,) = crm_plan.coalesce_crm([command])
    return one


@pytest.mark.parametrize(
    ("overwrites", "held", "stale"),
    [
        # the worker's commands (no field): strictly newer held dates win, as always
        (None, None, False),
        (None, MS - 1, False),
        (None, MS, False),
        (None, MS + 1, True),
        (None, HAND, True),
        # a correction: over exactly the date it names, written
        (HAND, HAND, False),
        # ... over any other later date (a newer state the worker sent since), left out
        (HAND, HAND + 1, True),
        (HAND, HAND - 1, True),
        (HAND, MS + 1, True),
        # ... and not older than the CRM's: written as any command
        (HAND, MS, False),
        (HAND, MS - 1, False),
        (HAND, None, False),
    ],
)
def test_is_stale(overwrites: int | None, held: int | None, stale: bool) -> None:
    assert crm_plan.is_stale(upsert(overwrites_changed_at_ms=overwrites), held) is stale


@pytest.mark.parametrize(
    ("overwrites", "held", "written", "reason"),
    [
        (None, HAND, 0, "stale"),  # the worker's command: the guard unchanged
        (HAND, HAND, 1, None),  # crm-repair's correction over the hand-set date
        (HAND, HAND + 60_000, 0, "stale"),  # the date moved again since the repair read it
        (HAND, MS - 1, 1, None),
    ],
    ids=["worker over later date", "repair over its date", "repair over another", "older"],
)
def test_plan_contacts_writes_a_correction_over_the_date_it_names(
    overwrites: int | None, held: int, written: int, reason: str | None
) -> None:
    one = upsert(overwrites_changed_at_ms=overwrites, email="a@x.com")
    by_customer = {"cus_A": HeldContact("5", "cus_A", "a@x.com", held)}
    plan = crm_plan.plan_contacts([one], by_customer, {})
    assert (len(plan.upserts), plan.reasons.get("cus_A")) == (written, reason)
    if written:
        props = plan.upserts[0]["properties"]
        assert props["billing_state_changed_at"] == crm_properties.iso8601_ms(MS)


def test_the_guard_keeps_a_correction_over_its_date() -> None:
    worker, repair = upsert(), upsert(overwrites_changed_at_ms=HAND)
    assert crm_plan.is_stale(worker, HAND) is True
    assert crm_plan.is_stale(repair, HAND) is False


@pytest.mark.parametrize(
    ("worker_s", "state", "overwrites"),
    [(S + 5, "payment_failed", None), (S, "payment_failed", None), (S - 5, "active", HAND)],
    ids=["a newer worker state", "a tie: the later command", "an older worker state"],
)
def test_coalescing_carries_the_field_of_the_command_it_sends(
    worker_s: int, state: str, overwrites: int | None
) -> None:
    """A correction and a worker command of one customer in one batch: the state sent keeps
    its own command's field, so a newer worker state never overwrites a later date."""
    repair = crm_command("cus_A", "active", S, overwrites_changed_at_ms=HAND)
    worker = crm_command("cus_A", "payment_failed", worker_s)
    (one,) = crm_plan.coalesce_crm([repair, worker])
    assert (one.input["properties"]["billing_state"], one.overwrites_ms) == (state, overwrites)


def test_a_command_written_before_the_field_decodes_without_it() -> None:
    """crm_command v1's bytes (a worker's, or an old dead letter's) keep the stale guard."""
    assert upsert().overwrites_ms is None
    command = crm_command("cus_A", "active", S)
    assert crm_plan.coalesce_crm([command])[0].overwrites_ms is None


@given(st.integers(0, 2 * MS), st.none() | st.integers(0, 2 * MS))
def test_without_the_field_the_guard_is_the_old_one(changed_ms: int, held: int | None) -> None:
    one = crm_plan.CrmUpsert("cus_A", changed_ms, {"properties": {}}, 0, (0,))
    assert crm_plan.is_stale(one, held) is (held is not None and held > changed_ms)
