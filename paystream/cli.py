"""The ``paystream`` command: one entry point, one sub-command per process or tool.

Each sub-command's module is imported only when it runs, so ``paystream topics`` never
loads Faust and ``paystream ingest`` never loads chdb. A bad setting ends the process with
one line naming the variable (exit 2); no stack trace is ever printed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from paystream.errors import PaystreamError

#: sub-command → (module, help). The module exposes ``main(argv: list[str]) -> int``.
COMMANDS: dict[str, tuple[str, str]] = {
    "up": ("paystream.up", "run everything on this machine (embedded broker and store if none)"),
    "ingest": ("ingest.__main__", "the Stripe webhook service"),
    "worker": ("processors.__main__", "the Faust worker: dedup, lifecycle, timers"),
    "sinks": ("sinks.__main__", "sink consumers: crm, helpdesk, metrics (default: all)"),
    "admin": ("admin.__main__", "the exception-queue web view"),
    "demo": ("paystream.demo", "send a signed storyline of Stripe events to a running ingest"),
    "reconcile": (
        "ingest.reconcile",
        "list events from the Stripe API and publish the ones the pipeline never saw",
    ),
    "status": ("paystream.status", "one screen for an operator"),
    "topics": ("paystream.topics", "create or check every topic"),
    "crm-setup": ("sinks.crm_setup", "create the CRM's custom contact properties"),
    "doctor": ("paystream.doctor", "check Stripe, the CRM, the helpdesk and the pipeline"),
    "crm-repair": (
        "sinks.crm_repair",
        "read the CRM back and correct drifted or duplicate contacts",
    ),
    "forget": ("paystream.forget", "erase one customer from paystream's own stores"),
}


def not_yet_available(command: str) -> Callable[[list[str]], int]:
    """The main of a command whose issue has not landed: says so and exits 2."""

    def main(argv: list[str]) -> int:
        print(f"paystream {command}: not yet available in this version", file=sys.stderr)
        return 2

    return main


def _resolve(command: str) -> Callable[[list[str]], int]:
    module_name, _ = COMMANDS[command]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return not_yet_available(command)
        raise
    entry: Callable[[list[str]], int] | None = getattr(module, "main", None)
    return entry if entry is not None else not_yet_available(command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paystream", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=sorted(COMMANDS), help="what to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command's own arguments")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return _resolve(args.command)(list(args.args))
    except PaystreamError as exc:
        print(f"paystream {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of defence: one line, no stack trace
        print(f"paystream {args.command}: unexpected error ({type(exc).__name__})", file=sys.stderr)
        return 1


def run() -> None:
    raise SystemExit(main())
