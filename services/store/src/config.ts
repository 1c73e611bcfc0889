// Where the store lives and how long it keeps rows: the only reader of EBBFLOW_DATA_DIR,
// EBBFLOW_CLICKHOUSE, EBBFLOW_RETENTION_DAYS, EBBFLOW_CLUSTER, EBBFLOW_KAFKA_ENGINE (and EBBFLOW_LOG_LEVEL for
// the commands that only use the store). Every invalid value is reported at once.

import { parseConfig } from '@ebbflow/common/config'
import { ConfigError } from '@ebbflow/common/errors'
import { LOG_LEVELS } from '@ebbflow/common/logger'
import { z } from 'zod'
import { CLUSTER_NAME } from './cluster.ts'

export const storeConfigSchema = z.object({
  /** chDB's data folder (embedded mode). Default: ./.ebbflow-data. */
  dataDir: z.string().min(1).default('./.ebbflow-data'),
  /** ClickHouse server URL (distributed mode); when set, it is the store. Default: none. */
  clickhouse: z.url({ protocol: /^https?$/ }).optional(),
  /** Days rows are kept (each table's TTL, set when its migration runs). Default: 30. */
  retentionDays: z.coerce.number().int().min(1).max(36_500).default(30),
  /**
   * Brokers (host:port,…) for ClickHouse's own Kafka engine (`migrate --kafka-engine`): Kafka
   * tables and views that consume the topics inside ClickHouse. Default: none.
   */
  kafkaEngine: z.string().min(1).optional(),
  /**
   * ClickHouse cluster for `migrate`: Replicated tables ON CLUSTER with Distributed tables over
   * them. Default: none (one server or chDB).
   */
  cluster: z
    .string()
    .regex(CLUSTER_NAME, "use letters, digits, '_', '-', '.' (it is spliced into DDL)")
    .optional(),
  /** Log level of the command using the store (migrate, ingest). Default: info. */
  logLevel: z.enum(LOG_LEVELS).default('info'),
})

export type StoreConfig = z.output<typeof storeConfigSchema>
export type StoreConfigInput = { [K in keyof z.input<typeof storeConfigSchema>]?: string }

const ENV: Record<keyof StoreConfigInput, string> = {
  dataDir: 'EBBFLOW_DATA_DIR',
  clickhouse: 'EBBFLOW_CLICKHOUSE',
  retentionDays: 'EBBFLOW_RETENTION_DAYS',
  logLevel: 'EBBFLOW_LOG_LEVEL',
  kafkaEngine: 'EBBFLOW_KAFKA_ENGINE',
  cluster: 'EBBFLOW_CLUSTER',
}

/** The environment variable each setting reads (for help texts and the README table). */
export const storeEnvNames: Readonly<Record<keyof StoreConfigInput, string>> = ENV

/** Explicit values (CLI flags) first, then EBBFLOW_* variables, then defaults. */
export function loadStoreConfig(
  explicit: StoreConfigInput = {},
  env: NodeJS.ProcessEnv = process.env,
): StoreConfig {
  const { data, problems } = parseConfig(storeConfigSchema, ENV, explicit, env)
  if (!data) throw new ConfigError(problems)
  return data
}
