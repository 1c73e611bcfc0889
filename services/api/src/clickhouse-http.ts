// ClickHouse's HTTP query interface over the embedded store (chDB), read-only, at /clickhouse
// on the API's port: so Grafana's ClickHouse plugin (protocol http, path /clickhouse),
// clickhouse-go, @clickhouse/client, clickhouse-connect and DBeaver read `ebbflow up`'s data.
//
// What a ClickHouse server does and this does too: the query from the `query` URL parameter
// and/or the POST body; `database`, `default_format`, `X-ClickHouse-Format`, a trailing FORMAT
// clause; `param_<name>` query parameters; credentials as basic auth, `X-ClickHouse-User`/`Key`,
// `user`/`password` parameters or a bearer token; `enable_http_compression=1` with
// Accept-Encoding gzip, deflate, br or zstd; `/ping` and a bare GET answer `Ok.`; errors as
// `Code: N. DB::Exception: … (NAME)` with X-ClickHouse-Exception-Code. The result bytes come
// from chDB in the format asked for (Native as the client's protocol revision reads it, see
// native-format.ts).
//
// What it refuses: anything but one SELECT / WITH / SHOW / DESCRIBE / EXISTS / EXPLAIN
// statement, any setting that is not an output format setting (readonly = 1 applies, as it
// does for a ClickHouse user with readonly = 1), and callers without a token for every
// namespace (the store has no row policy to narrow a raw query to some namespaces).
import { randomUUID } from 'node:crypto'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import { EbbflowError, type Logger } from '@ebbflow/common'
import type { RawQueryResult, Store } from '@ebbflow/store'
import type { Plugin } from 'graphql-yoga'
import { NativeFormatError, nativeForRevision } from './native-format.ts'
import type { QueryLimits, Scope } from './sql.ts'

export const CLICKHOUSE_HTTP_PATH = '/clickhouse'

/** Larger queries are refused (ClickHouse's own max_query_size default). */
const MAX_QUERY_BYTES = 256 * 1024

/** Statements that only read, by their first keyword. */
const READ_STATEMENTS = new Set(['SELECT', 'WITH', 'SHOW', 'DESCRIBE', 'DESC', 'EXISTS', 'EXPLAIN'])

/**
 * URL parameters that are not settings: the interface's own, and the HTTP-level settings a
 * ClickHouse server reads itself (they change nothing in the query).
 */
const NOT_SETTINGS = new Set([
  'query',
  'database',
  'default_format',
  'user',
  'password',
  'query_id',
  'quota_key',
  'session_id',
  'session_timeout',
  'session_check',
  'client_protocol_version',
  'compress',
  'decompress',
  'enable_http_compression',
  'http_zlib_compression_level',
  'http_native_compression_disable_checksumming_on_decompress',
  'send_progress_in_http_headers',
  'http_headers_progress_interval_ms',
  'wait_end_of_query',
  'buffer_size',
  'cancel_http_readonly_queries_on_client_close',
  'http_response_buffer_size',
  'http_wait_end_of_query',
  'extremes',
])

/** Settings a read-only caller may set: how results are written, nothing about limits. */
const ALLOWED_SETTING =
  /^(output_format_[a-z0-9_]+|date_time_output_format|session_timezone|max_block_size|max_threads|readonly)$/

const EXCEPTION_NAMES: Record<number, string> = {
  1: 'UNSUPPORTED_METHOD',
  62: 'SYNTAX_ERROR',
  48: 'NOT_IMPLEMENTED',
  73: 'UNKNOWN_FORMAT',
  81: 'UNKNOWN_DATABASE',
  115: 'UNKNOWN_SETTING',
  164: 'READONLY',
  344: 'SUPPORT_IS_DISABLED',
  393: 'QUERY_IS_TOO_LARGE',
  497: 'ACCESS_DENIED',
  516: 'AUTHENTICATION_FAILED',
}

/** A refusal in ClickHouse's words, with the HTTP status a ClickHouse server would use. */
class ClickHouseHttpError extends Error {
  readonly code: number
  readonly status: number
  constructor(code: number, message: string, status: number) {
    super(message)
    this.code = code
    this.status = status
  }
}

