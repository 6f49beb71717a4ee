"""``paystream worker``: settings → Faust app → ``faust.Worker`` until SIGINT/SIGTERM.

Ready when it logs ``{"event": "worker ready", ...}`` on stderr and ``GET /readyz`` on
``PAYSTREAM_WORKER_PORT`` answers 200 (partitions assigned, tables recovered).
"""

from __future__ import annotations

import logging
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from paystream.command_help import command_parser
from paystream.listen import ensure_free
from paystream.logging import configure_logging
from paystream.settings import load_settings
from processors import localstate
from processors.settings import WorkerSettings
from schemas.topics import WORKER_TABLES


class OneLineErrors(logging.Filter):
    """Faust and aiokafka log exceptions with tracebacks; keep the type, drop the trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{record.getMessage()} ({type(record.exc_info[1]).__name__})"
            record.msg, record.args = message.splitlines()[0], None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


@dataclass(frozen=True)
class LocalTables:
    """What the keep-or-wipe step found, and how to ask the broker again at exit."""

    #: librdkafka admin settings: the cluster's TLS/SASL settings as every other client's
    admin: dict[str, Any]
    changelogs: list[str]
    marker: localstate.CleanShutdown | None
    identity: localstate.BrokerIdentity | None
    decision: localstate.Decision
    #: changelog topic → partition → last offset the kept local files hold
    resume: dict[str, dict[int, int]]

    def broker_identity(self) -> localstate.BrokerIdentity | None:
        return localstate.broker_identity(self.admin, self.changelogs)


def open_local_tables(settings: WorkerSettings, data_dir: Path) -> LocalTables:
    """Keep the local RocksDB files or wipe them (see ``processors.localstate``).

    They are a cache of the changelog topics: kept only when the last run ended cleanly
    against these very topics, else rebuilt from the changelogs.
    """
    changelogs = [settings.topics.changelog(t) for t in WORKER_TABLES]
    admin = settings.admin_config()
    marker = localstate.take_marker(data_dir)
    identity = localstate.broker_identity(admin, changelogs)
    decision = localstate.decide(marker, identity)
    resume: dict[str, dict[int, int]] = {}
    if decision.keep and marker is not None:
        resume = {t: localstate.resume_offsets(marker, t) for t in changelogs}
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    structlog.get_logger().info(
        "local tables", kept=decision.keep, reason=decision.reason, directory=str(data_dir)
    )
    return LocalTables(admin, changelogs, marker, identity, decision, resume)


def _port_free(settings: WorkerSettings) -> None:
    """A web port already taken stops the worker now, before it joins its group."""
    port = settings.paystream_worker_port
    ensure_free(settings.paystream_worker_host, port, "PAYSTREAM_WORKER_PORT")


def main(argv: list[str]) -> int:
    command_parser("worker").parse_args(argv)
    settings = load_settings(WorkerSettings)
    settings.bootstrap_servers  # noqa: B018 - fail early with the variable's name
    _port_free(settings)
    configure_logging("worker", settings.paystream_log_level)
    for handler in logging.getLogger().handlers:
        handler.addFilter(OneLineErrors())

    import faust  # heavy: only when the worker really runs

    from processors import agents, timers, web
    from processors._faust import check_internals
    from processors.app import create_worker, worker_data_dir
    from processors.errors import FaustInternalsMoved

    try:
        check_internals()  # a moved Faust internal stops the worker here, named, not later
    except FaustInternalsMoved as exc:
        structlog.get_logger().error("worker cannot start", error=str(exc))
        return 1

    data_dir = worker_data_dir(settings)
    local = open_local_tables(settings, data_dir)
    parts = create_worker(settings, local.resume)
    agents.register(parts)
    timers.register(parts)
    web.register(parts)
    parts.publisher.start()
    worker = faust.Worker(
        parts.app,
        loglevel="WARNING",
        quiet=True,
        redirect_stdouts=False,
        override_logging=False,
        stdout=sys.stderr,
    )
    # Faust's start-up spinner writes backspaces and ESC[?25h (show the cursor) even when
    # stderr is not a terminal; the worker logs through structlog and never spins.
    worker.spinner = None
    code = 1
    try:
        worker.execute_from_commandline()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0) if isinstance(exc.code, int | None) else 1
    finally:
        flushed = parts.publisher.close()
        # every table write of this run is in its changelog: note where they end,
        # unless the changelogs changed under us meanwhile
        clean = code == 0 and flushed
        identity = local.identity
        if clean and identity and local.broker_identity() == identity:
            offsets = {
                tp: o for tp, o in parts.publisher.acked.items() if tp[0] in local.changelogs
            }
            if local.marker is not None and local.decision.keep:
                offsets = {**local.marker.offsets, **offsets}
            localstate.write_marker(data_dir, localstate.CleanShutdown(identity, offsets))
    return code
