// Relay connections over keyset pagination. A cursor is base64url of JSON: the connection's
// name and the row's sort key. It only positions a page: the statement that reads the page
// keeps every filter and the namespace restriction, so a cursor made from rows the caller may
// not read moves the window and shows nothing more.
import { userError } from './errors.ts'
import type { Params, ParamType } from './sql.ts'

export interface PageArgs {
  first?: number | null
  after?: string | null
  last?: number | null
  before?: string | null
}

export interface PageLimits {
  defaultPageSize: number
  maxPageSize: number
}

/** One column of a sort key: the SQL expression, its bound type, and how to check a value. */
export interface KeyColumn {
  sql: string
  type: ParamType
  check: (v: unknown) => boolean
}

export const isString = (v: unknown): boolean => typeof v === 'string' && v.length <= 4096
/**
 * A time as the store writes it, and one that exists: a made-up date (month 13) or one
 * outside DateTime64's range (1900–2299) would reach ClickHouse and fail there as an internal
 * error instead of a BAD_CURSOR.
 */
export const isTime = (v: unknown): boolean => {
  if (typeof v !== 'string') return false
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\.\d{9}$/.exec(v)
  if (!m) return false
  const [y, mo, d, h, mi, sec] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ]
  if (y < 1900 || y > 2299) return false
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, sec))
  return (
    t.getUTCFullYear() === y &&
    t.getUTCMonth() === mo - 1 &&
    t.getUTCDate() === d &&
    t.getUTCHours() === h &&
    t.getUTCMinutes() === mi &&
    t.getUTCSeconds() === sec
  )
}
const U64_MAX = 2n ** 64n - 1n
export const isUInt = (v: unknown): boolean =>
  typeof v === 'string'
    ? /^\d{1,20}$/.test(v) && BigInt(v) <= U64_MAX
    : Number.isSafeInteger(v) && (v as number) >= 0

export function encodeCursor(kind: string, key: readonly unknown[]): string {
  return Buffer.from(JSON.stringify([kind, ...key])).toString('base64url')
}

export function decodeCursor(kind: string, cursor: string, columns: readonly KeyColumn[]) {
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    parsed = undefined
  }
  if (
    !Array.isArray(parsed) ||
    parsed[0] !== kind ||
    parsed.length !== columns.length + 1 ||
    !columns.every((c, i) => c.check(parsed[i + 1]))
  )
    throw userError('BAD_CURSOR', `not a cursor of this connection (${kind})`)
  return parsed.slice(1) as unknown[]
}

export interface PagePlan {
  /** Extra WHERE condition for the cursor, when there is one. */
  condition: string | undefined
  /** ORDER BY text. */
  orderBy: string
  /** LIMIT: one more than the page, to learn whether another page follows. */
  limit: number
  size: number
  backward: boolean
}

/** Validates first/last and turns after/before into a keyset condition. */
export function planPage(
  kind: string,
  args: PageArgs,
  columns: readonly KeyColumn[],
  limits: PageLimits,
  p: Params,
): PagePlan {
  if (args.first != null && args.last != null)
    throw userError('BAD_USER_INPUT', 'give first (with after) or last (with before), not both')
  const backward = args.last != null || (args.before != null && args.first == null)
  const requested = backward ? args.last : args.first
  const size = requested ?? limits.defaultPageSize
  if (!Number.isInteger(size) || size < 0 || size > limits.maxPageSize)
    throw userError(
      'PAGE_TOO_LARGE',
      `${backward ? 'last' : 'first'} must be between 0 and ${limits.maxPageSize} (got ${size})`,
    )
  const cursor = backward ? args.before : args.after
  const tuple = `(${columns.map((c) => c.sql).join(', ')})`
  let condition: string | undefined
  if (cursor != null) {
    const key = decodeCursor(kind, cursor, columns)
    const bound = key.map((v, i) => p.add(columns[i]!.type, v))
    condition = `${tuple} ${backward ? '<' : '>'} (${bound.join(', ')})`
  }
  const dir = backward ? 'DESC' : 'ASC'
  return {
    condition,
    orderBy: columns.map((c) => `${c.sql} ${dir}`).join(', '),
    limit: size + 1,
    size,
    backward,
  }
}

export interface Connection<T> {
  edges: { node: T; cursor: string }[]
  pageInfo: {
    hasNextPage: boolean
    hasPreviousPage: boolean
    startCursor: string | null
    endCursor: string | null
  }
}

/** Rows of a page (in the plan's order) → a connection in ascending order. */
export function toConnection<R, T>(
  kind: string,
  plan: PagePlan,
  args: PageArgs,
  rows: R[],
  key: (row: R) => unknown[],
  node: (row: R) => T,
): Connection<T> {
  const more = rows.length > plan.size
  const page = rows.slice(0, plan.size)
  if (plan.backward) page.reverse()
  const edges = page.map((r) => ({ node: node(r), cursor: encodeCursor(kind, key(r)) }))
  return {
    edges,
    pageInfo: {
      // Relay allows "false" when it is unknown which way the caller did not page; a cursor
      // given on that side says there is something there.
      hasNextPage: plan.backward ? args.before != null : more,
      hasPreviousPage: plan.backward ? more : args.after != null,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  }
}
