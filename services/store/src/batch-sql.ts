// The statements that let ClickHouse itself parse EventBatch records (its `Protobuf` input
// format, length-delimited: one EventBatch per Kafka record value) and unnest each family into
// its raw table with ARRAY JOIN. The JavaScript never decodes an event on the way in.
//
// Everything here is derived from the proto's reflection: the input structure (nested messages
// as named Tuples, which ClickHouse matches to message fields by name), and each table's
// columns (a field goes to the column of its own snake_case name; Metadata and Task fields to
// theirs). A family lists only what differs from that rule. The statement text is the same for
// chDB and a ClickHouse server; only the table function that reads the bytes differs
// (`file()` of a tmpfs file for chDB, `input()` over the HTTP body for a server).
import { loadSchemaRoot } from '@ebbflow/proto'
import type protobuf from 'protobufjs'
import { META_COLUMNS, type Table } from './tables.ts'

/** The message ClickHouse reads each record as, relative to the proto folder. */
export const BATCH_SCHEMA = 'ebbflow/v1/events.proto:EventBatch'

const root = loadSchemaRoot()
const BATCH = root.lookupType('ebbflow.v1.EventBatch')

/** EventBatch's scalar fields before its repeated families: who sent the batch, and when. */
export const HEADER_FIELDS: readonly string[] = BATCH.fieldsArray
  .filter((f) => !f.repeated && !f.resolvedType)
  .map((f) => f.name)

const SCALAR: Record<string, string> = {
  string: 'String',
  bytes: 'String',
  bool: 'UInt8',
  uint64: 'UInt64',
  fixed64: 'UInt64',
  int64: 'Int64',
  sint64: 'Int64',
  sfixed64: 'Int64',
  uint32: 'UInt32',
  fixed32: 'UInt32',
  int32: 'Int32',
  sint32: 'Int32',
  sfixed32: 'Int32',
  double: 'Float64',
  float: 'Float32',
}

function fieldType(f: protobuf.Field): string {
  f.resolve()
  let t: string
  if (f.map) {
    const key = SCALAR[(f as unknown as protobuf.MapField).keyType]
    t = `Map(${key}, ${SCALAR[f.type] ?? 'String'})`
    return t
  }
  if (f.resolvedType && 'fieldsArray' in f.resolvedType)
    t = `Tuple(${messageColumns(f.resolvedType as protobuf.Type)})`
  // Enums as their numbers: the tables name the values (see enumExpr).
  else if (f.resolvedType) t = 'Int32'
  else {
    const s = SCALAR[f.type]
    if (!s) throw new Error(`no ClickHouse type for proto type ${f.type} of ${f.fullName}`)
    t = s
  }
  return f.repeated ? `Array(${t})` : t
}

function messageColumns(t: protobuf.Type): string {
  return t.fieldsArray.map((f) => `${f.name} ${fieldType(f)}`).join(', ')
}

/**
 * The input structure for ClickHouse: the batch header and the named repeated families (all of
 * them when none is named). Fields left out are skipped by the parser, not decoded.
 */
export function batchStructure(families?: readonly string[]): string {
  const fields = BATCH.fieldsArray.filter(
    (f) => HEADER_FIELDS.includes(f.name) || !families || families.includes(f.name),
  )
  return fields.map((f) => `${f.name} ${fieldType(f)}`).join(', ')
}

/**
 * A message's fields as a Tuple's elements, only those on `paths` ('task.pid' keeps Task's
 * pid): the parser skips the others without building their columns.
 */
function subsetColumns(t: protobuf.Type, paths: readonly string[]): string {
  const out: string[] = []
  for (const f of t.fieldsArray) {
    const inner = paths
      .filter((p) => p.startsWith(`${f.name}.`))
      .map((p) => p.slice(f.name.length + 1))
    f.resolve()
    if (inner.length > 0 && f.resolvedType && 'fieldsArray' in f.resolvedType) {
      const tuple = `Tuple(${subsetColumns(f.resolvedType as protobuf.Type, inner)})`
      out.push(`${f.name} ${f.repeated ? `Array(${tuple})` : tuple}`)
    } else if (paths.includes(f.name)) out.push(`${f.name} ${fieldType(f)}`)
  }
  return out.join(', ')
}

/** A SQL string literal. */
export function sqlString(s: string): string {
  return `'${s.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`
}

