-- 0007: the file family (issue 17): what each workload opened, exec'd, created and removed,
-- one row per record of proto FileAccess. Column names are the proto's field names, so the
-- ingester (or ClickHouse parsing the protobuf itself) fills them without a mapping.
--
-- A row is a sighting (repeat = false, count 1: the first access of a (cgroup, path, access)
-- in the kernel's dedup window, with its process) or a repeat (count = accesses the kernel
-- counted since, attributed to the sighting's process). sum(count) is the number of accesses.
CREATE TABLE IF NOT EXISTS ebbflow.file_accesses
(
    time DateTime64(9, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    node LowCardinality(String),
    boot_id LowCardinality(String),
    namespace LowCardinality(String),
    pod LowCardinality(String),
    pod_uid LowCardinality(String),
    container LowCardinality(String),
    container_id LowCardinality(String),
    workload_kind LowCardinality(String),
    workload_name LowCardinality(String),
    function LowCardinality(String),
    function_revision LowCardinality(String),
    image LowCardinality(String),
    runtime LowCardinality(String),
    qos_class LowCardinality(String),
    service_account LowCardinality(String),
    systemd_unit LowCardinality(String),
    cgroup_path LowCardinality(String),
    session LowCardinality(String),
    labels Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    unresolved Bool,
    cgroup_id UInt64 CODEC(T64, ZSTD(1)),
    pid UInt32 CODEC(T64, ZSTD(1)),
    tgid UInt32 CODEC(T64, ZSTD(1)),
    ppid UInt32 CODEC(T64, ZSTD(1)),
    uid UInt32 CODEC(T64, ZSTD(1)),
    gid UInt32 CODEC(T64, ZSTD(1)),
    pidns_ino UInt32 CODEC(T64, ZSTD(1)),
    mntns_ino UInt32 CODEC(T64, ZSTD(1)),
    comm LowCardinality(String),
    -- Few distinct paths per workload, repeated on every sighting window.
    path LowCardinality(String) CODEC(ZSTD(1)),
    -- Values are the proto enum's numbers.
    access Enum8('read' = 1, 'write' = 2, 'exec' = 3, 'create' = 4, 'remove' = 5),
    op Enum8('open' = 1, 'exec' = 2, 'unlink' = 3, 'rmdir' = 4, 'mkdir' = 5, 'rename' = 6),
    directory Bool,
    path_truncated Bool,
    count UInt64 CODEC(T64, ZSTD(1)),
    repeat Bool
)
ENGINE = MergeTree
PARTITION BY toDate(time)
ORDER BY (namespace, pod, time)
TTL toDateTime(time) + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

-- Accesses per workload, path and access kind, per minute: what dashboards and the alert on
-- writes under system folders read. Deduplicates like the other rollups (see 0002).
CREATE TABLE IF NOT EXISTS ebbflow.file_accesses_1m
(
    minute DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    node LowCardinality(String),
    namespace LowCardinality(String),
    pod LowCardinality(String),
    container LowCardinality(String),
    workload_kind LowCardinality(String),
    workload_name LowCardinality(String),
    function LowCardinality(String),
    path LowCardinality(String),
    access Enum8('read' = 1, 'write' = 2, 'exec' = 3, 'create' = 4, 'remove' = 5),
    count UInt64 CODEC(T64, ZSTD(1))
)
ENGINE = SummingMergeTree(count)
PARTITION BY toDate(minute)
ORDER BY (namespace, pod, container, minute, node, workload_kind, workload_name, function, path, access)
TTL minute + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS ebbflow.file_accesses_1m_mv TO ebbflow.file_accesses_1m AS
SELECT
    toStartOfMinute(time) AS minute,
    node, namespace, pod, container, workload_kind, workload_name, function, path, access,
    sum(count) AS count
FROM ebbflow.file_accesses
GROUP BY minute, node, namespace, pod, container, workload_kind, workload_name, function, path, access;