function refuse(code: number, message: string, status = 400): ClickHouseHttpError {
  const name = EXCEPTION_NAMES[code] ?? 'UNKNOWN_EXCEPTION'
  return new ClickHouseHttpError(
    code,
    `Code: ${code}. DB::Exception: ${message}. (${name})`,
    status,
  )
}

/** Where a ClickHouse server would answer with another status than 500. */
function statusOfCode(code: number): number {
  if ([62, 27, 26, 6, 38, 41, 72, 69, 70, 32, 33, 35, 36, 42, 43, 44, 53, 113].includes(code))
    return 400
  if ([60, 81, 46, 47, 16, 107].includes(code)) return 404
  if (code === 164 || code === 497) return 403
  if (code === 159) return 504
  return 500
}

export interface ClickHouseHttpOptions {
  store: Store
  limits: QueryLimits
  /** Who the caller is, from a token (throws when the token is wrong or missing). */
  authenticate(token: string | null): Scope
  logger: Logger
  /** The version() of the engine, for the X-ClickHouse-Server-Display-Name header. */
  displayName?: string
}

export interface ParsedStatement {
  /** The statement without a trailing `;` or FORMAT clause. */
  sql: string
  /** The first keyword, upper case ('' when none). */
  keyword: string
  /** The FORMAT clause's format, when the statement ends with one. */
  format?: string
}

/**
 * One statement: comments, quoted strings and identifiers are stepped over, so a `;` or a
 * keyword inside them means nothing. More than one statement is refused, as ClickHouse's HTTP
 * interface does.
 */
export function parseStatement(text: string): ParsedStatement {
  let keyword = ''
  let previous = ''
  let end = -1
  let i = 0
  const n = text.length
  while (i < n) {
    const c = text[i]!
    if (c === '-' && text[i + 1] === '-') {
      const nl = text.indexOf('\n', i)
      i = nl < 0 ? n : nl + 1
    } else if (c === '#' && (text[i + 1] === ' ' || text[i + 1] === '!')) {
      const nl = text.indexOf('\n', i)
      i = nl < 0 ? n : nl + 1
    } else if (c === '/' && text[i + 1] === '*') {
      const close = text.indexOf('*/', i + 2)
      if (close < 0) throw refuse(62, 'Syntax error: unterminated comment')
      i = close + 2
    } else if (c === "'" || c === '"' || c === '`') {
      i++
      while (i < n && text[i] !== c) i += text[i] === '\\' ? 2 : 1
      if (i >= n) throw refuse(62, 'Syntax error: unterminated quoted string or identifier')
      i++
    } else if (c === ';') {
      if (end < 0) end = i
      i++
    } else if (/\s/.test(c)) i++
    else {
      if (end >= 0) throw refuse(62, 'Syntax error (Multi-statements are not allowed)')
      const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i))?.[0]
      if (word === undefined) {
        if (keyword === '') keyword = c === '(' ? 'SELECT' : c
        previous = ''
        i++
        continue
      }
      const upper = word.toUpperCase()
      if (keyword === '') keyword = upper
      // chDB is clickhouse-local, which writes INTO OUTFILE itself, readonly or not; a
      // ClickHouse server refuses it over HTTP as well.
      if (previous === 'INTO' && upper === 'OUTFILE')
        throw refuse(344, 'INTO OUTFILE is not allowed', 403)
      previous = upper
      i += word.length
    }
  }
  let sql = (end < 0 ? text : text.slice(0, end)).trimEnd()
  const fmt = /\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*$/i.exec(sql)
  let format: string | undefined
  if (fmt) {
    format = fmt[1]!
    sql = sql.slice(0, fmt.index).trimEnd()
  }
  return format === undefined ? { sql, keyword } : { sql, keyword, format }
}

