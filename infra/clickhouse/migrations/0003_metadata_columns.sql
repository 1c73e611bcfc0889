-- 0003: the Metadata fields that stopped at the row mapper (runtime, qos_class,
-- service_account) get columns on every event table, and process_events records whether an
-- exec was read from /proc at collector start (Exec.seen_at_start) rather than captured.
-- The proto is the one definition of these fields; a test walks every Metadata field and
-- fails when a table lacks its column.

ALTER TABLE ebbflow.process_events
    ADD COLUMN IF NOT EXISTS runtime LowCardinality(String) AFTER image,
    ADD COLUMN IF NOT EXISTS qos_class LowCardinality(String) AFTER runtime,
    ADD COLUMN IF NOT EXISTS service_account LowCardinality(String) AFTER qos_class,
    ADD COLUMN IF NOT EXISTS seen_at_start Bool AFTER args_read_failed;

ALTER TABLE ebbflow.tcp_connections
    ADD COLUMN IF NOT EXISTS runtime LowCardinality(String) AFTER image,
    ADD COLUMN IF NOT EXISTS qos_class LowCardinality(String) AFTER runtime,
    ADD COLUMN IF NOT EXISTS service_account LowCardinality(String) AFTER qos_class;

ALTER TABLE ebbflow.traffic
    ADD COLUMN IF NOT EXISTS runtime LowCardinality(String) AFTER image,
    ADD COLUMN IF NOT EXISTS qos_class LowCardinality(String) AFTER runtime,
    ADD COLUMN IF NOT EXISTS service_account LowCardinality(String) AFTER qos_class;

ALTER TABLE ebbflow.syscall_counts
    ADD COLUMN IF NOT EXISTS runtime LowCardinality(String) AFTER image,
    ADD COLUMN IF NOT EXISTS qos_class LowCardinality(String) AFTER runtime,
    ADD COLUMN IF NOT EXISTS service_account LowCardinality(String) AFTER qos_class;

ALTER TABLE ebbflow.syscall_events
    ADD COLUMN IF NOT EXISTS runtime LowCardinality(String) AFTER image,
    ADD COLUMN IF NOT EXISTS qos_class LowCardinality(String) AFTER runtime,
    ADD COLUMN IF NOT EXISTS service_account LowCardinality(String) AFTER qos_class;
