// Timestamps cross the API as RFC 3339 strings with up to nine fraction digits, because the
// store keeps nanoseconds and a JavaScript Date would round them away. Inside, they are the
// text ClickHouse binds to DateTime64(9, 'UTC'): "YYYY-MM-DD hh:mm:ss.nnnnnnnnn".
import { nsToTime } from '@ebbflow/common/event-time'
import { GraphQLScalarType, Kind } from 'graphql'
import { userError } from './errors.ts'

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/

/** RFC 3339 → ClickHouse DateTime64(9) text in UTC; undefined when it is not a valid time. */
export function parseTime(value: string): string | undefined {
  const m = RFC3339.exec(value)
  if (!m) return undefined
  const [, y, mo, d, h, mi, s, frac = '', zone = 'Z'] = m
  const ms = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}${zone.toUpperCase()}`)
  if (Number.isNaN(ms)) return undefined
  const utc = new Date(ms).toISOString() // YYYY-MM-DDThh:mm:ss.000Z
  if (utc.startsWith('-') || utc.startsWith('+')) return undefined
  return `${utc.slice(0, 10)} ${utc.slice(11, 19)}.${frac.padEnd(9, '0')}`
}

/** ClickHouse DateTime64(9) text (UTC) → RFC 3339. */
export function formatTime(chTime: string): string {
  return `${chTime.replace(' ', 'T')}Z`
}

/** Nanoseconds since the epoch, as a bigint, of ClickHouse DateTime64(9) text. */
export function timeToNs(chTime: string): bigint {
  const [date, clock = '00:00:00'] = chTime.split(' ')
  const [hms, frac = ''] = clock.split('.')
  const seconds = BigInt(Date.parse(`${date}T${hms}Z`) / 1000)
  return seconds * 1_000_000_000n + BigInt(frac.padEnd(9, '0').slice(0, 9) || '0')
}

/** Nanoseconds since the epoch → ClickHouse DateTime64(9) text (event-time.ts owns it). */
export { nsToTime }

function parseOrThrow(value: unknown): string {
  if (typeof value !== 'string')
    throw userError('BAD_USER_INPUT', 'DateTime must be an RFC 3339 string')
  const t = parseTime(value)
  if (t === undefined)
    throw userError(
      'BAD_USER_INPUT',
      `DateTime must be RFC 3339, e.g. 2024-05-01T12:00:00.123456789Z (got ${JSON.stringify(value.slice(0, 64))})`,
    )
  return t
}

export const DateTimeScalar = new GraphQLScalarType({
  name: 'DateTime',
  description: 'RFC 3339 time in UTC with up to nanosecond precision.',
  serialize: (value) => (typeof value === 'string' ? formatTime(value) : value),
  parseValue: parseOrThrow,
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING)
      throw userError('BAD_USER_INPUT', 'DateTime must be an RFC 3339 string')
    return parseOrThrow(ast.value)
  },
})

export const JsonScalar = new GraphQLScalarType({
  name: 'JSON',
  description: 'A JSON value (documents such as a seccomp profile or a Kubernetes manifest).',
  serialize: (value) => value,
  parseValue: (value) => value,
})