const CONTENT_TYPES: [RegExp, string][] = [
  [
    /^(JSON|JSONCompact|JSONStrings|JSONCompactStrings|JSONColumns|JSONColumnsWithMetadata|JSONObjectEachRow)$/i,
    'application/json; charset=UTF-8',
  ],
  [/^(JSON|PrettyJSON)[A-Za-z]*EachRow[A-Za-z]*$/i, 'application/x-ndjson; charset=UTF-8'],
  [/^(TabSeparated|TSV)[A-Za-z]*$/i, 'text/tab-separated-values; charset=UTF-8'],
  [/^CSV[A-Za-z]*$/i, 'text/csv; charset=UTF-8; header=absent'],
  [
    /^(Pretty|Vertical|Markdown|Values|XML|Template|Raw|LineAsString)[A-Za-z]*$/i,
    'text/plain; charset=UTF-8',
  ],
]

function contentType(format: string): string {
  for (const [re, type] of CONTENT_TYPES) if (re.test(format)) return type
  return 'application/octet-stream'
}

const compressors: Record<string, (b: Uint8Array) => Promise<Buffer>> = {
  gzip: promisify(zlib.gzip),
  deflate: promisify(zlib.deflate),
  br: promisify(zlib.brotliCompress),
  ...(typeof zlib.zstdCompress === 'function' ? { zstd: promisify(zlib.zstdCompress) } : {}),
}

/** The credentials a ClickHouse client sends, as the token they carry. */
export function tokenOf(request: Request, url: URL): string | null {
  const auth = request.headers.get('authorization')
  if (auth) {
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(auth)
    if (bearer) return bearer[1]!
    const basic = /^Basic\s+(\S+)\s*$/i.exec(auth)
    if (basic) {
      const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      const password = colon < 0 ? '' : decoded.slice(colon + 1)
      return password === '' ? null : password
    }
  }
  const key = request.headers.get('x-clickhouse-key') ?? url.searchParams.get('password')
  return key === null || key === '' ? null : key
}

/** The API's limits by setting name: a caller may lower one, never raise it. */
function limitSettings(limits: QueryLimits): Map<string, number> {
  return new Map([
    ['max_execution_time', Math.max(1, Math.floor(limits.maxExecutionSeconds))],
    ['max_result_rows', Math.floor(limits.maxResultRows)],
    ['max_memory_usage', Math.floor(limits.maxMemoryBytes)],
  ])
}

/** The statement's SETTINGS: the caller's allowed ones, then the API's limits, readonly last. */
function settingsClause(url: URL, limits: QueryLimits): string {
  const out: string[] = []
  const limit = limitSettings(limits)
  for (const [name, value] of url.searchParams) {
    if (NOT_SETTINGS.has(name) || name.startsWith('param_')) continue
    if (/_(format|structure|types)$/.test(name)) continue // external tables' descriptions
    const max = limit.get(name)
    if (max !== undefined) {
      // Clients send these (clickhouse-go derives max_execution_time from its deadline);
      // ClickHouse's "0" (no limit) and anything larger mean the server's limit.
      const asked = Number(value)
      if (!/^\d+$/.test(value)) throw refuse(27, `Cannot parse the value of setting '${name}'`)
      if (asked > 0 && asked < max) limit.set(name, asked)
      continue
    }
    if (!ALLOWED_SETTING.test(name))
      throw refuse(164, `Cannot modify '${name}' setting in readonly mode`, 403)
    if (name === 'readonly') {
      if (value !== '1' && value !== '2')
        throw refuse(164, "Cannot modify 'readonly' setting in readonly mode", 403)
      continue
    }
    if (!/^[A-Za-z0-9_.:+\-/ ]*$/.test(value))
      throw refuse(27, `Cannot parse the value of setting '${name}'`)
    out.push(`${name} = '${value}'`)
  }
  for (const [name, value] of limit) out.push(`${name} = ${value}`)
  out.push(`result_overflow_mode = 'throw'`, 'readonly = 1')
  return `SETTINGS ${out.join(', ')}`
}

async function readBounded(request: Request, max: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let total = 0
  const reader = request.body?.getReader()
  if (!reader) return new Uint8Array()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.length
    if (total > max) {
      await reader.cancel()
      throw refuse(393, `Query is too large (over ${total} bytes). max_query_size = ${max}`, 413)
    }
    chunks.push(value)
  }
  return new Uint8Array(Buffer.concat(chunks))
}

