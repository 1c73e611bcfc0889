// What Grafana and its ClickHouse plugin (grafana/clickhouse-datasource, Apache-2.0) do to a
// panel's rawSql before ClickHouse sees it, in the plugin's order:
//  1. the frontend's applyConditionalAll (src/data/CHDatasource.ts): `$__conditionalAll(cond,
//     $var)` becomes `1=1` when the variable is All ('$__all') or empty, `cond` otherwise;
//  2. Grafana's template service with the plugin's format function: a multi-value variable
//     becomes 'a','b' (`${v:singlequote}`, `${v:sqlstring}`, `${v:csv}`, `${v:raw}` as Grafana
//     formats them); unknown variables (the macros) stay as they are;
//  3. the backend's macros (pkg/macros/macros.go): `$__timeFilter(col)` and the others, innermost
//     first, never inside quoted strings, identifiers or comments.
// tests/grafana/macros.test.ts holds the plugin's own expected strings.

export interface TimeRange {
  from: Date
  to: Date
}

export interface MacroContext extends TimeRange {
  /** Grafana's interval for the panel, ms. */
  intervalMs: number
}

export class MacroError extends Error {}

const unix = (d: Date) => Math.floor(d.getTime() / 1000)
const toDate = (d: Date) => `toDate('${d.toISOString().slice(0, 10)}')`
const toDateTime = (d: Date) => `toDateTime(${unix(d)})`
const toDateTime64 = (d: Date) => `fromUnixTimestamp64Milli(${d.getTime()})`

function arity(name: string, args: string[], n: number): void {
  if (args.length !== n)
    throw new MacroError(`$__${name} expected ${n} argument(s), received ${args.length}`)
}

/** Go's time.ParseDuration for the forms dashboards use (5m, 1h30m, 10s, 250ms). */
function parseDuration(text: string): number {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g
  const unit: Record<string, number> = {
    ns: 1e-9,
    us: 1e-6,
    µs: 1e-6,
    ms: 1e-3,
    s: 1,
    m: 60,
    h: 3600,
  }
  let seconds = 0
  let consumed = 0
  for (const m of text.matchAll(re)) {
    if (m.index !== consumed) break
    seconds += Number(m[1]) * unit[m[2]!]!
    consumed += m[0].length
  }
  if (consumed === 0 || consumed !== text.length)
    throw new MacroError(`$__timeGroup: invalid interval "${text}"`)
  return seconds
}

