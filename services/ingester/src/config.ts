// The ingester's configuration: the only reader of process.env in this service (the store's
// settings are read by the shared store config). Every invalid value is reported at once.
import { ConfigError, parseConfig } from '@ebbflow/common'
import { DLQ_TOPIC, TOPICS } from '@ebbflow/common/topics'
import { loadStoreConfig, type StoreConfig, type StoreConfigInput } from '@ebbflow/store'
import { z } from 'zod'
import { type FaultSpec, parseFaultSpec } from './faults.ts'

const list = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0),
)

export const ingesterConfigSchema = z.object({
  /** Kafka bootstrap brokers, host:port, comma-separated. Required (unless knativePort). */
  kafkaBrokers: list.default([]),
  /** Consumer group. Default: ebbflow-ingester. */
  groupId: z.string().min(1).default('ebbflow-ingester'),
  /** Topics read. Default: ebbflow.exec.v1, ebbflow.net.v1, ebbflow.syscall.v1. */
  topics: list.pipe(z.array(z.string().min(1)).min(1)).prefault(Object.values(TOPICS).join(',')),
  /** Where records that cannot be stored go. Default: ebbflow.dlq.v1. */
  dlqTopic: z.string().min(1).default(DLQ_TOPIC),
  /** Most events (rows) per insert. Default: 100000. */
  maxRows: z.coerce.number().int().min(1).max(10_000_000).default(100_000),
  /** Most record bytes per insert. Default: 16777216 (16 MiB). */
  maxBytes: z.coerce
    .number()
    .int()
    .min(1024)
    .max(1024 * 1024 * 1024)
    .default(16 * 1024 * 1024),
  /** Longest a fetch waits to fill a block. Default: 500 ms. */
  maxWaitMs: z.coerce.number().int().min(1).max(60_000).default(500),
  /** `ebbflow up`'s in-process queue only: the longest the batch ledger and ingest_lag rows of
   * stored blocks are held, to be written together (two statements per interval instead of two
   * per block); 0 writes them with each block. A crash loses at most this long of ledger rows.
   * Default: 1000 ms. */
  bookkeepingMs: z.coerce.number().int().min(0).max(60_000).default(1000),
  /** An insert slower than this is logged as slow; it is back-pressure, never a pause. Default: 2000 ms. */
  slowInsertMs: z.coerce.number().int().min(1).default(2000),
  /** Partitions processed at once. Default: 2. */
  concurrency: z.coerce.number().int().min(1).max(64).default(2),
  /** How long the group waits for a silent member (a killed ingester) before handing its
   * partitions on: a restarted or surviving ingester waits about this long. Heartbeats go
   * every third of it, also while a store failure is retried. Default: 10000 ms (Kafka's
   * consumers default to 45 s, kafkajs to 30 s). */
  sessionTimeoutMs: z.coerce.number().int().min(6000).max(300_000).default(10_000),
  /** How long a store error no retry cures (a missing table or database, refused
   * credentials) is retried before `ebbflow ingest` exits with status 1 for its supervisor to
   * restart it; nothing is committed or dead-lettered meanwhile. 0: retry for ever.
   * Default: 60000 ms. */
  storeFailureExitMs: z.coerce.number().int().min(0).default(60_000),
  /** Port of /metrics on 127.0.0.1 (0: any free port; -1: off). Default: 9464. */
  metricsPort: z.coerce.number().int().min(-1).max(65_535).default(9464),
  /** Address /metrics listens on. Default: 127.0.0.1. */
  metricsHost: z.string().min(1).default('127.0.0.1'),
  /** Serve a Knative KafkaSource sink on this port instead of joining a consumer group.
   * Default: off. */
  knativePort: z.coerce.number().int().min(0).max(65_535).optional(),
  /** A named fault point to fire, `point:action[@n]` (faults.ts), for fault tests and
   * rehearsals, e.g. `ingest.after-insert:kill`. Default: none. */
  fault: z
    .string()
    .optional()
    .transform((text, ctx): FaultSpec | undefined => {
      if (text === undefined || text === '') return undefined
      const spec = parseFaultSpec(text)
      if (typeof spec === 'object') return spec
      ctx.addIssue({ code: 'custom', message: spec })
      return z.NEVER
    }),
  /** Apply pending schema migrations at start. Default: true. */
  migrate: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
})

export type IngesterConfig = z.output<typeof ingesterConfigSchema> & { store: StoreConfig }
export type IngesterConfigInput = {
  [K in keyof z.input<typeof ingesterConfigSchema>]?: string
} & StoreConfigInput