async function readQuery(request: Request, url: URL): Promise<string> {
  const fromUrl = url.searchParams.get('query') ?? ''
  let body = ''
  if (request.method === 'POST') {
    // Read with a bound as it arrives: ClickHouse clients send the query chunked (no
    // Content-Length), so the HTTP guard cannot size it beforehand.
    const bytes = await readBounded(request, MAX_QUERY_BYTES)
    const encoding = request.headers.get('content-encoding')?.toLowerCase()
    let plain: Uint8Array = bytes
    if (encoding === 'gzip') plain = zlib.gunzipSync(bytes)
    else if (encoding === 'deflate') plain = zlib.inflateSync(bytes)
    else if (encoding === 'br') plain = zlib.brotliDecompressSync(bytes)
    else if (encoding && encoding !== 'identity')
      throw refuse(1, `Unknown Content-Encoding of HTTP request: ${encoding}`)
    if (plain.length > MAX_QUERY_BYTES)
      throw refuse(
        393,
        `Query is too large (${plain.length}). max_query_size = ${MAX_QUERY_BYTES}`,
        413,
      )
    body = Buffer.from(plain).toString('utf8')
  }
  const text = fromUrl && body ? `${fromUrl}\n${body}` : fromUrl || body
  if (Buffer.byteLength(text) > MAX_QUERY_BYTES)
    throw refuse(393, `Query is too large. max_query_size = ${MAX_QUERY_BYTES}`, 413)
  return text
}

/**
 * Handles one request under /clickhouse: the answer, or null for paths that are not its own.
 */
export async function handleClickHouseHttp(
  request: Request,
  url: URL,
  options: ClickHouseHttpOptions,
): Promise<Response> {
  const queryId = url.searchParams.get('query_id') || randomUUID()
  const base: Record<string, string> = {
    'X-ClickHouse-Server-Display-Name': options.displayName ?? 'ebbflow',
    'X-ClickHouse-Query-Id': queryId,
    'X-ClickHouse-Timezone': 'UTC',
  }
  try {
    const sub = url.pathname.slice(CLICKHOUSE_HTTP_PATH.length)
    if (sub === '/ping' || sub === '/replicas_status')
      return new Response('Ok.\n', {
        headers: { ...base, 'Content-Type': 'text/plain; charset=UTF-8' },
      })
    if (sub !== '' && sub !== '/') throw refuse(1, `There is no handle ${url.pathname}`, 404)
    if (request.method !== 'GET' && request.method !== 'POST' && request.method !== 'HEAD')
      throw refuse(1, `HTTP method ${request.method} is not supported`, 405)

    const text = await readQuery(request, url)
    if (text.trim() === '' && request.method !== 'POST')
      return new Response('Ok.\n', {
        headers: { ...base, 'Content-Type': 'text/plain; charset=UTF-8' },
      })

    let scope: Scope
    try {
      scope = options.authenticate(tokenOf(request, url))
    } catch (err) {
      throw refuse(
        516,
        `${err instanceof Error ? err.message : String(err)}: the token goes in as the password (basic auth or X-ClickHouse-Key) or a bearer token`,
        401,
      )
    }
    if (!scope.all)
      throw refuse(
        497,
        'the ClickHouse interface reads every namespace; it needs a token with "*" among its namespaces',
        403,
      )

    const statement = parseStatement(text)
    if (statement.keyword === '') throw refuse(62, 'Empty query')
    if (!READ_STATEMENTS.has(statement.keyword))
      throw refuse(
        164,
        `default: Cannot execute query in readonly mode (${statement.keyword} is not a read)`,
        403,
      )

    const format =
      statement.format ??
      request.headers.get('x-clickhouse-format') ??
      url.searchParams.get('default_format') ??
      'TabSeparated'
    if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(format)) throw refuse(73, `Unknown format ${format}`)
    const database = url.searchParams.get('database') ?? undefined
    if (database !== undefined && !/^[A-Za-z0-9_]+$/.test(database))
      throw refuse(81, `Database ${database} does not exist`, 404)
    const params: Record<string, string> = {}
    for (const [name, value] of url.searchParams)
      if (name.startsWith('param_')) params[name.slice('param_'.length)] = value

    const sql = `${statement.sql}\n${settingsClause(url, options.limits)}`
    if (!options.store.queryRaw) throw refuse(48, 'this store has no ClickHouse interface', 501)
    const started = process.hrtime.bigint()
    let result: RawQueryResult
    try {
      result = await options.store.queryRaw(sql, {
        format,
        ...(Object.keys(params).length > 0 ? { params } : {}),
        ...(database === undefined ? {} : { database }),
      })
    } catch (err) {
      throw fromStoreError(err)
    }

    let bytes = result.bytes
    if (/^Native$/i.test(format)) {
      const revision = Number(url.searchParams.get('client_protocol_version') ?? 0)
      try {
        bytes = nativeForRevision(bytes, Number.isFinite(revision) ? revision : 0)
      } catch (err) {
        if (err instanceof NativeFormatError) throw refuse(48, err.message, 501)
        throw err
      }
    }
    const headers: Record<string, string> = {
      ...base,
      'Content-Type': contentType(format),
      'X-ClickHouse-Format': format,
      'X-ClickHouse-Summary': JSON.stringify({
        read_rows: String(result.rowsRead),
        read_bytes: String(result.bytesRead),
        written_rows: '0',
        written_bytes: '0',
        total_rows_to_read: String(result.rowsRead),
        result_bytes: String(bytes.length),
        elapsed_ns: String(process.hrtime.bigint() - started),
      }),
    }
    let body: Uint8Array = bytes
    if (url.searchParams.get('enable_http_compression') === '1') {
      const accepted = (request.headers.get('accept-encoding') ?? '')
        .split(',')
        .map((s) => s.split(';')[0]!.trim().toLowerCase())
      const method = accepted.find((m) => compressors[m] !== undefined)
      if (method) {
        body = await compressors[method]!(bytes)
        headers['Content-Encoding'] = method
      }
    }
    return new Response(request.method === 'HEAD' ? null : (body as Uint8Array<ArrayBuffer>), {
      status: 200,
      headers,
    })
  } catch (err) {
    if (!(err instanceof ClickHouseHttpError)) {
      options.logger.error({ err }, 'clickhouse interface failed')
      return errorResponse(
        refuse(1001, 'internal error (the server log has the details)', 500),
        base,
      )
    }
    return errorResponse(err, base)
  }
}

