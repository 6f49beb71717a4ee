"""The commands of ``paystream``: what each runs, the variables it reads, its exit codes.

One table for both kinds of help: ``paystream --help`` lists every command with its line,
and each command's own ``--help`` (its module builds its parser with ``command_parser``)
says what it does in plain words, which environment variables it reads and what its exit
codes mean. Importing this module imports no command.
"""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import dataclass

#: The exit codes every command shares.
DONE = (0, "done")
FAILED = (1, "failed; an unexpected error is one line naming its type, never a stack trace")
REFUSED = (2, "a bad setting or argument: one line naming it")
INTERRUPTED = (130, "interrupted (Ctrl-C)")
KAFKA = ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_SECURITY_PROTOCOL")
#: the pages an operator reads next
SETTINGS_PAGE = "docs/settings.md"


@dataclass(frozen=True)
class Command:
    """One command: its module (``main(argv) -> int``), help, variables and exit codes."""

    module: str
    #: the line of ``paystream --help``
    summary: str
    #: the paragraph of the command's own ``--help`` (plain text)
    description: str
    #: the environment variables it reads (beyond the shared ones, e.g. PAYSTREAM_LOG_LEVEL)
    env: tuple[str, ...]
    #: what exit code 1 means for it (0, 2 and 130 mean the same for every command)
    failed: str = FAILED[1]
    #: runs beside ``paystream up``: takes the broker, ports and secrets ``up`` chose
    beside: bool = False

    def exit_codes(self) -> list[tuple[int, str]]:
        return [DONE, (1, self.failed), REFUSED, INTERRUPTED]


