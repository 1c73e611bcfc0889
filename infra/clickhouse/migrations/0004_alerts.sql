-- 0004: the alerter's state (services/alerter). Every replica of `ebbflow alert`, and every
-- `--once` run of a CronJob, reads and writes only these tables, so they carry on from one
-- another. Coordination uses ClickHouse's insert deduplication alone: a claim is an insert
-- whose insert_deduplication_token names what is claimed (a rule's evaluation slot, a
-- delivery's attempt); of racing claims one row is kept, and each claimant reads it back to
-- learn whether it won. The deduplication window is counted in inserts, so it is wide here.

-- One 'claim' row per (rule, slot) and, once the evaluation finished, one 'done' row with the
-- query window it covered and the rule's health: the next evaluation starts its window where
-- the last done one ended.
CREATE TABLE IF NOT EXISTS ebbflow.alert_evaluations
(
    time DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    rule LowCardinality(String),
    slot UInt64,
    phase Enum8('claim' = 1, 'done' = 2),
    replica String,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    health Enum8('ok' = 1, 'nodata' = 2, 'error' = 3),
    error String CODEC(ZSTD(1)),
    rows UInt32,
    instances UInt32,
    duration_ms UInt32
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (rule, slot, phase)
TTL toDateTime(time) + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 100000;

-- The active alerts of each rule (Prometheus' r.active), one row per alert and evaluation that
-- changed or kept it; the latest slot wins. `deleted` marks an alert dropped from the set.
CREATE TABLE IF NOT EXISTS ebbflow.alert_state
(
    rule LowCardinality(String),
    fingerprint String,
    slot UInt64,
    deleted Bool,
    namespace LowCardinality(String),
    state Enum8('pending' = 1, 'firing' = 2, 'resolved' = 3),
    labels Map(String, String),
    annotations Map(String, String),
    value Float64,
    active_at DateTime64(3, 'UTC'),
    fired_at DateTime64(3, 'UTC'),
    resolved_at DateTime64(3, 'UTC'),
    last_sent_at DateTime64(3, 'UTC'),
    keep_firing_since DateTime64(3, 'UTC'),
    valid_until DateTime64(3, 'UTC'),
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(slot)
ORDER BY (rule, fingerprint)
SETTINGS non_replicated_deduplication_window = 100000;

-- Every transition (inactive → pending → firing → resolved, pending → inactive). `id` is the
-- same for the same transition whoever computed it; readers keep one row per id.
CREATE TABLE IF NOT EXISTS ebbflow.alert_transitions
(
    time DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    id String,
    rule LowCardinality(String),
    fingerprint String,
    namespace LowCardinality(String),
    from_state Enum8('inactive' = 0, 'pending' = 1, 'firing' = 2, 'resolved' = 3),
    to_state Enum8('inactive' = 0, 'pending' = 1, 'firing' = 2, 'resolved' = 3),
    labels Map(String, String),
    annotations Map(String, String),
    value Float64,
    active_at DateTime64(3, 'UTC'),
    slot UInt64,
    replica String
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (rule, id)
TTL toDateTime(time) + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 100000;

-- Webhook deliveries of transitions: a 'claim' per (target, transition, generation) decides
-- which replica sends, then 'delivered' or 'failed'. A failed or abandoned claim lets the next
-- generation be claimed, so a receiver that was down gets the transition once it is back.
CREATE TABLE IF NOT EXISTS ebbflow.alert_deliveries
(
    time DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    target String,
    transition_id String,
    generation UInt32,
    phase Enum8('claim' = 1, 'delivered' = 2, 'failed' = 3),
    replica String,
    attempts UInt32,
    error String CODEC(ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (target, transition_id, generation, phase)
TTL toDateTime(time) + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 100000;