/**
 * An enum field as the name the tables use: `TcpEvent.Kind.KIND_CONNECT_FAILED` is
 * 'connect_failed'; unspecified or unknown numbers take `fallback` (the decoder's default).
 */
function enumExpr(expr: string, f: protobuf.Field, fallback?: string): string {
  f.resolve()
  const e = f.resolvedType as protobuf.Enum
  const prefix = `${e.name.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}_`
  const pairs = Object.entries(e.values).filter(([k]) => !k.endsWith('_UNSPECIFIED'))
  const names = pairs.map(([k]) => k.slice(prefix.length).toLowerCase())
  const nums = pairs.map(([, v]) => v)
  return `transform(${expr}, [${nums.join(', ')}], [${names.map(sqlString).join(', ')}], ${sqlString(fallback ?? names[0]!)})`
}

/** How one repeated field of EventBatch becomes rows of one table. */
export interface FamilyRoute {
  /** The EventBatch field (snake_case). */
  field: string
  table: Table
  /**
   * Columns whose value is not the event's field of the same name, as SQL over `e` (the event)
   * and the batch header's fields; `null` leaves a field of the message without a column.
   */
  columns?: Record<string, string | null>
  /** Derive columns from the message (Metadata, Task, same-named fields). Default: true. */
  derive?: boolean
  /** Enum fields whose unknown values map to another name than the first. */
  enumFallback?: Record<string, string>
}

const WALL_TIME = "fromUnixTimestamp64Nano(toInt64(e.time_ns), 'UTC')"
const NODE = "if(e.meta.node != '', e.meta.node, node)"
const IP_FAMILY = 'if(e.ip_family = 6, 6, 4)'
/**
 * IPv4 text as IPv4-mapped IPv6 (the tables' one address column); '' as ::. Text that is no
 * address makes the insert fail, and the ingester narrows the block down to that record.
 */
const ip = (f: string) => `toIPv6(if(e.${f} = '', '::', e.${f}))`

/**
 * Every family and its table. A new family is one entry here (plus its table's migration):
 * fields named like their columns need nothing more.
 */
export const FAMILY_ROUTES: readonly FamilyRoute[] = [
  { field: 'exec', table: 'process_events', columns: { kind: "'exec'" } },
  { field: 'exit', table: 'process_events', columns: { kind: "'exit'" } },
  { field: 'fork', table: 'process_events', columns: { kind: "'fork'" } },
  {
    field: 'tcp',
    table: 'tcp_connections',
    columns: {
      kind: null,
      event: 'kind',
      ip_family: IP_FAMILY,
      saddr: ip('saddr'),
      daddr: ip('daddr'),
    },
  },
  {
    field: 'traffic',
    table: 'traffic',
    columns: { ip_family: IP_FAMILY, remote_addr: ip('remote_addr') },
    enumFallback: { direction: 'egress' },
  },
  {
    field: 'syscall',
    table: 'syscall_events',
    columns: { strings: null, string_args: 'e.strings.arg', string_values: 'e.strings.value' },
  },
  { field: 'syscall_count', table: 'syscall_counts' },
  { field: 'file', table: 'file_accesses' },
  {
    field: 'drops',
    table: 'collector_stats',
    derive: false,
    columns: {
      time: WALL_TIME,
      node: NODE,
      boot_id: 'boot_id',
      metric: "'drops'",
      family: 'family',
      reason: 'reason',
      value: 'e.count',
    },
  },
]

function messageOf(field: string): protobuf.Type {
  const f = BATCH.fields[field]
  if (!f) throw new Error(`EventBatch has no field ${field}`)
  f.resolve()
  return f.resolvedType as protobuf.Type
}

