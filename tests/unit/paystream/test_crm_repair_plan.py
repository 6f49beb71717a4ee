"""What crm-repair --apply sends (pure): the worker's own CRM commands and keys, the
duplicate's exception-queue row as the admin reads it, one intervention row each."""

from __future__ import annotations

from dataclasses import replace

import pytest

from paystream.commands.crm_repair import plan
from paystream.commands.crm_repair.checks import (
    EMAIL_HELD_BY_OTHER_CUSTOMER,
    EMAIL_HELD_BY_SECOND_CONTACT,
    SAME_CUSTOMER_ID,
    Contact,
    Duplicate,
    Findings,
    Missing,
    Record,
    compare,
)
from paystream.exception_queue.fold import ExceptionQueue, dead_letter_of
from paystream.vocabulary import DUPLICATE_CONTACT, REPAIRED
from processors.commands import crm_key
from schemas.codec import default_codec

MS = 1_765_000_000_000
A = Record("cus_A", "active", MS, "a@example.com", "user_1", "evt_1", "invoice.paid")
B = Record("cus_B", "payment_failed", MS + 1, None, None, "evt_2", "invoice.payment_failed")
RECORDS = {"cus_A": A, "cus_B": B}


def test_the_key_is_the_workers_own() -> None:
    assert plan.crm_key("cus_A", "evt_1") == crm_key("cus_A", "evt_1")


def test_a_correction_is_the_workers_command_for_the_current_state() -> None:
    command = plan.crm_command(A, MS + 9, "run-1")
    codec = default_codec()
    name, decoded = codec.decode(codec.encode("crm_command", command))  # the wire schema
    assert name == "crm_command"
    assert decoded["idempotency_key"] == crm_key("cus_A", "evt_1")
    assert (decoded["billing_state"], decoded["billing_state_changed_at_ms"]) == ("active", MS)
    assert (decoded["email"], decoded["user_id"]) == ("a@example.com", "user_1")
    assert decoded["cause_event_type"] == "invoice.paid"


def test_a_correction_over_a_later_crm_date_names_that_date_in_its_bytes() -> None:
    """The sink overwrites exactly that date (``sinks.crm_plan.is_stale``); the field is in
    the command itself, so an exception-queue retry, which re-sends the bytes, keeps it."""
    contact = Contact("101", "cus_A", "a@example.com", "user_1", "canceled", str(MS + 60_000))
    findings = compare([contact], RECORDS | {"cus_B": replace(B, billing_state=None)})
    (command,) = [
        m.value for m in plan.corrections(findings, RECORDS, MS, "r") if m.schema == "crm_command"
    ]
    codec = default_codec()
    decoded = codec.decode_as("crm_command", codec.encode("crm_command", command))
    assert decoded["overwrites_changed_at_ms"] == MS + 60_000
    assert decoded["billing_state_changed_at_ms"] == MS
    # the worker's commands, and every other correction, leave the stale guard as it is
    assert plan.crm_command(A, MS, "r")["overwrites_changed_at_ms"] is None


@pytest.mark.parametrize(
    ("findings", "keys"),
    [
        (Findings(), []),
        (Findings(missing=(Missing("cus_B", "payment_failed", MS),)), ["crm:cus_B:evt_2"]),
        (compare([], RECORDS), ["crm:cus_A:evt_1", "crm:cus_B:evt_2"]),
    ],
    ids=["nothing", "one missing", "both missing"],
)
def test_each_correctable_customer_is_one_command_and_one_intervention(
    findings: Findings, keys: list[str]
) -> None:
    messages = plan.corrections(findings, RECORDS, MS, "run-1")
    commands = [m for m in messages if m.topic == "sink_crm"]
    results = [m for m in messages if m.topic == "sink_results"]
    assert [m.value["idempotency_key"] for m in commands] == keys
    assert [m.key for m in commands] == [m.value["customer_id"] for m in commands]
    assert [r.value["idempotency_key"] for r in results] == keys
    assert {r.value["outcome"] for r in results} <= {REPAIRED}
    codec = default_codec()
    for m in messages:
        codec.encode(m.schema, m.value)


@pytest.mark.parametrize(
    "duplicate",
    [
        Duplicate("cus_A", SAME_CUSTOMER_ID, ("101", "102")),
        Duplicate("cus_A", EMAIL_HELD_BY_SECOND_CONTACT, ("101", "202")),
        Duplicate("cus_A", EMAIL_HELD_BY_OTHER_CUSTOMER, ("101",)),
    ],
    ids=["same customer id", "email held", "email of another customer"],
)
def test_a_duplicate_is_an_open_exception_row_the_admin_can_retry(duplicate: Duplicate) -> None:
    codec = default_codec()
    messages = plan.duplicate_rows([duplicate], RECORDS, MS, "run-1", codec.encode, "p.sink.crm")
    letter = next(m for m in messages if m.topic == "sink_dlq")
    result = next(m for m in messages if m.topic == "sink_results")
    _, record = codec.decode(codec.encode("dead_letter", letter.value))
    row = dead_letter_of(record, 0, 0)
    queue = ExceptionQueue()
    queue.add_dead_letter(row)
    shown = queue.row(row.row_id)
    assert shown is not None and shown.status == "open" and shown.retryable
    assert (row.reason_code, row.sink, row.source_topic) == (DUPLICATE_CONTACT, "crm", "p.sink.crm")
    assert row.row_id == letter.key == plan.duplicate_key("cus_A")
    # its retry (after the merge) sends a correction whose delivery resolves the row
    _, held = codec.decode(row.command)
    assert (held["idempotency_key"], held["billing_state"]) == (row.row_id, "active")
    queue.add_result({"outcome": "delivered", "idempotency_key": row.row_id, "acked_at_ms": MS})
    assert queue.row(row.row_id).status == "resolved"  # type: ignore[union-attr]
    # the row's text names contacts, never the email nor the customer id
    assert "101" in row.last_error and "@" not in row.last_error and "cus_" not in row.last_error
    assert (result.value["outcome"], result.value["reason_code"]) == (REPAIRED, DUPLICATE_CONTACT)
