"""``paystream crm-repair``: read the CRM back and correct it through the CRM sink.

Reads every HubSpot contact with a ``stripe_customer_id`` and the worker's canonical
records, and lists the drifted contacts (field, CRM value, canonical value, since when),
the duplicates and the customers the CRM never got (``checks``). Dry-run by default;
``--apply`` sends each correction through ``sink.crm`` as the worker's own command and
opens an exception-queue row per duplicate (``plan``), each counted as a manual
intervention. ``--json`` for machines.

A command on the floor above ``paystream``'s ground: it imports no stage, reads the worker
over HTTP and reaches the sinks through Kafka. The report goes to the operator's terminal
(emails included: it is the command's output); nothing is logged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from paystream.command_help import command_parser
from paystream.commands.crm_repair.checks import (
    Findings,
    Record,
    compare,
    emails_to_look_up,
    set_apart_queued,
)

WIDE = 22
DRY_RUN_SINKS = (
    "note: PAYSTREAM_SINK_WRITES is dry-run here; sinks run with it build the corrections "
    "and never send them (PAYSTREAM_SINK_WRITES=enabled on the sinks writes them)"
)


def when(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _cell(value: str | None) -> str:
    text = "(empty)" if value in (None, "") else str(value)
    return text if len(text) <= WIDE else text[: WIDE - 1] + "…"


def render(findings: Findings, header: str) -> str:
    """The terminal report: one table per kind, then what to do."""
    lines = [header, ""]
    contacts = len({d.contact_id for d in findings.drifts})
    lines.append(f"drifted contacts ({contacts}; {len(findings.drifts)} field(s))")
    if findings.drifts:
        lines.append(
            f"  {'customer':<19} {'contact':<8} {'field':<24} {'CRM value':<{WIDE}} "
            f"{'canonical value':<{WIDE}} since"
        )
    for d in findings.drifts:
        note = "  (date set later by hand: overwritten)" if d.crm_later_ms else ""
        lines.append(
            f"  {d.customer_id:<19} {d.contact_id:<8} {d.field:<24} {_cell(d.crm_value):<{WIDE}} "
            f"{_cell(d.canonical_value):<{WIDE}} {when(d.since_ms)}{note}"
        )
    lines += ["", f"duplicates ({len(findings.duplicates)}): a person merges them in HubSpot"]
    for dup in findings.duplicates:
        kind = dup.kind.replace("_", " ")
        lines.append(f"  {dup.customer_id:<19} contacts {', '.join(dup.contact_ids):<20} {kind}")
    if findings.queued:
        lines.append(
            f"  and {len(findings.queued)} already in the exception queue, waiting for the merge: "
            + ", ".join(d.customer_id for d in findings.queued)
        )
    lines += ["", f"customers the CRM never got ({len(findings.missing)})"]
    for m in findings.missing:
        lines.append(f"  {m.customer_id:<19} {m.billing_state:<20} since {when(m.since_ms)}")
    if findings.unknown:
        lines += [
            "",
            f"contacts whose customer the worker does not know ({len(findings.unknown)}), "
            "left alone: " + ", ".join(findings.unknown),
        ]
    return "\n".join(lines)


def as_json(findings: Findings, applied: dict[str, int] | None) -> str:
    body: dict[str, Any] = {
        "clean": findings.clean,
        "drifts": [asdict(d) for d in findings.drifts],
        "duplicates": [asdict(d) for d in findings.duplicates],
        "missing": [asdict(m) for m in findings.missing],
        "unknown_contacts": list(findings.unknown),
        "queued_duplicates": [asdict(d) for d in findings.queued],
        "applied": applied,
    }
    return json.dumps(body, indent=2)


def summary(findings: Findings, applied: dict[str, int] | None) -> str:
    counts = (
        f"{len({d.contact_id for d in findings.drifts})} contact(s) drifted, "
        f"{len(findings.duplicates)} duplicate(s), {len(findings.missing)} customer(s) missing"
    )
    if findings.clean:
        return "nothing to repair" + (
            f" ({len(findings.queued)} duplicate(s) wait in the exception queue)"
            if findings.queued
            else ""
        )
    if applied is None:
        return (
            f"{counts}: `paystream crm-repair --apply` corrects them and puts each duplicate "
            "in the exception queue (dry run: nothing sent)"
        )
    return (
        f"{counts}: sent {applied['corrections']} correction(s) through sink.crm, opened "
        f"{applied['duplicates']} exception-queue row(s) (duplicate_contact)"
    )


def findings_now(settings: Any) -> tuple[Findings, dict[str, Record]]:
    from paystream.commands.crm_repair import plan, shell

    records = shell.read_records(settings)
    hubspot = shell.hubspot_client(settings)
    try:
        searched = shell.search_contacts(hubspot)
        contacts = shell.confirmed(hubspot, searched, compare(searched, records))
        holders = shell.email_holders(hubspot, emails_to_look_up(contacts, records))
    finally:
        hubspot.close()
    findings = compare(contacts, records, holders)
    if findings.duplicates:
        findings = set_apart_queued(findings, shell.open_rows(settings), plan.duplicate_key)
    return findings, records


def repair(settings: Any, findings: Findings, records: dict[str, Record]) -> dict[str, int]:
    from paystream.commands.crm_repair import plan, shell

    now_ms, run = int(time.time() * 1000), shell.run_id()
    sent = plan.corrections(findings, records, now_ms, run)
    rows = plan.duplicate_rows(
        findings.duplicates, records, now_ms, run, shell.encoder(), settings.topics.sink_crm
    )
    shell.apply(settings, [*sent, *rows])
    return {"corrections": len(findings.correctable), "duplicates": len(findings.duplicates)}


def main(argv: Sequence[str]) -> int:
    parser = command_parser("crm-repair")
    parser.add_argument("--apply", action="store_true", help="send the corrections")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(list(argv))
    from paystream.commands.crm_repair.shell import CrmRepairSettings, RepairError
    from paystream.runtime.running_stack import load_beside_running_stack

    settings = load_beside_running_stack(CrmRepairSettings)
    try:
        findings, records = findings_now(settings)
        applied = repair(settings, findings, records) if args.apply else None
    except RepairError as exc:
        print(f"paystream crm-repair: {exc}")
        return 1
    mode = "applying" if args.apply else "dry run"
    header = f"paystream crm-repair  ({mode}; topics {settings.topic_prefix}*)"
    if args.json:
        print(as_json(findings, applied))
    else:
        print(render(findings, header) + "\n\n" + summary(findings, applied))
        if applied and applied["corrections"] and not settings.writes_enabled:
            print(DRY_RUN_SINKS)
    return 0 if findings.clean or applied is not None else 1
