"""crm-repair's report: every finding in its table, what to do next, the same in JSON."""

from __future__ import annotations

import json

from paystream.commands.crm_repair import as_json, render, summary
from paystream.commands.crm_repair.checks import Contact, Record, compare, iso8601_ms

MS = 1_765_000_000_000
A = Record("cus_A", "active", MS, "a@example.com", "user_1", "evt_1", "invoice.paid")
B = Record("cus_B", "payment_failed", MS, "b@example.com", None, "evt_2", "invoice.payment_failed")
C = Record("cus_C", "canceled", MS, "c@example.com")
RECORDS = {"cus_A": A, "cus_B": B, "cus_C": C}
CONTACTS = [
    Contact("101", "cus_A", "a@example.com", "user_1", "canceled", iso8601_ms(MS), MS + 60_000),
    Contact("102", "cus_B", "personal@example.com", None, "payment_failed", iso8601_ms(MS)),
    Contact("103", "cus_gone", "g@example.com"),
]
HOLDERS = {"b@example.com": Contact("204", email="b@example.com")}


def test_the_report_names_every_finding_and_the_next_step() -> None:
    findings = compare(CONTACTS, RECORDS, HOLDERS)
    text = render(findings, "paystream crm-repair") + "\n" + summary(findings, None)
    assert "cus_A" in text and "billing_state" in text and "canceled" in text
    assert "2025-12-06 05:47 UTC" in text  # since the contact's edit
    assert "contacts 102, 204" in text and "email held by second contact" in text
    assert "cus_C" in text and "never got (1)" in text
    assert "left alone: 103" in text
    assert text.endswith("in the exception queue (dry run: nothing sent)")
    applied = summary(findings, {"corrections": 2, "duplicates": 1})
    assert "sent 2 correction(s) through sink.crm" in applied and "1 exception-queue row" in applied


def test_nothing_to_repair_says_so() -> None:
    clean = compare(CONTACTS[:1], {"cus_A": Record("cus_A", "canceled", MS, user_id="user_1")})
    assert summary(clean, None) == "nothing to repair"


def test_json_holds_the_same_findings() -> None:
    findings = compare(CONTACTS, RECORDS, HOLDERS)
    body = json.loads(as_json(findings, None))
    assert body["clean"] is False
    assert [(d["customer_id"], d["field"]) for d in body["drifts"]] == [("cus_A", "billing_state")]
    assert [d["contact_ids"] for d in body["duplicates"]] == [["102", "204"]]
    assert [m["customer_id"] for m in body["missing"]] == ["cus_C"]
    assert body["unknown_contacts"] == ["103"]


def test_a_date_set_later_by_hand_is_named_and_corrected_like_any_drift() -> None:
    later = Contact("101", "cus_A", "a@example.com", "user_1", "active", iso8601_ms(MS + 1))
    findings = compare([later], {"cus_A": A})
    text = render(findings, "paystream crm-repair")
    assert "billing_state_changed_at" in text and "(date set later by hand: overwritten)" in text
    assert summary(findings, {"corrections": 1, "duplicates": 0}).startswith(
        "1 contact(s) drifted, 0 duplicate(s), 0 customer(s) missing: sent 1 correction(s)"
    )
    (drift,) = json.loads(as_json(findings, None))["drifts"]
    assert drift["crm_later_ms"] == MS + 1
