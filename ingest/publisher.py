"""The bridge from asyncio to one confluent-kafka producer per process.

``produce()`` only enqueues; a daemon thread polls the producer continuously and hands each
batch of delivery reports to the event loop with one ``call_soon_threadsafe``, where they
resolve the futures the handlers await. A handler answers 2xx only after its future holds
a delivery report without error (acks=all, idempotent producer), so nothing acknowledged
can be missing from Kafka. No business logic runs in a callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from functools import partial
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from ingest.errors import PublishFailed, PublishTimeout

Headers = list[tuple[str, str | bytes | None]]
_Report = tuple["asyncio.Future[KafkaError | None]", "KafkaError | None"]

#: How long one poll waits for delivery reports; also how fast the thread sees a stop.
POLL_INTERVAL_S = 0.05
#: Wait before retrying a produce refused because librdkafka's local queue is full.
BUFFER_FULL_WAIT_S = 0.01


#: The same client complaint (e.g. "connection refused" while the broker is away) is
#: logged at most once per this many seconds.
LOG_REPEAT_S = 10.0


class _Throttle:
    """Says whether a message with this key may be logged now (poll thread only)."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def __call__(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -LOG_REPEAT_S) < LOG_REPEAT_S:
            return False
        self._last[key] = now
        return True


class _KafkaLog:
    """Routes librdkafka's log lines into the structured log (``logger`` setting)."""

    def __init__(self) -> None:
        # The poll thread does not see the main thread's context variables.
        self._log = structlog.get_logger("ingest.kafka").bind(service="ingest")
        self._throttle = _Throttle()

    def log(self, level: int, fmt: str, *args: Any) -> None:
        message = fmt % args
        if self._throttle(message[:80]):
            self._log.warning("kafka_client", syslog_level=level, message=message)


class Publisher:
    """Publishes to Kafka and reports each delivery to the awaiting coroutine."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._config = dict(config)
        self._producer: Producer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._reports: list[_Report] = []
        self._fatal: str | None = None
        self._log = structlog.get_logger("ingest.publisher").bind(service="ingest")
        self._throttle = _Throttle()

    # -- lifecycle (loop thread) -------------------------------------------------------

    async def start(self) -> None:
        """Create the producer and its polling thread (call once, from the event loop)."""
        self._loop = asyncio.get_running_loop()
        config = dict(self._config)
        config.setdefault("error_cb", self._on_error)
        config.setdefault("logger", _KafkaLog())
        self._producer = Producer(config)
        self._thread = threading.Thread(target=self._run, name="kafka-poll", daemon=True)
        self._thread.start()

    async def close(self, flush_timeout_s: float) -> int:
        """Stop polling, flush what is queued; return how many messages were left unsent."""
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        producer, self._producer = self._producer, None
        if producer is None:
            return 0
        left = await asyncio.to_thread(self._flush, producer, flush_timeout_s)
        return left

    # -- publishing (loop thread) ------------------------------------------------------

    async def publish(
        self, topic: str, key: bytes, value: bytes, headers: Headers, timeout_s: float
    ) -> None:
        """Return once the broker acknowledged the message; raise ``PublishUnavailable``."""
        producer, loop = self._producer, self._loop
        if producer is None or loop is None:
            raise PublishFailed("publisher not running")
        deadline = time.monotonic() + timeout_s
        future: asyncio.Future[KafkaError | None] = loop.create_future()
        on_delivery = partial(self._on_delivery, future)
        while True:
            try:
                producer.produce(topic, value, key, on_delivery=on_delivery, headers=headers)
                break
            except BufferError:  # local queue full: the broker is slow or away
                if time.monotonic() + BUFFER_FULL_WAIT_S >= deadline:
                    raise PublishTimeout("producer queue full") from None
                await asyncio.sleep(BUFFER_FULL_WAIT_S)
            except KafkaException as exc:
                raise PublishFailed(_code(exc.args[0] if exc.args else None)) from None
        expiry = loop.call_at(loop.time() + deadline - time.monotonic(), _expire, future)
        try:
            error = await future
        finally:
            expiry.cancel()
        if error is _TIMED_OUT:
            raise PublishTimeout("no delivery report within the deadline")
        if error is not None:
            raise PublishFailed(_code(error))

    async def ready(self, topic: str, timeout_s: float) -> bool:
        """True when the broker answers a metadata request for ``topic`` in time."""
        producer = self._producer
        if producer is None or self._fatal is not None:
            return False
        try:
            metadata = await asyncio.to_thread(producer.list_topics, topic, timeout_s)
        except KafkaException:
            return False
        found = metadata.topics.get(topic)
        return found is not None and found.error is None

    # -- the polling thread ------------------------------------------------------------

    def _run(self) -> None:
        producer = self._producer
        assert producer is not None
        while not self._stop.is_set():
            producer.poll(POLL_INTERVAL_S)
            self._dispatch()

    def _flush(self, producer: Producer, timeout_s: float) -> int:
        left = producer.flush(timeout_s)
        self._dispatch()
        return left

    def _on_delivery(
        self, future: asyncio.Future[KafkaError | None], error: KafkaError | None, _: Message
    ) -> None:
        self._reports.append((future, error))

    def _dispatch(self) -> None:
        if not self._reports or self._loop is None:
            return
        reports, self._reports = self._reports, []
        # A closed loop has nobody waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(_resolve, reports)

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = error.name()
            self._log.error("kafka_fatal", code=error.name())
        elif self._throttle(error.name()):
            self._log.warning("kafka_error", code=error.name())


#: Stands in for a delivery report that did not come in time.
_TIMED_OUT = KafkaError(KafkaError._MSG_TIMED_OUT)


def _expire(future: asyncio.Future[KafkaError | None]) -> None:
    if not future.done():
        future.set_result(_TIMED_OUT)


def _resolve(reports: list[_Report]) -> None:
    for future, error in reports:
        if not future.done():
            future.set_result(error)


def _code(error: object) -> str:
    return error.name() if isinstance(error, KafkaError) else "unknown"
