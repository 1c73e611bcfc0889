// Process execs, their exits, and `kubectl exec` sessions (execs sharing a session value).

import { META_SELECT } from '../metadata.ts'
import {
  type Connection,
  isString,
  isTime,
  isUInt,
  type KeyColumn,
  type PageArgs,
  planPage,
  toConnection,
} from '../pagination.ts'
import type { QueryContext } from '../query-context.ts'
import { type EventFilter, filterConditions, num, Params, scopeCondition, where } from '../sql.ts'

/**
 * An exec row, its columns aliased to the GraphQL field names where the value is served as it
 * is. `ts`, not `time`: an alias that names a column would replace it in WHERE and ORDER BY.
 * 64-bit counters served as Float are read as Float64 (ClickHouse's JSON quotes 64-bit integers).
 */
export interface ExecRow {
  ts: string
  node: string
  bootId: string
  namespace: string
  pod: string
  container: string
  function: string
  pid: number
  tgid: number
  ppid: number
  uid: number
  comm: string
  filename: string
  args: string[]
  session: string
  gid: number
  cgroupId: string
  pidnsIno: number
  mntnsIno: number
  parentComm: string
  argsTotalBytes: number
  argsTruncated: boolean
  filenameTruncated: boolean
  argsReadFailed: boolean
  seenAtStart: boolean
}

/** An exit, its columns aliased to the GraphQL field names. */
export interface ExitInfo {
  ts: string
  exitCode: number
  signal: number
  durationNs: number
  durationFromFork: boolean
  coreDumped: boolean
}

const EXEC_COLUMNS = `toString(time) AS ts, node, boot_id AS bootId, namespace, pod, container,
  function, pid, tgid, ppid, uid, gid, toString(cgroup_id) AS cgroupId, toFloat64(pidns_ino) AS pidnsIno,
  toFloat64(mntns_ino) AS mntnsIno, comm, parent_comm AS parentComm, filename, args,
  args_total_bytes AS argsTotalBytes, args_truncated AS argsTruncated,
  filename_truncated AS filenameTruncated, args_read_failed AS argsReadFailed,
  seen_at_start AS seenAtStart, session, ${META_SELECT}`

const EXEC_KEY: KeyColumn[] = [
  { sql: 'time', type: "DateTime64(9, 'UTC')", check: isTime },
  { sql: 'node', type: 'String', check: isString },
  { sql: 'boot_id', type: 'String', check: isString },
  { sql: 'pid', type: 'UInt32', check: isUInt },
]
const execKey = (r: ExecRow) => [r.ts, r.node, r.bootId, num(r.pid)]

export async function execEvents(
  ctx: QueryContext,
  filter: EventFilter,
  args: PageArgs,
): Promise<Connection<ExecRow>> {
  const p = new Params()
  const plan = planPage('exec', args, EXEC_KEY, ctx.limits, p)
  const conditions = [`kind = 'exec'`, ...filterConditions(filter, ctx.scope, p)]
  if (plan.condition) conditions.push(plan.condition)
  const rows = await ctx.runner.select<ExecRow>(
    `SELECT ${EXEC_COLUMNS} FROM ebbflow.process_events ${where(conditions)}
     ORDER BY ${plan.orderBy} LIMIT ${plan.limit}`,
    p,
  )
  return toConnection('exec', plan, args, rows, execKey, (r) => r)
}

/**
 * The exit of each exec: the first exit row of the same (node, boot_id, tgid) at or after the
 * exec. One statement for a whole page (DataLoader batch). An exec followed by another exec in
 * the same process shares that process's exit.
 */
