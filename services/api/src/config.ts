// The API's configuration: the only reader of process.env in this service. Every field
// documents its default; every invalid value is reported at once, and nothing falls back.
import { readFileSync } from 'node:fs'
import { ConfigError, LOG_LEVELS, parseConfig } from '@ebbflow/common'
import { loadStoreConfig, type StoreConfig, type StoreConfigInput } from '@ebbflow/store'
import { z } from 'zod'
import { DEFAULT_LIMITS, type Limits } from './app.ts'
import { DEFAULT_MAX_BODY_BYTES } from './guard.ts'

const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes')

const list = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0),
)

const count = (min: number, max: number, fallback: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback)

export const apiConfigSchema = z.object({
  /** TCP port of the GraphQL endpoint; 0 picks a free one. Default: 4000. */
  port: count(0, 65_535, 4000),
  /** Address to listen on. Default: 127.0.0.1 (this machine only). */
  host: z.string().min(1).default('127.0.0.1'),
  /** Serve GraphiQL at /graphql in a browser. Default: false. */
  graphiql: flag.default(false),
  /** Answer introspection queries (and suggest field names). Default: false. */
  introspection: flag.default(false),
  /** JSON file `{ "<token>": ["namespace", …] }`; `*` reads every namespace. Default: none. */
  tokensFile: z.string().min(1).optional(),
  /** Serve without tokens, every namespace to every caller. Default: false. */
  open: flag.default(false),
  /** Log level. Default: info. */
  logLevel: z.enum(LOG_LEVELS).default('info'),
  /** Origins (scheme://host[:port]), comma-separated, that a browser may call the API from
   * besides its own; any other Origin is refused with 403. Default: none (same-origin). */
  corsOrigins: list
    .pipe(
      z.array(
        z
          .string()
          .regex(/^https?:\/\/[^/\s]+$/, 'an origin is scheme://host[:port], without a path'),
      ),
    )
    .default([]),
  /** Host names, comma-separated, answered besides the listen address, 127.0.0.1, localhost
   * and [::1] at the listen port: `name` (any port, for proxies and port-forwards) or
   * `name:port`. Any other Host header is refused with 403, which stops DNS rebinding.
   * Default: none. */
  allowedHosts: list.default([]),
  /** Largest request body, bytes; larger is answered 413 before it is read. Default: 1 MiB. */
  maxBodyBytes: count(1024, 256 * 1024 * 1024, DEFAULT_MAX_BODY_BYTES),
  /** Kafka brokers, host:port, comma-separated: the live tail reads the event topics there.
   * Default: none (no live tail outside `ebbflow up`). */
  kafkaBrokers: z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x.length > 0),
    )
    .default([]),
  /** Rows of a page when `first` is not given. Default: 50. */
  defaultPageSize: count(1, 10_000, DEFAULT_LIMITS.defaultPageSize),
  /** Largest `first`/`last`; more is refused. Default: 500. */
  maxPageSize: count(1, 10_000, DEFAULT_LIMITS.maxPageSize),
  /** Deepest query accepted. Default: 10. */
  maxDepth: count(2, 100, DEFAULT_LIMITS.maxDepth),
  /** Aliases per query. Default: 10. */
  maxAliases: count(0, 1000, DEFAULT_LIMITS.maxAliases),
  /** graphql-armor's cost of a query (a literal `first` multiplies it), at most. Default:
   * 100000. */
  maxCost: count(1, 1_000_000, DEFAULT_LIMITS.maxCost),
  /** Tokens of a query document, at most. Default: 2000. */
  maxTokens: count(10, 1_000_000, DEFAULT_LIMITS.maxTokens),
  /** ClickHouse max_execution_time of each statement, seconds. Default: 10. */
  queryTimeoutSeconds: count(1, 3600, DEFAULT_LIMITS.maxExecutionSeconds),
  /** ClickHouse max_result_rows of each statement (more is an error). Default: 100000. */
  maxResultRows: count(1, 100_000_000, DEFAULT_LIMITS.maxResultRows),
  /** ClickHouse max_memory_usage of each statement, bytes. Default: 1 GiB. */
  maxMemoryBytes: count(1024 * 1024, 2 ** 45, DEFAULT_LIMITS.maxMemoryBytes),
})

/** The API's settings and the store it reads (the shared store settings). */
export type ApiConfig = z.output<typeof apiConfigSchema> & { store: StoreConfig }
export type ApiConfigInput = {
  [K in keyof z.input<typeof apiConfigSchema>]?: string
} & StoreConfigInput

