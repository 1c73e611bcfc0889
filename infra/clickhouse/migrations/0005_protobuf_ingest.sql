-- 0005: the ingester hands record bytes to ClickHouse (its Protobuf input format) instead of
-- JSON rows. A ClickHouse server reads a request's body with input(), which only an
-- INSERT … SELECT may use, so the per-event checks of a block (validationStatement in
-- services/common/src/store/batch-sql.ts) land here, named by the block, and are read back.
-- chDB runs the same check as a plain SELECT over its file and leaves this table empty.
-- A day is far longer than any block takes to be stored.
CREATE TABLE IF NOT EXISTS ebbflow.ingest_problems
(
    block String,
    record UInt64,
    untimed UInt64,
    problems Array(String),
    at DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
ORDER BY (block, record)
TTL at + INTERVAL 1 DAY;
