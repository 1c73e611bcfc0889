// The alerter: each rule's SQL on its schedule, Prometheus' state machine over the rows, state
// and transitions in the store, notifications to Alertmanager and webhooks. Started the one way
// services start (`startAlerter(config, deps) → { stop }`); `runOnce` is the CronJob's pass.
import type { EbbflowError, Logger } from '@ebbflow/common'
import type { Store } from '@ebbflow/store'
import type { AlerterMetrics } from './metrics.ts'
import { type Fetch, postToAlertmanagers, postWithRetries } from './notify.ts'
import { expandTemplate, passes, type Rule } from './rules.ts'
import { type ActiveAlert, alertsToSend, evaluate, type Sample } from './state.ts'
import { AlertStore, chTime, type RuleHealth } from './store-state.ts'

export interface AlerterOptions {
  alertmanagers: readonly string[]
  webhooks: readonly string[]
  resend: number
  lagMargin: number
  deliveryHorizon: number
  httpTimeout: number
  webhookAttempts: number
  replica: string
}

/** The evaluation options of a loaded configuration. */
export function alerterOptionsOf(
  config: Pick<AlerterOptions, keyof AlerterOptions>,
): AlerterOptions {
  return {
    alertmanagers: config.alertmanagers,
    webhooks: config.webhooks,
    resend: config.resend,
    lagMargin: config.lagMargin,
    deliveryHorizon: config.deliveryHorizon,
    httpTimeout: config.httpTimeout,
    webhookAttempts: config.webhookAttempts,
    replica: config.replica,
  }
}

export interface AlerterDeps {
  store: Store
  logger: Logger
  /** The clock (ms since the epoch); tests drive the state machine with their own. */
  now?: () => number
  fetch?: Fetch
  metrics?: AlerterMetrics
}

export type EvaluationResult =
  | { rule: string; slot: number; outcome: 'skipped'; reason: string }
  | {
      rule: string
      slot: number
      outcome: 'evaluated'
      health: RuleHealth
      error?: string
      windowStart: number
      windowEnd: number
      active: number
      transitions: number
    }

/** The parameters every rule's SQL may use: `{now:…}`, `{window_start:…}`, `{window_end:…}`. */
export const RULE_PARAMETERS = ['now', 'window_start', 'window_end'] as const

const WEBHOOK_BACKOFF_MS = 500

export class Alerter {
  readonly state: AlertStore
  readonly rules: readonly Rule[]
  readonly options: AlerterOptions
  private readonly deps: AlerterDeps
  private readonly now: () => number
  private readonly fetchFn: Fetch

  constructor(rules: readonly Rule[], options: AlerterOptions, deps: AlerterDeps) {
    this.rules = rules
    this.options = options
    this.deps = deps
    this.state = new AlertStore(deps.store, options.replica)
    this.now = deps.now ?? Date.now
    this.fetchFn = deps.fetch ?? fetch
  }

  /**
   * Evaluates one rule at `ts` (its slot is ts / every): claims the slot, runs the SQL over the
   * window since the last finished evaluation, moves the state machine, sends, records.
   * Throws only when the store cannot be used; a broken rule is a health, not a throw.
   */
  async evaluateRule(rule: Rule, ts: number = this.now()): Promise<EvaluationResult> {
    const metrics = this.deps.metrics
    let result: EvaluationResult
    try {
      result = await this.evaluateSlot(rule, ts)
    } catch (err) {
      metrics?.evaluations.inc({ rule: rule.name, outcome: 'failed' })
      throw err
    }
    metrics?.evaluations.inc({ rule: rule.name, outcome: result.outcome })
    if (result.outcome === 'evaluated') metrics?.setHealth(rule.name, result.health)
    return result
  }