/** The columns of one family's rows and the SQL of each, in a fixed order. */
export function familyColumns(route: FamilyRoute): [string, string][] {
  const msg = messageOf(route.field)
  const out = new Map<string, string>()
  const overrides = route.columns ?? {}
  const fieldExpr = (name: string): string => {
    const f = msg.fields[name]
    if (f?.resolvedType && !('fieldsArray' in f.resolvedType))
      return enumExpr(`e.${name}`, f, route.enumFallback?.[name])
    return `e.${name}`
  }
  if (route.derive !== false) {
    out.set('time', WALL_TIME)
    out.set('node', NODE)
    out.set('boot_id', 'boot_id')
    for (const f of msg.fieldsArray) {
      if (f.name === 'time_ns' || f.name in overrides) continue
      if (f.name === 'meta') {
        for (const c of META_COLUMNS)
          if (c.column !== 'node') out.set(c.column, `e.meta.${c.column}`)
        continue
      }
      f.resolve()
      if (f.resolvedType && 'fieldsArray' in f.resolvedType && !f.repeated) {
        // A nested message other than Metadata (Task): its fields are columns of their own names.
        for (const g of (f.resolvedType as protobuf.Type).fieldsArray)
          out.set(g.name, `e.${f.name}.${g.name}`)
        continue
      }
      out.set(f.name, fieldExpr(f.name))
    }
  }
  for (const [column, expr] of Object.entries(overrides)) {
    if (expr === null) continue
    // An override naming an enum field by its bare name gets the enum's names.
    out.set(column, msg.fields[expr]?.resolvedType ? fieldExpr(expr) : expr)
  }
  return [...out]
}

/**
 * The ClickHouse type of each column a family fills straight from a field of its own name: what
 * another family of the same table puts in the column when it lacks the field.
 */
function familyColumnTypes(route: FamilyRoute): Map<string, string> {
  const msg = messageOf(route.field)
  const out = new Map<string, string>()
  for (const f of msg.fieldsArray) {
    if (route.columns && f.name in route.columns) continue
    f.resolve()
    if (f.resolvedType && !('fieldsArray' in f.resolvedType)) out.set(f.name, 'String')
    else if (!f.resolvedType) out.set(f.name, fieldType(f))
  }
  return out
}

/** The tables EventBatch records fill, each with the families that go into it. */
export function routesByTable(): Map<Table, FamilyRoute[]> {
  const out = new Map<Table, FamilyRoute[]>()
  for (const r of FAMILY_ROUTES) out.set(r.table, [...(out.get(r.table) ?? []), r])
  return out
}

/**
 * Where the statements read the records from: `(families) => table function text`. chDB reads a
 * file, a server its request body (`input()`), the Kafka engine route its Kafka table.
 */
export type BatchSource = (structure: string) => string

/** chDB: a file of length-delimited EventBatch messages. */
export const fileSource =
  (path: string): BatchSource =>
  (structure) =>
    `file(${sqlString(path)}, 'Protobuf', ${sqlString(structure)})`

/** ClickHouse server: the HTTP body, sent with `FORMAT Protobuf` after the statement. */
export const inputSource: BatchSource = (structure) => `input(${sqlString(structure)})`

/**
 * A table's columns (every column any of its families fills) and, per family, the SQL of each
 * column in that order: a column the family lacks takes its type's default (a materialized
 * view does not turn NULL into a column's default as an INSERT does).
 */
function tableExprs(table: Table): { columns: string[]; routes: [FamilyRoute, string[]][] } {
  const routes = routesByTable().get(table)
  if (!routes) throw new Error(`no EventBatch family goes to ${table}`)
  const perFamily = routes.map((r) => familyColumns(r))
  const columns = [...new Set(perFamily.flatMap((cols) => cols.map(([c]) => c)))]
  const types = new Map<string, string>()
  for (const r of routes) for (const [c, t] of familyColumnTypes(r)) types.set(c, t)
  const absent = (c: string) => {
    const t = types.get(c)
    if (!t) throw new Error(`${table}.${c}: no type for the families without it`)
    return `defaultValueOfTypeName(${sqlString(t)})`
  }
  return {
    columns,
    routes: routes.map((r, i) => {
      const mine = new Map(perFamily[i])
      return [r, columns.map((c) => mine.get(c) ?? absent(c))]
    }),
  }
}

/**
 * The rows of one table from the records of `source`: its columns and one SELECT per family
 * (UNION ALL). `where` filters records (by header fields) before unnesting.
 */
export function tableSelect(
  table: Table,
  source: BatchSource,
  where?: string,
  present?: readonly string[],
): { columns: string[]; select: string } {
  const { columns, routes } = tableExprs(table)
  // A family no record of the block has adds no rows, only another parse of the block.
  const mine = routes.filter(([r]) => !present || present.includes(r.field))
  const selects = (mine.length > 0 ? mine : routes).map(([r, exprs]) => {
    const named = exprs.map((e, i) => `${e} AS ${columns[i]}`)
    return `SELECT ${named.join(', ')} FROM ${source(batchStructure([r.field]))} ARRAY JOIN ${r.field} AS e${where ? ` WHERE ${where}` : ''}`
  })
  return { columns, select: selects.join(' UNION ALL ') }
}

