// The store interface: one shape for chDB (embedded) and ClickHouse server, so callers never
// fork on which one they write to. SQL text is the same for both.
import type { BatchSource } from './batch-sql.ts'

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
  /**
   * Runs one statement and returns the engine's own output bytes in `format` (Native,
   * RowBinary, JSON…), for the read-only ClickHouse HTTP interface of the embedded mode. Only
   * chDB has it: a ClickHouse server speaks HTTP itself.
   */
  queryRaw?(sql: string, options: RawQueryOptions): Promise<RawQueryResult>
  /**
   * Hands the engine a block of EventBatch records, length-delimited (ClickHouse's `Protobuf`
   * format) and given as chunks in order (size prefixes and records, not copied into one
   * buffer), for statements built over it (batch-sql.ts): ClickHouse parses the records, the
   * JavaScript never does. Release it when done. Both stores have it; a store without it
   * (a test double) cannot ingest records.
   */
  batchInput?(chunks: readonly Uint8Array[]): Promise<BatchInput>
  close(): Promise<void>
}

/**
 * One block of records as the engine reads them. Statements are built by the caller from a
 * `BatchSource` (the table function over the block), so chDB and a server run the same text.
 */
export interface BatchInput {
  /** Rows of a SELECT over the block (the validation statement). */
  query<T = Record<string, unknown>>(build: (source: BatchSource) => string): Promise<T[]>
  /** Runs an INSERT … SELECT over the block; deduplicated when the options name a token. */
  insert(build: (source: BatchSource) => string, options?: InsertOptions): Promise<void>
  release(): Promise<void>
  /**
   * True where an insert may read the block through a subquery that checks it first
   * (batch-sql.ts checkedInsertStatement): chDB's `file()` can; a server's `input()` is only
   * read at the top of an INSERT … SELECT, so its blocks take the separate check pass.
   */
  readonly checkedInsert?: boolean
}

export interface RawQueryOptions {
  /** A ClickHouse output format name. */
  format: string
  /** Values of `{name:Type}` placeholders, as text (ClickHouse parses them by their type). */
  params?: Record<string, string>
  /** Current database for this statement only. Default: the session's (`default`). */
  database?: string
}

export interface RawQueryResult {
  bytes: Uint8Array
  rowsRead: number
  bytesRead: number
  elapsedSeconds: number
}

/**
 * The row without the fields that hold their column's default ('' 0 false [] {}), and with
 * bigint as a decimal string (ClickHouse reads quoted numbers into number columns): JSONEachRow
 * fills an omitted field with the default, and most rows leave most pod columns empty, so this
 * halves the bytes ClickHouse has to parse for an exec row (measured in bench/ingest).
 */
export function withoutDefaults(row: object): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  const r = row as Record<string, unknown>
  for (const k in r) {
    const v = r[k]
    if (v === '' || v === 0 || v === false || v == null) continue
    if (typeof v === 'object') {
      if (Array.isArray(v)) {
        if (v.length === 0) continue
      } else {
        let empty = true
        for (const _ in v) {
          empty = false
          break
        }
        if (empty) continue
      }
    } else if (typeof v === 'bigint') {
      if (v !== 0n) out[k] = v.toString()
      continue
    }
    out[k] = v
  }
  return out
}

/** One JSON object per line, fields at their column's default left out. */
export function toJsonEachRow(rows: readonly object[]): string {
  let out = ''
  for (const row of rows) out += `${JSON.stringify(withoutDefaults(row))}\n`
  return out
}

/**
 * ClickHouse error codes a retry can cure: overload, timeouts, the network, a replica in read
 * only mode, coordination hiccups. Anything else (a type the table refuses, a missing table)
 * will fail the same way again.
 */
/**
 * Whether an error says the store as a whole cannot write now (its disk is read-only or full,
 * a file cannot be created), as opposed to refusing these rows: such a failure must pause the
 * ingester and be retried, never be blamed on the records and dead-lettered. ClickHouse
 * reports a read-only or full filesystem met while creating a part as STD_EXCEPTION (1001)
 * with the operating system's words, so those are matched too.
 */
export function storeCannotWrite(code: number | undefined, message: string): boolean {
  if (code !== undefined && RETRIABLE_CLICKHOUSE_CODES.has(code)) return true
  return /read-only file system|no space left on device|disk quota exceeded|permission denied|cannot (?:create|open|write)/i.test(
    message,
  )
}

/**
 * ClickHouse error codes that say the store lacks what every block needs — a table, a
 * database, a column, the protobuf schema, the right to write — whatever the records hold. A
 * retry does not cure them (someone has to run `ebbflow migrate` or fix the grants), and no
 * record is to blame: the ingester must not dead-letter the block, nor commit past it.
 */
export const STORE_WIDE_CLICKHOUSE_CODES: ReadonlySet<number> = new Set([
  16, // NO_SUCH_COLUMN_IN_TABLE
  47, // UNKNOWN_IDENTIFIER (a statement naming a column the table does not have)
  60, // UNKNOWN_TABLE
  81, // UNKNOWN_DATABASE
  434, // CANNOT_PARSE_PROTOBUF_SCHEMA
  497, // ACCESS_DENIED
  516, // AUTHENTICATION_FAILED
])

/** Codes of our own errors that mean the same: the store as a whole cannot take blocks. */
const STORE_WIDE_CODES: ReadonlySet<string> = new Set(['STORE_NO_BATCH_INPUT', 'SCHEMA_BEHIND'])

/** Whether a store error is store-wide and no retry cures it (see STORE_WIDE_CLICKHOUSE_CODES). */
export function storeWide(err: unknown): boolean {
  const code = String((err as { code?: unknown } | undefined)?.code ?? '')
  if (STORE_WIDE_CODES.has(code)) return true
  const ch = /^CLICKHOUSE_(\d+)$/.exec(code)
  return ch !== null && STORE_WIDE_CLICKHOUSE_CODES.has(Number(ch[1]))
}

export const RETRIABLE_CLICKHOUSE_CODES: ReadonlySet<number> = new Set([
  159, // TIMEOUT_EXCEEDED
  164, // READONLY (a replica without Keeper)
  202, // TOO_MANY_SIMULTANEOUS_QUERIES
  209, // SOCKET_TIMEOUT
  210, // NETWORK_ERROR
  241, // MEMORY_LIMIT_EXCEEDED
  242, // TABLE_IS_READ_ONLY
  243, // NOT_ENOUGH_SPACE
  252, // TOO_MANY_PARTS
  319, // UNKNOWN_STATUS_OF_INSERT
  425, // SYSTEM_ERROR
  999, // KEEPER_EXCEPTION
])
