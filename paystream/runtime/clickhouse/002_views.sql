-- paystream metrics store: the analysts' views (docs/queries.md explains each one).
-- Re-created at every start of the metrics sink (CREATE OR REPLACE), so a new definition
-- takes effect without a migration. They read with FINAL: rows delivered twice by Kafka
-- count once.

-- p95 payment→CRM sync latency per minute and event type: from Stripe's `created` to the
-- sink's acknowledgement, for first deliveries the API acknowledged. A dry-run call was
-- never sent (it is not a sync), and a retry pressed in the exception queue a day later or
-- an event `paystream reconcile` recovered measures the delay of a person or of Stripe's
-- lost webhook, not the pipeline's (delivery `retry`/`reconcile`, as the SLO alert reads).
-- quantileExact: exact nearest-rank values, so the figures are reproducible.
CREATE OR REPLACE VIEW ${DATABASE}.sync_latency_per_minute AS
SELECT
    toStartOfMinute(acked_at) AS minute,
    sink,
    cause_event_type AS event_type,
    count() AS syncs,
    quantileExact(0.5)(latency_s) AS p50_s,
    quantileExact(0.95)(latency_s) AS p95_s,
    max(latency_s) AS max_s
FROM
(
    SELECT
        acked_at, sink, cause_event_type,
        (toUnixTimestamp64Milli(acked_at) - toInt64(toUnixTimestamp(event_created)) * 1000) / 1000.
            AS latency_s
    FROM ${DATABASE}.sink_attempts FINAL
    WHERE outcome = 'delivered' AND delivery = 'first'
)
GROUP BY minute, sink, event_type;

-- Failure rate per 15 minutes and sink: the share of command attempts that failed
-- (retry or dead_lettered), and how many commands ended in the exception queue.
CREATE OR REPLACE VIEW ${DATABASE}.failure_rate_15m AS
SELECT
    toStartOfFifteenMinutes(acked_at) AS window_start,
    sink,
    count() AS attempts,
    countIf(outcome IN ('retry', 'dead_lettered')) AS failures,
    countIf(outcome = 'dead_lettered') AS dead_lettered,
    failures / attempts AS failure_rate
FROM ${DATABASE}.sink_attempts FINAL
WHERE outcome NOT IN ('dismissed', 'retried', 'repaired')  -- a person's actions are not attempts
GROUP BY window_start, sink;

-- Duplicates per day: deliveries of an event id that had already been delivered before
-- (Stripe retries, replays, `paystream reconcile`). The worker drops these (dedup), so
-- this is the work dedup saved, counted on the day of the repeated delivery.
CREATE OR REPLACE VIEW ${DATABASE}.duplicates_per_day AS
SELECT
    toDate(received_at) AS day,
    count() AS deliveries,
    uniqExact(event_id) AS distinct_events,
    countIf(delivery_number > 1) AS duplicates
FROM
(
    SELECT
        received_at,
        event_id,
        row_number() OVER (PARTITION BY event_id ORDER BY received_at, correlation_id)
            AS delivery_number
    FROM ${DATABASE}.webhook_events FINAL
)
GROUP BY day;

-- Manual interventions per week (weeks start on Monday): a person in the exception queue
-- (`paystream admin`) retried a dead-lettered command (outcome `retried`) or dismissed it
-- (outcome `dismissed`); the admin writes one such sink.results row per action.
-- `paystream crm-repair --apply` writes one (outcome `repaired`) per correction it sent and
-- per duplicate it put in the queue.
CREATE OR REPLACE VIEW ${DATABASE}.manual_interventions_per_week AS
SELECT
    toMonday(acked_at) AS week,
    sink,
    count() AS interventions,
    countIf(outcome = 'retried') AS retries,
    countIf(outcome = 'dismissed') AS dismissals
FROM ${DATABASE}.sink_attempts FINAL
WHERE outcome IN ('retried', 'dismissed', 'repaired')
GROUP BY week, sink;

-- Open exceptions as the store sees them: commands whose latest outcome is dead_lettered
-- (not retried nor dismissed since). The exception queue of record is the admin view
-- (`paystream admin`, `paystream_exceptions_open`, `paystream status` read it from Kafka).
CREATE OR REPLACE VIEW ${DATABASE}.open_exceptions AS
SELECT
    sink,
    idempotency_key,
    max(acked_at) AS since,
    argMax(reason_code, (acked_at, attempts)) AS reason_code,
    argMax(customer_hash, (acked_at, attempts)) AS customer_hash
FROM ${DATABASE}.sink_attempts FINAL
GROUP BY sink, idempotency_key
HAVING argMax(outcome, (acked_at, attempts)) = 'dead_lettered';