/**
 * One INSERT … SELECT of a table's rows from the records of `source`; of the `present` families
 * only, when the caller knows the block has no events of the others (from the headers).
 */
export function insertStatement(
  table: Table,
  source: BatchSource,
  present?: readonly string[],
): string {
  const { columns, select } = tableSelect(table, source, undefined, present)
  return `INSERT INTO ebbflow.${table} (${columns.join(', ')}) ${select}`
}

// What a collector can send, checked per event by ClickHouse before anything is stored.
// Protobuf takes almost any bytes as some message and any number in range of its wire type,
// so a batch that parses can still say an exit had code -2^31 or lasted 2^64-1 ns. The kernel
// bounds each field; a value outside those bounds did not come from a collector, and its
// record goes to the dead letters with the reason instead of becoming rows.

/** PID_MAX_LIMIT (include/linux/threads.h): no pid or tgid is larger, and 0 is the idle task. */
const PID_MAX = 4_194_304
/** An exit status is the low byte of what the process passed (wait(2)). */
const EXIT_CODE_MAX = 255
/** SIGRTMAX on Linux. */
const SIGNAL_MAX = 64
/** Longer than any process or connection lives, shorter than any garbage: 100 years. */
const DURATION_MAX_NS = 100n * 365n * 24n * 3600n * 1_000_000_000n
/** A uid or gid is 32 bits, and (uid_t)-1 means "none": never a process's id. */
const ID_MAX = 0xfffffffe
/**
 * Event (and batch header) wall-clock times, ns: from 2001-09-09 (10^9 s; no machine that runs
 * eBPF has an older clock, and ClickHouse's text parser reads a shorter seconds count as a
 * date, so the ledger's row of such a batch failed for good) to the end of DateTime64(9).
 */
export const TIME_MIN_NS = 10n ** 18n
export const TIME_MAX_NS = 2n ** 63n - 1n
/** Problems listed per record, at most (the count says how many more). */
const LISTED = 5

/** One check of an event `x`: `bad` is true for a value no collector sends. */
interface Check {
  bad: string
  /** SQL text pieces of the message after "family[i]: ", joined with toString of values. */
  say: string
}

const rangeCheck = (
  expr: string,
  what: string,
  min: number | bigint,
  max: number | bigint,
  unit = '',
): Check => ({
  bad: `NOT (${expr} BETWEEN ${min} AND ${max})`,
  say: `concat(${sqlString(`${what} `)}, toString(${expr}), ${sqlString(`${unit} out of range${unit ? '' : ` ${min}..${max}`}`)})`,
})

const TASK_CHECKS: Check[] = [
  rangeCheck('x.task.pid', 'pid', 1, PID_MAX),
  rangeCheck('x.task.tgid', 'tgid', 1, PID_MAX),
  { bad: `x.task.uid > ${ID_MAX}`, say: "concat('uid ', toString(x.task.uid), ' out of range')" },
  { bad: `x.task.gid > ${ID_MAX}`, say: "concat('gid ', toString(x.task.gid), ' out of range')" },
]

/**
 * Wall-clock times: from TIME_MIN_NS (no collector's clock is older; ClickHouse's text parser
 * reads a shorter seconds count as a date, which failed a batch's ledger row for good) to a day
 * ahead of the store's clock (skew). Garbage is far ahead: a u64 of all ones, or anything past
 * 2^63 ns, which the Int64 of the time columns turns into a time before 1970. A zero time is
 * counted apart, as an event without a time (`untimed`).
 */
const TIME_AHEAD_NS = 86_400n * 1_000_000_000n
const TIME_CHECK: Check = {
  bad: `x.time_ns != 0 AND (x.time_ns < ${TIME_MIN_NS} OR x.time_ns > toUInt64(toUnixTimestamp64Nano(now64(9))) + ${TIME_AHEAD_NS})`,
  say: "concat('time ', toString(x.time_ns), ' ns out of range (before 2001 or more than a day ahead)')",
}

