-- 0001: the first schema of database `ebbflow`, one table per event family.
--
-- Same text for chDB and ClickHouse server. `{retention_days}` is substituted by the
-- migrator (EBBFLOW_RETENTION_DAYS, default 30); the checksum is of this text before
-- substitution, so a different retention does not count as an edited migration.
--
-- Choices shared by every table:
-- - PARTITION BY toDate(time) with ttl_only_drop_parts: retention drops whole daily parts
--   instead of rewriting them.
-- - ORDER BY (namespace, pod, time): the API's common filters; host events have an empty
--   namespace and pod and sort together.
-- - LowCardinality for names (node, namespace, pod, container, comm, syscall…): few distinct
--   values per part, dictionary-encoded and compared as integers.
-- - time DateTime64(9) with DoubleDelta: nanosecond timestamps, nearly regular within one
--   pod's run of the sort key. Counters and ids with T64 (cuts unused high bytes of
--   UInt32/UInt64) then ZSTD; free text (filenames, argv, labels) with ZSTD.
-- - non_replicated_deduplication_window: a re-sent batch with the same
--   insert_deduplication_token adds no rows (the replicated tables of cluster mode
--   deduplicate by default).

CREATE DATABASE IF NOT EXISTS ebbflow;

-- exec, exit and fork in one table, `kind` tells which: they share the task and pod columns,
-- one insert per batch, and a process's life is one (node, boot_id, tgid) group here.
CREATE TABLE IF NOT EXISTS ebbflow.process_events
(
    time DateTime64(9, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    kind Enum8('exec' = 1, 'exit' = 2, 'fork' = 3),
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
    parent_comm LowCardinality(String),
    filename String CODEC(ZSTD(1)),
    args Array(String) CODEC(ZSTD(1)),
    args_total_bytes UInt32 CODEC(T64, ZSTD(1)),
    args_truncated Bool,
    filename_truncated Bool,
    args_read_failed Bool,
    duration_ns UInt64 CODEC(T64, ZSTD(1)),
    duration_from_fork Bool,
    exit_code Int32 CODEC(T64, ZSTD(1)),
    signal UInt8,
    core_dumped Bool,
    child_pid UInt32 CODEC(T64, ZSTD(1)),
    child_tgid UInt32 CODEC(T64, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toDate(time)
ORDER BY (namespace, pod, time)
TTL toDateTime(time) + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

-- TCP lifecycle: connect, accept, close (with payload bytes and duration), failed connects.
CREATE TABLE IF NOT EXISTS ebbflow.tcp_connections
(
    time DateTime64(9, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    event Enum8('connect' = 1, 'accept' = 2, 'close' = 3, 'connect_failed' = 4),
    role Enum8('active' = 1, 'passive' = 2),
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
    systemd_unit LowCardinality(String),
    cgroup_path LowCardinality(String),
    session LowCardinality(String),
    labels Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    unresolved Bool,
    cgroup_id UInt64 CODEC(T64, ZSTD(1)),
    sock_id UInt64 CODEC(ZSTD(1)),
    pid UInt32 CODEC(T64, ZSTD(1)),
    comm LowCardinality(String),
    netns_ino UInt32 CODEC(T64, ZSTD(1)),
    ip_family UInt8,
    -- IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d): one column for both families.
    saddr IPv6 CODEC(ZSTD(1)),
    daddr IPv6 CODEC(ZSTD(1)),
    sport UInt16 CODEC(T64, ZSTD(1)),
    dport UInt16 CODEC(T64, ZSTD(1)),
    duration_ns UInt64 CODEC(T64, ZSTD(1)),
    bytes_sent UInt64 CODEC(T64, ZSTD(1)),
    bytes_received UInt64 CODEC(T64, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toDate(time)
ORDER BY (namespace, pod, time)
TTL toDateTime(time) + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

-- Per-cgroup traffic counters (cgroup_skb), deltas over interval_ns.
CREATE TABLE IF NOT EXISTS ebbflow.traffic
(
    time DateTime64(9, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    interval_ns UInt64 CODEC(T64, ZSTD(1)),
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
    systemd_unit LowCardinality(String),
    cgroup_path LowCardinality(String),
    session LowCardinality(String),
    labels Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    unresolved Bool,
    cgroup_id UInt64 CODEC(T64, ZSTD(1)),
    direction Enum8('ingress' = 1, 'egress' = 2),
    protocol UInt8,
    ip_family UInt8,
    remote_addr IPv6 CODEC(ZSTD(1)),
    remote_port UInt16 CODEC(T64, ZSTD(1)),
    local_port UInt16 CODEC(T64, ZSTD(1)),
    packets UInt64 CODEC(T64, ZSTD(1)),
    bytes UInt64 CODEC(T64, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toDate(time)
ORDER BY (namespace, pod, time)
TTL toDateTime(time) + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

-- In-kernel syscall counts per (cgroup, syscall), deltas over interval_ns.
CREATE TABLE IF NOT EXISTS ebbflow.syscall_counts
(
    time DateTime64(9, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    interval_ns UInt64 CODEC(T64, ZSTD(1)),
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
    systemd_unit LowCardinality(String),
    cgroup_path LowCardinality(String),
    session LowCardinality(String),
    labels Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    unresolved Bool,
    cgroup_id UInt64 CODEC(T64, ZSTD(1)),
    syscall_nr UInt16 CODEC(T64, ZSTD(1)),
    syscall LowCardinality(String),
    count UInt64 CODEC(T64, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toDate(time)
ORDER BY (namespace, pod, time)
TTL toDateTime(time) + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

-- Security-relevant syscalls one by one, raw arguments and the user strings copied for them.
CREATE TABLE IF NOT EXISTS ebbflow.syscall_events
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
    syscall_nr UInt16 CODEC(T64, ZSTD(1)),
    syscall LowCardinality(String),
    args Array(UInt64) CODEC(ZSTD(1)),
    -- string_values[i] is the user string of argument string_args[i].
    string_args Array(UInt8) CODEC(ZSTD(1)),
    string_values Array(String) CODEC(ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toDate(time)
ORDER BY (namespace, pod, time)
TTL toDateTime(time) + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;

-- The collector's own statistics: today drops per family and reason (kernel reasons and the
-- publisher's queue_full); one row per (metric, family, reason) and read.
CREATE TABLE IF NOT EXISTS ebbflow.collector_stats
(
    time DateTime64(9, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    node LowCardinality(String),
    boot_id LowCardinality(String),
    metric LowCardinality(String),
    family LowCardinality(String),
    reason LowCardinality(String),
    value UInt64 CODEC(T64, ZSTD(1))
)
ENGINE = MergeTree
PARTITION BY toDate(time)
ORDER BY (node, metric, time)
TTL toDateTime(time) + INTERVAL {retention_days} DAY
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;