export async function loadExits(
  ctx: QueryContext,
  execs: readonly ExecRow[],
): Promise<(ExitInfo | null)[]> {
  if (execs.length === 0) return []
  const p = new Params()
  // DateTime64 text sorts in time order.
  const minTs = execs.map((e) => e.ts).sort()[0]!
  const conditions = [
    `kind = 'exit'`,
    ...scopeCondition(ctx.scope, p),
    `has(${p.add('Array(String)', [...new Set(execs.map((e) => e.node))])}, node)`,
    `has(${p.add('Array(UInt32)', [...new Set(execs.map((e) => num(e.tgid)))])}, tgid)`,
    `time >= ${p.add("DateTime64(9, 'UTC')", minTs)}`,
  ]
  const rows = await ctx.runner.select<ExitInfo & { node: string; bootId: string; tgid: number }>(
    `SELECT toString(time) AS ts, node, boot_id AS bootId, tgid, exit_code AS exitCode, signal,
       toFloat64(duration_ns) AS durationNs, duration_from_fork AS durationFromFork,
       core_dumped AS coreDumped
     FROM ebbflow.process_events ${where(conditions)} ORDER BY time`,
    p,
  )
  const byProcess = new Map<string, typeof rows>()
  for (const r of rows) {
    const k = `${r.node}\0${r.bootId}\0${num(r.tgid)}`
    const list = byProcess.get(k)
    if (list) list.push(r)
    else byProcess.set(k, [r])
  }
  return execs.map(
    (e) =>
      byProcess.get(`${e.node}\0${e.bootId}\0${num(e.tgid)}`)?.find((x) => x.ts >= e.ts) ?? null,
  )
}

/**
 * A session, its columns aliased to the GraphQL field names where no alias names a column the
 * statement reads (ClickHouse would take `any(node) AS node` for the column inside it).
 */
export interface SessionRow {
  id: string
  sessionNode: string
  sessionNamespace: string
  sessionPod: string
  sessionContainer: string
  startedAt: string
  lastCommandAt: string
  commandCount: number | string
  sessionUid: number
}

const SESSION_COLUMNS = `session AS id, any(node) AS sessionNode, any(namespace) AS sessionNamespace,
  any(pod) AS sessionPod, argMin(container, time) AS sessionContainer,
  toString(min(time)) AS startedAt, toString(max(time)) AS lastCommandAt,
  count() AS commandCount, argMin(uid, time) AS sessionUid`

const SESSION_KEY: KeyColumn[] = [
  { sql: 'min(time)', type: "DateTime64(9, 'UTC')", check: isTime },
  { sql: 'session', type: 'String', check: isString },
]

export async function execSessions(
  ctx: QueryContext,
  filter: EventFilter,
  args: PageArgs,
): Promise<Connection<SessionRow>> {
  const p = new Params()
  const plan = planPage('session', args, SESSION_KEY, ctx.limits, p)
  const conditions = [`kind = 'exec'`, `session != ''`, ...filterConditions(filter, ctx.scope, p)]
  const rows = await ctx.runner.select<SessionRow>(
    `SELECT ${SESSION_COLUMNS} FROM ebbflow.process_events ${where(conditions)}
     GROUP BY session ${plan.condition ? `HAVING ${plan.condition}` : ''}
     ORDER BY ${plan.orderBy} LIMIT ${plan.limit}`,
    p,
  )
  return toConnection(
    'session',
    plan,
    args,
    rows,
    (r) => [r.startedAt, r.id],
    (r) => r,
  )
}

export async function execSession(ctx: QueryContext, id: string): Promise<SessionRow | null> {
  if (id === '') return null
  const p = new Params()
  const conditions = [
    `kind = 'exec'`,
    `session = ${p.add('String', id)}`,
    ...scopeCondition(ctx.scope, p),
  ]
  const rows = await ctx.runner.select<SessionRow>(
    `SELECT ${SESSION_COLUMNS} FROM ebbflow.process_events ${where(conditions)} GROUP BY session`,
    p,
  )
  return rows[0] ?? null
}

/** The commands of each session, in the order they ran (one statement for all sessions). */
export async function loadSessionCommands(
  ctx: QueryContext,
  ids: readonly string[],
): Promise<ExecRow[][]> {
  const p = new Params()
  const conditions = [
    `kind = 'exec'`,
    `has(${p.add('Array(String)', [...ids])}, session)`,
    ...scopeCondition(ctx.scope, p),
  ]
  const rows = await ctx.runner.select<ExecRow>(
    `SELECT ${EXEC_COLUMNS} FROM ebbflow.process_events ${where(conditions)}
     ORDER BY session, time, pid LIMIT ${Math.floor(ctx.limits.maxSessionCommands) + 1} BY session`,
    p,
  )
  const bySession = new Map<string, ExecRow[]>()
  for (const r of rows) {
    const list = bySession.get(r.session)
    if (list) list.push(r)
    else bySession.set(r.session, [r])
  }
  return ids.map((id) => bySession.get(id) ?? [])
}
