-- paystream metrics store: tables.
-- Applied idempotently by the metrics sink at start-up (`paystream sinks metrics`), on the
-- embedded engine (chdb) and on a ClickHouse server alike. Two placeholders are replaced
-- before execution: ${DATABASE} (PAYSTREAM_METRICS_DATABASE, default `paystream`) and
-- ${TTL_DAYS} (PAYSTREAM_METRICS_RETENTION_DAYS, default 90). Statements end with `;`
-- at the end of a line.
--
-- Every table is a ReplacingMergeTree whose ORDER BY key is the row's identity, built only
-- from values carried in the Kafka message. A message consumed twice (a crash between the
-- insert and the offset commit, a rebalance, a retried insert) therefore yields the same
-- key and collapses to one row; queries that must be exact read with FINAL (the views do).
-- Inserts also carry an insert_deduplication_token, so a retried identical batch is dropped
-- at insert time already (non_replicated_deduplication_window enables that on a plain
-- MergeTree; ReplicatedMergeTree deduplicates by default).

CREATE DATABASE IF NOT EXISTS ${DATABASE};

-- One row per webhook delivery that ingest accepted and published to stripe.events.
-- A Stripe retry or replay is a new delivery (new correlation id, new received_at) and so a
-- new row: that is how duplicates are counted. Rejected requests (401/400/403/413/503) never
-- reach Kafka; they are counted by Prometheus (paystream_webhook_requests_total) only.
CREATE TABLE IF NOT EXISTS ${DATABASE}.webhook_events
(
    received_at     DateTime64(3, 'UTC') COMMENT 'ingest received the request',
    event_created   DateTime('UTC')      COMMENT 'Stripe created',
    event_id        String,
    event_type      LowCardinality(String),
    livemode        Bool,
    api_version     LowCardinality(String),
    customer_hash   String               COMMENT 'keyed hash of the Stripe customer id',
    correlation_id  String,
    source          LowCardinality(String) COMMENT 'webhook, reconcile or demo'
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(received_at)
ORDER BY (event_type, received_at, event_id, correlation_id)
TTL toDateTime(received_at) + INTERVAL ${TTL_DAYS} DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- One row per processed event that changed a customer's billing state (customer.lifecycle).
-- Identity: customer, cause event and new state, so a worker that republishes after a crash
-- (at-least-once) does not double a change.
CREATE TABLE IF NOT EXISTS ${DATABASE}.lifecycle_changes
(
    event_created     DateTime('UTC'),
    received_at       DateTime64(3, 'UTC'),
    processed_at      DateTime64(3, 'UTC'),
    changed_at        DateTime64(3, 'UTC'),
    customer_hash     String,
    previous_state    LowCardinality(String),
    new_state         LowCardinality(String),
    cause_event_id    String,
    cause_event_type  LowCardinality(String),
    livemode          Bool,
    correlation_id    String
)
ENGINE = ReplacingMergeTree(processed_at)
PARTITION BY toDate(event_created)
ORDER BY (cause_event_type, customer_hash, cause_event_id, new_state)
TTL toDateTime(processed_at) + INTERVAL ${TTL_DAYS} DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- One row per sink command attempt outcome (sink.results): delivered, dry_run, retry,
-- dead_lettered; retried and dismissed are a person's actions in the exception queue.
-- Stage timestamps: Stripe created → received → processed → acknowledged by the sink.
CREATE TABLE IF NOT EXISTS ${DATABASE}.sink_attempts
(
    acked_at          DateTime64(3, 'UTC') COMMENT 'the sink finished this attempt',
    event_created     DateTime('UTC'),
    received_at       DateTime64(3, 'UTC'),
    processed_at      DateTime64(3, 'UTC'),
    sink              LowCardinality(String),
    idempotency_key   String,
    outcome           LowCardinality(String),
    attempts          UInt16,
    reason_code       LowCardinality(String),
    call_latency_ms   Float64              COMMENT 'time spent in the API call(s)',
    customer_hash     String,
    cause_event_id    String,
    cause_event_type  LowCardinality(String),
    correlation_id    String,
    delivery          LowCardinality(String) DEFAULT 'first' COMMENT 'first, retry or reconcile'
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(acked_at)
ORDER BY (sink, cause_event_type, acked_at, idempotency_key, attempts, outcome)
TTL toDateTime(acked_at) + INTERVAL ${TTL_DAYS} DAY
SETTINGS non_replicated_deduplication_window = 1000;

-- Migrations of tables created by an earlier version (CREATE TABLE IF NOT EXISTS leaves an
-- existing table as it is). Here, before the views of 002 read the new columns; rows
-- written before a column existed read its DEFAULT.
ALTER TABLE ${DATABASE}.sink_attempts
    ADD COLUMN IF NOT EXISTS delivery LowCardinality(String) DEFAULT 'first'
    COMMENT 'first, retry or reconcile' AFTER correlation_id;
