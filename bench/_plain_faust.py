"""The baseline of bench/worker.py: a plain Faust agent, one event at a time.

It does the least a worker must: decode the event, update a table, send a CRM command with
Faust's own producer. Run by bench/worker.py with the same environment as the worker.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import faust

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.codec import CRM_COMMAND, STRIPE_EVENT, default_codec
from schemas.topics import Topics


def main() -> None:
    prefix = os.environ["PAYSTREAM_TOPIC_PREFIX"]
    partitions = int(os.environ["PAYSTREAM_TOPIC_PARTITIONS"])
    embedded = os.environ.get("PAYSTREAM_BROKER_PROFILE") == "embedded"
    topics = Topics(prefix, partitions)
    tuning = (
        {"producer_max_batch_size": 1, "broker_session_timeout": 6, "broker_heartbeat_interval": 1}
        if embedded
        else {}
    )
    app = faust.App(
        prefix + "plain",
        broker="kafka://" + os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        store="memory://",
        # bench/worker.py's temporary directory: Faust's default is ./<app id>-data
        datadir=os.environ["PAYSTREAM_DATA_DIR"],
        processing_guarantee="at_least_once",
        key_serializer="raw",
        value_serializer="raw",
        topic_allow_declare=False,
        topic_disable_leader=True,
        table_standby_replicas=0,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        autodiscover=False,
        **tuning,
    )
    codec = default_codec()
    source = app.topic(topics.stripe_events, key_type=bytes, value_type=bytes)
    crm = app.topic(topics.sink_crm, key_type=bytes, value_type=bytes)
    table = app.Table("customers", default=None, partitions=partitions)

    @app.agent(source)
    async def plain(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            record = codec.decode_as(STRIPE_EVENT, event.value)
            state = "active" if record["type"] == "invoice.paid" else "payment_failed"
            table[event.key] = state.encode()
            command = {
                "idempotency_key": f"crm:{record['customer_id']}:{record['event_id']}",
                "customer_id": record["customer_id"],
                "billing_state": state,
                "billing_state_changed_at_ms": record["created"] * 1000,
                "cause_event_id": record["event_id"],
                "cause_event_type": record["type"],
                "event_created": record["created"],
                "received_at_ms": record["received_at_ms"],
                "processed_at_ms": int(time.time() * 1000),
                "correlation_id": record["correlation_id"],
            }
            await crm.send(key=event.key, value=codec.encode(CRM_COMMAND, command))

    @app.task
    async def ready() -> None:
        recovery = app.tables.recovery
        while not (recovery.completed.is_set() and not app.rebalancing):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        print('{"event": "worker ready"}', file=sys.stderr, flush=True)

    faust.Worker(
        app, loglevel="WARNING", quiet=True, redirect_stdouts=False
    ).execute_from_commandline()


if __name__ == "__main__":
    main()
