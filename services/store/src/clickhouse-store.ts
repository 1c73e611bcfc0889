// The distributed mode's store: a ClickHouse server over HTTP through @clickhouse/client.
// Same SQL and the same Store contract as chDB; errors keep ClickHouse's numeric code and say
// whether a retry can help (network failures and overload can; a refused value cannot).
import { Readable } from 'node:stream'
import { type ClickHouseClient, createClient } from '@clickhouse/client'
import { EbbflowError } from '@ebbflow/common/errors'
import { BATCH_SCHEMA, type BatchSource, inputSource } from './batch-sql.ts'
import {
  type BatchInput,
  type InsertOptions,
  type Store,
  storeCannotWrite,
  withoutDefaults,
} from './store.ts'

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN'])

function storeError(what: string, err: unknown): EbbflowError {
  const e = err as { code?: string | number; message?: string }
  const chCode = e?.code !== undefined && /^\d+$/.test(String(e.code)) ? Number(e.code) : undefined
  const network = typeof e?.code === 'string' && NETWORK_CODES.has(e.code)
  const timeout = /timeout/i.test(e?.message ?? '')
  return new EbbflowError(
    chCode !== undefined ? `CLICKHOUSE_${chCode}` : network ? 'STORE_UNREACHABLE' : 'STORE_FAILED',
    `${what}: ${e?.message ?? String(err)}`,
    {
      cause: err,
      retriable: network || timeout || storeCannotWrite(chCode, e?.message ?? String(err)),
    },
  )
}

export interface ClickHouseStoreOptions {
  /** http(s)://[user:password@]host:port — credentials may also come in `username`/`password`. */
  url: string
  username?: string
  password?: string
  /** Per request. Default: 30000 ms. */
  requestTimeoutMs?: number
}

export class ClickHouseStore implements Store {
  private readonly client: ClickHouseClient

  constructor(options: ClickHouseStoreOptions) {
    const url = new URL(options.url)
    const username = options.username ?? (decodeURIComponent(url.username) || 'default')
    const password = options.password ?? decodeURIComponent(url.password)
    url.username = ''
    url.password = ''
    this.client = createClient({
      url: url.toString(),
      username,
      password,
      request_timeout: options.requestTimeoutMs ?? 30_000,
      clickhouse_settings: { output_format_json_quote_64bit_integers: 1 },
      // bigint columns (UInt64 ids, raw syscall arguments) as exact decimal strings, as in chDB.
      json: {
        parse: JSON.parse,
        stringify: (v: unknown) =>
          JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)),
      },
    })
  }

  async exec(sql: string): Promise<void> {
    try {
      await this.client.command({ query: sql })
    } catch (err) {
      throw storeError('statement failed', err)
    }
  }

  async query<T = Record<string, unknown>>(
    sql: string,
    params?: Record<string, unknown>,
  ): Promise<T[]> {
    try {
      const rs = await this.client.query({
        query: sql,
        format: 'JSONEachRow',
        ...(params ? { query_params: params } : {}),
      })
      return await rs.json<T>()
    } catch (err) {
      throw storeError('query failed', err)
    }
  }

  async insert(table: string, rows: readonly object[], options: InsertOptions = {}): Promise<void> {
    if (rows.length === 0) return
    try {
      await this.client.insert({
        table,
        values: rows.map(withoutDefaults),
        format: 'JSONEachRow',
        clickhouse_settings:
          options.dedupToken === undefined
            ? { insert_deduplicate: 0 }
            : {
                insert_deduplicate: 1,
                insert_deduplication_token: options.dedupToken,
                // The rollup views' targets deduplicate by tokens derived from this one (the
                // default on ClickHouse 26, not on older servers).
                deduplicate_blocks_in_dependent_materialized_views: 1,
              },
      })
    } catch (err) {
      throw storeError(`insert into ${table} failed`, err)
    }
  }

  /**
   * The server reads the block from each request's body with `input()`, parsing it against
   * the proto in its `format_schema_path` (docker-compose mounts proto/ there, the Kubernetes
   * manifests carry it in a ConfigMap). `input()` is only allowed in INSERT … SELECT, so the
   * validation SELECT runs as an insert into ebbflow.ingest_problems and is read back by the
   * block's token. Untested against a server here (none runs on the build machine); the
   * statements it sends are checked for equality with chDB's by a test.
   */
  async batchInput(chunks: readonly Uint8Array[]): Promise<BatchInput> {
    const run = async (sql: string, settings: Record<string, string | number>) => {
      const query = `${sql} FORMAT Protobuf`
      try {
        const r = await this.client.exec({
          query,
          values: Readable.from(chunks),
          clickhouse_settings: { format_schema: BATCH_SCHEMA, ...settings },
        })
        // The response is empty; reading it to the end frees the connection for the next one.
        for await (const _ of r.stream) void _
      } catch (err) {
        throw storeError('batch statement failed', err)
      }
    }
    const check = `check-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`
    return {
      query: async <T>(build: (s: BatchSource) => string) => {
        await run(
          `INSERT INTO ebbflow.ingest_problems (block, record, untimed, problems) SELECT '${check}', * FROM (${build(inputSource)})`,
          {},
        )
        return this.query<T>(
          'SELECT record, untimed, problems FROM ebbflow.ingest_problems WHERE block = {check:String} ORDER BY record',
          { check },
        )
      },
      insert: (build, options = {}) =>
        run(
          build(inputSource),
          options.dedupToken === undefined
            ? { insert_deduplicate: 0 }
            : {
                insert_deduplicate: 1,
                insert_deduplication_token: options.dedupToken,
                deduplicate_blocks_in_dependent_materialized_views: 1,
              },
        ),
      release: async () => {},
    }
  }

  async close(): Promise<void> {
    await this.client.close()
  }
}
