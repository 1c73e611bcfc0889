// The alerter's configuration: the only reader of process.env in this service (the store's
// settings are read by the shared store config). Every invalid value is reported at once.
import { hostname } from 'node:os'
import { ConfigError, ConfigProblems, LOG_LEVELS, parseConfig } from '@ebbflow/common'
import { loadStoreConfig, type StoreConfig, type StoreConfigInput } from '@ebbflow/store'
import { z } from 'zod'
import { parseDuration } from './duration.ts'

const urls = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x.length > 0),
  )
  .pipe(z.array(z.url({ protocol: /^https?$/ })))

const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes')

const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx) => {
      try {
        return parseDuration(v)
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message })
        return z.NEVER
      }
    })

export const alerterConfigSchema = z.object({
  /** A rule file or a folder of *.yaml rule files. Required. */
  rules: z.string().min(1),
  /** Alertmanager base URLs, comma-separated (API v2 under /api/v2). Default: none. */
  alertmanagers: urls.default([]),
  /** Webhook URLs, comma-separated: one JSON POST per firing or resolved transition. Default: none. */
  webhooks: urls.default([]),
  /** Evaluate every rule once (its current slot), deliver, and exit: for a CronJob. Default: false. */
  once: flag.default(false),
  /** Load every rule, run its SQL once without rows, report broken rules, exit. Default: false. */
  check: flag.default(false),
  /** Re-send firing alerts to Alertmanager this often (Prometheus' resend delay). Default: 1m. */
  resend: duration('1m'),
  /** Added to the store's ingestion lag when a window starts where the last one ended. Default: 5s. */
  lagMargin: duration('5s'),
  /** Undelivered webhook transitions younger than this are delivered. Default: 1h. */
  deliveryHorizon: duration('1h'),
  /** Timeout of one HTTP request to Alertmanager or a webhook. Default: 5s. */
  httpTimeout: duration('5s'),
  /** Attempts per webhook delivery (backoff 500ms, doubling) before it waits for a later run. Default: 3. */
  webhookAttempts: z.coerce.number().int().min(1).max(20).default(3),
  /** This replica's name in claims and history. Default: hostname-pid. */
  replica: z.string().min(1).default(`${hostname()}-${process.pid}`),
  /** Port of /metrics in the scheduled mode (0: any free port; -1: off). Default: -1. */
  metricsPort: z.coerce.number().int().min(-1).max(65_535).default(-1),
  /** Address /metrics listens on. Default: 127.0.0.1. */
  metricsHost: z.string().min(1).default('127.0.0.1'),
  /** Apply pending schema migrations at start. Default: true. */
  migrate: flag.default(true),
  /** Log level. Default: info. */
  logLevel: z.enum(LOG_LEVELS).default('info'),
})

export type AlerterConfig = z.output<typeof alerterConfigSchema> & { store: StoreConfig }
export type AlerterConfigInput = {
  [K in keyof z.input<typeof alerterConfigSchema>]?: string
} & StoreConfigInput

const ENV: Record<keyof z.input<typeof alerterConfigSchema>, string> = {
  rules: 'EBBFLOW_RULES',
  alertmanagers: 'EBBFLOW_ALERTMANAGER',
  webhooks: 'EBBFLOW_WEBHOOK',
  once: 'EBBFLOW_ALERT_ONCE',
  check: 'EBBFLOW_ALERT_CHECK',
  resend: 'EBBFLOW_ALERT_RESEND',
  lagMargin: 'EBBFLOW_ALERT_LAG_MARGIN',
  deliveryHorizon: 'EBBFLOW_ALERT_DELIVERY_HORIZON',
  httpTimeout: 'EBBFLOW_ALERT_HTTP_TIMEOUT',
  webhookAttempts: 'EBBFLOW_ALERT_WEBHOOK_ATTEMPTS',
  replica: 'EBBFLOW_ALERT_REPLICA',
  metricsPort: 'EBBFLOW_METRICS_PORT',
  metricsHost: 'EBBFLOW_METRICS_HOST',
  migrate: 'EBBFLOW_MIGRATE',
  logLevel: 'EBBFLOW_LOG_LEVEL',
}

/** The environment variable each setting reads (for help texts and the README table). */
export const alerterEnvNames: Readonly<Record<keyof z.input<typeof alerterConfigSchema>, string>> =
  ENV

const STORE_KEYS = ['dataDir', 'clickhouse', 'retentionDays'] as const

/** Explicit values (CLI flags) first, then EBBFLOW_* variables, then defaults. */
export function loadAlerterConfig(
  explicit: AlerterConfigInput = {},
  env: NodeJS.ProcessEnv = process.env,
): AlerterConfig {
  const gathered = new ConfigProblems()
  const storeExplicit: StoreConfigInput = {}
  const own: Record<string, string | undefined> = {}
  for (const [k, v] of Object.entries(explicit)) {
    if ((STORE_KEYS as readonly string[]).includes(k))
      (storeExplicit as Record<string, string>)[k] = v!
    else own[k] = v
  }
  const store = gathered.attempt(() => loadStoreConfig(storeExplicit, env))
  const { data, problems } = parseConfig(alerterConfigSchema, ENV, own, env)
  gathered.problems.push(...problems)
  if (!data || !store) throw new ConfigError(gathered.problems)
  return { ...data, store }
}