/** Per family, the checks of its events (every family's times are checked too, TIME_CHECK). */
const CHECKS: Record<string, Check[]> = {
  exec: [
    ...TASK_CHECKS,
    { bad: "x.filename = '' AND empty(x.args)", say: "'neither filename nor args'" },
  ],
  exit: [
    ...TASK_CHECKS,
    rangeCheck('x.exit_code', 'exit code', 0, EXIT_CODE_MAX),
    rangeCheck('x.signal', 'signal', 0, SIGNAL_MAX),
    {
      bad: `x.duration_ns > ${DURATION_MAX_NS}`,
      say: "concat('duration ', toString(x.duration_ns), ' ns out of range')",
    },
  ],
  fork: [
    ...TASK_CHECKS,
    rangeCheck('x.child_pid', 'child pid', 1, PID_MAX),
    rangeCheck('x.child_tgid', 'child tgid', 1, PID_MAX),
  ],
  tcp: [
    // A passive socket's pid is 0 (softirq does not know the process).
    rangeCheck('x.pid', 'pid', 0, PID_MAX),
    { bad: 'x.sport > 65535 OR x.dport > 65535', say: "'port out of range'" },
    {
      bad: `x.duration_ns > ${DURATION_MAX_NS}`,
      say: "concat('duration ', toString(x.duration_ns), ' ns out of range')",
    },
  ],
  syscall: TASK_CHECKS,
  file: [
    ...TASK_CHECKS,
    { bad: "NOT startsWith(x.path, '/')", say: "'path is not absolute'" },
    rangeCheck('x.count', 'count', 1, Number.MAX_SAFE_INTEGER),
  ],
}

/**
 * A family's enum fields: a number without a name (unspecified, or added by a newer writer) has
 * no value in the tables, whose enums name what the proto names. proto/README.md: the record
 * waits in the dead letters for a reader that knows it, instead of being stored under a name
 * it never had.
 */
function enumChecks(family: string): Check[] {
  return messageOf(family).fieldsArray.flatMap((f) => {
    f.resolve()
    if (f.repeated || !f.resolvedType || 'fieldsArray' in f.resolvedType) return []
    const known = Object.entries((f.resolvedType as protobuf.Enum).values)
      .filter(([k]) => !k.endsWith('_UNSPECIFIED'))
      .map(([, v]) => v)
    return [
      {
        bad: `x.${f.name} NOT IN (${known.join(', ')})`,
        say: `concat(${sqlString(`${f.name} = `)}, toString(x.${f.name}), ': not a value this reader knows')`,
      },
    ]
  })
}

/** Every check of a family's events: its time, its own and its enums'. */
const checksOf = (family: string): Check[] => [
  TIME_CHECK,
  ...(CHECKS[family] ?? []),
  ...enumChecks(family),
]

/**
 * What the validation reads: the header, and of each family only the fields its checks name
 * (`x.task.pid` in a check reads Task's pid) and the timestamp.
 */
function validationStructure(
  whole: readonly string[] = [],
  families: readonly string[] = familyFields(),
): string {
  const parts = HEADER_FIELDS.map((name) => `${name} ${fieldType(BATCH.fields[name]!)}`)
  for (const family of families) {
    if (whole.includes(family)) {
      parts.push(`${family} ${fieldType(BATCH.fields[family]!)}`)
      continue
    }
    const text = checksOf(family)
      .map((c) => `${c.bad} ${c.say}`)
      .join(' ')
    const paths = new Set(['time_ns', ...[...text.matchAll(/\bx\.([a-z_.]+)/g)].map((m) => m[1]!)])
    parts.push(`${family} Array(Tuple(${subsetColumns(messageOf(family), [...paths])}))`)
  }
  return parts.join(', ')
}

const familyFields = (): string[] => [...new Set(FAMILY_ROUTES.map((r) => r.field))]

/**
 * True for a record whose every event passes its family's checks and has a timestamp; of the
 * named families only, when the caller knows the others have no events.
 */
export function eventsValid(families: readonly string[] = familyFields()): string {
  return families
    .map((f) => {
      const checks = checksOf(f)
      const cond = ['x.time_ns != 0', ...checks.map((c) => `NOT (${c.bad})`)].join(' AND ')
      return `arrayAll(x -> ${cond}, ${f})`
    })
    .join(' AND ')
}

/** The header checks the ingester makes in JavaScript (records.ts), for routes without it. */
export function headerValid(): string {
  const any = familyFields()
    .map((f) => `length(${f})`)
    .join(' + ')
  return `node != '' AND batch_id != '' AND sequence <= ${Number.MAX_SAFE_INTEGER} AND (${any}) > 0`
}

