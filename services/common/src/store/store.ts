// The store interface: one shape for chDB (embedded) and ClickHouse server, so callers never
// fork on which one they write to. SQL text is the same for both.

export interface InsertOptions {
  /**
   * Same token, same rows: the store keeps one copy (insert_deduplication_token). Needs
   * `non_replicated_deduplication_window` on a plain MergeTree (the migrations set it).
   * Without a token nothing is deduplicated: identical rows inserted twice are kept twice.
   */
  dedupToken?: string
}

export interface Store {
  /** Runs one statement that returns nothing (DDL, INSERT … SELECT). */
  exec(sql: string): Promise<void>
  /**
   * Runs one SELECT and returns its rows. `params` bind `{name:Type}` placeholders on the
   * engine's side. 64-bit integers come back as strings (exact), as ClickHouse server sends
   * them by default.
   */
  query<T = Record<string, unknown>>(sql: string, params?: Record<string, unknown>): Promise<T[]>
  /** Inserts rows (column name → value; UInt64 as string or bigint) as JSONEachRow. */
  insert(table: string, rows: readonly object[], options?: InsertOptions): Promise<void>
  close(): Promise<void>
}

function isDefault(v: unknown): boolean {
  if (v === '' || v === 0 || v === false || v === 0n || v == null) return true
  if (Array.isArray(v)) return v.length === 0
  if (typeof v === 'object') {
    for (const _ in v) return false
    return true
  }
  return false
}

/**
 * The row without the fields that hold their column's default ('' 0 false [] {}): JSONEachRow
 * fills an omitted field with the default, and most rows leave most pod columns empty, so this
 * halves the bytes ClickHouse has to parse for an exec row (measured in bench/ingest).
 */
export function withoutDefaults(row: object): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(row)) if (!isDefault(v)) out[k] = v
  return out
}

/** JSON with bigint as a decimal string (ClickHouse reads quoted numbers into number columns);
 * fields at their column's default are left out. */
export function toJsonEachRow(rows: readonly object[]): string {
  let out = ''
  for (const row of rows)
    out += `${JSON.stringify(withoutDefaults(row), (_k, v) => (typeof v === 'bigint' ? v.toString() : v))}\n`
  return out
}

/**
 * ClickHouse error codes a retry can cure: overload, timeouts, the network, a replica in read
 * only mode, coordination hiccups. Anything else (a type the table refuses, a missing table)
 * will fail the same way again.
 */
export const RETRIABLE_CLICKHOUSE_CODES: ReadonlySet<number> = new Set([
  159, // TIMEOUT_EXCEEDED
  164, // READONLY (a replica without Keeper)
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  241, // MEMORY_LIMIT_EXCEEDED
  242, // TABLE_IS_READ_ONLY
  252, // TOO_MANY_PARTS
  319, // UNKNOWN_STATUS_OF_INSERT
  425, // SYSTEM_ERROR
  999, // KEEPER_EXCEPTION
])
