"""The one sink runner: consume a batch → call the destination → publish outcomes → commit.

Every sink is an adapter on it (``SinkAdapter``): the CRM and helpdesk sinks, one API call
per planned ``Call``, and the metrics sink, one store write per batch. A batch is what
arrives within ``batch_wait_s`` of its first message (which waits no longer), at most
``batch_size`` messages. At-least-once delivery with manual commits, exactly-once in effect
because every call is idempotent (idempotency keys; the store's row keys and dedup tokens).
A batch's offsets are committed only after every command in it was delivered (or dry-run)
or published to ``sink.dlq``, and after the broker acknowledged those records. While a call
backs off, the runner pauses its partitions and keeps polling (so the group keeps it), then
resumes: back-pressure by pausing. A rebalance or a stop during a back-off ends the back-off
at once and abandons the batch uncommitted: whoever owns the partitions next sends it again,
harmlessly. librdkafka keeps a partition's pause flag while the partition is assigned
elsewhere and when it comes back, so the runner resumes every partition it is assigned
unless a back-off of its own holds it (``pause_changes``): no partition is left paused.
The group's default (eager) protocol revokes every partition at a rebalance; what was read
before it (a batch, the buffer) is dropped and read again from the committed offsets.

Command sinks record each command's outcome on ``sink.results`` and dead-letter what they
give up on. A sink built without those topics (the metrics sink, whose input *is* the
outcomes) records nothing: input it cannot decode is logged and skipped (it stays in
Kafka), and it never gives up, since a ``DestinationUnavailable`` call is retried with
back-off for as long as it takes.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from paystream.metrics import PaystreamMetrics
from paystream.runtime.producing import produce
from paystream.vocabulary import DELIVERY_FIRST
from schemas.codec import SchemaError, default_codec
from sinks.errors import OutcomeNotWritten, PermanentSinkError, RetryableSinkError
from sinks.outcomes import (
    DEAD_LETTERED,
    DELIVERED,
    DRY_RUN,
    NEEDS_A_PERSON,
    RETRY,
    dead_letter,
    dead_letter_log_fields,
    delivery_of,
    sink_result,
    sync_latency_s,
)
from sinks.retry import DAILY_LIMIT, INVALID_COMMAND, Attempts, RetryPolicy, after_failure

Command = Mapping[str, Any]
#: where a decoded command carries its sync-latency label (``sinks.outcomes.delivery_of``)
DELIVERY_KEY = "delivery"


@dataclass(frozen=True)
class Call:
    """One API request and the commands (positions in the batch) it stands for."""

    indexes: tuple[int, ...]
    payload: Any
    #: reason code of commands that are delivered through another's call (coalesced)
    notes: Mapping[int, str] = field(default_factory=dict)


class SinkAdapter(Protocol):
    """What a concrete sink adds to the runner: decoding, planning calls and sending one."""

    sink: str

    def decode(self, raw: bytes) -> Command:
        """One input message as a command; SchemaError when it is not one (pure)."""
        ...

    def plan(self, commands: Sequence[Command]) -> list[Call]:
        """Group a batch's commands into API calls (pure)."""
        ...

    def split(self, call: Call) -> list[Call]:
        """Smaller calls to isolate a permanent failure; one call or none when indivisible."""
        ...

    def send(self, call: Call) -> Mapping[int, str]:
        """Make the call; return reason codes learnt for some commands (e.g. stale)."""
        ...

    def close(self) -> None:
        """Release what the adapter opened (its HTTP client) once its runner stopped."""
        ...


def decode_as(schema: str, raw: bytes) -> Command:
    """The ``decode`` of a sink whose input is one Avro schema."""
    return default_codec().decode_as(schema, raw)


def wall_ms() -> int:
    return int(time.time() * 1000)


#: longest single poll while a batch fills, so a stop is noticed promptly
_POLL_S = 0.5


def batch_complete(size: int, waited_s: float, batch_size: int, batch_wait_s: float) -> bool:
    """A batch is complete at ``batch_size`` messages or after ``batch_wait_s``, if sooner."""
    return size >= batch_size or waited_s >= batch_wait_s


