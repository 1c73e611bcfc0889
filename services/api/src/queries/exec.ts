// Process execs, their exits, and `kubectl exec` sessions (execs sharing a session value).
import type { QueryContext } from '../context.ts'
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
import { type EventFilter, filterConditions, num, Params, scopeCondition, where } from '../sql.ts'

export interface ExecRow {
  ts: string
  node: string
  boot_id: string
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
  cgroup_id: string
  pidns_ino: number
  mntns_ino: number
  parent_comm: string
  args_total_bytes: number
  args_truncated: boolean
  filename_truncated: boolean
  args_read_failed: boolean
  seen_at_start: boolean
}

export interface ExitInfo {
  ts: string
  exitCode: number
  signal: number
  durationNs: number
  durationFromFork: boolean
  coreDumped: boolean
}

const EXEC_COLUMNS = `toString(time) AS ts, node, boot_id, namespace, pod, container, function,
  pid, tgid, ppid, uid, gid, cgroup_id, pidns_ino, mntns_ino, comm, parent_comm, filename, args,
  args_total_bytes, args_truncated, filename_truncated, args_read_failed, seen_at_start, session,
  ${META_SELECT}`

const EXEC_KEY: KeyColumn[] = [
  { sql: 'time', type: "DateTime64(9, 'UTC')", check: isTime },
  { sql: 'node', type: 'String', check: isString },
  { sql: 'boot_id', type: 'String', check: isString },
  { sql: 'pid', type: 'UInt32', check: isUInt },
]
const execKey = (r: ExecRow) => [r.ts, r.node, r.boot_id, num(r.pid)]

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
  const rows = await ctx.runner.select<{
    ts: string
    node: string
    boot_id: string
    tgid: number
    exit_code: number
    signal: number
    duration_ns: string
    duration_from_fork: boolean
    core_dumped: boolean
  }>(
    `SELECT toString(time) AS ts, node, boot_id, tgid, exit_code, signal, duration_ns,
       duration_from_fork, core_dumped
     FROM ebbflow.process_events ${where(conditions)} ORDER BY time`,
    p,
  )
  const byProcess = new Map<string, typeof rows>()
  for (const r of rows) {
    const k = `${r.node}\0${r.boot_id}\0${num(r.tgid)}`
    const list = byProcess.get(k)
    if (list) list.push(r)
    else byProcess.set(k, [r])
  }
  return execs.map((e) => {
    const exit = byProcess.get(`${e.node}\0${e.boot_id}\0${num(e.tgid)}`)?.find((x) => x.ts >= e.ts)
    return exit
      ? {
          ts: exit.ts,
          exitCode: num(exit.exit_code),
          signal: num(exit.signal),
          durationNs: num(exit.duration_ns),
          durationFromFork: exit.duration_from_fork === true,
          coreDumped: exit.core_dumped === true,
        }
      : null
  })
}

export interface SessionRow {
  id: string
  s_node: string
  s_namespace: string
  s_pod: string
  s_container: string
  started: string
  last_command: string
  commands: string
  s_uid: number
}

const SESSION_COLUMNS = `session AS id, any(node) AS s_node, any(namespace) AS s_namespace,
  any(pod) AS s_pod, argMin(container, time) AS s_container, toString(min(time)) AS started,
  toString(max(time)) AS last_command, count() AS commands, argMin(uid, time) AS s_uid`

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
    (r) => [r.started, r.id],
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
