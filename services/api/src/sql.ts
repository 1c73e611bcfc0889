// How the API talks to the store. Every value from a request is bound as a ClickHouse query
// parameter ({name:Type}); only fixed column names and fixed SQL text are ever concatenated.
// Every statement carries the caller's namespace restriction and the server's limits.
import type { Logger } from '@ebbflow/common'
import { EbbflowError } from '@ebbflow/common'
import type { Store } from '@ebbflow/store'
import { userError } from './errors.ts'

/** Parameter types the API binds; a closed list so a type is never built from input. */
export type ParamType =
  | 'String'
  | 'UInt16'
  | 'UInt32'
  | 'UInt64'
  | 'Array(String)'
  | 'Array(UInt32)'
  | "DateTime64(9, 'UTC')"

/** The values of one statement's placeholders. */
export class Params {
  readonly values: Record<string, unknown> = {}
  private next = 0

  /** Binds a value and returns its placeholder. */
  add(type: ParamType, value: unknown): string {
    const name = `p${this.next++}`
    this.values[name] = value
    return `{${name}:${type}}`
  }
}

/**
 * The namespaces a caller may read. `all` for an open server or a `*` token; otherwise only
 * the listed ones (none: the caller sees nothing).
 */
export interface Scope {
  all: boolean
  namespaces: readonly string[]
}

export interface LabelMatch {
  key: string
  /** Absent: the label only has to be present. */
  value?: string | null
}

export interface EventFilter {
  from?: string | null
  to?: string | null
  namespace?: string | null
  pod?: string | null
  container?: string | null
  function?: string | null
  node?: string | null
  labels?: readonly LabelMatch[] | null
}

/**
 * A namespace asked for by name that the caller may not read is refused, not answered with
 * nothing: an empty answer would look like a quiet namespace.
 */
export function checkNamespace(scope: Scope, namespace: string | null | undefined): void {
  if (namespace == null || scope.all || scope.namespaces.includes(namespace)) return
  throw userError(
    'FORBIDDEN_NAMESPACE',
    `the namespace asked for is outside this token's scope (${scope.namespaces.length === 0 ? 'no namespaces' : scope.namespaces.join(', ')})`,
    403,
  )
}

/** The caller's restriction: appended to every statement on a namespaced table. */
export function scopeCondition(scope: Scope, p: Params, column = 'namespace'): string[] {
  if (scope.all) return []
  return [`has(${p.add('Array(String)', [...scope.namespaces])}, ${column})`]
}

/**
 * The conditions of an EventFilter on a table with the pod columns, plus the scope. `alias`
 * qualifies the column names when the table is aliased.
 */
export function filterConditions(
  filter: EventFilter | null | undefined,
  scope: Scope,
  p: Params,
  alias = '',
): string[] {
  const c = (name: string) => (alias ? `${alias}.${name}` : name)
  checkNamespace(scope, filter?.namespace)
  const out = scopeCondition(scope, p, c('namespace'))
  if (!filter) return out
  if (filter.from != null) out.push(`${c('time')} >= ${p.add("DateTime64(9, 'UTC')", filter.from)}`)
  if (filter.to != null) out.push(`${c('time')} < ${p.add("DateTime64(9, 'UTC')", filter.to)}`)
  const exact = [
    ['namespace', filter.namespace],
    ['pod', filter.pod],
    ['container', filter.container],
    ['function', filter.function],
    ['node', filter.node],
  ] as const
  for (const [column, value] of exact)
    if (value != null) out.push(`${c(column)} = ${p.add('String', value)}`)
  for (const label of filter.labels ?? []) {
    const key = p.add('String', label.key)
    out.push(
      label.value == null
        ? `mapContains(${c('labels')}, ${key})`
        : `(mapContains(${c('labels')}, ${key}) AND ${c('labels')}[${key}] = ${p.add('String', label.value)})`,
    )
  }
  return out
}

export function where(conditions: readonly string[]): string {
  return conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`
}

export interface QueryLimits {
  /** ClickHouse's max_execution_time per statement, seconds. */
  maxExecutionSeconds: number
  /** ClickHouse's max_result_rows per statement; more is an error, never a silent cut. */
  maxResultRows: number
  /** ClickHouse's max_memory_usage per statement, bytes. */
  maxMemoryBytes: number
}

/**
 * Runs the API's SELECTs with the limits appended. A store that must run one statement at a
 * time (chDB, whose session keeps a failed statement's partial output) queues them itself, so
 * the API runs the same way on either store.
 */
export class QueryRunner {
  private readonly store: Store
  private readonly limits: QueryLimits
  private readonly logger: Logger | undefined

  constructor(store: Store, limits: QueryLimits, options: { logger?: Logger } = {}) {
    this.store = store
    this.limits = limits
    this.logger = options.logger
  }

  /** The SETTINGS clause; readonly last, as it forbids changing settings after it. */
  settings(): string {
    const l = this.limits
    return `SETTINGS max_execution_time = ${Math.max(1, Math.floor(l.maxExecutionSeconds))}, max_result_rows = ${Math.floor(l.maxResultRows)}, result_overflow_mode = 'throw', max_memory_usage = ${Math.floor(l.maxMemoryBytes)}, readonly = 1`
  }

  async select<T>(sql: string, p: Params): Promise<T[]> {
    try {
      return await this.store.query<T>(`${sql}\n${this.settings()}`, p.values)
    } catch (err) {
      throw translate(err, this.logger)
    }
  }
}

/** ClickHouse limit errors are the caller's business; anything else stays masked. */
function translate(err: unknown, logger: Logger | undefined): Error {
  const code = err instanceof EbbflowError ? err.code : ''
  if (code === 'CLICKHOUSE_396')
    return userError(
      'RESULT_TOO_LARGE',
      'the result is larger than the server allows; narrow the filter (time window, namespace, pod)',
    )
  if (code === 'CLICKHOUSE_159')
    return userError(
      'QUERY_TIMEOUT',
      'the query ran longer than the server allows; narrow the filter (time window, namespace, pod)',
    )
  if (code === 'CLICKHOUSE_81' || code === 'CLICKHOUSE_60') {
    // The API never migrates (the schema and its retention are the ingester's or `migrate`'s):
    // a store it reaches before either has run has no tables to read.
    logger?.error({ err }, 'the store has no ebbflow schema: run `ebbflow migrate` against it')
    return userError(
      'UNAVAILABLE',
      'the store has no ebbflow schema yet: run `ebbflow migrate` against it (or start `ebbflow ingest`, which migrates at start)',
    )
  }
  logger?.error({ err }, 'store query failed')
  return err instanceof Error ? err : new Error(String(err))
}

/** ClickHouse's IPv4-mapped IPv6 text back to the dotted form for IPv4 peers. */
export function showAddress(addr: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr)
  return m ? m[1]! : addr
}

export function num(value: unknown): number {
  return typeof value === 'number' ? value : Number(value)
}