def next_offsets(positions: Iterable[tuple[str, int, int]]) -> dict[tuple[str, int], int]:
    """The offsets that commit a batch: one past the highest consumed, per partition."""
    offsets: dict[tuple[str, int], int] = {}
    for topic, partition, offset in positions:
        offsets[(topic, partition)] = max(offsets.get((topic, partition), -1), offset + 1)
    return offsets


#: a topic and a partition number
Partition = tuple[str, int]


@dataclass(frozen=True)
class PauseChanges:
    """Partitions to pause and to resume on the consumer."""

    pause: frozenset[Partition]
    resume: frozenset[Partition]


def pause_changes(
    assigned: Iterable[Partition],
    backing_off: Iterable[Partition],
    paused: Iterable[Partition],
    fresh: Iterable[Partition] = (),
) -> PauseChanges:
    """What makes the paused partitions exactly the assigned ones under a back-off.

    ``paused`` is what the runner paused and has not resumed; ``fresh`` the partitions just
    assigned, whose pause flag may be left from an earlier assignment (librdkafka keeps it):
    they are resumed unless a back-off holds them. A paused partition that is no longer
    assigned is resumed too, so it cannot come back paused.
    """
    held = frozenset(assigned) & frozenset(backing_off)
    was = frozenset(paused)
    return PauseChanges(pause=held - was, resume=(was | frozenset(fresh)) - held)


def _partitions(tps: Iterable[TopicPartition]) -> frozenset[Partition]:
    return frozenset((str(tp.topic), int(tp.partition)) for tp in tps)


def _tps(partitions: Iterable[Partition]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t, p in sorted(partitions)]


def _position(message: Message) -> tuple[str, int, int]:
    return str(message.topic()), int(message.partition() or 0), int(message.offset() or 0)


class BatchAbandoned(Exception):
    """Raised inside the runner when a batch must be left uncommitted (stop or rebalance)."""


