"""``paystream ingest``: read the settings once, then serve until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import sys

import structlog
from aiohttp import web

from ingest.app import create_app
from ingest.settings import IngestSettings
from paystream.logging import configure_logging
from paystream.settings import load_settings


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="paystream ingest",
        description="The Stripe webhook service: verified events into Kafka.",
    )
    parser.add_argument("--host", help="listen address (default: PAYSTREAM_INGEST_HOST)")
    parser.add_argument("--port", type=int, help="listen port (default: PAYSTREAM_INGEST_PORT)")
    args = parser.parse_args(argv)
    settings = load_settings(IngestSettings)
    settings.bootstrap_servers  # noqa: B018 - fail now, with one line, when it is unset
    configure_logging("ingest", settings.paystream_log_level)
    host = args.host or settings.paystream_ingest_host
    port = settings.paystream_ingest_port if args.port is None else args.port
    log = structlog.get_logger("ingest")
    log.info(
        "ingest_starting",
        host=host,
        port=port,
        topic=settings.topics.stripe_events,
        secrets_configured=len(settings.webhook_secrets),
        app_events=bool(settings.app_secrets),
        mode=settings.stripe_mode,
    )
    web.run_app(
        create_app(settings),
        host=host,
        port=port,
        access_log=None,
        print=lambda line: log.info("ingest_listening", host=host, port=port),
        shutdown_timeout=settings.paystream_ingest_shutdown_timeout_s,
        handle_signals=True,
    )
    log.info("ingest_stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
