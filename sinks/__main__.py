"""``paystream sinks [crm|helpdesk|metrics|app_webhook ...]``: run the selected sinks
(default: all; ``app_webhook`` only when PAYSTREAM_APP_WEBHOOK_URL is set).

Each sink runs in its own thread until SIGINT/SIGTERM; the process serves Prometheus
``/metrics``, ``/healthz`` and ``/readyz`` on PAYSTREAM_SINKS_METRICS_PORT (0: off).
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any

import structlog

from paystream.command_help import command_parser
from paystream.listen import ensure_free
from paystream.logging import configure_logging
from paystream.metrics import PaystreamMetrics
from paystream.runtime.lag import export_lag
from paystream.settings import load_settings
from sinks.app import create_app_webhook_sink, create_crm_sink, create_helpdesk_sink
from sinks.health import SinkHealth, serve
from sinks.metrics_sink import create_metrics_sink
from sinks.service import SinkService
from sinks.settings import SinkSettings

SINKS = ("crm", "helpdesk", "metrics", "app_webhook")


def default_sinks(settings: SinkSettings) -> list[str]:
    """What runs when no sink is named: all, the product notifications when configured."""
    return [n for n in SINKS if n != "app_webhook" or settings.app_webhook is not None]


def build_services(
    names: list[str], settings: SinkSettings, metrics: PaystreamMetrics
) -> list[SinkService]:
    services: list[SinkService] = []
    for name in names:
        if name == "crm":
            services.append(create_crm_sink(settings, metrics))
        elif name == "helpdesk":
            services.append(create_helpdesk_sink(settings, metrics))
        elif name == "app_webhook":
            services.append(create_app_webhook_sink(settings, metrics))
        else:
            services.append(create_metrics_sink(settings, metrics))
    return services


def run_services(
    services: list[SinkService], stop: threading.Event, health: SinkHealth | None = None
) -> int:
    """Run each service in a thread; when one fails, stop the others. 0 when all ended well."""
    failed: list[str] = []
    log = structlog.get_logger("sinks")

    def target(service: SinkService) -> None:
        try:
            service.run(stop)
        except Exception as exc:
            failed.append(service.name)
            log.error(
                "sink_failed", sink=service.name, error=type(exc).__name__, detail=str(exc)[:200]
            )
            stop.set()

    threads = [
        threading.Thread(target=target, args=(s,), name=f"sink-{s.name}", daemon=True)
        for s in services
    ]
    for t in threads:
        t.start()
    if health is not None:
        health.watch(threads, stop)
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(0.5)
    return 1 if failed else 0


def serve_metrics(
    settings: SinkSettings, metrics: PaystreamMetrics, health: SinkHealth | None = None
) -> Any:
    """Serve /metrics, /healthz, /readyz on the metrics host (loopback default); None: off."""
    if not settings.paystream_sinks_metrics_port:
        return None
    ensure_free(
        settings.paystream_sinks_metrics_host,
        settings.paystream_sinks_metrics_port,
        "PAYSTREAM_SINKS_METRICS_PORT",
    )
    return serve(
        settings.paystream_sinks_metrics_host,
        settings.paystream_sinks_metrics_port,
        metrics.registry,
        health or SinkHealth(),
    )


def main(argv: list[str]) -> int:
    parser = command_parser("sinks")
    parser.add_argument(
        "sinks",
        nargs="*",
        metavar="SINK",
        help=f"any of {', '.join(SINKS)} (default: all; app_webhook when its URL is set)",
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.sinks if n not in SINKS]
    if unknown:
        parser.error(f"unknown sink {unknown[0]!r} (choose from {', '.join(SINKS)})")
    settings = load_settings(SinkSettings)
    names: list[str] = list(dict.fromkeys(args.sinks)) or default_sinks(settings)
    settings.bootstrap_servers  # noqa: B018 (raises SettingsError naming the variable when unset)
    configure_logging("sinks", settings.paystream_log_level)
    metrics = PaystreamMetrics()
    health = SinkHealth()
    serve_metrics(settings, metrics, health)  # first: a port in use stops it before any consumer
    services = build_services(names, settings, metrics)
    if not services:
        print("paystream sinks: nothing to run", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    structlog.get_logger("sinks").info(
        "sinks_starting", sinks=[s.name for s in services], writes=settings.writes_enabled
    )
    if settings.paystream_sinks_metrics_port and settings.paystream_lag_interval_s:
        # every group's lag, for PaystreamConsumerLagGrowing (any replica's figure will do)
        interval = settings.paystream_lag_interval_s
        threading.Thread(
            target=export_lag, args=(settings, metrics, stop, interval), name="lag", daemon=True
        ).start()
    return run_services(services, stop, health)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
