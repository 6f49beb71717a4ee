"""Factories of the CRM, helpdesk and app-webhook sink services (nothing is built at import
time).

A factory checks the settings it needs (credentials only when writes are enabled), so a bad
setting stops the process at start-up; ``run`` builds the consumer, producer and HTTP
client in its own thread and closes them when ``stop`` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from confluent_kafka import Consumer, Producer

from paystream.errors import SettingsError
from paystream.metrics import PaystreamMetrics
from sinks._http import Throttle
from sinks.app_webhook import AppWebhookAdapter, AppWebhookClient
from sinks.contact_memory import DurableContactMemory
from sinks.crm import CrmAdapter
from sinks.helpdesk import HelpdeskAdapter
from sinks.hubspot import HubSpotClient
from sinks.notifications import SINK as APP_WEBHOOK
from sinks.retry import SlidingWindowLimiter
from sinks.runner import SinkAdapter, SinkRunner
from sinks.service import SinkService
from sinks.settings import SinkSettings
from sinks.zendesk import ZendeskClient


class RunnerService:
    """A ``SinkService`` running one ``SinkRunner`` on its own consumer and producer."""

    def __init__(
        self,
        name: str,
        settings: SinkSettings,
        metrics: PaystreamMetrics,
        source_topic: str,
        build_adapter: Callable[[threading.Event], SinkAdapter],
        writes: bool | None = None,
    ) -> None:
        self.name = name
        #: whether calls go out; None: PAYSTREAM_SINK_WRITES says
        self.writes = writes
        self.settings = settings
        self.metrics = metrics
        self.source_topic = source_topic
        self.build_adapter = build_adapter
        #: what ``build_adapter`` opened beside the runner, closed when the runner stops
        self.closers: list[Callable[[], None]] = []

    @property
    def group_id(self) -> str:
        return f"{self.settings.topic_prefix}sinks.{self.name}"

    def runner(self, stop: threading.Event) -> SinkRunner:
        """The runner on a new consumer (in the service's group) and producer."""
        s = self.settings
        return SinkRunner(
            adapter=self.build_adapter(stop),
            consumer=Consumer(s.consumer_config(self.group_id)),
            producer=Producer(s.producer_config(**{"client.id": self.group_id})),
            source_topic=self.source_topic,
            results_topic=s.topics.sink_results,
            dlq_topic=s.topics.sink_dlq,
            writes_enabled=s.writes_enabled if self.writes is None else self.writes,
            policy=s.retry_policy(),
            metrics=self.metrics,
            batch_size=s.paystream_sink_batch_size,
            batch_wait_s=s.paystream_sink_batch_wait_s,
            hash_key=s.paystream_customer_hash_key.get_secret_value(),
            group=self.group_id,
        )

    def run(self, stop: threading.Event) -> None:
        runner = self.runner(stop)
        try:
            runner.run(stop)
        finally:
            if runner.producer is not None:
                runner.producer.flush(10)
            runner.consumer.close()
            runner.adapter.close()
            while self.closers:
                self.closers.pop()()


#: Zendesk's rate budget is spent over tenths of its window, never in one burst (latency);
#: HubSpot's is paced by ``hubspot_limiter``
RATE_SPREAD = 10
#: longest wait at start for sink.crm.contacts to be read whole (then the sink runs on,
#: taking HubSpot's reads for the customers not read yet)
CONTACT_IDS_LOAD_S = 30.0


#: HubSpot calls let out back to back: a batch of new customers makes two (read by email,
#: write), a batch of known ones one
HUBSPOT_BURST = 2


def hubspot_limiter(settings: SinkSettings) -> SlidingWindowLimiter:
    """The CRM sink's budget: the plan's quota per window, let out ``HUBSPOT_BURST`` calls
    at a time, evenly (187 per 10 s: two every 107 ms).

    Under load a batch waits for the next slice of the budget while the next one fills, so
    the slice is what a command waits at most for the quota. Tenths of the window (19 calls
    per second, ``RATE_SPREAD``) went out in a burst and then held every batch up to a
    second: at 500 new customers/s the CRM stage's p95 was 411 ms, with slices of two
    247 ms (docs/benchmarks.md). Throughput is the same: the batches grow meanwhile.
    """
    limit = settings.hubspot_paced_limit
    period = settings.paystream_hubspot_rate_period_s
    return SlidingWindowLimiter(limit, period, spread=max(1, limit // HUBSPOT_BURST))


def create_crm_sink(
    settings: SinkSettings, metrics: PaystreamMetrics, *, contact_ids: bool = True
) -> SinkService:
    """The HubSpot sink; needs HUBSPOT_ACCESS_TOKEN only when writes are enabled.

    With ``contact_ids`` (always, but in the benchmark's old path) it remembers contact ids
    in ``sink.crm.contacts``, read whole before the first batch.
    """
    token = settings.require_hubspot() if settings.writes_enabled else None
    service: RunnerService

    def build(stop: threading.Event) -> SinkAdapter:
        client = None
        if token is not None:
            client = HubSpotClient(
                settings.hubspot_api_base,
                token,
                settings.paystream_sink_timeout_s,
                Throttle(hubspot_limiter(settings), wait=stop.wait),
                time_zone=settings.paystream_hubspot_time_zone,
            )
        memory = memory_for(stop) if client is not None and contact_ids else None
        return CrmAdapter(client, settings.paystream_crm_stale_guard, memory=memory)

    memories: list[DurableContactMemory] = []

    def memory_for(stop: threading.Event) -> DurableContactMemory:
        """The process's one memory (every runner of the service shares it until closed)."""
        if not memories:
            key = settings.paystream_customer_hash_key.get_secret_value()
            memories.append(DurableContactMemory(settings, key))
            service.closers.append(lambda: memories.pop().close())
            memories[0].start(CONTACT_IDS_LOAD_S, stop)
        return memories[0]

    service = RunnerService("crm", settings, metrics, settings.topics.sink_crm, build)
    return service


def create_helpdesk_sink(settings: SinkSettings, metrics: PaystreamMetrics) -> SinkService:
    """The Zendesk sink; needs ZENDESK_API_BASE/EMAIL/API_TOKEN only when writes are enabled."""
    creds = settings.require_zendesk() if settings.writes_enabled else None

    def build(stop: threading.Event) -> SinkAdapter:
        client = None
        if creds is not None:
            base, email, token = creds
            limiter = SlidingWindowLimiter(
                settings.paystream_zendesk_rate_limit,
                settings.paystream_zendesk_rate_period_s,
                RATE_SPREAD,
            )
            client = ZendeskClient(
                base,
                email,
                token,
                settings.paystream_sink_timeout_s,
                Throttle(limiter, wait=stop.wait),
            )
        return HelpdeskAdapter(client, settings.paystream_zendesk_set_requester)

    return RunnerService("helpdesk", settings, metrics, settings.topics.sink_helpdesk, build)


def create_app_webhook_sink(settings: SinkSettings, metrics: PaystreamMetrics) -> SinkService:
    """The product notifications on ``customer.lifecycle``; needs PAYSTREAM_APP_WEBHOOK_URL
    (and its secret, which the settings already required).

    The URL is the switch: set, it posts whatever PAYSTREAM_SINK_WRITES says (that guards
    the third-party CRM and helpdesk; this endpoint is the product's own).
    """
    target = settings.app_webhook
    if target is None:
        raise SettingsError(
            "invalid setting PAYSTREAM_APP_WEBHOOK_URL: required to run the app_webhook sink"
        )
    url, secrets = target

    def build(_stop: threading.Event) -> SinkAdapter:
        return AppWebhookAdapter(AppWebhookClient(url, secrets, settings.paystream_sink_timeout_s))

    lifecycle = settings.topics.customer_lifecycle
    return RunnerService(APP_WEBHOOK, settings, metrics, lifecycle, build, writes=True)