  private async evaluateSlot(rule: Rule, ts: number): Promise<EvaluationResult> {
    const { logger, store } = this.deps
    const slot = Math.floor(ts / rule.everyMs)
    let last = await this.state.lastEvaluations(rule.name)
    if (last.done >= slot) {
      // A run repeated within one slot (a CronJob retried) still delivers what earlier runs
      // could not; delivery claims keep it from sending anything twice.
      await this.deliverWebhooks(rule)
      return { rule: rule.name, slot, outcome: 'skipped', reason: 'slot already evaluated' }
    }
    // Another replica is still on an earlier slot: let it finish, so this one starts from the
    // state it writes. A replica that died mid-way is given up on after one interval.
    // Real elapsed time, not the (injectable) evaluation clock, bounds the wait.
    const waitUntil = performance.now() + Math.min(rule.everyMs, 10_000)
    while (last.claimed > last.done && last.claimed < slot && performance.now() < waitUntil) {
      await new Promise((r) => setTimeout(r, 50))
      last = await this.state.lastEvaluations(rule.name)
    }
    if (!(await this.state.claimSlot(rule.name, slot, ts)))
      return { rule: rule.name, slot, outcome: 'skipped', reason: 'claimed by another replica' }
    const started = performance.now()
    const lag = await this.ingestLagMs()
    const windowEnd = ts
    // Where the last finished window ended (or one interval back), reaching back over the rows
    // that were still on their way then.
    const base = last.windowEnd > 0 ? Math.min(last.windowEnd, ts) : ts - rule.everyMs
    const windowStart = base - lag - this.options.lagMargin
    const previous = await this.state.loadActive(rule.name)
    let rows: Record<string, unknown>[]
    try {
      rows = await store.query(rule.sql, {
        now: chTime(ts),
        window_start: chTime(windowStart),
        window_end: chTime(windowEnd),
      })
    } catch (err) {
      // As in Prometheus, a failed query leaves the rule's alerts as they were.
      const message = (err as Error).message
      logger.error(
        {
          rule: rule.name,
          file: rule.file,
          line: rule.line,
          code: (err as EbbflowError).code,
          err: message,
        },
        'rule query failed; its alerts keep their state, the other rules run on',
      )
      await this.state.finishSlot(rule.name, slot, this.now(), {
        // The window is not consumed: the next evaluation starts where the last good one ended.
        windowStart: base,
        windowEnd: base,
        health: 'error',
        error: message,
        rows: 0,
        instances: previous.size,
        durationMs: performance.now() - started,
      })
      return {
        rule: rule.name,
        slot,
        outcome: 'evaluated',
        health: 'error',
        error: message,
        windowStart,
        windowEnd,
        active: previous.size,
        transitions: 0,
      }
    }
    const samples = rows.flatMap((row) => sampleOf(rule, row))
    const outcome = evaluate(rule, previous, samples, ts, {
      holdUnsentResolved: this.options.alertmanagers.length > 0,
    })
    await this.sendToAlertmanagers(rule, outcome.active, ts)
    const removed = [...previous.keys()].filter((fp) => !outcome.active.has(fp))
    if (this.deps.metrics)
      for (const state of ['pending', 'firing', 'resolved'] as const)
        this.deps.metrics.alerts.set(
          { rule: rule.name, state },
          [...outcome.active.values()].filter((a) => a.state === state).length,
        )
    await this.state.saveTransitions(slot, outcome.transitions)
    await this.state.saveActive(rule.name, slot, this.now(), outcome.active, removed)
    const health: RuleHealth = rows.length === 0 ? 'nodata' : 'ok'
    await this.state.finishSlot(rule.name, slot, this.now(), {
      windowStart,
      windowEnd,
      health,
      error: '',
      rows: rows.length,
      instances: outcome.active.size,
      durationMs: performance.now() - started,
    })
    logger.debug(
      {
        rule: rule.name,
        slot,
        health,
        rows: rows.length,
        active: outcome.active.size,
        windowStart,
        windowEnd,
      },
      'rule evaluated',
    )
    for (const t of outcome.transitions)
      logger.info(
        {
          rule: rule.name,
          fingerprint: t.fingerprint,
          from: t.from,
          to: t.to,
          labels: t.alert.labels,
        },
        'alert transition',
      )
    await this.deliverWebhooks(rule)
    return {
      rule: rule.name,
      slot,
      outcome: 'evaluated',
      health,
      windowStart,
      windowEnd,
      active: outcome.active.size,
      transitions: outcome.transitions.length,
    }
  }

  /** Prometheus' sendAlerts; lastSentAt moves only when an Alertmanager took them, so a down one
   * gets them on a later evaluation. */
  private async sendToAlertmanagers(rule: Rule, active: Map<string, ActiveAlert>, ts: number) {
    const { alertmanagers, resend, httpTimeout } = this.options
    if (alertmanagers.length === 0) return
    const due = alertsToSend(active, ts, rule.everyMs, resend)
    if (due.length === 0) return
    const failed = await postToAlertmanagers(
      alertmanagers,
      due.map((d) => d.postable),
      httpTimeout,
      this.fetchFn,
    )
    for (const f of failed)
      this.deps.logger.error(
        {
          rule: rule.name,
          alertmanager: f.url,
          code: f.error.code,
          err: f.error.message,
          alerts: due.length,
        },
        'alertmanager did not take the alerts; they are sent again at the next evaluation',
      )
    this.deps.metrics?.notifications.inc(
      { kind: 'alertmanager', result: 'ok' },
      alertmanagers.length - failed.length,
    )
    this.deps.metrics?.notifications.inc({ kind: 'alertmanager', result: 'failed' }, failed.length)
    if (failed.length === alertmanagers.length) return
    const validFor = 4 * Math.max(rule.everyMs, resend)
    for (const d of due) {
      d.alert.lastSentAt = ts
      d.alert.validUntil = ts + validFor
    }
  }

