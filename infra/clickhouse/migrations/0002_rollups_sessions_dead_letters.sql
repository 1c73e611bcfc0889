-- 0002: per-minute rollups for dashboards and alerts, exec sessions, and the embedded mode's
-- dead letters.
--
-- The rollups are fed by materialized views on insert, so they cost nothing to query. They
-- stay exact under the ingester's deduplication only because each target table deduplicates
-- too: ClickHouse 26 still runs the views for a block the source table dropped as a re-sent
-- batch, and the view's block then carries a token derived from the insert's
-- (deduplicate_blocks_in_dependent_materialized_views), which the target's own window catches.
-- A test compares the rollups with the raw tables after a redelivery. Summing tables keep one row per key once merged; readers still
-- `sum()` with GROUP BY, because parts merge when ClickHouse chooses.

-- Traffic per pod and peer (remote address and ports), per minute.
CREATE TABLE IF NOT EXISTS ebbflow.traffic_1m
(
    minute DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    node LowCardinality(String),
    namespace LowCardinality(String),
    pod LowCardinality(String),
    workload_kind LowCardinality(String),
    workload_name LowCardinality(String),
    function LowCardinality(String),
    direction Enum8('ingress' = 1, 'egress' = 2),
    protocol UInt8,
    remote_addr IPv6 CODEC(ZSTD(1)),
    remote_port UInt16,
    local_port UInt16,
    bytes UInt64 CODEC(T64, ZSTD(1)),
    packets UInt64 CODEC(T64, ZSTD(1))
)
ENGINE = SummingMergeTree((bytes, packets))
PARTITION BY toDate(minute)
ORDER BY (namespace, pod, minute, node, workload_kind, workload_name, function, direction, protocol, remote_addr, remote_port, local_port)
TTL minute + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ebbflow.traffic_1m_mv TO ebbflow.traffic_1m AS
SELECT
    toStartOfMinute(time) AS minute,
    node, namespace, pod, workload_kind, workload_name, function,
    direction, protocol, remote_addr, remote_port, local_port,
    sum(bytes) AS bytes,
    sum(packets) AS packets
FROM ebbflow.traffic
GROUP BY minute, node, namespace, pod, workload_kind, workload_name, function,
    direction, protocol, remote_addr, remote_port, local_port;

-- System calls per container, per minute.
CREATE TABLE IF NOT EXISTS ebbflow.syscalls_1m
(
    minute DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    node LowCardinality(String),
    namespace LowCardinality(String),
    pod LowCardinality(String),
    container LowCardinality(String),
    workload_kind LowCardinality(String),
    workload_name LowCardinality(String),
    function LowCardinality(String),
    syscall LowCardinality(String),
    count UInt64 CODEC(T64, ZSTD(1))
)
ENGINE = SummingMergeTree(count)
PARTITION BY toDate(minute)
ORDER BY (namespace, pod, container, minute, node, workload_kind, workload_name, function, syscall)
TTL minute + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ebbflow.syscalls_1m_mv TO ebbflow.syscalls_1m AS
SELECT
    toStartOfMinute(time) AS minute,
    node, namespace, pod, container, workload_kind, workload_name, function, syscall,
    sum(count) AS count
FROM ebbflow.syscall_counts
GROUP BY minute, node, namespace, pod, container, workload_kind, workload_name, function, syscall;

-- Process starts and ends per workload and function (and command), per minute. `failed` is an
-- exit with a non-zero code or by a signal; `duration_ns` sums the exits' run times.
CREATE TABLE IF NOT EXISTS ebbflow.execs_1m
(
    minute DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    node LowCardinality(String),
    namespace LowCardinality(String),
    workload_kind LowCardinality(String),
    workload_name LowCardinality(String),
    function LowCardinality(String),
    comm LowCardinality(String),
    execs UInt64 CODEC(T64, ZSTD(1)),
    exits UInt64 CODEC(T64, ZSTD(1)),
    failed UInt64 CODEC(T64, ZSTD(1)),
    forks UInt64 CODEC(T64, ZSTD(1)),
    duration_ns UInt64 CODEC(T64, ZSTD(1))
)
ENGINE = SummingMergeTree((execs, exits, failed, forks, duration_ns))
PARTITION BY toDate(minute)
ORDER BY (namespace, workload_kind, workload_name, function, minute, node, comm)
TTL minute + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ebbflow.execs_1m_mv TO ebbflow.execs_1m AS
SELECT
    toStartOfMinute(time) AS minute,
    node, namespace, workload_kind, workload_name, function, comm,
    countIf(kind = 'exec') AS execs,
    countIf(kind = 'exit') AS exits,
    countIf(kind = 'exit' AND (exit_code != 0 OR signal != 0)) AS failed,
    countIf(kind = 'fork') AS forks,
    sumIf(duration_ns, kind = 'exit') AS duration_ns
FROM ebbflow.process_events
GROUP BY minute, node, namespace, workload_kind, workload_name, function, comm;

-- `kubectl exec` sessions (the collector's session id on every process of one), one row per
-- session and day once merged: when it started and was last seen, how many commands ran and
-- failed, who ran them, and the first command. The commands themselves stay in
-- process_events (WHERE session = …), in order, for playback.
CREATE TABLE IF NOT EXISTS ebbflow.exec_sessions
(
    day Date,
    namespace LowCardinality(String),
    pod LowCardinality(String),
    container LowCardinality(String),
    node LowCardinality(String),
    session String,
    started SimpleAggregateFunction(min, DateTime64(9, 'UTC')),
    last_seen SimpleAggregateFunction(max, DateTime64(9, 'UTC')),
    commands SimpleAggregateFunction(sum, UInt64),
    failed SimpleAggregateFunction(sum, UInt64),
    uids SimpleAggregateFunction(groupUniqArrayArray, Array(UInt32)),
    first_command AggregateFunction(argMin, String, DateTime64(9, 'UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY day
ORDER BY (namespace, pod, session, container, node, day)
TTL day + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ebbflow.exec_sessions_mv TO ebbflow.exec_sessions AS
SELECT
    toDate(time) AS day,
    namespace, pod, container, node, session,
    min(time) AS started,
    max(time) AS last_seen,
    countIf(kind = 'exec') AS commands,
    countIf(kind = 'exit' AND (exit_code != 0 OR signal != 0)) AS failed,
    groupUniqArray(uid) AS uids,
    argMinStateIf(filename, time, kind = 'exec') AS first_command
FROM ebbflow.process_events
WHERE session != ''
GROUP BY day, namespace, pod, container, node, session;

-- Records the embedded ingester could not store (in the distributed mode they go to the
-- Kafka topic ebbflow.dlq.v1 instead): the error and the original bytes, base64.
CREATE TABLE IF NOT EXISTS ebbflow.dead_letters
(
    time DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    source LowCardinality(String),
    topic LowCardinality(String),
    partition Int32,
    offset Int64,
    reason LowCardinality(String),
    error String CODEC(ZSTD(1)),
    key String CODEC(ZSTD(1)),
    value_base64 String CODEC(ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toDate(time)
ORDER BY (reason, time)
TTL toDateTime(time) + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;