/** A record's problems (the first few, then "and N more"), over the record's columns. */
function problemsExpr(): string {
  const problems = familyFields()
    .filter((f) => checksOf(f).length > 0)
    .map((f) => {
      const list = checksOf(f).map(
        (c) => `if(${c.bad}, concat(${sqlString(`${f}[`)}, toString(i - 1), ']: ', ${c.say}), '')`,
      )
      return `arrayFilter(s -> s != '', arrayFlatten(arrayMap((x, i) -> [${list.join(', ')}], ${f}, arrayEnumerate(${f}))))`
    })
  const found = `arrayConcat(${problems.join(', ')})`
  return `arrayConcat(arraySlice(${found}, 1, ${LISTED}), if(length(${found}) > ${LISTED}, [concat('and ', toString(length(${found}) - ${LISTED}), ' more')], []))`
}

const untimedExpr = (): string =>
  familyFields()
    .map((f) => `arrayCount(x -> x.time_ns = 0, ${f})`)
    .join(' + ')

/**
 * One row per record that must not be stored: `record` (its 0-based position in the input),
 * `untimed` (events without a timestamp) and `problems` (the first few, then "and N more").
 * Valid records cost one pass of cheap comparisons; messages are built for the bad ones only.
 */
export function validationStatement(source: BatchSource): string {
  return (
    `SELECT record, ${untimedExpr()} AS untimed, ${problemsExpr()} AS problems ` +
    `FROM (SELECT rowNumberInAllBlocks() AS record, * FROM ${source(validationStructure())}) WHERE NOT (${eventsValid()})`
  )
}

/** What a checked insert (checkedInsertStatement) throws when a record of its block fails a check. */
export const BLOCK_FAILS_CHECKS = 'ebbflow: a record of the block fails its checks'

/**
 * The insert of a table that first checks every record of the block (all families' events, as
 * validationStatement does) and throws BLOCK_FAILS_CHECKS, before any row is written, when one
 * fails: a valid block, the usual case, is parsed once for its checks and its table instead of
 * twice. The check runs on whole records, before ARRAY JOIN, so records without events of this
 * table's families are checked too. One statement reads the block once whatever the number of
 * families that feed the table: with several (process_events: exec, exit, fork), each family's
 * events become tuples of the table's columns, concatenated and unnested by one ARRAY JOIN,
 * instead of a UNION ALL that parses the block once per family and could write one part before
 * another throws. Undefined when none of the table's families is `present`.
 */
export function checkedInsertStatement(
  table: Table,
  source: BatchSource,
  present?: readonly string[],
): string | undefined {
  if (!routesByTable().has(table)) return undefined
  const { columns, routes } = tableExprs(table)
  // `present`: the families the block's records have events of (their headers, read by
  // counting the fields on the wire). Checking and unnesting only those is the same insert,
  // and ClickHouse analyses a statement several times smaller (bench/up-latency/per-block.ts:
  // most of a small block's cost is analysing its statements).
  const mine = routes.filter(([r]) => !present || present.includes(r.field))
  if (mine.length === 0) return undefined
  const fields = mine.map(([r]) => r.field)
  const families = familyFields().filter(
    (f) => !present || present.includes(f) || fields.includes(f),
  )
  const checked =
    `(SELECT * FROM ${source(validationStructure(fields, families))} ` +
    `WHERE throwIf(NOT (${eventsValid(families)}), ${sqlString(BLOCK_FAILS_CHECKS)}) = 0)`
  const into = `INSERT INTO ebbflow.${table} (${columns.join(', ')}) `
  if (mine.length === 1) {
    const [[route, exprs]] = mine as [[FamilyRoute, string[]]]
    return `${into}SELECT ${exprs.map((e, i) => `${e} AS ${columns[i]}`).join(', ')} FROM ${checked} ARRAY JOIN ${route.field} AS e`
  }
  const tuples = mine.map(([r, exprs]) => `arrayMap(e -> tuple(${exprs.join(', ')}), ${r.field})`)
  return (
    // By position, without aliases: an alias named like a header column (node, boot_id) would
    // stand for that column inside the lambdas too, and refer back to `r`.
    `${into}SELECT ${columns.map((_, i) => `r.${i + 1}`).join(', ')} ` +
    `FROM ${checked} ARRAY JOIN arrayConcat(${tuples.join(', ')}) AS r`
  )
}

/**
 * What `kafkaEngineStatements` created for `topics`, dropped: the Kafka tables first (their
 * consumers stop; the group's committed offsets stay in Kafka, so the tables created again
 * resume where these stopped), then the views and queues. `ebbflow migrate --kafka-engine`
 * runs these before the CREATEs, so a second run with other settings or families replaces
 * the route instead of keeping the old definitions (the CREATEs say IF NOT EXISTS).
 */
export function kafkaEngineDropStatements(topics: Readonly<Record<string, string>>): string[] {
  const out: string[] = []
  for (const family of Object.keys(topics)) {
    const kafka = `ebbflow.kafka_${identifier(family)}`
    out.push(`DROP TABLE IF EXISTS ${kafka}`, `DROP VIEW IF EXISTS ${kafka}_mv`)
    for (const view of [...FAMILY_ROUTES.map((r) => r.field), 'ledger', 'undecodable', 'invalid'])
      out.push(`DROP VIEW IF EXISTS ${kafka}_${view}_mv`)
    out.push(`DROP TABLE IF EXISTS ${kafka}_queue`)
  }
  return out
}

/** How ClickHouse's own Kafka engine reads the topics (`ebbflow migrate --kafka-engine`). */
export interface KafkaEngineOptions {
  /** host:port,host:port as ClickHouse reaches the brokers. */
  brokers: string
  /** Topic per family. */
  topics: Readonly<Record<string, string>>
  /** Consumer group of the ClickHouse consumers. Default: ebbflow-clickhouse. */
  group?: string
  /** `kafka_schema`: the proto as the server finds it (relative to its format_schema_path). Default: BATCH_SCHEMA. */
  schema?: string
  /** `kafka_flush_interval_ms`. Default: ClickHouse's (7.5 s). */
  flushIntervalMs?: number
}

const identifier = (s: string) => s.replace(/[^a-zA-Z0-9_]/g, '_')

/**
 * What the Kafka table's virtual columns become in the queue table between it and the views
 * (`_topic` → `kafka_topic`…): a Null table has no virtual columns, so they are real ones there.
 */
const KAFKA_COLUMNS: readonly [column: string, type: string, expr: string][] = [
  ['kafka_topic', 'LowCardinality(String)', '_topic'],
  ['kafka_partition', 'Int32', 'toInt32(_partition)'],
  ['kafka_offset', 'Int64', 'toInt64(_offset)'],
  ['kafka_key', 'String', "ifNull(_key, '')"],
  ['kafka_error', 'String', '_error'],
  ['kafka_raw_message', 'String', '_raw_message'],
]

const QUEUE_FULL = (root.lookupEnum('ebbflow.v1.Drops.Reason').values as Record<string, number>)
  .REASON_QUEUE_FULL

/**
 * One ledger row per stored record, as the ingester's ledger.ts writes it: the header, the
 * events of the batch without its drop records, and the queue_full drops the publisher reported.
 */
function ledgerSelect(valid: string): string {
  const events = familyFields()
    .filter((f) => f !== 'drops')
    .map((f) => `length(${f})`)
    .join(' + ')
  const time = (f: string) => `fromUnixTimestamp64Nano(toInt64(${f}), 'UTC')`
  const drops = (f: string) => `arraySum(d -> if(d.reason = ${QUEUE_FULL}, d.${f}, 0), drops)`
  const columns: [string, string][] = [
    ['stored_at', 'now64(3)'],
    ['node', 'node'],
    ['boot_id', 'boot_id'],
    ['collector_instance_id', 'collector_instance_id'],
    ['topic', 'kafka_topic'],
    ['sequence', 'sequence'],
    ['batch_id', 'batch_id'],
    ['first_time', time('first_time_ns')],
    ['last_time', time('last_time_ns')],
    ['events', `toUInt32(${events})`],
    ['dropped_batches', drops('batches')],
    ['dropped_events', drops('count')],
  ]
  return `SELECT ${columns.map(([c, e]) => `${e} AS ${c}`).join(', ')} FROM ${valid}`
}

/**
 * The Kafka engine route: per topic a `Kafka` table that parses each record as one EventBatch
 * (`ProtobufSingle`), one view that moves its blocks into a `Null` queue table, and views on
 * the queue that unnest valid records into the raw tables with the ingester's own SELECTs,
 * record their headers in ebbflow.batch_ledger (so collectorHealth sees gaps on this route
 * too), and put every other record in ebbflow.dead_letters: what the engine could not parse
 * (kafka_handle_error_mode='stream': the error and the raw bytes), and what fails the
 * ingester's checks (the problems; the engine keeps no raw bytes of a record it parsed). At
 * least once: a ClickHouse restart re-reads what it had not committed.
 *
 * Why the queue: a Kafka table starts consuming as soon as its first view is attached, and
 * hands each block to the views attached at that moment, committing its offsets after. With
 * the views created one by one on the Kafka table, the first blocks of a topic went to the
 * first views only: the records of the later families (syscall, syscall_count) were committed
 * and never stored (seen on chDB, the first 42 of 200 records). The queue and every view on it
 * exist before the Kafka table's one view, the last statement, lets it start.
 */
export function kafkaEngineStatements(o: KafkaEngineOptions): string[] {
  const out: string[] = []
  const group = o.group ?? 'ebbflow-clickhouse'
  for (const [family, topic] of Object.entries(o.topics)) {
    const kafka = `ebbflow.kafka_${identifier(family)}`
    const queue = `${kafka}_queue`
    out.push(
      `CREATE TABLE IF NOT EXISTS ${queue} (${batchStructure()}, ${KAFKA_COLUMNS.map(([c, t]) => `${c} ${t}`).join(', ')}) ENGINE = Null`,
    )
    const valid = `(SELECT * FROM ${queue} WHERE length(kafka_error) = 0 AND ${headerValid()} AND ${eventsValid()})`
    // One view per family: a view runs on the block it is handed only through the first
    // SELECT of a UNION ALL, so the ingester's per-table UNION ALL is split here.
    for (const route of FAMILY_ROUTES) {
      const exprs = familyColumns(route).map(([c, e]) => `${e} AS ${c}`)
      out.push(
        `CREATE MATERIALIZED VIEW IF NOT EXISTS ${kafka}_${route.field}_mv TO ebbflow.${route.table} AS ` +
          `SELECT ${exprs.join(', ')} FROM ${valid} ARRAY JOIN ${route.field} AS e`,
      )
    }
    out.push(
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${kafka}_ledger_mv TO ebbflow.batch_ledger AS ${ledgerSelect(valid)}`,
    )
    const letter = (reason: string, error: string, value: string, where: string) =>
      `SELECT now64(3) AS time, 'kafka-engine' AS source, kafka_topic AS topic, kafka_partition AS partition, ` +
      `kafka_offset AS offset, '${reason}' AS reason, ${error} AS error, kafka_key AS key, ${value} AS value_base64 ` +
      `FROM ${queue} WHERE ${where}`
    out.push(
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${kafka}_undecodable_mv TO ebbflow.dead_letters AS ${letter('undecodable', 'kafka_error', 'base64Encode(kafka_raw_message)', 'length(kafka_error) > 0')}`,
    )
    out.push(
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${kafka}_invalid_mv TO ebbflow.dead_letters AS ${letter(
        'invalid_event',
        `concat('out of range: ', arrayStringConcat(arrayConcat(if(${headerValid()}, [], ['invalid EventBatch header (no node, no batch id, sequence out of range or no events)']), if(${untimedExpr()} > 0, [concat(toString(${untimedExpr()}), ' events without a timestamp')], []), ${problemsExpr()}), '; '))`,
        "''",
        `length(kafka_error) = 0 AND NOT (${headerValid()} AND ${eventsValid()})`,
      )}`,
    )
    const settings = [
      `kafka_broker_list = ${sqlString(o.brokers)}`,
      `kafka_topic_list = ${sqlString(topic)}`,
      `kafka_group_name = ${sqlString(group)}`,
      "kafka_format = 'ProtobufSingle'",
      `kafka_schema = ${sqlString(o.schema ?? BATCH_SCHEMA)}`,
      "kafka_handle_error_mode = 'stream'",
      ...(o.flushIntervalMs ? [`kafka_flush_interval_ms = ${o.flushIntervalMs}`] : []),
    ]
    out.push(
      `CREATE TABLE IF NOT EXISTS ${kafka} (${batchStructure()}) ENGINE = Kafka SETTINGS ${settings.join(', ')}`,
    )
    out.push(
      `CREATE MATERIALIZED VIEW IF NOT EXISTS ${kafka}_mv TO ${queue} AS ` +
        `SELECT *, ${KAFKA_COLUMNS.map(([c, , e]) => `${e} AS ${c}`).join(', ')} FROM ${kafka}`,
    )
  }
  return out
}