  /** Delivers the rule's undelivered firing/resolved transitions to every webhook, each once. */
  async deliverWebhooks(rule: Rule): Promise<void> {
    const { webhooks, deliveryHorizon, httpTimeout, webhookAttempts } = this.options
    const policy = {
      attempts: webhookAttempts,
      backoffMs: WEBHOOK_BACKOFF_MS,
      timeoutMs: httpTimeout,
    }
    // A claim outlives the longest delivery it can make, so no other replica takes it meanwhile.
    const leaseMs =
      webhookAttempts * httpTimeout + WEBHOOK_BACKOFF_MS * 2 ** webhookAttempts + 5_000
    for (const target of webhooks) {
      const now = this.now()
      const pending = await this.state.undelivered(
        rule.name,
        target,
        now - deliveryHorizon,
        now,
        leaseMs,
      )
      for (const p of pending) {
        if (!(await this.state.claimDelivery(target, p.id, p.generation, this.now()))) continue
        const status = p.to_state === 'firing' ? 'firing' : 'resolved'
        const payload = {
          version: '1',
          receiver: 'ebbflow',
          status,
          transition: {
            id: p.id,
            rule: p.rule,
            from: p.from_state,
            to: p.to_state,
            at: isoOf(p.at),
          },
          alerts: [
            {
              status,
              fingerprint: p.fingerprint,
              labels: p.labels,
              annotations: p.annotations,
              value: p.value,
              startsAt: isoOf(status === 'firing' ? p.at : p.active_at),
              endsAt: status === 'resolved' ? isoOf(p.at) : '0001-01-01T00:00:00Z',
            },
          ],
        }
        // The POST and its record are apart: a record that fails after a good POST must not
        // turn into a 'failed' outcome (that would send it again at once).
        let sent: { attempts: number } | undefined
        let failure: (EbbflowError & { attempts?: number }) | undefined
        try {
          sent = await postWithRetries(
            target,
            payload,
            policy,
            { 'idempotency-key': p.id },
            this.fetchFn,
          )
        } catch (err) {
          failure = err as EbbflowError & { attempts?: number }
        }
        if (sent) {
          this.deps.metrics?.notifications.inc({ kind: 'webhook', result: 'ok' })
          await this.state.deliveryOutcome(
            target,
            p.id,
            p.generation,
            this.now(),
            'delivered',
            sent.attempts,
            '',
          )
        } else if (failure) {
          this.deps.logger.error(
            {
              rule: rule.name,
              webhook: target,
              transition: p.id,
              code: failure.code,
              err: failure.message,
            },
            'webhook delivery failed; a later evaluation delivers it',
          )
          this.deps.metrics?.notifications.inc({ kind: 'webhook', result: 'failed' })
          await this.state.deliveryOutcome(
            target,
            p.id,
            p.generation,
            this.now(),
            'failed',
            failure.attempts ?? 1,
            failure.message,
          )
        }
      }
    }
  }

  /** The pipeline's recent ingestion lag, so a window reaches back over rows still arriving. */
  private async ingestLagMs(): Promise<number> {
    const [row] = await this.deps.store.query<{ lag: string | number }>(
      `SELECT toUInt64(max(value)) AS lag FROM ebbflow.collector_stats
       WHERE metric = 'ingest_lag_ms' AND time >= now64(3) - INTERVAL 5 MINUTE`,
    )
    // Bounded: a stuck pipeline should not turn every evaluation into a scan of hours.
    return Math.min(Number(row?.lag ?? 0), 3_600_000)
  }
}

function isoOf(chTime: string): string {
  return new Date(`${chTime.replace(' ', 'T')}Z`).toISOString()
}

/**
 * One row as a sample when it passes the condition: `label_*` columns are labels (empty ones
 * dropped), `value` the value (1 without one), every other column an annotation; the rule's labels and alertname are
 * added, its annotation templates filled.
 */