/** The macros of macros.go (ClickHouseMacros), by name. */
export const MACROS: Record<string, (ctx: MacroContext, args: string[]) => string> = {
  fromTime: (c) => toDateTime(c.from),
  toTime: (c) => toDateTime(c.to),
  fromTime_ms: (c) => toDateTime64(c.from),
  toTime_ms: (c) => toDateTime64(c.to),
  timeFilter: (c, a) => {
    arity('timeFilter', a, 1)
    return `${a[0]} >= ${toDateTime(c.from)} AND ${a[0]} <= ${toDateTime(c.to)}`
  },
  timeFilter_ms: (c, a) => {
    arity('timeFilter_ms', a, 1)
    return `${a[0]} >= ${toDateTime64(c.from)} AND ${a[0]} <= ${toDateTime64(c.to)}`
  },
  dateFilter: (c, a) => {
    arity('dateFilter', a, 1)
    return `${a[0]} >= ${toDate(c.from)} AND ${a[0]} <= ${toDate(c.to)}`
  },
  dateTimeFilter: (c, a) => {
    arity('dateTimeFilter', a, 2)
    return `(${a[0]} >= ${toDate(c.from)} AND ${a[0]} <= ${toDate(c.to)}) AND (${a[1]} >= ${toDateTime(c.from)} AND ${a[1]} <= ${toDateTime(c.to)})`
  },
  timeInterval: (c, a) => {
    arity('timeInterval', a, 1)
    return `toStartOfInterval(toDateTime(${a[0]}), INTERVAL ${Math.trunc(Math.max(c.intervalMs / 1000, 1))} second)`
  },
  timeInterval_ms: (c, a) => {
    arity('timeInterval_ms', a, 1)
    return `toStartOfInterval(toDateTime64(${a[0]}, 3), INTERVAL ${Math.trunc(Math.max(c.intervalMs, 1))} millisecond)`
  },
  interval_s: (c) => String(Math.trunc(Math.max(c.intervalMs / 1000, 1))),
  timeFrom: (c, a) => {
    arity('timeFrom', a, 1)
    return `${a[0]} >= ${toDateTime(c.from)}`
  },
  timeTo: (c, a) => {
    arity('timeTo', a, 1)
    return `${a[0]} <= ${toDateTime(c.to)}`
  },
  timeGroup: (_c, a) => {
    arity('timeGroup', a, 2)
    const period = a[1]!.trim().replace(/^['"]+|['"]+$/g, '')
    const secs = Math.round(parseDuration(period))
    if (secs <= 0) throw new MacroError(`$__timeGroup: interval must be positive, got "${period}"`)
    return `toStartOfInterval(toDateTime(${a[0]!.trim()}), INTERVAL ${secs} second)`
  },
}
MACROS.dt = MACROS.dateTimeFilter!

/** Length of the quoted region or comment starting at i, or 0 when none starts there. */
function skippable(sql: string, i: number): number {
  const c = sql[i]
  if (c === '-' && sql[i + 1] === '-') {
    const nl = sql.indexOf('\n', i)
    return (nl < 0 ? sql.length : nl) - i
  }
  if (c === '/' && sql[i + 1] === '*') {
    const close = sql.indexOf('*/', i + 2)
    return (close < 0 ? sql.length : close + 2) - i
  }
  if (c === "'" || c === '`' || c === '"') {
    let j = i + 1
    while (j < sql.length) {
      if (c === "'" && sql[j] === '\\') j += 2
      else if (sql[j] === c) {
        if (sql[j + 1] === c)
          j += 2 // a doubled quote inside
        else return j + 1 - i
      } else j++
    }
    return sql.length - i
  }
  if (c === '$') {
    const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(sql.slice(i))
    if (tag && !tag[0].startsWith('$__')) {
      const close = sql.indexOf(tag[0], i + tag[0].length)
      return (close < 0 ? sql.length : close + tag[0].length) - i
    }
  }
  return 0
}

/** The macro's arguments from the `(` at `open`: [args, index after `)`]. */
function macroArgs(sql: string, open: number): [string[], number] {
  const args: string[] = []
  let depth = 0
  let start = open + 1
  let i = open
  while (i < sql.length) {
    const skip = skippable(sql, i)
    if (skip > 0) {
      i += skip
      continue
    }
    const c = sql[i]
    if (c === '(') depth++
    else if (c === ')') {
      depth--
      if (depth === 0) {
        const last = sql.slice(start, i).trim()
        if (args.length > 0 || last !== '') args.push(last)
        return [args, i + 1]
      }
    } else if (c === ',' && depth === 1) {
      args.push(sql.slice(start, i).trim())
      start = i + 1
    }
    i++
  }
  throw new MacroError(`unbalanced parentheses after $__ macro at ${open}`)
}

/** The backend's expansion (macros.Interpolate): unknown `$__names` are left as they are. */
export function interpolateMacros(sql: string, ctx: MacroContext): string {
  let out = ''
  let i = 0
  while (i < sql.length) {
    const skip = skippable(sql, i)
    if (skip > 0) {
      out += sql.slice(i, i + skip)
      i += skip
      continue
    }
    const m = /^\$__([A-Za-z0-9_]+)/.exec(sql.slice(i))
    const macro = m ? MACROS[m[1]!] : undefined
    if (!m || !macro) {
      out += sql[i]
      i++
      continue
    }
    let end = i + m[0].length
    let args: string[] = []
    if (sql[end] === '(') {
      ;[args, end] = macroArgs(sql, end)
      args = args.map((a) => interpolateMacros(a, ctx))
    }
    out += macro(ctx, args)
    i = end
  }
  return out
}

/** A template variable's current value as Grafana holds it. */
export type VariableValue = string | string[]

/** The frontend's applyConditionalAll, with its getMacroArgs (CHDatasource.ts). */
export function applyConditionalAll(sql: string, vars: Record<string, VariableValue>): string {
  const macro = '$__conditionalAll('
  let index = sql.lastIndexOf(macro)
  while (index !== -1) {
    const params = conditionalArgs(sql, index + macro.length - 1)
    if (params.length !== 2) return sql
    const name = /(?<=\$\{)[\w\d]+(?=\})|(?<=\$)[\w\d]+/.exec(params[1]!.trim())
    let phrase = params[0]!
    if (name) {
      const value = vars[name[0]]
      const text = value === undefined ? undefined : String(value)
      if (text === '' || text === '$__all') phrase = '1=1'
    }
    sql = sql.replace(`${macro}${params[0]},${params[1]})`, phrase)
    index = sql.lastIndexOf(macro)
  }
  return sql
}

function conditionalArgs(query: string, argsIndex: number): string[] {
  const args: string[] = []
  const re = /\(|\)|,/g
  let brackets = 0
  let lastArgEnd = 1
  const sub = query.substring(argsIndex)
  for (let m = re.exec(sub); m !== null; m = re.exec(sub)) {
    if (m[0] === '(') brackets++
    else if (m[0] === ')') brackets--
    if (m[0] === ',' && brackets === 1) {
      args.push(sub.substring(lastArgEnd, re.lastIndex - 1))
      lastArgEnd = re.lastIndex
    }
    if (brackets === 0) {
      args.push(sub.substring(lastArgEnd, re.lastIndex - 1))
      return args
    }
  }
  return []
}

/**
 * Grafana's templateSrv.replace with the plugin's format function: `$v`, `${v}`, `${v:fmt}`,
 * `[[v]]`. All is replaced by every option's value, as Grafana does without a custom all value.
 */
export function replaceVariables(
  sql: string,
  vars: Record<string, VariableValue>,
  options: Record<string, string[]> = {},
): string {
  const re = /\$(\w+)|\[\[(\w+)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}/g
  return sql.replace(re, (match, a, b, bFmt, c, cFmt) => {
    const name = (a ?? b ?? c) as string
    if (!(name in vars)) return match
    let value = vars[name]!
    if (value === '$__all' || (Array.isArray(value) && value.includes('$__all')))
      value = options[name] ?? []
    const format = (bFmt ?? cFmt) as string | undefined
    const list = Array.isArray(value) ? value : [value]
    switch (format) {
      case undefined:
        // The plugin's format(): arrays quoted and joined, single values as they are.
        return Array.isArray(value) ? `'${value.join("','")}'` : value
      case 'singlequote':
        return list.map((v) => `'${v.replaceAll("'", "\\'")}'`).join(',')
      case 'sqlstring':
        return list.map((v) => `'${v.replaceAll("'", "''")}'`).join(',')
      case 'csv':
        return list.join(',')
      case 'raw':
        return list.join(',')
      default:
        throw new Error(`variable format ${format} is not modelled here`)
    }
  })
}

export interface PanelQuery {
  rawSql: string
  vars: Record<string, VariableValue>
  /** Each variable's options, for All. */
  options?: Record<string, string[]>
  ctx: MacroContext
}

/** The SQL ClickHouse receives for a panel target, in the plugin's order. */
export function expandPanelSql(q: PanelQuery): string {
  const conditional = applyConditionalAll(q.rawSql, q.vars)
  const replaced = replaceVariables(conditional, q.vars, q.options)
  return interpolateMacros(replaced, q.ctx)
}