const ENV: Record<keyof z.input<typeof apiConfigSchema>, string> = {
  port: 'EBBFLOW_PORT',
  host: 'EBBFLOW_HOST',
  graphiql: 'EBBFLOW_GRAPHIQL',
  introspection: 'EBBFLOW_INTROSPECTION',
  tokensFile: 'EBBFLOW_API_TOKENS_FILE',
  open: 'EBBFLOW_API_OPEN',
  logLevel: 'EBBFLOW_LOG_LEVEL',
  corsOrigins: 'EBBFLOW_API_CORS_ORIGINS',
  allowedHosts: 'EBBFLOW_API_ALLOWED_HOSTS',
  maxBodyBytes: 'EBBFLOW_API_MAX_BODY_BYTES',
  kafkaBrokers: 'EBBFLOW_KAFKA',
  defaultPageSize: 'EBBFLOW_API_DEFAULT_PAGE_SIZE',
  maxPageSize: 'EBBFLOW_API_MAX_PAGE_SIZE',
  maxDepth: 'EBBFLOW_API_MAX_DEPTH',
  maxAliases: 'EBBFLOW_API_MAX_ALIASES',
  maxCost: 'EBBFLOW_API_MAX_COST',
  maxTokens: 'EBBFLOW_API_MAX_TOKENS',
  queryTimeoutSeconds: 'EBBFLOW_API_QUERY_TIMEOUT_SECONDS',
  maxResultRows: 'EBBFLOW_API_MAX_RESULT_ROWS',
  maxMemoryBytes: 'EBBFLOW_API_MAX_MEMORY_BYTES',
}

/** The environment variable each setting reads (for help texts and the README table). */
export const apiEnvNames: Readonly<Record<keyof z.input<typeof apiConfigSchema>, string>> = ENV

const tokensSchema = z.record(
  z.string().min(16, 'tokens need 16 characters or more'),
  z.array(z.string()),
)

/** Explicit values (CLI flags) first, then EBBFLOW_* variables, then defaults. */
export function loadApiConfig(
  explicit: ApiConfigInput = {},
  env: NodeJS.ProcessEnv = process.env,
): ApiConfig {
  const { data, problems } = parseConfig(apiConfigSchema, ENV, explicit, env)
  let store: StoreConfig | undefined
  try {
    store = loadStoreConfig(
      { dataDir: explicit.dataDir, clickhouse: explicit.clickhouse, logLevel: explicit.logLevel },
      env,
    )
  } catch (err) {
    if (err instanceof ConfigError) problems.push(...err.problems)
    else throw err
  }
  if (data) {
    if (data.defaultPageSize > data.maxPageSize)
      problems.push(
        `defaultPageSize (${ENV.defaultPageSize}): must not exceed maxPageSize (${data.maxPageSize})`,
      )
    if (!data.open && data.tokensFile === undefined)
      problems.push(
        `tokensFile (${ENV.tokensFile}): required unless the API is open (${ENV.open}=true)`,
      )
  }
  if (!data || !store || problems.length > 0) throw new ConfigError(problems)
  return { ...data, store }
}

/** Reads and checks the tokens file; every problem in it is reported at once. */
export function readTokens(file: string): Record<string, string[]> {
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new ConfigError([`tokensFile: cannot read ${file}: ${(err as Error).message}`])
  }
  const parsed = tokensSchema.safeParse(raw)
  if (!parsed.success)
    throw new ConfigError(
      parsed.error.issues.map(
        (i) => `tokensFile ${file}: ${i.path.join('.') || '(root)'}: ${i.message}`,
      ),
    )
  return parsed.data
}

export function limitsOf(config: ApiConfig): Limits {
  return {
    ...DEFAULT_LIMITS,
    defaultPageSize: config.defaultPageSize,
    maxPageSize: config.maxPageSize,
    maxDepth: config.maxDepth,
    maxAliases: config.maxAliases,
    maxCost: config.maxCost,
    maxTokens: config.maxTokens,
    maxExecutionSeconds: config.queryTimeoutSeconds,
    maxResultRows: config.maxResultRows,
    maxMemoryBytes: config.maxMemoryBytes,
  }
}

/** What startApiServer checks on the socket. */
export function guardOf(config: ApiConfig): { allowedHosts: string[]; maxBodyBytes: number } {
  return { allowedHosts: config.allowedHosts, maxBodyBytes: config.maxBodyBytes }
}
