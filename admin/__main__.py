"""``paystream admin``: read the settings once, then serve until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import sys

import structlog
from aiohttp import web

from admin.app import create_app
from admin.settings import AdminSettings
from paystream.logging import configure_logging
from paystream.settings import load_settings


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="paystream admin", description="The exception-queue web view."
    )
    parser.add_argument("--host", help="listen address (default: PAYSTREAM_ADMIN_HOST)")
    parser.add_argument("--port", type=int, help="listen port (default: PAYSTREAM_ADMIN_PORT)")
    args = parser.parse_args(argv)
    settings = load_settings(AdminSettings)
    settings.bootstrap_servers  # noqa: B018 - fail now, with one line, when it is unset
    configure_logging("admin", settings.paystream_log_level)
    host = args.host or settings.paystream_admin_host
    port = settings.paystream_admin_port if args.port is None else args.port
    log = structlog.get_logger("paystream.admin")
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        access_log=None,
        print=lambda _line: log.info("admin_listening", host=host, port=port),
        shutdown_timeout=5,
        handle_signals=True,
    )
    log.info("admin_stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
