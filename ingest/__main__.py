"""``paystream ingest``: read the settings once, then serve until SIGINT/SIGTERM."""

from __future__ import annotations

import sys
from typing import Any

from ingest.app import create_app
from ingest.settings import IngestSettings
from paystream import cli
from paystream.serve import serve


def starting(settings: IngestSettings) -> dict[str, Any]:
    """What the first log line says about this ingest (never a secret, only counts)."""
    return {
        "topic": settings.topics.stripe_events,
        "secrets_configured": len(settings.webhook_secrets),
        "app_events": bool(settings.app_secrets),
        "mode": settings.stripe_mode,
    }


def main(argv: list[str]) -> int:
    return serve(
        argv,
        name="ingest",
        description="The Stripe webhook service: verified events into Kafka.",
        settings_model=IngestSettings,
        create_app=create_app,
        address=lambda s: (s.paystream_ingest_host, s.paystream_ingest_port),
        shutdown_timeout_s=lambda s: s.paystream_ingest_shutdown_timeout_s,
        starting=starting,
    )


if __name__ == "__main__":  # ``python -m ingest``: as ``paystream ingest`` (one-line errors)
    sys.exit(cli.main(["ingest", *sys.argv[1:]]))