const ENV: Record<keyof z.input<typeof ingesterConfigSchema>, string> = {
  kafkaBrokers: 'EBBFLOW_KAFKA',
  groupId: 'EBBFLOW_GROUP_ID',
  topics: 'EBBFLOW_TOPICS',
  dlqTopic: 'EBBFLOW_DLQ_TOPIC',
  maxRows: 'EBBFLOW_INGEST_MAX_ROWS',
  maxBytes: 'EBBFLOW_INGEST_MAX_BYTES',
  maxWaitMs: 'EBBFLOW_INGEST_MAX_WAIT_MS',
  bookkeepingMs: 'EBBFLOW_INGEST_BOOKKEEPING_MS',
  slowInsertMs: 'EBBFLOW_SLOW_INSERT_MS',
  sessionTimeoutMs: 'EBBFLOW_INGEST_SESSION_TIMEOUT_MS',
  storeFailureExitMs: 'EBBFLOW_INGEST_STORE_FAILURE_EXIT_MS',
  concurrency: 'EBBFLOW_INGEST_CONCURRENCY',
  metricsPort: 'EBBFLOW_METRICS_PORT',
  metricsHost: 'EBBFLOW_METRICS_HOST',
  knativePort: 'EBBFLOW_KNATIVE_PORT',
  fault: 'EBBFLOW_FAULT',
  migrate: 'EBBFLOW_MIGRATE',
}

export const ingesterEnvNames: Readonly<Record<string, string>> = ENV

/** `inProcess`: the records come from `ebbflow up`'s in-process queue, not from Kafka. */
export function loadIngesterConfig(
  explicit: IngesterConfigInput = {},
  env: NodeJS.ProcessEnv = process.env,
  options: { inProcess?: boolean } = {},
): IngesterConfig {
  const { data, problems } = parseConfig(ingesterConfigSchema, ENV, explicit, env)
  let store: StoreConfig | undefined
  try {
    store = loadStoreConfig(explicit, env)
  } catch (err) {
    if (err instanceof ConfigError) problems.push(...err.problems)
    else throw err
  }
  if (
    data &&
    data.kafkaBrokers.length === 0 &&
    data.knativePort === undefined &&
    !options.inProcess
  )
    problems.push(
      `kafkaBrokers (${ENV.kafkaBrokers}): required (or knativePort for a Knative sink)`,
    )
  if (problems.length > 0 || !data || !store) throw new ConfigError(problems)
  return { ...data, store }
}

/**
 * The ingester as a function (an AWS Lambda for an MSK or self-managed Kafka trigger): the
 * store comes from the shared store settings (EBBFLOW_CLICKHOUSE, or EBBFLOW_DATA_DIR for chDB),
 * dead letters go to Kafka when brokers are named and to the store's dead_letters table
 * otherwise.
 */
export const functionConfigSchema = z.object({
  /** Brokers for the dead-letter topic. Default: none (dead letters in the store). */
  kafkaBrokers: list.default([]),
  /** Where records that cannot be stored go. Default: ebbflow.dlq.v1. */
  dlqTopic: z.string().min(1).default(DLQ_TOPIC),
  /**
   * How a cold start checks the store's schema. `stamp`: one query that the newest migration
   * this build knows is applied (run `ebbflow migrate` when deploying); `migrate`: apply
   * pending migrations (for a store that starts empty, such as chDB in /tmp). Default: stamp.
   */
  schema: z.enum(['stamp', 'migrate']).default('stamp'),
})

export type FunctionConfig = z.output<typeof functionConfigSchema> & { store: StoreConfig }

const FUNCTION_ENV: Record<keyof z.input<typeof functionConfigSchema>, string> = {
  kafkaBrokers: 'EBBFLOW_KAFKA',
  dlqTopic: 'EBBFLOW_DLQ_TOPIC',
  schema: 'EBBFLOW_FUNCTION_SCHEMA',
}

export function loadFunctionConfig(env: NodeJS.ProcessEnv = process.env): FunctionConfig {
  const { data, problems } = parseConfig(functionConfigSchema, FUNCTION_ENV, {}, env)
  let store: StoreConfig | undefined
  try {
    store = loadStoreConfig({}, env)
  } catch (err) {
    if (err instanceof ConfigError) problems.push(...err.problems)
    else throw err
  }
  if (problems.length > 0 || !data || !store) throw new ConfigError(problems)
  return { ...data, store }
}
