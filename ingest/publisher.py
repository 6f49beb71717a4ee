"""The bridge from asyncio to one confluent-kafka producer per process.

``produce()`` only enqueues (``paystream.runtime.producing``). The event loop itself serves
the producer's callbacks (``poll(0)``, which never waits): every millisecond while messages
are in flight, so each delivery report resolves the future its handler awaits on the loop's
own thread, and every half second otherwise, for the error and log callbacks. A handler
answers 2xx only after its future holds a delivery report without error (acks=all,
idempotent producer), so nothing acknowledged can be missing from Kafka. No business logic
runs in a callback.

Polled on the loop rather than by a thread of its own, because such a thread takes the GIL
from the busy loop for every batch of reports and must wake the loop through its self-pipe
to hand them over; on the loop a report is answered where it is awaited (docs/ingest.md,
"Performance", has the measurements).

Every publish of one publisher has the same deadline (``timeout_s``), so the publishes in
flight are in deadline order: one timer, set for the oldest one still unanswered, answers
``PublishTimeout`` to each whose deadline passed; closing answers the rest. One timer
rather than one per publish, because each ``call_at`` and ``cancel`` would leave a
cancelled handle in the loop's heap for every request.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException, Producer

from ingest.errors import PublishFailed, PublishTimeout
from paystream.runtime.producing import delivery_future, drain_on_loop, produce_on_loop

Headers = list[tuple[str, str | bytes | None]]

#: How often the loop polls the producer while messages are in flight, and when not.
POLL_INTERVAL_S = 0.001
IDLE_POLL_INTERVAL_S = 0.5
#: Wait before retrying a produce refused because librdkafka's local queue is full.
BUFFER_FULL_WAIT_S = 0.01


#: How old the last broker check may be for ``/readyz`` to still trust it (the refresher
#: runs every ``READINESS_INTERVAL_S``; a refresher that stopped answering means not ready).
READINESS_INTERVAL_S = 1.0
READINESS_MAX_AGE_S = 3 * READINESS_INTERVAL_S + 1.0


def known_ready(
    checked: tuple[bool, float] | None, fatal: bool, now: float, max_age_s: float
) -> bool:
    """``/readyz`` from the last known broker state (pure): the last check succeeded, is
    recent enough, and the producer had no fatal error."""
    if checked is None or fatal:
        return False
    ok, at = checked
    return ok and now - at <= max_age_s


#: The same client complaint (e.g. "connection refused" while the broker is away) is
#: logged at most once per this many seconds.
LOG_REPEAT_S = 10.0


class _Throttle:
    """Says whether a message with this key may be logged now (event loop thread only)."""

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
        # bound here: the callback runs outside any request's context
        self._log = structlog.get_logger("ingest.kafka").bind(service="ingest")
        self._throttle = _Throttle()

    def log(self, level: int, fmt: str, *args: Any) -> None:
        message = fmt % args
        if self._throttle(message[:80]):
            self._log.warning("kafka_client", syslog_level=level, message=message)


class Publisher:
    """Publishes to Kafka and reports each delivery to the awaiting coroutine."""

    def __init__(self, config: dict[str, Any], timeout_s: float) -> None:
        self._config = dict(config)
        self._timeout_s = timeout_s
        self._producer: Producer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poll_timer: asyncio.TimerHandle | None = None
        #: (deadline, future) of the publishes in flight, oldest first: deadlines in order
        self._in_flight: deque[tuple[float, asyncio.Future[KafkaError | None]]] = deque()
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._fatal: str | None = None
        #: the last broker check: (answered, loop time); None before the first one
        self._checked: tuple[bool, float] | None = None
        #: how many broker checks were made (each is one metadata request)
        self.broker_checks = 0
        self._log = structlog.get_logger("ingest.publisher").bind(service="ingest")
        self._throttle = _Throttle()

    # -- lifecycle (loop thread) -------------------------------------------------------

    async def start(self) -> None:
        """Create the producer and start polling it (call once, from the event loop)."""
        self._loop = asyncio.get_running_loop()
        config = dict(self._config)
        config.setdefault("error_cb", self._on_error)
        config.setdefault("logger", _KafkaLog())
        self._producer = Producer(config)
        self._poll()

    async def close(self, flush_timeout_s: float) -> int:
        """Wait for what is queued to be delivered, stop polling; return how many messages
        were left unsent."""
        producer, loop = self._producer, self._loop
        if producer is None or loop is None:
            return 0
        # the poll timer serves the reports meanwhile
        await drain_on_loop(producer, loop.time() + flush_timeout_s, POLL_INTERVAL_S)
        for timer in (self._poll_timer, self._expiry_timer):
            if timer is not None:
                timer.cancel()
        self._time_out(until=math.inf)  # no report will come for these any more
        self._producer = None
        return len(producer)

    # -- publishing (loop thread) ------------------------------------------------------

    async def publish(self, topic: str, key: bytes, value: bytes, headers: Headers) -> None:
        """Return once the broker acknowledged the message; raise ``PublishUnavailable``
        (``PublishTimeout`` when no delivery report came within ``timeout_s``)."""
        producer, loop = self._producer, self._loop
        if producer is None or loop is None:
            raise PublishFailed("publisher not running")
        deadline = loop.time() + self._timeout_s
        future, on_delivery = delivery_future(loop)
        try:
            try:  # the common case, without a coroutine of its own
                producer.produce(topic, value, key, on_delivery=on_delivery, headers=headers)
            except BufferError:  # the local queue is full: wait for room until the deadline
                taken = await produce_on_loop(
                    producer,
                    topic,
                    key,
                    value,
                    on_delivery,
                    headers=headers,
                    give_up_at=deadline,
                    wait_s=BUFFER_FULL_WAIT_S,
                )
                if not taken:  # full until the deadline: the broker is slow or away
                    raise PublishTimeout("producer queue full") from None
        except KafkaException as exc:
            raise PublishFailed(_code(exc.args[0] if exc.args else None)) from None
        self._poll_soon()
        self._track(loop, deadline, future)
        error = await future
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

    async def check_broker(self, topic: str, timeout_s: float) -> bool:
        """Ask the broker (``ready``) and remember the answer for ``is_ready``."""
        self.broker_checks += 1
        ok = await self.ready(topic, timeout_s)
        if self._loop is not None:
            self._checked = (ok, self._loop.time())
        return ok

    async def keep_checking(self, topic: str, interval_s: float = READINESS_INTERVAL_S) -> None:
        """Check the broker every ``interval_s`` until cancelled (the readiness refresher)."""
        while True:
            await self.check_broker(topic, min(1.0, interval_s))
            await asyncio.sleep(interval_s)

    def is_ready(self, max_age_s: float = READINESS_MAX_AGE_S) -> bool:
        """The last known broker state: no broker call (``/readyz`` answers from this)."""
        loop = self._loop
        if loop is None:
            return False
        return known_ready(self._checked, self._fatal is not None, loop.time(), max_age_s)

    # -- polling (loop thread) ---------------------------------------------------------

    def _poll(self) -> None:
        """Serve the producer's callbacks; come back soon while messages are in flight."""
        producer, loop = self._producer, self._loop
        if producer is None or loop is None:
            return
        try:
            producer.poll(0)
        finally:  # whatever a callback did, the polling goes on
            interval = POLL_INTERVAL_S if len(producer) else IDLE_POLL_INTERVAL_S
            self._poll_timer = loop.call_later(interval, self._poll)

    def _poll_soon(self) -> None:
        """A message is in flight: make sure the next poll is at most one interval away."""
        timer, loop = self._poll_timer, self._loop
        if loop is None or (timer is not None and timer.when() <= loop.time() + POLL_INTERVAL_S):
            return
        if timer is not None:
            timer.cancel()
        self._poll_timer = loop.call_later(POLL_INTERVAL_S, self._poll)

    # -- deadlines (loop thread) --------------------------------------------------------

    def _track(
        self,
        loop: asyncio.AbstractEventLoop,
        deadline: float,
        future: asyncio.Future[KafkaError | None],
    ) -> None:
        """Hold ``future`` until it is answered or its deadline passes."""
        in_flight = self._in_flight
        while in_flight and in_flight[0][1].done():  # forget the answered oldest ones
            in_flight.popleft()
        in_flight.append((deadline, future))
        if self._expiry_timer is None:
            self._expiry_timer = loop.call_at(deadline, self._expire, loop)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Answer the publishes whose deadline passed; wake again at the next deadline."""
        self._time_out(until=loop.time())
        in_flight = self._in_flight
        self._expiry_timer = (
            loop.call_at(in_flight[0][0], self._expire, loop) if in_flight else None
        )

    def _time_out(self, until: float) -> None:
        """Answer ``PublishTimeout`` to the publishes whose deadline is ``until`` or earlier,
        forgetting them and the answered ones before them."""
        in_flight = self._in_flight
        while in_flight and (in_flight[0][1].done() or in_flight[0][0] <= until):
            _, future = in_flight.popleft()
            if not future.done():
                future.set_result(_TIMED_OUT)

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = error.name()
            self._log.error("kafka_fatal", code=error.name())
        elif self._throttle(error.name()):
            self._log.warning("kafka_error", code=error.name())


#: Stands in for a delivery report that did not come in time.
_TIMED_OUT = KafkaError(KafkaError._MSG_TIMED_OUT)


def _code(error: object) -> str:
    return error.name() if isinstance(error, KafkaError) else "unknown"