export function sampleOf(rule: Rule, row: Record<string, unknown>): Sample[] {
  const labels: Record<string, string> = {}
  const annotations: Record<string, string> = {}
  let value = 1
  for (const [k, v] of Object.entries(row)) {
    if (k.startsWith('label_')) {
      // As in Prometheus, an empty label is no label (and not part of the identity).
      const t = text(v)
      if (t !== '') labels[k.slice(6)] = t
    } else if (k === 'value') value = Number(v)
    else annotations[k] = text(v)
  }
  if (!passes(rule.condition, value)) return []
  Object.assign(labels, rule.labels, { alertname: rule.name })
  for (const [k, t] of Object.entries(rule.annotations))
    annotations[k] = expandTemplate(t, labels, value)
  return [{ labels, annotations, value }]
}

function text(v: unknown): string {
  if (v == null) return ''
  return typeof v === 'string' ? v : JSON.stringify(v)
}

/**
 * `--check`: runs each rule's SQL without rows and names each broken one by file and line (the
 * SQL's own line when ClickHouse gives one). A threshold needs a numeric `value` column.
 */
export async function checkRules(store: Store, rules: readonly Rule[]): Promise<string[]> {
  const problems: string[] = []
  const now = Date.now()
  const params = { now: chTime(now), window_start: chTime(now - 60_000), window_end: chTime(now) }
  for (const rule of rules) {
    try {
      const columns = await store.query<{ name: string; type: string }>(
        `DESCRIBE TABLE (SELECT * FROM (${rule.sql}\n) LIMIT 0)`,
        params,
      )
      for (const c of columns)
        if (c.name.startsWith('label_') && !/^label_[A-Za-z_][A-Za-z0-9_]*$/.test(c.name))
          problems.push(
            `${rule.file}:${rule.line}: rule ${rule.name}: column "${c.name}" is not a valid label name (letters, digits, _ after label_)`,
          )
      const value = columns.find((c) => c.name === 'value')
      if (rule.condition.kind === 'threshold' && !value)
        problems.push(
          `${rule.file}:${rule.line}: rule ${rule.name}: a threshold condition needs a "value" column`,
        )
      else if (value && !/Int|Float|Decimal|Bool/.test(value.type))
        problems.push(
          `${rule.file}:${rule.line}: rule ${rule.name}: column "value" is ${value.type}, not a number`,
        )
    } catch (err) {
      const message = (err as Error).message
      const m = /\(line (\d+), col (\d+)\)/.exec(message)
      const line = m ? rule.sqlLine + Number(m[1]) - 1 : rule.sqlLine
      problems.push(`${rule.file}:${line}: rule ${rule.name}: ${message.split('\n')[0]}`)
    }
  }
  return problems
}

export interface RunningAlerter {
  alerter: Alerter
  stop(): Promise<void>
}

/**
 * Evaluates every rule on its own schedule (at its slot boundaries) until stopped. An
 * evaluation that fails on the store is logged and the rule keeps its schedule.
 */
export function startAlerter(
  rules: readonly Rule[],
  options: AlerterOptions,
  deps: AlerterDeps,
): RunningAlerter {
  const alerter = new Alerter(rules, options, deps)
  const timers = new Map<string, NodeJS.Timeout>()
  const running = new Set<Promise<unknown>>()
  let stopped = false
  const schedule = (rule: Rule) => {
    if (stopped) return
    const now = Date.now()
    const next = (Math.floor(now / rule.everyMs) + 1) * rule.everyMs
    timers.set(
      rule.name,
      setTimeout(() => {
        const run = alerter
          .evaluateRule(rule)
          .catch((err: EbbflowError) =>
            deps.logger.error(
              { rule: rule.name, code: err.code, retriable: err.retriable, err: err.message },
              'evaluation failed (store unavailable?); the next slot tries again from the last finished window',
            ),
          )
          .finally(() => {
            running.delete(run)
            schedule(rule)
          })
        running.add(run)
      }, next - now),
    )
  }
  for (const rule of rules) schedule(rule)
  return {
    alerter,
    stop: async () => {
      stopped = true
      for (const t of timers.values()) clearTimeout(t)
      await Promise.allSettled([...running])
    },
  }
}

/** One pass for a CronJob: every rule at its current slot. Errors per rule are collected. */
export async function runOnce(
  rules: readonly Rule[],
  options: AlerterOptions,
  deps: AlerterDeps,
): Promise<{ results: EvaluationResult[]; failures: { rule: string; error: EbbflowError }[] }> {
  const alerter = new Alerter(rules, options, deps)
  const results: EvaluationResult[] = []
  const failures: { rule: string; error: EbbflowError }[] = []
  for (const rule of rules) {
    try {
      results.push(await alerter.evaluateRule(rule))
    } catch (err) {
      failures.push({ rule: rule.name, error: err as EbbflowError })
    }
  }
  return { results, failures }
}