/** chDB's exceptions keep ClickHouse's text and code; pass them on as a server would. */
function fromStoreError(err: unknown): ClickHouseHttpError {
  const code =
    err instanceof EbbflowError && err.code.startsWith('CLICKHOUSE_')
      ? Number(err.code.slice('CLICKHOUSE_'.length))
      : 1001
  const cause = (err as { cause?: unknown }).cause
  const message =
    cause instanceof Error ? cause.message : err instanceof Error ? err.message : String(err)
  // chDB repeats "Code: N. DB::Exception:" once for the connection and once for the query.
  const text = message.replace(/^(Code: \d+\. DB::Exception: )+/, '')
  return new ClickHouseHttpError(code, `Code: ${code}. DB::Exception: ${text}`, statusOfCode(code))
}

function errorResponse(err: ClickHouseHttpError, base: Record<string, string>): Response {
  return new Response(`${err.message}\n`, {
    status: err.status,
    headers: {
      ...base,
      'Content-Type': 'text/plain; charset=UTF-8',
      'X-ClickHouse-Exception-Code': String(err.code),
      ...(err.status === 401 ? { 'WWW-Authenticate': 'Basic realm="ebbflow"' } : {}),
    },
  })
}

/** The yoga plugin that answers /clickhouse before GraphQL sees the request. */
export function clickHouseHttpPlugin(options: ClickHouseHttpOptions): Plugin {
  return {
    async onRequest({ request, url, endResponse }) {
      if (
        url.pathname !== CLICKHOUSE_HTTP_PATH &&
        !url.pathname.startsWith(`${CLICKHOUSE_HTTP_PATH}/`)
      )
        return
      endResponse(await handleClickHouseHttp(request, url, options))
    },
  }
}
