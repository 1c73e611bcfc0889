// Prometheus' alerting-rule state machine (rules/alerting.go), as pure functions of the previous
// state, the rows of one evaluation and its timestamp, so a test can drive it with its own clock
// and the store can carry it between processes.
import { createHash } from 'node:crypto'

/** Prometheus' StatePending, StateFiring, and StateInactive with a ResolvedAt ("resolved"). */
export type AlertState = 'pending' | 'firing' | 'resolved'

export interface ActiveAlert {
  fingerprint: string
  /** alertname, the rule's labels and the row's label_* columns. */
  labels: Record<string, string>
  annotations: Record<string, string>
  value: number
  state: AlertState
  /** Times in ms since the epoch; 0 is Go's zero time ("never"). */
  activeAt: number
  firedAt: number
  resolvedAt: number
  lastSentAt: number
  keepFiringSince: number
  validUntil: number
}

/** One row of the rule's result that passed its condition. */
export interface Sample {
  labels: Record<string, string>
  annotations: Record<string, string>
  value: number
}

export type TransitionState = 'inactive' | 'pending' | 'firing' | 'resolved'

export interface Transition {
  /** The same logical transition has the same id whoever computes it. */
  id: string
  rule: string
  fingerprint: string
  from: TransitionState
  to: TransitionState
  at: number
  alert: ActiveAlert
}

export interface RuleTiming {
  name: string
  forMs: number
  keepFiringForMs: number
}

/** How long a resolved alert stays to be re-sent as resolved (Prometheus' resolvedRetention). */
export const RESOLVED_RETENTION_MS = 15 * 60_000

export function fingerprint(labels: Readonly<Record<string, string>>): string {
  const sorted = Object.keys(labels)
    .sort()
    .map((k) => [k, labels[k]])
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex').slice(0, 16)
}

export function transitionId(rule: string, fp: string, to: TransitionState, activeAt: number) {
  return createHash('sha256')
    .update(`${rule}\0${fp}\0${to}\0${activeAt}`)
    .digest('hex')
    .slice(0, 24)
}

export interface EvalOutcome {
  active: Map<string, ActiveAlert>
  transitions: Transition[]
}

/**
 * One evaluation at `ts`. As in Prometheus: a new label set starts pending (activeAt = ts); it
 * fires once it has been active for `for`; a firing alert whose row is gone keeps firing for
 * `keep_firing_for`, then resolves (resolvedAt = ts) and is kept RESOLVED_RETENTION_MS so it is
 * re-sent as resolved; a pending alert whose row is gone is dropped. One deliberate addition:
 * with `holdUnsentResolved`, a resolved alert is kept past the retention until it was sent at
 * least once after resolving, so a long Alertmanager outage does not lose the resolution.
 */
export function evaluate(
  rule: RuleTiming,
  previous: ReadonlyMap<string, ActiveAlert>,
  samples: readonly Sample[],
  ts: number,
  options: { holdUnsentResolved?: boolean } = {},
): EvalOutcome {
  const active = new Map<string, ActiveAlert>()
  for (const [k, a] of previous) active.set(k, { ...a })
  const transitions: Transition[] = []
  const move = (a: ActiveAlert, from: TransitionState, to: TransitionState) =>
    transitions.push({
      id: transitionId(rule.name, a.fingerprint, to, a.activeAt),
      rule: rule.name,
      fingerprint: a.fingerprint,
      from,
      to,
      at: ts,
      alert: { ...a },
    })
  const seen = new Set<string>()
  for (const s of samples) {
    const fp = fingerprint(s.labels)
    if (seen.has(fp)) continue // two rows with one label set: the first counts, as a vector has one
    seen.add(fp)
    const a = active.get(fp)
    if (a && a.state !== 'resolved') {
      a.value = s.value
      a.annotations = s.annotations
      continue
    }
    const fresh: ActiveAlert = {
      fingerprint: fp,
      labels: s.labels,
      annotations: s.annotations,
      value: s.value,
      state: 'pending',
      activeAt: ts,
      firedAt: 0,
      resolvedAt: 0,
      lastSentAt: 0,
      keepFiringSince: 0,
      validUntil: 0,
    }
    active.set(fp, fresh)
    move(fresh, a ? 'resolved' : 'inactive', 'pending')
  }
  for (const [fp, a] of active) {
    if (!seen.has(fp)) {
      let keepFiring = false
      if (a.state === 'firing' && rule.keepFiringForMs > 0) {
        if (a.keepFiringSince === 0) a.keepFiringSince = ts
        if (ts - a.keepFiringSince < rule.keepFiringForMs) keepFiring = true
      }
      if (
        a.state === 'pending' ||
        (a.resolvedAt !== 0 &&
          ts - a.resolvedAt > RESOLVED_RETENTION_MS &&
          !(options.holdUnsentResolved && a.lastSentAt < a.resolvedAt))
      ) {
        active.delete(fp)
        if (a.state === 'pending') move(a, 'pending', 'inactive')
        continue
      }
      if (a.state !== 'resolved' && !keepFiring) {
        a.state = 'resolved'
        a.resolvedAt = ts
        move(a, 'firing', 'resolved')
      }
      if (!keepFiring) continue
    } else {
      a.keepFiringSince = 0
    }
    if (a.state === 'pending' && ts - a.activeAt >= rule.forMs) {
      a.state = 'firing'
      a.firedAt = ts
      move(a, 'pending', 'firing')
    }
  }
  return { active, transitions }
}

/** Prometheus' needsSending: never pending; resolved since the last send; or `resend` elapsed. */
export function needsSending(a: ActiveAlert, ts: number, resendMs: number): boolean {
  if (a.state === 'pending') return false
  if (a.resolvedAt > a.lastSentAt) return true
  return a.lastSentAt + resendMs < ts
}

/** Alertmanager API v2's postable alert. */
export interface PostableAlert {
  labels: Record<string, string>
  annotations: Record<string, string>
  startsAt: string
  endsAt: string
  generatorURL?: string
}

/**
 * The alerts to send at `ts` and their endsAt: resolvedAt once resolved, else
 * ts + 4 × max(interval, resend), so two missed evaluations or sends do not resolve it.
 */
export function alertsToSend(
  active: ReadonlyMap<string, ActiveAlert>,
  ts: number,
  intervalMs: number,
  resendMs: number,
): { alert: ActiveAlert; postable: PostableAlert }[] {
  const out: { alert: ActiveAlert; postable: PostableAlert }[] = []
  const validFor = 4 * Math.max(intervalMs, resendMs)
  for (const a of active.values()) {
    if (!needsSending(a, ts, resendMs)) continue
    const endsAt = a.resolvedAt !== 0 ? a.resolvedAt : ts + validFor
    out.push({
      alert: a,
      postable: {
        labels: a.labels,
        annotations: a.annotations,
        startsAt: new Date(a.firedAt || a.activeAt).toISOString(),
        endsAt: new Date(endsAt).toISOString(),
      },
    })
  }
  return out
}
