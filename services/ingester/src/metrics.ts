// The ingester's metrics (prom-client), one registry per ingester so several can live in one
// process (tests, `ebbflow up`), and an optional /metrics endpoint.
import { Counter, Gauge, Histogram, Registry } from 'prom-client'

/** The hand-offs of `ebbflow_ingest_stage_age_seconds`, in the order a record passes them. */
export type IngestStage = 'delivered' | 'received' | 'block' | 'stored' | 'done'

export class IngestMetrics {
  readonly registry = new Registry()
  readonly records = new Counter({
    name: 'ebbflow_ingest_records_total',
    help: 'Records read, by topic and outcome (stored or dead_letter).',
    labelNames: ['topic', 'outcome'] as const,
    registers: [this.registry],
  })
  readonly rows = new Counter({
    name: 'ebbflow_ingest_rows_total',
    help: 'Rows inserted, by table.',
    labelNames: ['table'] as const,
    registers: [this.registry],
  })
  readonly deadLetters = new Counter({
    name: 'ebbflow_ingest_dead_letters_total',
    help: 'Records sent to the dead letters, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  })
  readonly insertSeconds = new Histogram({
    name: 'ebbflow_ingest_insert_duration_seconds',
    help: 'Time to insert one block (every table it touches).',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  })
  readonly bisectSeconds = new Counter({
    name: 'ebbflow_ingest_bisect_seconds_total',
    help: 'Time spent narrowing blocks the store could not parse down to the records it refuses.',
    registers: [this.registry],
  })
  readonly bisections = new Counter({
    name: 'ebbflow_ingest_bisections_total',
    help: 'Blocks narrowed down by halves because the store refused them.',
    registers: [this.registry],
  })
  readonly unreadable = new Counter({
    name: 'ebbflow_ingest_unreadable_records_total',
    help: 'Records of blocks ClickHouse could not parse that protobuf could not read either: dead-lettered without a bisection.',
    registers: [this.registry],
  })
  readonly insertFailures = new Counter({
    name: 'ebbflow_ingest_insert_failures_total',
    help: 'Failed inserts, by whether a retry can help.',
    labelNames: ['retriable'] as const,
    registers: [this.registry],
  })
  readonly eventAgeSeconds = new Histogram({
    name: 'ebbflow_ingest_event_age_seconds',
    help: 'From the newest event of a batch to its rows being queryable.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  })
  /**
   * How old a record's oldest event is (its kernel stamp, as wall time) at each hand-off on its
   * way into the store, so the latency of kernel event → queryable row can be taken apart:
   * `delivered` the capture handed it to the collector (ring wake-up, drain flush; `ebbflow up`
   * only), `received` the ingester took its record (plus the collector's batch linger and the
   * transport), `block` the block holding it closed (plus the block wait), `stored` its rows
   * are queryable (plus the inserts), `done` the block's dead letters are written and its
   * bookkeeping (ledger, lag rows) too, or held for a later write (`deferBookkeeping`).
   */
  readonly stageSeconds = new Histogram({
    name: 'ebbflow_ingest_stage_age_seconds',
    help: "Age of a record's oldest event at each hand-off: delivered, received, block, stored, done.",
    labelNames: ['stage'] as const,
    buckets: [
      0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 1, 1.25, 1.5, 2, 3,
      5, 10, 30,
    ],
    registers: [this.registry],
  })
  /** Observes `stage` for each oldest-event wall time given (0: a batch without events). */
  stage(stage: IngestStage, oldestEventNs: Iterable<bigint>, nowMs = Date.now()): void {
    for (const ns of oldestEventNs)
      if (ns > 0n)
        this.stageSeconds.observe({ stage }, Math.max(0, nowMs / 1000 - Number(ns) / 1e9))
  }
  readonly lag = new Gauge({
    name: 'ebbflow_ingest_consumer_lag',
    help: 'Records behind the partition high watermark, as of the last batch.',
    labelNames: ['topic', 'partition'] as const,
    registers: [this.registry],
  })
  readonly groupJoins = new Counter({
    name: 'ebbflow_ingest_group_joins_total',
    help: 'Times this member (re)joined its consumer group: each one past the first is a rebalance.',
    registers: [this.registry],
  })
  readonly heartbeats = new Counter({
    name: 'ebbflow_ingest_heartbeats_total',
    help: 'Heartbeats sent to the group coordinator (what kafkajs really sent, not what was asked).',
    registers: [this.registry],
  })
  readonly consumerRestarts = new Counter({
    name: 'ebbflow_ingest_consumer_restarts_total',
    help: 'Times the consumer crashed on an error kafkajs does not retry and was joined again.',
    registers: [this.registry],
  })
  readonly paused = new Gauge({
    name: 'ebbflow_ingest_paused_partitions',
    help: 'Partitions paused because the store is slow or failing.',
    registers: [this.registry],
  })
  readonly storeUnusable = new Gauge({
    name: 'ebbflow_ingest_store_unusable',
    help: 'Partitions waiting on a store error no retry cures (a missing table or database, refused credentials), by error code; the ingester exits once it has lasted --store-failure-exit-ms.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  })
}