COMMANDS: dict[str, Command] = {
    "up": Command(
        "paystream.commands.up",
        "run everything on this machine (embedded broker and store if none configured)",
        "Runs the whole pipeline in the foreground: an embedded broker when "
        "KAFKA_BOOTSTRAP_SERVERS is unset, the topics, ingest, worker, sinks and the admin "
        "view (with a generated token and a one-click sign-in link in development). Prints "
        "the URLs, the webhook secret and the stripe listen line; Ctrl-C stops everything.",
        (
            *KAFKA,
            "CLICKHOUSE_URL",
            "STRIPE_WEBHOOK_SECRETS",
            "PAYSTREAM_ADMIN_TOKEN",
            "PAYSTREAM_INGEST_PORT",
            "PAYSTREAM_ADMIN_PORT",
            "PAYSTREAM_WORKER_PORT",
            "PAYSTREAM_BROKER_PORT",
            "PAYSTREAM_SINK_WRITES",
            "HUBSPOT_ACCESS_TOKEN",
            "ZENDESK_API_TOKEN",
            "PAYSTREAM_APP_WEBHOOK_URL",
            "PAYSTREAM_APP_WEBHOOK_SECRET",
            "PAYSTREAM_DATA_DIR",
            "PAYSTREAM_ENV",
        ),
        failed="a process it started exited, so it stopped the others",
    ),
    "ingest": Command(
        "ingest.__main__",
        "the Stripe webhook service (stateless; scale out behind a load balancer)",
        "Verifies Stripe's signed webhooks and first-party app events and publishes each "
        "to Kafka before it answers 200.",
        (
            "STRIPE_WEBHOOK_SECRETS",
            "STRIPE_MODE",
            "STRIPE_SIGNATURE_TOLERANCE_S",
            "PAYSTREAM_APP_SECRETS",
            *KAFKA,
            "PAYSTREAM_INGEST_HOST",
            "PAYSTREAM_INGEST_PORT",
            "PAYSTREAM_TRUSTED_PROXIES",
            "PAYSTREAM_ENV",
        ),
    ),
    "worker": Command(
        "processors.__main__",
        "the Faust worker: dedup, billing lifecycle, timers, customer-state API",
        "Deduplicates Stripe and app events, folds them into one billing state per "
        "customer and writes the commands the sinks carry out.",
        (
            *KAFKA,
            "PAYSTREAM_API_TOKEN",
            "PAYSTREAM_WORKER_HOST",
            "PAYSTREAM_WORKER_PORT",
            "PAYSTREAM_ONBOARDING_STUCK_AFTER",
            "PAYSTREAM_DATA_DIR",
            "PAYSTREAM_ENV",
        ),
    ),
    "sinks": Command(
        "sinks.__main__",
        "sink consumers: crm, helpdesk, metrics, app_webhook (default: all)",
        "Carries the worker's commands out: HubSpot contacts, Zendesk tickets, ClickHouse "
        "rows. Dry-run unless PAYSTREAM_SINK_WRITES=enabled. app_webhook POSTs each "
        "billing-state change to PAYSTREAM_APP_WEBHOOK_URL, signed, when that is set.",
        (
            *KAFKA,
            "PAYSTREAM_SINK_WRITES",
            "HUBSPOT_API_BASE",
            "HUBSPOT_ACCESS_TOKEN",
            "ZENDESK_API_BASE",
            "ZENDESK_EMAIL",
            "ZENDESK_API_TOKEN",
            "CLICKHOUSE_URL",
            "PAYSTREAM_APP_WEBHOOK_URL",
            "PAYSTREAM_APP_WEBHOOK_SECRET",
            "PAYSTREAM_ENV",
        ),
    ),
    "admin": Command(
        "admin.__main__",
        "the exception-queue web view",
        "Serves the exception queue: every command a sink gave up on, with Retry and "
        "Dismiss. Refuses to start without PAYSTREAM_ADMIN_TOKEN.",
        (
            "PAYSTREAM_ADMIN_TOKEN",
            "PAYSTREAM_ADMIN_HOST",
            "PAYSTREAM_ADMIN_PORT",
            *KAFKA,
            "PAYSTREAM_ENV",
        ),
    ),
    "demo": Command(
        "paystream.commands.demo",
        "send a signed storyline of Stripe events to a running ingest",
        "Sends a realistic, signed storyline of Stripe events (checkout, failed renewals, "
        "recovery, a chargeback, cancellation) to ingest and prints each answer.",
        ("STRIPE_WEBHOOK_SECRETS", "PAYSTREAM_INGEST_PORT"),
        failed="ingest refused or did not answer a request",
        beside=True,
    ),
    "reconcile": Command(
        "ingest.reconcile",
        "list events from the Stripe API and publish the ones the pipeline never saw",
        "Lists the window's events from Stripe's Events API and publishes them as webhooks "
        "would have been (dedup makes repeating it safe); with --dry-run it only lists them "
        "and says what it would publish.",
        (
            "STRIPE_API_KEY",
            "STRIPE_API_BASE",
            *KAFKA,
            "PAYSTREAM_WORKER_URL",
            "PAYSTREAM_API_TOKEN",
            "PAYSTREAM_RECONCILE_REQUESTS_PER_S",
        ),
        failed="an event was not published, or the listing stopped early",
        beside=True,
    ),
    "status": Command(
        "paystream.commands.status",
        "one screen for an operator: webhooks, sync latency, exceptions, lag",
        "Shows the webhook success rate, sync latency p50/p95, open exceptions and consumer lag.",
        (*KAFKA, "CLICKHOUSE_URL", "PAYSTREAM_INGEST_PORT", "PAYSTREAM_STATUS_INGEST_METRICS_URL"),
        beside=True,
    ),
    "topics": Command(
        "paystream.commands.topics",
        "create or check every topic",
        "Creates every topic with its partitions, replication and retention or compaction, "
        "or checks the ones that exist.",
        (
            *KAFKA,
            "PAYSTREAM_TOPIC_PREFIX",
            "PAYSTREAM_TOPIC_PARTITIONS",
            "PAYSTREAM_REPLICATION_FACTOR",
            "PAYSTREAM_DLQ_RETENTION",
        ),
        beside=True,
    ),
    "crm-setup": Command(
        "sinks.crm_setup",
        "create the CRM's custom contact properties",
        "Creates the HubSpot contact properties the CRM sink writes (and their group), or "
        "says how existing ones differ.",
        ("HUBSPOT_API_BASE", "HUBSPOT_ACCESS_TOKEN"),
        failed="HubSpot refused a request, or an existing property differs",
        beside=True,
    ),
    "doctor": Command(
        "paystream.commands.doctor",
        "check Stripe, the CRM, the helpdesk and the pipeline; a line per check",
        "The first hour of triage as one command: checks the Stripe webhook endpoints and "
        "deliveries, what the worker did with the last 20 payment events, the CRM and "
        "helpdesk credentials, the topics, the metrics store, consumer lag, the environment "
        "rules as each process judges them and (PROMETHEUS_URL) the alert rules and scrape "
        "targets, a line per check with the fix.",
        (
            "STRIPE_API_KEY",
            "STRIPE_API_BASE",
            "PAYSTREAM_PUBLIC_URL",
            "PAYSTREAM_WORKER_URL",
            "PAYSTREAM_API_TOKEN",
            "HUBSPOT_API_BASE",
            "HUBSPOT_ACCESS_TOKEN",
            "ZENDESK_API_BASE",
            "ZENDESK_EMAIL",
            "ZENDESK_API_TOKEN",
            *KAFKA,
            "CLICKHOUSE_URL",
            "PROMETHEUS_URL",
        ),
        failed="a check found a problem",
        beside=True,
    ),
    "crm-repair": Command(
        "paystream.commands.crm_repair",
        "read the CRM back and correct drifted or duplicate contacts",
        "Reads every HubSpot contact with a stripe_customer_id and the worker's canonical "
        "records, and lists each drifted contact (field, CRM value, canonical value, since "
        "when), each duplicate (two contacts with one customer id, or a customer's email held "
        "by a second contact) and each customer the CRM never got. Dry-run by default; "
        "--apply sends the corrections through sink.crm (the CRM sink writes them, with its "
        "rate limits and dead letters) and opens an exception-queue row (duplicate_contact) "
        "per duplicate for a person to merge; both count as manual interventions. --json for "
        "machines.",
        (
            "HUBSPOT_API_BASE",
            "HUBSPOT_ACCESS_TOKEN",
            "PAYSTREAM_WORKER_URL",
            "PAYSTREAM_API_TOKEN",
            "PAYSTREAM_CRM_SEARCH_PER_SECOND",
            *KAFKA,
        ),
        failed="contacts drifted or customers are missing (dry run), or HubSpot, the worker "
        "or the broker did not answer",
        beside=True,
    ),
    "forget": Command(
        "paystream.commands.forget",
        "erase one customer's personal data from paystream's own stores",
        "Erases one customer from paystream's own stores: the worker's record (an erase "
        "event on app.events; the worker deletes it and tombstones its changelog, confirmed "
        "by the worker API's 404), the exception queue's rows (tombstones and erasure markers "
        "on admin.exceptions) and the metrics store's rows by the customer's hash. Then says "
        "what it cannot erase: HubSpot, Zendesk, the topics that are not compacted until "
        "their retention, the logs. A line per store; --json for machines.",
        (
            *KAFKA,
            "PAYSTREAM_WORKER_URL",
            "PAYSTREAM_API_TOKEN",
            "CLICKHOUSE_URL",
            "PAYSTREAM_CUSTOMER_HASH_KEY",
            "PAYSTREAM_DLQ_RETENTION",
            "PAYSTREAM_DATA_DIR",
        ),
        failed="a store of paystream's own was not erased, or the worker did not confirm "
        "the erase within --wait (the erase event stays in app.events: run it again)",
        beside=True,
    ),
}


def epilog(command: Command) -> str:
    """The end of a command's ``--help``: variables, where it finds ``up``, exit codes."""
    lines = ["environment variables (a .env file in this directory is read too):"]
    lines += [f"  {name}" for name in command.env]
    lines.append(f"  (every setting, with its default: {SETTINGS_PAGE})")
    if command.beside:
        lines += [
            "",
            "Beside a running `paystream up` (same directory) the broker, ports and secrets",
            "it chose are used for every variable not set here.",
        ]
    lines += ["", "exit codes:"]
    lines += [f"  {code:<3} {meaning}" for code, meaning in command.exit_codes()]
    return "\n".join(lines)


def command_parser(name: str) -> argparse.ArgumentParser:
    """The argument parser of ``paystream NAME``, with its plain-text help."""
    command = COMMANDS[name]
    return argparse.ArgumentParser(
        prog=f"paystream {name}",
        description=textwrap.fill(command.description, 88),
        epilog=epilog(command),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
