"""The ``paystream`` command: one entry point, one sub-command per process or tool.

Each sub-command's module is imported only when it runs, so ``paystream topics`` never
loads Faust and ``paystream ingest`` never loads chdb; ``paystream --help`` imports none.
A command run beside a running ``paystream up`` finds it: the settings ``up`` chose are
added to this process's environment first (a variable set here still wins). Every
``PaystreamError`` (a bad setting, an unreachable broker, a refused request) ends the
process with one line (exit 2); no stack trace is ever printed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from dotenv import dotenv_values

from paystream.command_help import COMMANDS
from paystream.errors import PaystreamError
from paystream.runtime.running_stack import environment_beside

DESCRIPTION = (
    "Stripe webhooks to Kafka, one billing state per customer, synced to HubSpot and Zendesk."
)
EPILOG = (
    "`paystream COMMAND --help` says what a command reads (its environment variables) and "
    "what its exit codes mean."
)


def version() -> str:
    """The installed package's version (its metadata, so it is the one pyproject says)."""
    try:
        return importlib.metadata.version("paystream")
    except importlib.metadata.PackageNotFoundError:  # run from a tree that is not installed
        return "unknown"


def parser() -> argparse.ArgumentParser:
    """``paystream``'s own parser: the command's name, ``--help`` and ``--version``."""
    top = argparse.ArgumentParser(
        prog="paystream",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=lambda prog: argparse.HelpFormatter(prog, max_help_position=18),
    )
    top.add_argument("--version", action="version", version=f"paystream {version()}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        commands.add_parser(name, help=command.summary, add_help=False)
    return top


def _resolve(command: str) -> Callable[[list[str]], int]:
    module = importlib.import_module(COMMANDS[command].module)
    entry: Callable[[list[str]], int] = module.main
    return entry


def _beside_running_stack() -> None:
    """Add what a running ``up`` chose to the environment, for every variable not set."""
    dotenv = {k: v for k, v in dotenv_values(".env").items() if v is not None}
    data_dir = os.environ.get("PAYSTREAM_DATA_DIR") or dotenv.get("PAYSTREAM_DATA_DIR") or "var"
    os.environ.update(environment_beside(Path(data_dir), [*os.environ, *dotenv]))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # the command's name alone: everything after it is the command's own (its --help too)
    name = parser().parse_args(args[:1]).command
    try:
        if COMMANDS[name].beside:
            _beside_running_stack()
        return _resolve(name)(args[1:])
    except PaystreamError as exc:
        print(f"paystream {name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of defence: one line, no stack trace
        print(f"paystream {name}: unexpected error ({type(exc).__name__})", file=sys.stderr)
        return 1


def run() -> None:
    raise SystemExit(main())
