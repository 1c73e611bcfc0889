-- 0006: the batch ledger. One row per EventBatch the ingester stored, with the header every
-- collector writes (node, collector instance, boot id, sequence per instance and topic) and
-- the publisher's own queue_full drops the batch reported. A gap in one instance's sequence
-- of one topic is a batch that never reached the store; the drops the publisher reported say
-- how many of those it dropped knowingly. Keyed by (instance, topic, sequence) so a batch
-- delivered twice counts once (ReplacingMergeTree merges it away; queries count distinct
-- sequences, so they are exact before the merge too).
CREATE TABLE IF NOT EXISTS ebbflow.batch_ledger
(
    stored_at DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    node LowCardinality(String),
    boot_id LowCardinality(String),
    collector_instance_id String,
    topic LowCardinality(String),
    sequence UInt64,
    batch_id String CODEC(ZSTD(1)),
    first_time DateTime64(9, 'UTC'),
    last_time DateTime64(9, 'UTC'),
    events UInt32,
    dropped_batches UInt64,
    dropped_events UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(stored_at)
ORDER BY (node, collector_instance_id, topic, sequence)
TTL toDateTime(stored_at) + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;