class SinkRunner:
    """Runs one adapter against one input topic in one consumer group."""

    def __init__(
        self,
        *,
        adapter: SinkAdapter,
        consumer: Consumer,
        producer: Producer | None,
        source_topic: str | Sequence[str],
        results_topic: str | None,
        dlq_topic: str | None,
        writes_enabled: bool,
        policy: RetryPolicy,
        metrics: PaystreamMetrics,
        batch_size: int = 100,
        batch_wait_s: float = 0.2,
        rand: Callable[[], float] = random.random,
        clock_ms: Callable[[], int] = wall_ms,
        hash_key: str = "",
        group: str = "",
    ) -> None:
        if (producer is None) != (results_topic is None) or (dlq_topic is None) != (
            results_topic is None
        ):
            raise ValueError("producer, results_topic and dlq_topic go together")
        self.adapter = adapter
        #: PAYSTREAM_CUSTOMER_HASH_KEY: log lines name customers by this hash only
        self.hash_key = hash_key
        self.consumer = consumer
        self.producer = producer
        #: the input topics (the metrics sink reads several); dead letters name them
        self.source_topics = [source_topic] if isinstance(source_topic, str) else [*source_topic]
        self.source_topic = ",".join(self.source_topics)
        self.results_topic = results_topic
        self.dlq_topic = dlq_topic
        self.writes_enabled = writes_enabled
        self.policy = policy
        self.metrics = metrics
        self.batch_size = batch_size
        self.batch_wait_s = batch_wait_s
        self.rand = rand
        self.clock_ms = clock_ms
        self.codec = default_codec()
        self.log = structlog.get_logger("sinks").bind(sink=adapter.sink)
        #: the consumer group, for ``paystream_consumer_assigned_partitions``
        self.group = group
        self._pending: deque[Message] = deque()
        self._generation = 0
        #: partitions this runner paused (and has not resumed), and those a back-off holds
        self._paused: frozenset[Partition] = frozenset()
        self._backing_off: frozenset[Partition] = frozenset()
        #: the partitions assigned now, as the rebalance callbacks said (readable from any
        #: thread, unlike ``consumer.assignment()``)
        self.assigned: frozenset[Partition] = frozenset()
        self._delivery_errors: list[str] = []

    # ---------------------------------------------------------------- consumer plumbing
    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """A back-off ends with its partitions' assignment; their buffered messages are
        dropped (the next owner reads them again from the committed offset)."""
        self._generation += 1
        gone = _partitions(partitions)
        self._pending = deque(m for m in self._pending if _position(m)[:2] not in gone)
        self._backing_off -= gone
        self._assign(self.assigned - gone)
        self._apply_pauses(self.assigned)
        self.log.info("partitions_revoked", count=len(partitions))

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        consumer.assign(partitions)  # now, so that resuming them below applies to them
        self._assign(_partitions(partitions))
        self._apply_pauses(self.assigned, fresh=self.assigned)
        self.log.info("partitions_assigned", count=len(partitions))

    def _assign(self, partitions: frozenset[Partition]) -> None:
        """The partitions assigned now; each runner adds its share to its group's gauge (a
        member holding partitions is alive: what the lag alert asks before it pages)."""
        if self.group:
            gauge = self.metrics.consumer_assigned_partitions.labels(self.group)
            gauge.inc(len(partitions) - len(self.assigned))
        self.assigned = partitions

    def _apply_pauses(
        self, assigned: frozenset[Partition], fresh: frozenset[Partition] = frozenset()
    ) -> None:
        changes = pause_changes(assigned, self._backing_off, self._paused, fresh)
        if changes.pause:
            self.consumer.pause(_tps(changes.pause))
        if changes.resume:
            self.consumer.resume(_tps(changes.resume))
        self._paused = (self._paused | changes.pause) - changes.resume

    def _fetch(self, stop: threading.Event) -> list[Message]:
        """The next batch: the first message, then what comes within ``batch_wait_s`` of it
        (at most ``batch_size``); empty when nothing came for a poll interval.

        The window opens at the first message, not when the runner starts listening, so a
        lone command waits for nothing (``consume(n, t)`` blocks until it has ``n`` messages
        or ``t`` passed; ``poll`` returns with the first).
        """
        if self._pending:
            return [
                self._pending.popleft() for _ in range(min(self.batch_size, len(self._pending)))
            ]
        first = self.consumer.poll(_POLL_S)
        if first is None or not self._usable(first):
            return []
        # One poll at a time, so a rebalance falls between two messages: what was read
        # before it is dropped (read again from the committed offsets), what came after kept.
        generation = self._generation
        batch = [first]
        opened = time.monotonic()
        while not stop.is_set():
            waited = time.monotonic() - opened
            if batch_complete(len(batch), waited, self.batch_size, self.batch_wait_s):
                break
            message = self.consumer.poll(min(self.batch_wait_s - waited, _POLL_S))
            if generation != self._generation:
                generation, batch = self._generation, []
            if message is not None and self._usable(message):
                batch.append(message)
        return batch

    def _usable(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return True
        self.log.warning("consumer_error", error=str(error))
        return False

    def _back_off(self, delay_s: float, stop: threading.Event, generation: int) -> None:
        """Pause every assigned partition, keep polling for ``delay_s``, resume; a stop or a
        rebalance ends it at once (BatchAbandoned)."""
        self._backing_off = self.assigned
        self._apply_pauses(self._backing_off)
        deadline = time.monotonic() + delay_s
        try:
            while not stop.is_set() and generation == self._generation:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                # Paused partitions deliver nothing; partitions assigned by a rebalance
                # meanwhile may, and those messages are kept for the next batch.
                for message in self.consumer.consume(self.batch_size, min(left, 0.5)):
                    if self._usable(message):
                        self._pending.append(message)
        finally:
            self._backing_off = frozenset()
            self._apply_pauses(self.assigned)
        if stop.is_set() or generation != self._generation:
            raise BatchAbandoned

    # ---------------------------------------------------------------- producing outcomes
    def _on_delivery(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._delivery_errors.append(str(err))

    def _flush(self) -> int:
        """Wait for the outcomes produced so far; the number still undelivered."""
        return self.producer.flush(30) if self.producer is not None else 0

    def _produce(self, topic: str, key: str, value: bytes) -> None:
        """Hand one record to the producer, or raise OutcomeNotWritten (the runner stops)."""
        assert self.producer is not None
        try:
            taken = produce(self.producer, topic, key, value, self._on_delivery)
        except KafkaException as exc:
            raise OutcomeNotWritten(f"{topic}: {exc.args[0] if exc.args else exc}") from None
        if not taken:
            raise OutcomeNotWritten(f"{topic}: the producer queue stayed full")
        self.producer.poll(0)

    def _result(
        self,
        command: Command,
        outcome: str,
        attempts: int,
        reason: str | None,
        latency_ms: float,
    ) -> None:
        if self.results_topic is None:
            return
        acked = self.clock_ms()
        record = sink_result(
            self.adapter.sink,
            command,
            outcome,
            attempts=attempts,
            reason_code=reason,
            latency_ms=latency_ms,
            acked_at_ms=acked,
        )
        self._produce(
            self.results_topic,
            record["idempotency_key"],
            self.codec.encode("sink_result", record),
        )
        self.metrics.sink_requests.labels(self.adapter.sink, outcome).inc()
        if outcome == DELIVERED:
            latency = sync_latency_s(command, acked)
            if latency is not None:
                delivery = str(command.get(DELIVERY_KEY) or DELIVERY_FIRST)
                self.metrics.sync_latency.labels(self.adapter.sink, delivery).observe(latency)

    def _give_up(
        self,
        call: Call,
        commands: list[Command],
        raws: list[bytes],
        error: RetryableSinkError | PermanentSinkError,
        attempts: int,
        spent_ms: float,
    ) -> None:
        """Record every command of ``call`` as dead-lettered and send it to ``sink.dlq``."""
        for i in call.indexes:
            self._result(commands[i], DEAD_LETTERED, attempts, error.reason_code, spent_ms)
            self._dead_letter(commands[i], raws[i], error.reason_code, str(error), attempts)

    def _dead_letter(
        self, command: Command, raw: bytes, reason: str, error: str, attempts: int
    ) -> None:
        assert self.dlq_topic is not None
        record = dead_letter(
            self.adapter.sink,
            command,
            raw,
            reason_code=reason,
            last_error=error,
            attempts=attempts,
            failed_at_ms=self.clock_ms(),
            source_topic=self.source_topic,
        )
        key = record["idempotency_key"] or record["customer_id"] or "unknown"
        self._produce(self.dlq_topic, key, self.codec.encode("dead_letter", record))
        self.log.warning("dead_lettered", **dead_letter_log_fields(record, self.hash_key))

    # ---------------------------------------------------------------- the batch
    def process(self, messages: Sequence[Message], stop: threading.Event) -> bool:
        """Handle one batch; True when its offsets were committed."""
        generation = self._generation
        commands: list[Command] = []
        raws: list[bytes] = []
        for message in messages:
            raw = message.value() or b""
            try:
                command = self.adapter.decode(raw)
            except SchemaError as exc:
                if self.dlq_topic is None:  # nowhere to dead-letter: it stays in Kafka
                    topic, partition, offset = _position(message)
                    self.log.warning(
                        "message_skipped",
                        topic=topic,
                        partition=partition,
                        offset=offset,
                        error=type(exc.__cause__ or exc).__name__,
                    )
                    continue
                key = (message.key() or b"").decode("utf-8", "replace")
                self._dead_letter({"customer_id": key}, raw, INVALID_COMMAND, str(exc), 0)
                self.metrics.sink_requests.labels(self.adapter.sink, DEAD_LETTERED).inc()
                continue
            commands.append({**command, DELIVERY_KEY: delivery_of(command, message.headers())})
            raws.append(raw)
        try:
            queue = deque(self.adapter.plan(commands))
            while queue:
                call = queue.popleft()
                if not self.writes_enabled:
                    for i in call.indexes:
                        self._result(commands[i], DRY_RUN, 0, call.notes.get(i), 0.0)
                    continue
                if stop.is_set():  # shut down promptly; the uncommitted rest is sent again
                    raise BatchAbandoned
                queue.extendleft(reversed(self._deliver(call, commands, raws, stop, generation)))
        except BatchAbandoned:
            self.log.info("batch_abandoned", size=len(messages))
            self._flush()
            return False
        return self._commit(messages)

    def _deliver(
        self,
        call: Call,
        commands: list[Command],
        raws: list[bytes],
        stop: threading.Event,
        generation: int,
    ) -> list[Call]:
        """Send one call until it is delivered or dead-lettered; return calls split off it."""
        attempts = Attempts()
        spent_ms = 0.0
        while True:
            started = time.monotonic()
            try:
                attempts = Attempts(attempts.total + 1, attempts.errors, attempts.rate_limited)
                learnt = self.adapter.send(call)
            except RetryableSinkError as exc:
                spent_ms += (time.monotonic() - started) * 1000
                decision = after_failure(
                    self.policy, attempts, exc.reason_code, exc.retry_after, self.rand()
                )
                attempts = decision.attempts
                if not decision.retry:
                    self._give_up(call, commands, raws, exc, attempts.total, spent_ms)
                    return []
                for i in call.indexes:
                    self._result(commands[i], RETRY, attempts.total, exc.reason_code, spent_ms)
                self.log.info(
                    "backing_off",
                    reason_code=exc.reason_code,
                    attempts=attempts.total,
                    delay_s=round(decision.delay_s, 3),
                )
                paused = self.metrics.sink_paused.labels(self.adapter.sink, DAILY_LIMIT)
                paused.set(1 if exc.reason_code == DAILY_LIMIT else 0)
                try:
                    self._back_off(decision.delay_s, stop, generation)
                finally:
                    paused.set(0)
                continue
            except PermanentSinkError as exc:
                spent_ms += (time.monotonic() - started) * 1000
                parts = self.adapter.split(call)
                if len(parts) > 1:
                    self.log.info("splitting_call", reason_code=exc.reason_code, parts=len(parts))
                    return parts
                self._give_up(call, commands, raws, exc, attempts.total, spent_ms)
                return []
            spent_ms += (time.monotonic() - started) * 1000
            for i in call.indexes:
                reason = learnt.get(i) or call.notes.get(i)
                self._result(commands[i], DELIVERED, attempts.total, reason, spent_ms)
                if reason in NEEDS_A_PERSON:  # delivered, and a person must still look
                    self._dead_letter(commands[i], raws[i], reason, reason, attempts.total)
            return []

    def _commit(self, messages: Sequence[Message]) -> bool:
        left = self._flush()
        errors, self._delivery_errors = self._delivery_errors, []
        if left or errors:
            # Never commit past a record we failed to write: stop, uncommitted; whoever
            # runs next reads the batch again (the idempotency keys make that harmless).
            self.log.error("outcomes_not_acknowledged", pending=left, errors=errors[:3])
            raise OutcomeNotWritten(f"{left} pending, {len(errors)} failed: {errors[:1]}")
        offsets = next_offsets(map(_position, messages))
        if not offsets:
            return True
        try:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                asynchronous=False,
            )
        except KafkaException as exc:
            # The group moved on (rebalance): the new owner sends these again, harmlessly.
            self.log.warning("commit_failed", error=str(exc.args[0]) if exc.args else "")
            return False
        return True

    # ---------------------------------------------------------------- the loop
    def run(self, stop: threading.Event) -> None:
        self.consumer.subscribe(
            self.source_topics, on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        self.log.info("sink_started", topic=self.source_topic, writes=self.writes_enabled)
        while not stop.is_set():
            messages = self._fetch(stop)
            if messages:
                self.process(messages, stop)
        self._flush()
        self.log.info("sink_stopped")
