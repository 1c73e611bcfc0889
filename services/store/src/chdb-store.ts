// The embedded store: chDB (ClickHouse in-process) with its data in one folder.
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EbbflowError } from '@ebbflow/common/errors'
import { PROTO_DIR } from '@ebbflow/proto'
import { BATCH_SCHEMA, type BatchSource, fileSource, sqlString } from './batch-sql.ts'
import {
  type BatchInput,
  type InsertOptions,
  type RawQueryOptions,
  type RawQueryResult,
  type Store,
  storeCannotWrite,
  toJsonEachRow,
} from './store.ts'

type ChdbModule = typeof import('chdb')
type Session = InstanceType<ChdbModule['Session']>

/** At most this many buffers per writev (Linux's IOV_MAX). */
const IOV_MAX = 1024

/**
 * Writes a block's chunks to a new file, in order, a writev per IOV_MAX of them: how a block
 * reaches chDB's `file()` (bench/ingest hands ClickHouse's own parse its bytes the same way).
 */
export async function spoolChunks(path: string, chunks: readonly Uint8Array[]): Promise<void> {
  const file = await open(path, 'w')
  try {
    for (let i = 0; i < chunks.length; i += IOV_MAX) {
      const part = chunks.slice(i, i + IOV_MAX)
      const want = part.reduce((n, c) => n + c.byteLength, 0)
      const { bytesWritten } = await file.writev(part as Uint8Array[])
      // A short write to a local file means a full device: the block is retried, not cut.
      if (bytesWritten !== want) throw new Error(`wrote ${bytesWritten} of ${want} bytes`)
    }
  } finally {
    await file.close()
  }
}

/** chDB's errors carry ClickHouse's numeric code; keep it, and say whether a retry can help. */
function storeError(what: string, err: unknown): EbbflowError {
  const code = (err as { clickhouseCode?: number })?.clickhouseCode
  const message = err instanceof Error ? err.message : String(err)
  return new EbbflowError(
    code === undefined ? 'STORE_FAILED' : `CLICKHOUSE_${code}`,
    `${what}: ${message}`,
    { cause: err, retriable: storeCannotWrite(code, message) },
  )
}

export interface ChdbStoreOptions {
  /** Where blocks of records wait for chDB to read them. Default: /dev/shm, else the OS tmpdir. */
  spoolDir?: string
}

/**
 * With non_replicated_deduplication_window set, ClickHouse drops a block whose content hash it
 * has seen, token or not: two honest, identical untokened inserts would lose one. Deduplicate
 * only when the caller names the block. ClickHouse 26 governs this with `deduplicate_insert`
 * (default 'enable'); the older `insert_deduplicate = 0` no longer turns it off for a plain
 * MergeTree (seen with chDB 3.4.0, ClickHouse 26.7.2).
 */
function dedupSettings(options: InsertOptions): string {
  return options.dedupToken === undefined
    ? "deduplicate_insert = 'disable'"
    : `insert_deduplication_token = ${sqlString(options.dedupToken)}`
}

/** A block file's name carries the pid of the process that wrote it. */
const BLOCK_FILE = /^ebbflow-batch-(\d+)-\d+\.bin$/

/** False only when no process has the pid (EPERM: one exists, owned by someone else). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH'
  }
}

/**
 * Removes the block files of processes that are gone: an ingester killed mid-block (SIGKILL,
 * the OOM killer) leaves its file on tmpfs, where it holds memory until the machine restarts.
 * A file of a live pid is left alone, even if the pid was reused (it goes once that one ends).
 * Returns the names removed.
 */
export function removeStaleBlocks(spoolDir: string): string[] {
  let names: string[]
  try {
    names = readdirSync(spoolDir)
  } catch {
    return []
  }
  const removed: string[] = []
  for (const name of names) {
    const m = BLOCK_FILE.exec(name)
    if (!m || alive(Number(m[1]))) continue
    try {
      rmSync(join(spoolDir, name), { force: true })
      removed.push(name)
    } catch {
      // Another store removing the same file at the same time, or a file we may not remove:
      // neither is this store's to fail over.
    }
  }
  return removed
}

/** A ClickHouse identifier in backticks, whatever it holds. */
function quoteIdentifier(name: string): string {
  return `\`${name.replaceAll('\\', '\\\\').replaceAll('`', '\\`')}\``
}

/**
 * One chDB session runs one statement at a time here. chDB 3.4.0 keeps the partial output of a
 * statement that failed mid-way (a result overflow, a timeout) and prepends it to the next
 * result on the session; in `ebbflow up` the ingester and the API share the session, so every
 * statement is queued, and a failed one is followed by a throw-away SELECT that takes the
 * leftovers before anyone else runs.
 */
export class ChdbStore implements Store {
  readonly dataDir: string
  private readonly session: Session
  private tail: Promise<unknown> = Promise.resolve()
  private readonly spoolDir: string
  private spooled = 0
  /** Block files of dead processes removed when this store opened (removeStaleBlocks). */
  readonly staleBlocksRemoved: readonly string[]

  private constructor(
    dataDir: string,
    session: Session,
    spoolDir: string,
    staleBlocksRemoved: readonly string[],
  ) {
    this.dataDir = dataDir
    this.session = session
    this.spoolDir = spoolDir
    this.staleBlocksRemoved = staleBlocksRemoved
  }

