// The alerter's state (migration 0004) through the API: current alert instances, their
// transitions, and each rule's last evaluation (SDL and resolvers: domains/alerts.ts).
// Namespaced like every other field: an
// alert's namespace is its `namespace` label; node-level alerts (no namespace) and rule health
// are shown to callers that may read every namespace only.

import { userError } from '../errors.ts'
import type { QueryContext } from '../query-context.ts'
import { num, Params, scopeCondition, where } from '../sql.ts'

const ZERO = '1970-01-01 00:00:00.000'
const orNull = (t: string) => (t === ZERO ? null : t)

export async function alerts(
  ctx: QueryContext,
  a: { namespace?: string | null; rule?: string | null; state?: string | null },
) {
  const p = new Params()
  const conditions = [...scopeCondition(ctx.scope, p), 'NOT deleted']
  if (a.namespace != null) conditions.push(`namespace = ${p.add('String', a.namespace)}`)
  if (a.rule != null) conditions.push(`rule = ${p.add('String', a.rule)}`)
  if (a.state != null) conditions.push(`state = ${p.add('String', a.state)}`)
  const rows = await ctx.runner.select<{
    rule: string
    fingerprint: string
    state: 'pending' | 'firing' | 'resolved'
    namespace: string
    labels: Record<string, string>
    annotations: Record<string, string>
    value: number | string
    active_at: string
    fired_at: string
    resolved_at: string
    last_sent_at: string
  }>(
    `SELECT rule, fingerprint, toString(state) AS state, namespace, labels, annotations, value,
            toString(active_at) AS active_at, toString(fired_at) AS fired_at,
            toString(resolved_at) AS resolved_at, toString(last_sent_at) AS last_sent_at
     FROM ebbflow.alert_state FINAL ${where(conditions)}
     ORDER BY rule, fingerprint`,
    p,
  )
  return rows.map((r) => ({
    rule: r.rule,
    fingerprint: r.fingerprint,
    state: r.state,
    namespace: r.namespace,
    labels: r.labels,
    annotations: r.annotations,
    value: num(r.value),
    activeAt: r.active_at,
    firedAt: orNull(r.fired_at),
    resolvedAt: orNull(r.resolved_at),
    lastSentAt: orNull(r.last_sent_at),
  }))
}

export async function alertHistory(
  ctx: QueryContext,
  a: {
    namespace?: string | null
    rule?: string | null
    from?: string | null
    to?: string | null
    first?: number | null
  },
) {
  const size = a.first ?? ctx.limits.defaultPageSize
  if (!Number.isInteger(size) || size < 0 || size > ctx.limits.maxPageSize)
    throw userError('PAGE_TOO_LARGE', `first must be between 0 and ${ctx.limits.maxPageSize}`)
  const p = new Params()
  const conditions = scopeCondition(ctx.scope, p)
  if (a.namespace != null) conditions.push(`namespace = ${p.add('String', a.namespace)}`)
  if (a.rule != null) conditions.push(`rule = ${p.add('String', a.rule)}`)
  if (a.from != null) conditions.push(`time >= ${p.add("DateTime64(9, 'UTC')", a.from)}`)
  if (a.to != null) conditions.push(`time < ${p.add("DateTime64(9, 'UTC')", a.to)}`)
  const rows = await ctx.runner.select<{
    id: string
    ts: string
    rule: string
    fingerprint: string
    namespace: string
    from_state: string
    to_state: string
    labels: Record<string, string>
    annotations: Record<string, string>
    value: number | string
  }>(
    `SELECT id, toString(time) AS ts, rule, fingerprint, namespace, toString(from_state) AS from_state,
            toString(to_state) AS to_state, labels, annotations, value
     FROM ebbflow.alert_transitions ${where(conditions)}
     ORDER BY time DESC, id LIMIT 1 BY id LIMIT ${Math.floor(size)}`,
    p,
  )
  return rows.map((r) => ({
    id: r.id,
    time: r.ts,
    rule: r.rule,
    fingerprint: r.fingerprint,
    namespace: r.namespace,
    from: r.from_state,
    to: r.to_state,
    labels: r.labels,
    annotations: r.annotations,
    value: num(r.value),
  }))
}

export async function alertRules(ctx: QueryContext) {
  if (!ctx.scope.all) return []
  const rows = await ctx.runner.select<{
    rule: string
    health: string
    error: string
    at: string
    window_start: string
    window_end: string
    instances: number | string
  }>(
    `SELECT rule, toString(argMax(health, slot)) AS health, argMax(error, slot) AS error,
            toString(argMax(time, slot)) AS at, toString(argMax(window_start, slot)) AS window_start,
            toString(argMax(window_end, slot)) AS window_end, argMax(instances, slot) AS instances
     FROM ebbflow.alert_evaluations WHERE phase = 'done' GROUP BY rule ORDER BY rule`,
    new Params(),
  )
  return rows.map((r) => ({
    rule: r.rule,
    health: r.health,
    error: r.error === '' ? null : r.error,
    lastEvaluation: r.at,
    windowStart: r.window_start,
    windowEnd: r.window_end,
    instances: num(r.instances),
  }))
}
