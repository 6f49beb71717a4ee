"""``paystream doctor``: the first hour of triage as one command.

Checks the Stripe webhook endpoints, recent deliveries and the last payment events (with
what the worker did with each), the HubSpot token and properties, the Zendesk agent, the
topics, the metrics store, consumer lag, the environment rules and, with
``PROMETHEUS_URL``, the alert rules and scrape targets. One line per check, ``ok`` or the
problem with its fix; ``--json`` for machines; exit 1 on any problem. Nothing secret is
printed.

This package is a command, one floor above ``paystream``'s ground (settings, runtime,
vocabulary), and imports no stage: its shell (``paystream.commands.doctor.shell``) reads the
APIs with the definitions the stages share from the ground floor (``paystream.crm_properties``,
``paystream.stripe_objects``, ``paystream.destinations``); ``environment`` judges each
process's settings with the ground floor's own rules; the worker is asked over its HTTP API
what it did with each event. The checks (``paystream.commands.doctor.checks``) are pure.
Nothing imports this package but the command table.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict

from paystream.command_help import command_parser
from paystream.commands.doctor.checks import Finding
from paystream.errors import SettingsError

WIDTH = 30


def render(findings: Sequence[Finding], header: str) -> str:
    """The terminal report: one line per check, its fix and details indented below."""
    lines = [header, ""]
    for f in findings:
        lines.append(f"{'ok' if f.ok else 'PROBLEM':<8} {f.check:<{WIDTH}} {f.message}")
        if f.fix:
            lines.append(f"{'':<9}{'':<{WIDTH}} fix: {f.fix}")
        lines.extend(f"{'':<9}{'':<{WIDTH}}   {d}" for d in f.details)
    problems = sum(1 for f in findings if not f.ok)
    lines += ["", f"{problems} problem(s)" if problems else "no problem found"]
    return "\n".join(lines)


def as_json(findings: Sequence[Finding]) -> str:
    return json.dumps(
        {"ok": all(f.ok for f in findings), "findings": [asdict(f) for f in findings]}, indent=2
    )


def main(argv: list[str]) -> int:
    parser = command_parser("doctor")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    from paystream.commands.doctor.shell import DoctorSettings, collect
    from paystream.runtime.running_stack import load_beside_running_stack

    logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)
    try:
        settings = load_beside_running_stack(DoctorSettings)
    except SettingsError as exc:
        # Doctor cannot read the APIs with these settings; what each process would say of
        # them can still be told.
        from paystream.commands.doctor.environment import environment_findings

        findings = [
            Finding(
                "doctor.settings",
                False,
                f"doctor cannot run the other checks: {exc}",
                "correct that variable, then run `paystream doctor` again",
            ),
            *environment_findings(),
        ]
        print(as_json(findings) if args.json else render(findings, "paystream doctor"))
        return 1
    findings = collect(settings)
    header = f"paystream doctor  ({settings.stripe_mode} mode, topics {settings.topic_prefix}*)"
    print(as_json(findings) if args.json else render(findings, header))
    return 0 if all(f.ok for f in findings) else 1