  /**
   * Opens (creating it when absent) the chDB data folder. chDB is loaded here, not at import,
   * so services that never use it do not load its ~200 MB library.
   */
  static async open(dataDir: string, options: ChdbStoreOptions = {}): Promise<ChdbStore> {
    mkdirSync(dataDir, { recursive: true })
    const chdb: ChdbModule = await import('chdb')
    const session = new chdb.Session(dataDir, {
      // ClickHouse server's default: 64-bit integers as strings in JSON, so none loses
      // precision past 2^53 in either store. chDB's own default is unquoted.
      connectionArgs: ['--output_format_json_quote_64bit_integers=1'],
    })
    // Blocks of records are handed to chDB as files: in memory (tmpfs) where there is one, and
    // never inside the data folder, whose disk may be the one that is full or read-only.
    const spoolDir = options.spoolDir ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir())
    return new ChdbStore(dataDir, session, spoolDir, removeStaleBlocks(spoolDir))
  }

  /**
   * A block written once to a tmpfs file that every statement of the block reads with `file()`
   * (measured faster than any other way of handing chDB bytes: bench/ingest).
   */
  async batchInput(chunks: readonly Uint8Array[]): Promise<BatchInput> {
    const path = join(this.spoolDir, `ebbflow-batch-${process.pid}-${++this.spooled}.bin`)
    try {
      await spoolChunks(path, chunks)
    } catch (err) {
      throw new EbbflowError('SPOOL_FAILED', `cannot write a block to ${path}`, {
        cause: err,
        retriable: true,
      })
    }
    const source = fileSource(path)
    const schema = `format_schema = ${sqlString(join(PROTO_DIR, BATCH_SCHEMA))}`
    return {
      query: <T>(build: (s: BatchSource) => string) =>
        this.query<T>(`${build(source)} SETTINGS ${schema}, max_threads = 1`),
      insert: (build, options = {}) =>
        this.exec(
          `${build(source)} SETTINGS ${schema}, ${dedupSettings(options)}, max_threads = 1`,
        ),
      release: () => rm(path, { force: true }),
      checkedInsert: true,
    }
  }

  private serial<T>(run: () => Promise<T>): Promise<T> {
    const next = this.tail.then(async () => {
      try {
        return await run()
      } catch (err) {
        await this.session.queryAsync('SELECT 1 AS drain').catch(() => undefined)
        throw err
      }
    })
    this.tail = next.catch(() => undefined)
    return next
  }

  exec(sql: string): Promise<void> {
    return this.serial(async () => {
      try {
        await this.session.queryAsync(sql)
      } catch (err) {
        throw storeError('statement failed', err)
      }
    })
  }

  query<T = Record<string, unknown>>(sql: string, params?: Record<string, unknown>): Promise<T[]> {
    return this.serial(() => this.runQuery<T>(sql, params))
  }

  private async runQuery<T>(sql: string, params?: Record<string, unknown>): Promise<T[]> {
    try {
      const result = params
        ? await this.session.queryBindAsync(sql, params, { format: 'JSON' })
        : await this.session.queryAsync(sql, { format: 'JSON' })
      const text = result.text()
      // A statement without a result set (or an empty one with no header) prints nothing.
      if (text.trim() === '') return []
      return (JSON.parse(text) as { data: T[] }).data
    } catch (err) {
      if (err instanceof EbbflowError) throw err
      throw storeError('query failed', err)
    }
  }

  queryRaw(sql: string, options: RawQueryOptions): Promise<RawQueryResult> {
    const { format, params, database } = options
    const run = async (): Promise<RawQueryResult> => {
      try {
        const result = params
          ? await this.session.queryBindAsync(sql, params, { format })
          : await this.session.queryAsync(sql, { format })
        return {
          bytes: result.bytes(),
          rowsRead: result.rowsRead,
          bytesRead: result.bytesRead,
          elapsedSeconds: result.elapsed,
        }
      } catch (err) {
        throw storeError('query failed', err)
      }
    }
    if (database === undefined || database === 'default') return this.serial(run)
    // The session is shared with the ingester, whose statements name their database; `USE`
    // holds only inside this one queue slot and is undone before the next statement runs.
    return this.serial(async () => {
      try {
        await this.session.queryAsync(`USE ${quoteIdentifier(database)}`)
      } catch (err) {
        throw storeError('USE failed', err)
      }
      try {
        return await run()
      } finally {
        await this.session.queryAsync('USE default').catch(() => undefined)
      }
    })
  }

  insert(table: string, rows: readonly object[], options: InsertOptions = {}): Promise<void> {
    if (rows.length === 0) return Promise.resolve()
    // With non_replicated_deduplication_window set, ClickHouse also drops a block whose
    // content hash it has seen, token or not: two honest, identical untokened inserts would
    // lose one. Deduplicate only when the caller names the batch. ClickHouse 26 governs this
    // with `deduplicate_insert` (default 'enable'); the older `insert_deduplicate = 0` no longer
    // turns it off for a plain MergeTree (seen with chDB 3.4.0, ClickHouse 26.7.2).
    const settings: Record<string, string> =
      options.dedupToken === undefined
        ? { deduplicate_insert: 'disable' }
        : { insert_deduplication_token: options.dedupToken }
    return this.insertBody(table, Buffer.from(toJsonEachRow(rows)), 'JSONEachRow', settings)
  }

  private insertBody(
    table: string,
    body: Buffer,
    format: 'JSONEachRow' | 'JSONCompactEachRow' | 'TabSeparated',
    settings: Record<string, string>,
  ): Promise<void> {
    return this.serial(async () => {
      try {
        await this.session.insert({ table, values: body, format, settings })
      } catch (err) {
        throw storeError(`insert into ${table} failed`, err)
      }
    })
  }

  async close(): Promise<void> {
    await this.tail
    this.session.close()
    const chdb: ChdbModule = await import('chdb')
    // close() can return before the native connection is gone; a later open of the same
    // folder in this process would be refused until it is.
    await chdb.drainPending()
  }
}
