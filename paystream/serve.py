"""The shell of a paystream HTTP service (``paystream ingest``, ``paystream admin``).

Read the settings once, configure logging, serve the aiohttp app until SIGINT/SIGTERM.
A bad setting raises ``SettingsError`` before anything starts: ``paystream.cli`` prints
it as one line naming the variable and exits 2.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import structlog
from aiohttp import web

from paystream.command_help import command_parser
from paystream.listen import ensure_free
from paystream.logging import configure_logging
from paystream.settings import CommonSettings, load_settings

S = TypeVar("S", bound=CommonSettings)


def serve(
    argv: list[str],
    *,
    name: str,
    description: str,
    settings_model: type[S],
    create_app: Callable[[S], web.Application],
    address: Callable[[S], tuple[str, int]],
    shutdown_timeout_s: Callable[[S], float] = lambda _settings: 5.0,
    starting: Callable[[S], Mapping[str, Any]] | None = None,
) -> int:
    """Run the service ``name`` (its settings ``PAYSTREAM_<NAME>_HOST``/``_PORT``)."""
    variable = f"PAYSTREAM_{name.upper()}"
    parser = command_parser(name)
    parser.add_argument("--host", help=f"listen address (default: {variable}_HOST)")
    parser.add_argument("--port", type=int, help=f"listen port (default: {variable}_PORT)")
    args = parser.parse_args(argv)
    settings = load_settings(settings_model)
    settings.bootstrap_servers  # noqa: B018 - fail now, with one line, when it is unset
    configure_logging(name, settings.paystream_log_level)
    default_host, default_port = address(settings)
    host = args.host or default_host
    port = default_port if args.port is None else args.port
    ensure_free(host, port, f"{variable}_PORT")
    log = structlog.get_logger(name)
    if starting is not None:
        log.info(f"{name}_starting", host=host, port=port, **starting(settings))
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        access_log=None,
        print=lambda _line: log.info(f"{name}_listening", host=host, port=port),
        shutdown_timeout=shutdown_timeout_s(settings),
        handle_signals=True,
    )
    log.info(f"{name}_stopped")
    return 0
